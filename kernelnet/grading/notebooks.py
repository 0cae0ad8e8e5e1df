"""Run a student's notebook top to bottom ("Restart Kernel and Run All Cells") in the sandbox.

:func:`run_notebook` gives an :class:`~kernelnet.grading.sandbox.Outcome` like a function
call's. The notebook is read here, bounded (``safe_read``) and parsed as data; only its code
cells' sources go to the child (:mod:`kernelnet.grading.notebook_child`), which runs them with
nbclient in a Jupyter kernel that the sandbox starts and limits like a function call's
child: a fresh folder with copies of the submission's ``.py`` files and data, a fresh uid, a
network namespace whose loopback stays down (the kernel talks over ipc, Unix sockets in a
folder the student cannot enter), rlimits, the import policy, the wall clock kept here, and
every process of the uid killed afterwards.

What is enforced inside the kernel, and what is not:

- the import policy applies to every ``import`` written in a cell or in the submission's
  files (cells are compiled from files in the sandbox's folder, as the policy requires);
  IPython's own imports, and what magics (``%timeit``) and shell escapes (``!cmd``) do, are
  not imports by the student: they run within the OS limits (uid, no network, rlimits) only;
- a cell that catches the refused import keeps going; ``Outcome.forbidden`` names an import
  only when its refusal is the error the notebook stops on;
- the kernel's own threads (about a dozen) and descriptors (about fifty) are added to the
  limits: ``Limits.processes`` and ``open_files`` stay the student's share;
- CPU time and memory are the kernel process's (RLIMIT_CPU counts its threads together).

Needs the optional extra: ``pip install 'kernelnet[notebooks]'`` (nbclient, ipykernel,
nbformat); without it :func:`run_notebook` raises :class:`NotebooksUnavailable` before
anything runs.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

from kernelnet import safe_read
from kernelnet.errors import ConfigError
from kernelnet.grading import sandbox
from kernelnet.grading.sandbox import Isolation, Limits, Outcome, Status

NOTEBOOK_CHILD = Path(__file__).with_name("notebook_child.py")
MAX_NOTEBOOK_BYTES = 16 * sandbox.MiB  # outputs and figures included
MAX_NOTEBOOK_DEPTH = 32
RESULT_BYTES = 4 * sandbox.MiB
KERNEL_THREADS = 32  # added to Limits.processes: ipykernel's threads count in RLIMIT_NPROC
KERNEL_FILES = 192  # added to Limits.open_files: zmq's sockets, eventfds and pipes
CLIENT_BYTES = 4 * 2**30  # address space of the client (it keeps no output)
REQUIRED = ("nbclient", "ipykernel", "nbformat")
INSTALL = "pip install 'kernelnet[notebooks]'"
NOT_IMPORTS = "the import policy covers import statements only: magics and !shell lines run within the OS limits"  # noqa: E501


class NotebooksUnavailable(ConfigError):
    """Running notebooks needs the optional extra (nbclient, ipykernel, nbformat)."""

    def __init__(self, message: str | None = None):
        missing = [name for name in REQUIRED if not _installed(name)]
        super().__init__(
            message or f"running notebooks needs {', '.join(missing or REQUIRED)}: {INSTALL}"
        )


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module set to None
        return False


def notebooks_available() -> bool:
    """Whether nbclient, ipykernel and nbformat can be imported (found, not imported)."""
    return all(_installed(name) for name in REQUIRED)


class _Damaged(ValueError):
    """A notebook that cannot be read as one."""


def code_cells(data: bytes, where: str) -> list[str]:
    """The sources of the code cells of a notebook (nbformat 4, or older ones converted), in
    order; _Damaged with one line saying why otherwise. Nothing in it is run."""
    import nbformat

    try:
        safe_read.parse_json(data, where, MAX_NOTEBOOK_DEPTH)
        with warnings.catch_warnings():  # cells without ids and the like: not ours to judge
            warnings.simplefilter("ignore")
            notebook = nbformat.reads(data.decode("utf-8-sig"), as_version=4)
    except UnicodeDecodeError:
        raise _Damaged(f"{where}: not UTF-8 text") from None
    except ValueError as exc:  # json.JSONDecodeError and nbformat's NotJSONError among them
        raise _Damaged(f"{where}: not a notebook ({sandbox._one_line(str(exc))[:200]})") from None
    except Exception as exc:  # nbformat's own errors for JSON that is no notebook
        raise _Damaged(f"{where}: not a notebook ({type(exc).__name__}: {exc})"[:300]) from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise _Damaged(f"{where}: not a notebook (no list of cells)")
    sources = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            raise _Damaged(f"{where}: cell {number} is not a notebook cell")
        if cell["cell_type"] == "code":
            source = cell.get("source")
            if isinstance(source, list) and all(isinstance(line, str) for line in source):
                source = "".join(source)
            if not isinstance(source, str):
                raise _Damaged(f"{where}: cell {number}'s source is not text")
            sources.append(source)
    return sources


def _python_of(cell: str) -> str:
    """A cell without IPython's own syntax (magics, shell escapes, help), for parsing."""
    lines = []
    for line in cell.splitlines():
        head = line.lstrip()
        plain = not head.startswith(("%", "!", "?")) and not head.endswith("?")
        lines.append(line if plain else line[: len(line) - len(head)] + "pass")
    return "\n".join(lines)


