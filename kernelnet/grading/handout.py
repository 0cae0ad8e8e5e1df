"""An assignment's handout: the starter files a student fills in, the data they read, and a
short README, rendered from the spec alone and written into a folder.

Everything is rendered from the spec's public part: file and function names, signatures,
shapes, the handout ``doc`` of each function, the allowed imports, and the names and points
of the *visible* test cases. Nothing here calls a reference or generates an input, so no
expected output can reach a handout, and hidden cases are never named. The same spec gives
the same bytes (no dates, no versions, no dict order from anywhere but the spec).

A starter file is plain Python: a module docstring, ``import numpy as np`` when numpy is
allowed, and one function per spec entry with the exact signature, a docstring (the spec's
``doc`` and the shapes of every argument and output) and a body that raises
``NotImplementedError``, so an untouched handout grades 40 on every test.
"""

from __future__ import annotations

import io
import keyword
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kernelnet.errors import ConfigError
from kernelnet.grading.codes import MEANINGS, Code
from kernelnet.grading.spec import (
    AssignmentSpec,
    FileSpec,
    FunctionSpec,
    data_arrays,
)

README = "README.md"
DATA = "data"
_WIDTH = 92  # wrapped prose in the starter files stays under 100 columns with its indent
_FIRST_ADDITION = int(Code.TIME_LIMIT)  # codes from here on are kernelnet's, not the course's


# -- Python text --
def _unprintable(char: str) -> bool:
    """Control characters, line separators and lone surrogates (which UTF-8 cannot encode)."""
    point = ord(char)
    return point < 32 or 0x7F <= point < 0xA0 or char in "\u2028\u2029" or 0xD800 <= point < 0xE000


def _escaped(text: str) -> str:
    """``text`` safe inside a triple-quoted (non-raw) docstring: backslashes and quotes that
    would end it are escaped, control characters other than newlines shown as escapes (a
    spec's ``doc`` is the instructor's text; the starter must still compile)."""
    out = []
    for char in text.replace("\r\n", "\n"):
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char != "\n" and _unprintable(char):
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def _docstring(text: str, indent: str) -> str:
    """A docstring statement at ``indent``: the first line beside the opening quotes, the
    rest indented, closing quotes on a line of their own when there is more than one."""
    lines = [line.rstrip() for line in _escaped(text.strip("\n")).split("\n")]
    if len(lines) == 1:
        return f'{indent}"""{lines[0]}"""\n'
    body = "".join(f"{indent}{line}\n" if line else "\n" for line in lines[1:])
    return f'{indent}"""{lines[0]}\n{body}{indent}"""\n'


def _check_identifier(name: str, what: str, spec: AssignmentSpec) -> None:
    """Spec names are checked as identifiers, but a keyword (``lambda``) or a name that is
    not plain ASCII would make a starter that does not compile."""
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or not name.isascii():
        raise ConfigError(
            f"{spec.source}: {what} {name!r} cannot be a Python name (a keyword); rename it "
            "in the spec"
        )


def _dims(dims: Sequence[int | str]) -> str:
    if not dims:
        return "a scalar"
    inside = ", ".join(str(d) for d in dims)
    return f"shape ({inside}{',' if len(dims) == 1 else ''})"


def _shape_lines(function: FunctionSpec, names: Sequence[str]) -> list[str]:
    width = max(len(name) for name in names) + 1
    lines = []
    for name in names:
        dims = function.shape_of(name)
        shown = _dims(dims) if dims is not None else "(see above)"
        lines.append(f"    {(name + ':').ljust(width)} {shown}")
    return lines


def _function_doc(function: FunctionSpec) -> str:
    """The spec's ``doc``, then every argument's and output's shape (the size names such as
    N and D are shared: the same letter is the same size in one call)."""
    parts = [textwrap.dedent(function.doc).strip("\n"), "", "Arguments:"]
    parts += _shape_lines(function, function.signature)
    if len(function.outputs) == 1:
        parts += ["", "Returns:"]
    else:
        order = ", ".join(function.outputs)
        parts += ["", f"Returns the tuple ({order}), in this order:"]
    parts += _shape_lines(function, function.outputs)
    return "\n".join(parts)


def _module_doc(spec: AssignmentSpec, file: FileSpec) -> str:
    names = ", ".join(function.name for function in file.functions)
    others = [other.name.removesuffix(".py") for other in spec.files if other is not file]
    may_import = ", ".join(spec.allowed_imports)
    if others:
        may_import += f", and this assignment's other files ({', '.join(others)})"
    prose = (
        f"Write the bodies of the functions below ({names}). Keep each function's name and "
        "parameters exactly as they are: the grader calls them by name and position. Every "
        "body raises NotImplementedError until you write it (code 40 when graded)."
    )
    imports = (
        f"You may import only: {may_import}. Any other import is refused when graded "
        "(code 72). Do not change the arguments you are given (code 55)."
    )
    check = f"Check your work on the visible tests with: kernelnet grade {spec.name} ."
    wrapped = [_fill(text) for text in (prose, imports, check)]
    head = f"{file.name}: a starter file of {spec.name}.\n\n{_title(spec)}."
    return "\n\n".join([head, *wrapped])


def starter_module(spec: AssignmentSpec, file: FileSpec) -> str:
    """The starter text of one file of the assignment (valid Python)."""
    out = [_docstring(_module_doc(spec, file), "")]
    if "numpy" in spec.allowed_imports:
        out.append("\nimport numpy as np\n")
    for function in file.functions:
        _check_identifier(function.name, f"{file.name}: function", spec)
        for param in function.signature:
            _check_identifier(param, f"{file.name}: {function.name}: parameter", spec)
        out.append(f"\n\ndef {function.name}({', '.join(function.signature)}):\n")
        out.append(_docstring(_function_doc(function), "    "))
        out.append(f'    raise NotImplementedError("{function.name}: write this function")\n')
    return "".join(out)


