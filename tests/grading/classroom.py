"""A whole class of hw3 submissions, generated: what a grading run of a class is tested and
timed on (tests of the class grader, benchmarks/grade_class.py).

:func:`write_class` writes ``size`` submissions into a folder, as an LMS export holds them
(a folder or a ``.zip`` per submission, a ``manifest.csv`` naming each one's student), and
returns one :class:`Student` per submission with the codes its tests must get. The mix,
drawn from a ``numpy`` Generator seeded by ``seed`` (the same seed gives the same bytes):

- ``reference``: tests/grading/submissions/reference, every test 0;
- ``handout``: the untouched starter files of ``kernelnet handout hw3``, every test 40;
- ``mutant:<name>``: one planted bug of tests/grading/mutants.py each, cycling through
  :data:`POOL` (every mutant that is not ``hostile``: those need os/sys/time, which hw3
  refuses, and limits of their own);
- ``copy:<name>``: another student's files, byte for byte;
- ``near-copy:<name>``: another student's files with the same code but other comments,
  blank lines and local variable names (what a duplicate detector must see through);
- ``notebook-runs`` / ``notebook-fails``: the reference files and a small notebook
  (:data:`NOTEBOOK`) that runs cleanly, or that stops with a NameError in cell
  :data:`FAILING_CELL`.

Copies are taken from mutant students, whose code nobody else has unless the pool came
round again (:func:`same_code_groups` says which submissions share their code). Names are
``s000``, ``s001``, ... (zero-padded, so they sort as numbers), given in a shuffled order so
the kinds are interleaved. A ``.zip`` holds its files in a folder (``hw3/``,
``u12345_hw3/``, ...), some with a Mac's ``__MACOSX`` resource forks beside them.
"""

from __future__ import annotations

import ast
import builtins
import csv
import io
import json
import keyword
import tokenize
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kernelnet.grading.codes import Code
from kernelnet.grading.spec import AssignmentSpec, load_assignment
from kernelnet.safe_read import read_text
from kernelnet.safe_write import write_atomic
from tests.grading import mutants

ASSIGNMENT = "hw3"
MANIFEST = "manifest.csv"
FILES = mutants.FILES
POOL = tuple(m for m in mutants.WRONG + mutants.TRAINING + mutants.BROKEN if not m.hostile)
MAX_SOURCE_BYTES = 2 * 2**20
ZIP_TIME = (2024, 3, 1, 9, 30, 0)  # every member's timestamp: the bytes depend on nothing else
ZIP_FOLDERS = ("hw3", "{student}_hw3", "{name}", "HW3 submission")
MACOSX_EVERY = 3  # every third zip also carries __MACOSX/._<file> resource forks

# -- the notebooks (nbformat v4.5, written by hand) --
NOTEBOOK = "hw3.ipynb"
NOTEBOOK_RUNS = (
    ("markdown", "# HW3: a first look at ReLU\n\nA few numbers before the real work."),
    ("code", "import numpy as np"),
    ("code", "x = np.linspace(-2.0, 2.0, 9)\nrelu = np.maximum(x, 0.0)\nprint(relu.sum())"),
    ("code", "assert relu.min() == 0.0\nprint(relu.shape)"),
)
FAILING_CELL = 3  # index into the notebook's cells (code cells and markdown cells alike)
UNDEFINED_NAME = "accuracy"
NOTEBOOK_FAILS = (
    ("markdown", "# HW3: accuracy of the linear SVM"),
    ("code", "import numpy as np"),
    ("code", "labels = np.array([1.0, -1.0, 1.0, 1.0])\npredicted = np.sign(labels)"),
    ("code", f"print('accuracy:', {UNDEFINED_NAME})  # defined in a cell that was deleted"),
    ("code", "print('never reached')"),
)
NOTEBOOK_KINDS = {"notebook-runs": NOTEBOOK_RUNS, "notebook-fails": NOTEBOOK_FAILS}

# -- near copies: what a student changes to hide a copy --
COMMENTS = (
    "compute this step",
    "vectorized, no loop",
    "see the lecture notes",
    "checked on a small example",
    "shapes checked by hand",
    "from the formula in the pdf",
    "TODO: tidy this up",
    "same as in class",
)
RENAMINGS = ("{}_val", "my_{}", "{}2", "tmp_{}", "{}_arr")


@dataclass(frozen=True)
class Student:
    """One generated submission."""

    name: str  # the submission's name: its folder's name or its zip's stem ("s017")
    path: Path  # the folder or .zip written
    kind: str  # reference | handout | mutant:<m> | copy:<s> | near-copy:<s> | notebook-...
    # test name -> code, for the tests whose code is certain: hw3's case names (a mutant's
    # cases from mutants.py, and 0 on every case of the two files it leaves alone), and the
    # notebook's file name for a notebook-* student (its test: 0 runs, 2 fails)
    expected: dict[str, int]