def _imports(sources: Iterable[str], allowed: frozenset[str]) -> list[str]:
    """Dotted names of the allowed modules the sources import, found by parsing (never
    running) them: loaded before the uid drop."""
    found = []
    for source in sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # the student sees the error when the cell runs
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append(node.module)
                found += [f"{node.module}.{alias.name}" for alias in node.names]
    return [name for name in dict.fromkeys(found) if name.partition(".")[0] in allowed]


def run_notebook(
    submission_dir: Path,
    notebook: str,
    limits: Limits,
    data_files: Iterable[Path] = (),
    allowed_imports: Iterable[str] = ("numpy", "math"),
) -> Outcome:
    """Run every code cell of ``submission_dir/notebook`` in order, in a fresh kernel in the
    sandbox; ``limits`` bound the whole run (the kernel's start included).

    Status OK when every cell ran; EXCEPTION with "cell N: Type: message" (N counts the
    notebook's code cells from 1, empty ones included, markdown cells not) and the error's
    traceback lines; MEMORY_LIMIT and FORBIDDEN for a cell that raised MemoryError or hit the
    import policy (same message); TIMEOUT, CPU_LIMIT, OUTPUT_TOO_LARGE as for functions; a
    damaged or oversized .ipynb is an EXCEPTION saying so (the student's to fix), before
    anything runs; SANDBOX_ERROR when the kernel cannot start. Raises NotebooksUnavailable
    without the extra, ValueError for a name that is not a notebook in the folder and
    FileNotFoundError when it is missing.
    """
    if not notebooks_available():
        raise NotebooksUnavailable()
    submission_dir = Path(submission_dir)
    if Path(notebook).name != notebook or not notebook.endswith(".ipynb"):
        raise ValueError(f"notebook {notebook!r}: not the name of a .ipynb file in the folder")
    started = time.monotonic()
    path = submission_dir / notebook
    try:
        cells = code_cells(safe_read.read_bytes(path, MAX_NOTEBOOK_BYTES, submission_dir), notebook)
    except FileNotFoundError:
        raise
    except (_Damaged, OSError) as exc:
        return Outcome(
            Status.EXCEPTION,
            sandbox._one_line(str(exc).replace(str(path), notebook)),
            exception_type="InvalidNotebook",
            seconds=time.monotonic() - started,
        )
    allowed = sorted(set(allowed_imports))
    uid = sandbox._fresh_uid() if sandbox._is_root() else None
    workdir = Path(tempfile.mkdtemp(prefix="kernelnet-notebook-"))
    private = Path(tempfile.mkdtemp(prefix="kernelnet-notebook-client-"))  # 0700
    try:
        sources = sandbox._read_sources(submission_dir)
        own = sandbox._write_sources(sources, workdir)
        sandbox._copy_data(data_files, workdir, limits.file_bytes)
        texts = [source.decode("utf-8", errors="replace") for source in sources.values()]
        texts += [_python_of(cell) for cell in cells]
        preload = sandbox._preloads(allowed, _imports(texts, frozenset(allowed) - set(own)))
        job = {
            "cells": cells,
            "workdir": str(workdir),
            "uid": uid,
            "isolate_network": uid is not None and sys.platform.startswith("linux"),
            "limits": {
                "cpu_seconds": limits.cpu_seconds,
                "memory_bytes": limits.memory_bytes,
                "file_bytes": limits.file_bytes,
                "processes": limits.processes + KERNEL_THREADS,
                "open_files": limits.open_files + KERNEL_FILES,
            },
            "allowed_imports": allowed,
            "own_modules": own,
            "preload": preload,
            "matplotlib": "matplotlib" in allowed,
            "output_bytes": limits.output_bytes,
            "file_bytes": limits.file_bytes,
            "max_message_bytes": limits.file_bytes + sandbox.MiB,
            "client_bytes": CLIENT_BYTES,
            "wall_seconds": limits.wall_seconds,
        }
        if uid is not None:
            os.chown(workdir, uid, uid)
        return _supervise(workdir, private, job, limits, started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)