# -- the README --
def _code_rows(codes: list[int]) -> list[str]:
    """Table rows, consecutive codes of one meaning on one row (``62-63``)."""
    groups: list[list[int]] = []
    for code in codes:
        if groups and groups[-1][-1] == code - 1 and MEANINGS[groups[-1][0]] == MEANINGS[code]:
            groups[-1].append(code)
        else:
            groups.append([code])
    shown = (f"{g[0]}-{g[-1]}" if len(g) > 1 else str(g[0]) for g in groups)
    return [f"| {label} | {MEANINGS[g[0]]} |" for label, g in zip(shown, groups)]


def _codes_table() -> list[str]:
    """The codes of :mod:`kernelnet.grading.codes`, the course's first, then kernelnet's."""
    codes = sorted(MEANINGS)
    head = ["| code | meaning |", "|---:|---|"]
    rows = head + _code_rows([c for c in codes if c < _FIRST_ADDITION])
    rows += ["", "kernelnet adds these, for what its sandbox stops:", ""]
    return rows + head + _code_rows([c for c in codes if c >= _FIRST_ADDITION])


def _fill(text: str) -> str:
    return textwrap.fill(text, _WIDTH)  # prose stays readable in a terminal, too


def _title(spec: AssignmentSpec) -> str:
    return " ".join(spec.title.split())  # one line, whatever the spec's YAML held


def readme(spec: AssignmentSpec, data_names: Sequence[str] = ()) -> str:
    """The student README (Markdown): what to write, how to check it, what the codes mean.
    Only visible test cases are named."""
    imports = ", ".join(f"`{name}`" for name in spec.allowed_imports)
    lines = [f"# {_title(spec)}", "", "## What to write", ""]
    for file in spec.files:
        lines.append(f"- `{file.name}`:")
        lines += [f"  - `{f.name}({', '.join(f.signature)})`" for f in file.functions]
    lines += [
        "",
        _fill(
            "Each function's docstring gives the shapes, dtypes and formula. Keep the names "
            f"and parameters as they are. You may import only {imports} (and the "
            "assignment's own files); any other import is refused when graded."
        ),
    ]
    if data_names:
        lines += ["", f"The data your code reads is in `{DATA}/`, relative to this folder:", ""]
        lines += [f"- `{DATA}/{name}`" for name in data_names]
    visible = [
        (function.name, case)
        for _, function in spec.functions()
        for case in function.cases
        if case.visibility == "visible"
    ]
    lines += [
        "",
        "## Checking your work",
        "",
        "From this folder, run:",
        "",
        "```",
        f"kernelnet grade {spec.name} .",
        "```",
        "",
        _fill(
            "It runs the visible tests below on your files, each in a separate, limited "
            "process, and prints each test's code, points and a one-line reason. More tests "
            "are hidden and run only when your instructor grades."
        ),
        "",
        "| test | function | points |",
        "|---|---|---:|",
    ]
    lines += [f"| {case.name} | {name} | {case.points:g} |" for name, case in visible]
    lines += ["", "## What the codes mean", ""]
    lines += _codes_table()
    return "\n".join(lines) + "\n"


# -- the data --
def data_files(spec: AssignmentSpec) -> list[tuple[str, np.ndarray]]:
    """``(name.npy, array)`` for each file of the spec's data section that students get
    (``handout: true``); the grader-only files (held-out data for a metric) never."""
    return list(data_arrays(spec, handout_only=True).items())


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def render(spec: AssignmentSpec) -> list[tuple[str, bytes]]:
    """Every file of the handout, ``(path relative to the folder, bytes)``, in the order
    written: the starter files, the data, then the README."""
    data = data_files(spec)
    out = [(file.name, starter_module(spec, file).encode("utf-8")) for file in spec.files]
    out += [(f"{DATA}/{name}", _npy(array)) for name, array in data]
    out.append((README, readme(spec, [name for name, _ in data]).encode("utf-8")))
    return out


# -- writing --


def write_handout(spec: AssignmentSpec, folder: Path, force: bool = False) -> list[Path]:
    """Write the handout of ``spec`` into ``folder`` (created if needed); the paths written.

    Refuses (ConfigError, one line) a ``folder`` that is not a folder, and, without
    ``force``, any target name already taken, a dangling symlink included. Each file is
    written atomically with ``root=folder``: a symlink at a target name is replaced, never
    written through, and a ``data/`` that links out of the folder is refused."""
    from kernelnet.safe_write import cannot_write, write_atomic
    from kernelnet.safe_write import shown as shown_path

    folder = Path(folder)
    files = render(spec)  # rendered first: a spec that cannot be rendered writes nothing
    try:
        if os.path.lexists(folder) and not folder.is_dir():
            raise ConfigError(
                f"{shown_path(folder)}: exists and is not a folder; give a folder for the handout"
            )
        targets = [folder / name for name, _ in files]
        clashes = [target for target in targets if os.path.lexists(target)]
        if clashes and not force:
            first = clashes[0].relative_to(folder)
            raise ConfigError(
                f"{shown_path(folder)}: {len(clashes)} handout file(s) already there ({first}, "
                "...); choose another folder, or pass --force to overwrite them"
            )
        folder.mkdir(parents=True, exist_ok=True)
        for target, (_, content) in zip(targets, files):
            write_atomic(target, lambda handle, data=content: handle.write(data), root=folder)
    except OSError as exc:
        raise cannot_write(folder, exc, "the handout") from None
    return targets