def write_class(
    folder: Path,
    size: int,
    seed: int = 0,
    zip_share: float = 0.3,
    notebooks: bool = True,
    handout_dir: Path | None = None,
) -> list[Student]:
    """Write ``size`` hw3 submissions and ``manifest.csv`` into ``folder`` (created; must be
    empty if it exists); the students, by name. ``zip_share`` of them (rounded, at least one
    when above 0) are written as .zip files. ``handout_dir``: where the handout's starter
    files are cached (written there by ``kernelnet handout``'s function when missing);
    without it they are rendered in memory. ValueError (one line) for a bad argument."""
    spec = load_assignment(ASSIGNMENT)
    counts = _counts(size, notebooks)
    if not 0.0 <= zip_share <= 1.0:
        raise ValueError(f"zip_share must be between 0 and 1, got {zip_share!r}")
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(f"{folder}: exists and is not an empty folder; give a new one")
    rng = np.random.default_rng(seed)
    cases = _cases_by_file(spec)
    texts = {
        "reference": {f: read_text(mutants.REFERENCE / f, MAX_SOURCE_BYTES) for f in FILES},
        "handout": _handout(spec, handout_dir),
    }
    every_case = [c for names in cases.values() for c in names]

    # plan[i] = (kind, files, expected, notebook cells); names are dealt out after
    plan: list[tuple[str, dict[str, str], dict[str, int], tuple | None]] = []
    reference_codes = dict.fromkeys(every_case, 0)
    handout_codes = dict.fromkeys(every_case, int(Code.NOT_IMPLEMENTED))
    plan += [("reference", texts["reference"], reference_codes, None)] * counts["reference"]
    plan += [("handout", texts["handout"], handout_codes, None)] * counts["handout"]
    for i in range(counts["mutant"]):
        mutant = POOL[i % len(POOL)]
        plan.append((f"mutant:{mutant.name}", _mutant_files(mutant, texts["reference"]),
                     _mutant_codes(mutant, cases), None))  # fmt: skip
    for kind, cells in NOTEBOOK_KINDS.items() if notebooks else ():
        codes = {**dict.fromkeys(every_case, 0), NOTEBOOK: 0 if kind == "notebook-runs" else 2}
        plan.append((kind, texts["reference"], codes, cells))

    order = rng.permutation(size)  # plan entry -> name index (copies get the last ones)
    width = max(3, len(str(size - 1)))
    names = [f"s{order[i]:0{width}d}" for i in range(size)]
    mutant_at = [i for i, entry in enumerate(plan) if entry[0].startswith("mutant:")]
    parsable = [i for i in mutant_at if _parses(plan[i][1])]
    for kind, count, pool in (("copy", counts["copy"], mutant_at),
                              ("near-copy", counts["near"], parsable)):  # fmt: skip
        for source in rng.choice(pool, size=count, replace=count > len(pool)):
            files = plan[source][1]
            if kind == "near-copy":
                files = {f: near_copy(text, rng) for f, text in files.items()}
            plan.append((f"{kind}:{names[source]}", files, dict(plan[source][2]), None))

    ids = rng.choice(np.arange(10_000, 100_000), size=size, replace=False)
    zipped = set(rng.choice(size, size=_zip_count(size, zip_share), replace=False).tolist())
    folder.mkdir(parents=True, exist_ok=True)
    students, zips = [], 0
    for i, (kind, files, expected, cells) in enumerate(plan):
        student_id = f"u{ids[i]}"
        contents = {f: files[f].encode("utf-8") for f in FILES}
        if cells is not None:
            contents[NOTEBOOK] = notebook_json(cells).encode("utf-8")
        if i in zipped:
            inner = ZIP_FOLDERS[int(rng.integers(len(ZIP_FOLDERS)))]
            inner = inner.format(student=student_id, name=names[i])
            path = folder / f"{names[i]}.zip"
            data = _zip_bytes(contents, inner, macosx=zips % MACOSX_EVERY == MACOSX_EVERY - 1)
            _write(path, data, folder)
            zips += 1
        else:
            path = folder / names[i]
            path.mkdir()
            for file, data in contents.items():
                _write(path / file, data, folder)
        students.append(Student(names[i], path, kind, expected))
    manifest = io.StringIO()
    writer = csv.writer(manifest, lineterminator="\n")
    writer.writerow(["submission", "student"])
    writer.writerows(sorted((names[i], f"u{ids[i]}") for i in range(size)))
    _write(folder / MANIFEST, manifest.getvalue().encode("utf-8"), folder)
    return sorted(students, key=lambda s: s.name)