def _env(workdir: Path, private: Path) -> dict[str, str]:
    """The child's environment: the sandbox's minimal one, with Jupyter's and IPython's
    folders in the client's private folder (not the student's, where a config file would be
    code run by the kernel)."""
    jupyter = private / "jupyter"
    return {
        **sandbox._minimal_env(workdir),
        "JUPYTER_CONFIG_DIR": str(jupyter / "config"),
        "JUPYTER_DATA_DIR": str(jupyter / "data"),
        "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": str(private / "ipython"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }


def _supervise(workdir: Path, private: Path, job: dict, limits: Limits, started: float):
    import subprocess

    uid = job["uid"]
    with (
        tempfile.TemporaryFile() as stdin,
        open(private / "client-stdout.txt", "wb") as out,
        open(private / "client-stderr.txt", "wb") as err,
    ):
        stdin.write(json.dumps(job).encode("utf-8"))
        stdin.seek(0)
        process = subprocess.Popen(
            [sys.executable, "-I", "-B", str(NOTEBOOK_CHILD), "--client"],
            cwd=private,
            env=_env(workdir, private),
            stdin=stdin,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
        )
    ended = sandbox._wait(process, limits.wall_seconds)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:
        os.waitpid(process.pid, 0)
    leftover = sandbox._kill_all(uid, process.pid)
    if uid is not None:
        sandbox._remove_files_of(uid, workdir)
    caveats = [*sandbox._caveats(uid), NOT_IMPORTS]
    network = bool(job["isolate_network"])
    result = _read_result(private) if ended else None
    common = dict(seconds=time.monotonic() - started, leftover_processes=leftover)
    if result is not None:
        common.update(_streams(result, limits))
    if not ended:
        isolation = Isolation(uid, network, tuple(caveats))
        message = f"still running after {limits.wall_seconds:g} s: killed"
        return Outcome(Status.TIMEOUT, message, isolation=isolation, **common)
    if result is None or result.get("status") == "sandbox_error":
        said = sandbox._read_capped(private / "client-stderr.txt", 8 * sandbox.KiB)[0]
        why = sandbox._text(result.get("message")) if result else ""
        last = [line for line in said.splitlines() if line.strip()][-1:]  # the kernel's, often
        text = "; ".join([why, *last]) if why or last else "it ended without a result"
        return Outcome(
            Status.SANDBOX_ERROR,
            sandbox._one_line(f"the notebook could not be run: {text}"),
            isolation=Isolation(uid, False, tuple(caveats)),
            **common,
        )
    return _from_result(result, limits, Isolation(uid, network, tuple(caveats)), common)


def _read_result(private: Path) -> dict | None:
    try:
        result = safe_read.read_json(private / "result.json", RESULT_BYTES, root=private)
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and isinstance(result.get("status"), str) else None


def _streams(result: dict, limits: Limits) -> dict:
    fields = {}
    for name in ("stdout", "stderr"):
        total = result.get(f"{name}_bytes")
        fields[name] = sandbox._text(result.get(name), limits.output_bytes)
        fields[f"{name}_cut"] = isinstance(total, int) and total > limits.output_bytes
    return fields


def _from_result(result: dict, limits: Limits, isolation: Isolation, common: dict) -> Outcome:
    status = result["status"]
    cell = result.get("cell") if isinstance(result.get("cell"), int) else 0
    if status == "ok":
        cells = result.get("cells") if isinstance(result.get("cells"), int) else 0
        return Outcome(Status.OK, f"ran its {cells} code cells", isolation=isolation, **common)
    if status == "error":
        kind = sandbox._text(result.get("ename"), 200) or "Error"
        message = sandbox._text(result.get("evalue"))
        lines = result.get("traceback") if isinstance(result.get("traceback"), list) else []
        traceback = tuple(sandbox._text(line, 500) for line in lines[:200])
        which = {"MemoryError": Status.MEMORY_LIMIT, "ForbiddenImport": Status.FORBIDDEN}
        forbidden = ()
        if kind == "ForbiddenImport" and message.count("'") >= 2:
            forbidden = (message.split("'")[1][:100],)
        text = f"cell {cell}: {kind}: {message}" if message else f"cell {cell}: {kind}"
        return Outcome(
            which.get(kind, Status.EXCEPTION),
            sandbox._one_line(text),
            exception_type=kind,
            traceback=traceback,
            forbidden=forbidden,
            isolation=isolation,
            **common,
        )
    if status == "output_too_large":
        stream = "stderr" if result.get("stream") == "stderr" else "stdout"
        return Outcome(
            Status.OUTPUT_TOO_LARGE,
            f"cell {cell}: printed {limits.file_bytes:,} bytes or more to {stream} (the "
            f"file-size limit); the first {limits.output_bytes:,} are kept",
            isolation=isolation,
            **common,
        )
    if status == "kernel_died":
        code = result.get("returncode")
        cpu = result.get("cpu") if isinstance(result.get("cpu"), (int, float)) else 0.0
        if code == -signal.SIGXCPU or (code == -signal.SIGKILL and cpu >= limits.cpu_seconds):
            return Outcome(
                Status.CPU_LIMIT,
                f"cell {cell}: used more than {limits.cpu_seconds} s of CPU time",
                isolation=isolation,
                **common,
            )
        how = (
            f"killed by {sandbox._signal_name(-code)}"
            if isinstance(code, int) and code < 0
            else f"exited with code {code}"
            if isinstance(code, int)
            else "ended"
        )
        return Outcome(
            Status.CRASHED, f"cell {cell}: the kernel {how}", isolation=isolation, **common
        )
    return Outcome(
        Status.SANDBOX_ERROR,
        sandbox._one_line(f"the notebook client wrote an unknown status {status[:40]!r}"),
        isolation=isolation,
        **common,
    )
