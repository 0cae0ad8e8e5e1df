"""Every read of a file in kernelnet goes through kernelnet.safe_read (regular files only, a
size bound, links out of the folder refused): a scan of the package's source for the ways
Python reads a file, each place outside safe_read named here with the reason it may."""

import ast
from pathlib import Path

import kernelnet

PACKAGE = Path(kernelnet.__file__).parent

# Calls that read a file (or open one to be read) by themselves.
READERS = {
    "open",  # builtins.open / io.open / gzip.open / os.open
    "read_text",
    "read_bytes",
    "load",  # np.load, json.load, pickle.load
    "loadtxt",
    "genfromtxt",
    "fromfile",
    "ZipFile",
    "urlopen",
}

# (file, call) -> why it may read without safe_read.
ALLOWED = {
    ("safe_read.py", "open"): "the bounded reader itself",
    ("safe_read.py", "ZipFile"): "the bounded reader itself (on a file it opened)",
    ("safe_read.py", "read_bytes"): "the bounded reader itself",
    ("safe_write.py", "open"): "fsync of a folder, and a log opened to append: no reads",
    ("runs.py", "open"): "the run lock: O_NOFOLLOW, reads at most 32 bytes of a pid",
    ("blas.py", "read_text"): "/proc/self/maps, written by the kernel for this process",
    ("footprint.py", "read_text"): "the cgroup's memory limit, a file of the kernel's",
    ("data/fetch.py", "urlopen"): "the download: it has its own deadline and byte bound",
    ("data/files.py", "ZipFile"): "the directory of an .npz opened by safe_read.open_regular",
    ("grading/grader.py", "ZipFile"): "a submission's .zip opened by safe_read.open_regular",
    ("grading/grader.py", "open"): "a member of that .zip, its declared size checked first",
    ("grading/roster.py", "ZipFile"): "a submission's .zip opened by safe_read.open_regular, "
    "its member names listed (nothing inflated)",
    ("grading/child.py", "open"): "the sandbox's child (standard library only, inside the "
    "sandbox): the job its parent wrote, the submission's files its parent copied and capped",
    ("grading/child.py", "load"): "json.load of the job file its parent wrote",
    ("grading/sandbox.py", "open"): "/proc/<pid>/status and stat (the kernel's), and the "
    "child's output in a folder only the grader can reach, read to a cap",
}


def _bounded_names(tree: ast.AST) -> set[str]:
    """Names a module imports from kernelnet.safe_read (its calls are the bounded reads)."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "kernelnet.safe_read"
        for alias in node.names
    }


def _writes(call: ast.Call) -> bool:
    """``open(path, "w")`` and the like: a write, which the writer's rules govern."""
    mode = call.args[1] if len(call.args) > 1 else None
    mode = next((k.value for k in call.keywords if k.arg == "mode"), mode)
    return isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax")


def _calls(tree: ast.AST):
    """(name, line) of every call that reads a file by itself: not a call into safe_read,
    not ``RunDir.open`` (which reads through it), not a local function named ``load``."""
    bounded = _bounded_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name):
            name = func.id
            if name in bounded or name == "load" or (name == "open" and _writes(node)):
                continue
        elif isinstance(func, ast.Attribute):
            name = func.attr
            receiver = func.value.id if isinstance(func.value, ast.Name) else None
            if receiver in ("safe_read", "RunDir"):
                continue
        else:
            continue
        if name in READERS:
            yield name, node.lineno


def test_every_read_goes_through_the_bounded_reader():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for name, line in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            if (relative, name) not in ALLOWED:
                found.append(f"kernelnet/{relative}:{line}: {name}(...)")
    assert not found, "reads that bypass kernelnet.safe_read:\n" + "\n".join(found)


def test_the_allowed_list_names_only_reads_that_exist():
    present = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        present |= {(relative, name) for name, _ in _calls(ast.parse(path.read_text()))}
    assert set(ALLOWED) <= present, set(ALLOWED) - present


def test_the_scan_finds_plain_reads_and_passes_bounded_ones():
    source = (
        "import json\nfrom kernelnet.safe_read import read_bytes\n"
        "with open(p) as f:\n    json.load(f)\nPath(p).read_text()\nnp.load(p)\n"
        "read_bytes(p, 10)\nsafe_read.read_text(p, 10)\nRunDir.open(p)\nload(d, seed)\n"
    )
    assert sorted(name for name, _ in _calls(ast.parse(source))) == [
        "load",
        "load",
        "open",
        "read_text",
    ]