def same_code_groups(students: list[Student]) -> list[tuple[str, ...]]:
    """The submissions whose files hold the same code by construction (equal up to
    comments, blank lines and local variable names), two or more to a group: the truth a
    duplicate detector is checked against. The references form one group, the handouts
    another, each mutant's students one, and a copy or near copy joins its source's group; a
    notebook-* student's notebook makes it a group of its own. Names sorted; groups ordered
    by their first name."""
    by_name = {s.name: s for s in students}

    def origin(student: Student) -> str:
        head, _, rest = student.kind.partition(":")
        if head in ("copy", "near-copy"):
            return origin(by_name[rest])
        return student.kind

    groups: dict[str, list[str]] = {}
    for student in students:
        groups.setdefault(origin(student), []).append(student.name)
    return sorted(tuple(sorted(names)) for names in groups.values() if len(names) > 1)


# -- the mix --
def _counts(size: int, notebooks: bool) -> dict[str, int]:
    """How many of each kind: 5% handouts, 20% references, 2.5% copies, 2.5% near copies
    (each at least one), the two notebooks, mutants for the rest (at least one)."""
    books = len(NOTEBOOK_KINDS) if notebooks else 0
    smallest = 5 + books
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < smallest:
        raise ValueError(
            f"size must be a whole number of at least {smallest} (one of each kind), got {size!r}"
        )
    fixed = {
        "handout": max(1, size // 20),
        "reference": max(1, size // 5),
        "copy": max(1, size // 40),
        "near": max(1, size // 40),
        "notebook": books,
    }
    return {**fixed, "mutant": size - sum(fixed.values())}


def _zip_count(size: int, share: float) -> int:
    count = round(share * size)
    return max(count, 1) if share > 0 else 0


def _cases_by_file(spec: AssignmentSpec) -> dict[str, list[str]]:
    found = {f.name: [c.name for fn in f.functions for c in fn.cases] for f in spec.files}
    if tuple(found) != FILES:
        raise AssertionError(f"{spec.name}'s files are {list(found)}, mutants.py has {FILES}")
    return found


def _mutant_files(mutant: mutants.Mutant, reference: dict[str, str]) -> dict[str, str]:
    return {f: mutant.source() if f == mutant.file else reference[f] for f in FILES}


def _mutant_codes(mutant: mutants.Mutant, cases: dict[str, list[str]]) -> dict[str, int]:
    """The mutant's own codes (mutants.py) and 0 on every case of the files it leaves
    untouched (the three files import nothing from each other). The other cases of its own
    file are not certain: a function may call the one it breaks."""
    unknown = set(mutant.expected) - set(cases[mutant.file])
    if unknown:
        raise AssertionError(f"{mutant.name}: no case {sorted(unknown)} in {mutant.file}")
    untouched = [c for f, names in cases.items() if f != mutant.file for c in names]
    return {**dict.fromkeys(untouched, 0), **{k: int(v) for k, v in mutant.expected.items()}}


def _handout(spec: AssignmentSpec, cache: Path | None) -> dict[str, str]:
    """The untouched starter files: rendered from the spec (what ``kernelnet handout``
    writes), or read from ``cache`` after writing the whole handout there once."""
    from kernelnet.grading.handout import starter_module, write_handout

    if cache is None:
        return {file.name: starter_module(spec, file) for file in spec.files}
    cache = Path(cache)
    if not all((cache / f).is_file() for f in FILES):
        write_handout(spec, cache)
    return {f: read_text(cache / f, MAX_SOURCE_BYTES, cache) for f in FILES}


def _parses(files: dict[str, str]) -> bool:
    try:
        for text in files.values():
            ast.parse(text)
    except SyntaxError:
        return False
    return True


# -- writing --
def _write(path: Path, data: bytes, root: Path) -> None:
    write_atomic(path, lambda handle: handle.write(data), root=root)


def _zip_bytes(contents: dict[str, bytes], inner: str, macosx: bool) -> bytes:
    """A zip of ``contents`` inside the folder ``inner/``, every timestamp and mode fixed."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:

        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)

        for file, data in contents.items():
            add(f"{inner}/{file}", data)
        if macosx:  # AppleDouble headers: a Mac's zip of a folder has one per file
            for file in contents:
                add(f"__MACOSX/{inner}/._{file}", b"\x00\x05\x16\x07\x00\x02\x00\x00" + bytes(74))
    return buffer.getvalue()


def notebook_json(cells: tuple[tuple[str, str], ...]) -> str:
    """An nbformat 4.5 notebook of ``(cell_type, source)`` cells, never run (no outputs)."""
    out = []
    for index, (kind, source) in enumerate(cells):
        lines = source.splitlines(keepends=True)
        cell = {"cell_type": kind, "id": f"cell-{index}", "metadata": {}, "source": lines}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        out.append(cell)
    book = {
        "cells": out,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(book, indent=1) + "\n"


# -- near copies --
_RESERVED = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)


def near_copy(text: str, rng: np.random.Generator) -> str:
    """``text`` (Python that parses) with the same code and other text: the variables its
    functions assign renamed, its comments reworded, comment lines and blank lines added
    before some statements. Edits are made at the positions ``ast`` and ``tokenize`` give,
    so nothing outside a name, a comment or a new line changes."""
    text = _rename_locals(text, rng)
    text = _reword_comments(text, rng)
    return _add_lines(text, rng)


def _rename_locals(text: str, rng: np.random.Generator) -> str:
    """One new name for each name assigned inside a function, the same in the whole file
    (a student's search and replace), so which names are equal is unchanged: the code is
    the same up to a renaming. Left alone: parameters (the grader passes arguments by name),
    function names, imported names, module-level names, names in f-strings or in
    ``global``/``nonlocal``."""
    tree = ast.parse(text)
    nodes = list(ast.walk(tree))
    module_level = {
        n.id
        for stmt in tree.body
        if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        for n in ast.walk(stmt)
        if isinstance(n, ast.Name)
    }
    kept = module_level | _RESERVED | {"_"}
    kept |= {n.arg for n in nodes if isinstance(n, ast.arg)}
    kept |= {n.name for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    kept |= {n.name for n in nodes if isinstance(n, ast.ClassDef)}
    kept |= {n.asname or n.name for n in nodes if isinstance(n, ast.alias)}
    kept |= {name for n in nodes if isinstance(n, (ast.Global, ast.Nonlocal)) for name in n.names}
    kept |= {x.id for n in nodes if isinstance(n, ast.JoinedStr) for x in ast.walk(n)
             if isinstance(x, ast.Name)}  # fmt: skip
    names = {n.id for n in nodes if isinstance(n, ast.Name)}
    renamed = sorted(
        {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} - kept
    )
    taken = names | kept | {n.attr for n in nodes if isinstance(n, ast.Attribute)}
    style = RENAMINGS[int(rng.integers(len(RENAMINGS)))]
    mapping = {}
    for name in renamed:
        new = style.format(name)
        while new in taken:
            new += "_"
        taken.add(new)
        mapping[name] = new
    edits = [  # (line, start, end) with columns in UTF-8 bytes, as ast gives them
        (n.lineno, n.col_offset, n.end_col_offset, mapping[n.id])
        for n in nodes
        if isinstance(n, ast.Name) and n.id in mapping
    ]
    lines = [line.encode("utf-8") for line in text.splitlines(keepends=True)]
    for line, start, end, new in sorted(edits, reverse=True):
        row = lines[line - 1]
        lines[line - 1] = row[:start] + new.encode("utf-8") + row[end:]
    return b"".join(lines).decode("utf-8")


def _reword_comments(text: str, rng: np.random.Generator) -> str:
    lines = text.splitlines(keepends=True)
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    for token in tokens:
        if token.type == tokenize.COMMENT:
            row, col = token.start
            line = lines[row - 1]
            ending = line[len(line.rstrip("\r\n")) :]
            lines[row - 1] = f"{line[:col]}# {COMMENTS[int(rng.integers(len(COMMENTS)))]}{ending}"
    return "".join(lines)


def _add_lines(text: str, rng: np.random.Generator) -> str:
    """A comment line (indented as the statement) or a blank line before some statements
    that start their own line, at least one of each per file that has statements."""
    lines = text.splitlines(keepends=True)
    starts = sorted(
        {
            node.lineno
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.stmt)
            and lines[node.lineno - 1][: node.col_offset].strip() == ""
        }
    )
    if not starts:
        return text
    chosen = {int(line): "comment" for line in rng.choice(starts, size=max(1, len(starts) // 5))}
    blank = [line for line in starts if line not in chosen] or starts
    chosen.setdefault(int(rng.choice(blank)), "blank")
    for line in sorted(chosen, reverse=True):
        row = lines[line - 1]
        indent = row[: len(row) - len(row.lstrip())]
        if chosen[line] == "blank":
            new = "\n"
        else:
            new = f"{indent}# {COMMENTS[int(rng.integers(len(COMMENTS)))]}\n"
        lines.insert(line - 1, new)
    return "".join(lines)
