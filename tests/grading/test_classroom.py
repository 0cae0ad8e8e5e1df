"""The generated class of tests/grading/classroom.py: deterministic to the byte, every kind of
submission in it, zips an LMS would export, near copies that are the same code in other
text, and expected codes that kernelnet's grader really gives.

The grading checks run a few cases per sampled student (a copy of hw3 with those cases only,
~0.5 s each in the sandbox), not whole submissions.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import io
import json
import re
import tokenize
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from kernelnet.grading.handout import starter_module
from kernelnet.grading.spec import AssignmentSpec, load_assignment
from tests.grading import classroom, mutants
from tests.grading.classroom import FILES, NOTEBOOK, Student, write_class

SIZE, SEED = 200, 7
KINDS = {"reference", "handout", "mutant", "copy", "near-copy", "notebook-runs", "notebook-fails"}


@pytest.fixture(scope="module")
def hw3() -> AssignmentSpec:
    return load_assignment("hw3")


@pytest.fixture(scope="module")
def klass(tmp_path_factory) -> tuple[Path, list[Student]]:
    folder = tmp_path_factory.mktemp("class") / "hw3-export"
    return folder, write_class(folder, SIZE, seed=SEED)


def by_name(students: list[Student]) -> dict[str, Student]:
    return {s.name: s for s in students}


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def files_of(student: Student) -> dict[str, bytes]:
    """The submission's files by name, from its folder or from the folder inside its zip."""
    if student.path.is_dir():
        return {p.name: p.read_bytes() for p in student.path.iterdir()}
    with zipfile.ZipFile(student.path) as archive:
        return {
            Path(m).name: archive.read(m)
            for m in archive.namelist()
            if not m.startswith("__MACOSX/")
        }


def source_of(student: Student | str) -> str:
    """The student a copy or near copy (or its kind) was taken from."""
    kind = student if isinstance(student, str) else student.kind
    return kind.partition(":")[2]


# -- determinism and the mix ---------------------------------------------------------------


def test_the_same_seed_gives_byte_identical_files(klass, tmp_path):
    folder, students = klass
    again = write_class(tmp_path / "again", SIZE, seed=SEED)
    assert tree_bytes(tmp_path / "again") == tree_bytes(folder)
    assert [(s.name, s.kind, s.expected) for s in again] == [
        (s.name, s.kind, s.expected) for s in students
    ]
    # and the seed is used: another one deals the kinds out differently
    small = write_class(tmp_path / "seed1", 40, seed=1)
    other = write_class(tmp_path / "seed2", 40, seed=2)
    assert [s.kind for s in small] != [s.kind for s in other]


def test_the_class_holds_every_kind_and_every_non_hostile_mutant(klass):
    folder, students = klass
    assert {s.kind.partition(":")[0] for s in students} == KINDS
    planted = {s.kind.partition(":")[2] for s in students if s.kind.startswith("mutant:")}
    assert planted == {m.name for m in mutants.WRONG + mutants.TRAINING + mutants.BROKEN}
    assert not planted & {m.name for m in mutants.HOSTILE}
    kinds = Counter(s.kind.partition(":")[0] for s in students)
    assert kinds["notebook-runs"] == kinds["notebook-fails"] == 1
    assert kinds["copy"] >= 2 and kinds["near-copy"] >= 2 and kinds["handout"] >= 2
    everyone = by_name(students)
    for student in students:
        if student.kind.startswith(("copy:", "near-copy:")):
            assert everyone[source_of(student)].kind.startswith("mutant:"), student


def test_names_paths_zips_and_manifest(klass):
    folder, students = klass
    assert [s.name for s in students] == [f"s{i:03d}" for i in range(SIZE)]
    zips = [s for s in students if s.path.suffix == ".zip"]
    assert len(zips) == round(0.3 * SIZE)
    for student in students:
        assert student.path.parent == folder
        assert student.path.name == (student.name + ".zip" if student in zips else student.name)
    entries = sorted(p.name for p in folder.iterdir())
    assert entries == sorted([s.path.name for s in students] + ["manifest.csv"])
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["submission", "student"]
    assert [row[0] for row in rows[1:]] == [s.name for s in students]
    ids = [row[1] for row in rows[1:]]
    assert len(set(ids)) == SIZE and all(re.fullmatch(r"u\d{5}", i) for i in ids)


def test_a_small_class_without_notebooks_or_zips(tmp_path):
    students = write_class(tmp_path / "c", 5, notebooks=False, zip_share=0.0)
    assert {s.kind.partition(":")[0] for s in students} == KINDS - {
        "notebook-runs",
        "notebook-fails",
    }
    assert all(s.path.is_dir() for s in students)
    assert not list((tmp_path / "c").rglob("*.ipynb"))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"size": 6}, "size must be a whole number of at least 7"),
        ({"size": 5, "notebooks": False, "zip_share": 1.5}, "zip_share must be between 0 and 1"),
        ({"size": "200"}, "size must be a whole number"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message) as raised:
        write_class(tmp_path / "c", **arguments)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "c").exists()


def test_a_folder_that_is_not_empty_is_refused(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "s000").mkdir()
    with pytest.raises(ValueError, match="not an empty folder"):
        write_class(tmp_path / "c", 10)


# -- the files -----------------------------------------------------------------------------


def test_every_submission_holds_what_its_kind_says(klass, hw3):
    _, students = klass
    reference = {f: (mutants.REFERENCE / f).read_bytes() for f in FILES}
    handout = {f.name: starter_module(hw3, f).encode() for f in hw3.files}
    planted = {m.name: m for m in mutants.ALL}
    everyone = by_name(students)
    for student in students:
        files = files_of(student)
        head, _, rest = student.kind.partition(":")
        if head.startswith("notebook-"):
            assert set(files) == {*FILES, NOTEBOOK}, student
        else:
            assert set(files) == set(FILES), student
        sources = {f: files[f] for f in FILES}
        if head in ("reference", "notebook-runs", "notebook-fails"):
            assert sources == reference, student
        elif head == "handout":
            assert sources == handout, student
        elif head == "mutant":
            mutant = planted[rest]
            assert sources == {**reference, mutant.file: mutant.source().encode()}, student
        elif head == "copy":
            assert files == files_of(everyone[rest]), student
        else:
            assert head == "near-copy", student


def test_zips_are_readable_with_the_files_inside_one_folder(klass):
    _, students = klass
    zips = [s for s in students if s.path.suffix == ".zip"]
    with_forks = 0
    for student in zips:
        with zipfile.ZipFile(student.path) as archive:
            assert archive.testzip() is None
            names = archive.namelist()
        own = [Path(n) for n in names if not n.startswith("__MACOSX/")]
        assert len({p.parent for p in own}) == 1 and len(own[0].parts) == 2, names
        with_forks += len(own) < len(names)
    assert 0 < with_forks < len(zips)


def test_the_graders_unzipping_finds_the_files_of_every_zip(klass):
    from kernelnet.grading.grader import submission_folder

    _, students = klass
    for student in (s for s in students if s.path.suffix == ".zip"):
        with submission_folder(student.path) as unpacked:
            found = {p.name: p.read_bytes() for p in Path(unpacked).iterdir()}
        assert found == files_of(student), student


def test_the_handout_comes_from_kernelnet_handout_and_is_cached(tmp_path, hw3):
    cache = tmp_path / "handout"
    students = write_class(tmp_path / "c1", 7, handout_dir=cache)
    assert (cache / "README.md").is_file() and (cache / "data").is_dir()  # a whole handout
    handouts = [s for s in students if s.kind == "handout"]
    for student in handouts:
        assert files_of(student) == {f: (cache / f).read_bytes() for f in FILES}
    written = {f: (cache / f).stat().st_mtime_ns for f in FILES}
    write_class(tmp_path / "c2", 7, handout_dir=cache)  # read from the cache, not rewritten
    assert {f: (cache / f).stat().st_mtime_ns for f in FILES} == written
    assert tree_bytes(tmp_path / "c2") == tree_bytes(tmp_path / "c1")
    assert tree_bytes(tmp_path / "c1") == tree_bytes(write_and_return(tmp_path / "c3"))


def write_and_return(folder: Path) -> Path:
    write_class(folder, 7)  # no cache: the starters rendered in memory
    return folder


# -- near copies ---------------------------------------------------------------------------


def renaming_between(a: str, b: str) -> dict[str, str]:
    """The renaming of variables that turns ``a``'s code into ``b``'s: walks both trees in
    step, every node of the same type with the same plain fields (operators, constants,
    attribute names, parameters), Name ids paired one-to-one. AssertionError otherwise."""
    forward: dict[str, str] = {}
    backward: dict[str, str] = {}
    left, right = list(ast.walk(ast.parse(a))), list(ast.walk(ast.parse(b)))
    assert len(left) == len(right)
    for x, y in zip(left, right):
        assert type(x) is type(y), (x, y)
        for (field, u), (_, v) in zip(ast.iter_fields(x), ast.iter_fields(y)):
            if isinstance(x, ast.Name) and field == "id":
                assert forward.setdefault(u, v) == v and backward.setdefault(v, u) == u
            elif not isinstance(u, (ast.AST, list)):
                assert u == v, (field, u, v)
            elif isinstance(u, list):
                assert len(u) == len(v)
    return forward


def comments(text: str) -> list[str]:
    return [
        t.string
        for t in tokenize.generate_tokens(io.StringIO(text).readline)
        if t.type == tokenize.COMMENT
    ]


def test_near_copies_differ_in_text_but_not_in_code(klass):
    _, students = klass
    everyone = by_name(students)
    near = [s for s in students if s.kind.startswith("near-copy:")]
    assert near
    for student in near:
        copy, original = files_of(student), files_of(everyone[source_of(student)])
        renamed = {}
        for file in FILES:
            a, b = original[file].decode(), copy[file].decode()
            assert a != b, (student, file)
            assert len(b.splitlines()) > len(a.splitlines())  # comment and blank lines added
            assert comments(a) != comments(b)
            renaming = renaming_between(a, b)
            renamed.update({k: v for k, v in renaming.items() if k != v})
        assert renamed, student  # some variables really have other names
        assert student.expected == everyone[source_of(student)].expected


def code_identity(student: Student) -> tuple[str, ...]:
    """The submission's code up to variable names and comments: each file's tree with its
    Name ids replaced by their order of first appearance (a file that does not parse: its
    text). Notebooks as text."""

    class Numbered(ast.NodeTransformer):
        def __init__(self):
            self.seen: dict[str, str] = {}

        def visit_Name(self, node):  # noqa: N802
            node.id = self.seen.setdefault(node.id, f"n{len(self.seen)}")
            return node

    out = []
    for name, data in sorted(files_of(student).items()):
        try:
            tree = Numbered().visit(ast.parse(data))
            out.append(name + ast.dump(tree))
        except SyntaxError:
            out.append(name + data.decode())
    return tuple(out)


def test_same_code_groups_are_the_submissions_with_one_code(klass):
    _, students = klass
    groups: dict[tuple[str, ...], list[str]] = {}
    for student in students:
        groups.setdefault(code_identity(student), []).append(student.name)
    found = sorted(tuple(names) for names in groups.values() if len(names) > 1)
    assert classroom.same_code_groups(students) == found
    copies = [s for s in students if s.kind.startswith(("copy:", "near-copy:"))]
    for student in copies:
        group = next(g for g in found if student.name in g)
        assert source_of(student) in group


# -- notebooks -----------------------------------------------------------------------------


def test_the_notebooks_are_nbformat_4_and_stop_where_they_say(klass, capsys):
    _, students = klass
    for kind, cells in classroom.NOTEBOOK_KINDS.items():
        (student,) = [s for s in students if s.kind == kind]
        book = json.loads(files_of(student)[NOTEBOOK])
        assert (book["nbformat"], book["nbformat_minor"]) == (4, 5)
        assert book["metadata"]["kernelspec"]["language"] == "python"
        ids = [cell["id"] for cell in book["cells"]]
        assert len(set(ids)) == len(ids) and all(
            re.fullmatch(r"[A-Za-z0-9_-]{1,64}", i) for i in ids
        )
        for cell, (cell_type, source) in zip(book["cells"], cells, strict=True):
            assert cell["cell_type"] == cell_type and "".join(cell["source"]) == source
            if cell_type == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None
        assert student.expected[NOTEBOOK] == (0 if kind == "notebook-runs" else 2)
    # the cells as the notebooks hold them: the first runs through, the second stops at
    # FAILING_CELL with a NameError
    run_cells(classroom.NOTEBOOK_RUNS)
    with pytest.raises(NameError, match=classroom.UNDEFINED_NAME) as raised:
        run_cells(classroom.NOTEBOOK_FAILS)
    assert raised.value.args[1] == classroom.FAILING_CELL
    capsys.readouterr()


def run_cells(cells) -> None:
    """Our own constant cells, run in one fresh namespace; a NameError gets the index."""
    namespace: dict = {}
    for index, (kind, source) in enumerate(cells):
        if kind == "code":
            try:
                exec(compile(source, f"<cell {index}>", "exec"), namespace)
            except NameError as exc:
                raise NameError(str(exc), index) from exc


# -- expected codes against the grader -----------------------------------------------------


def restricted(spec: AssignmentSpec, cases) -> AssignmentSpec:
    """``spec`` with the named cases only."""
    wanted = set(cases)
    files = []
    for file in spec.files:
        functions = [
            dataclasses.replace(f, cases=kept)
            for f in file.functions
            if (kept := tuple(c for c in f.cases if c.name in wanted))
        ]
        if functions:
            files.append(dataclasses.replace(file, functions=tuple(functions)))
    assert {c.name for f in files for fn in f.functions for c in fn.cases} == wanted
    return dataclasses.replace(spec, files=tuple(files))


def sampled_cases(student: Student, everyone: dict[str, Student], spec: AssignmentSpec):
    """The cases of its planted bug (a near copy: its source's) and the first case of every
    other file."""
    firsts = [file.functions[0].cases[0].name for file in spec.files]
    kind = student.kind
    if kind.startswith(("copy:", "near-copy:")):
        kind = everyone[source_of(kind)].kind
    own = list(planted(kind).expected) if kind.startswith("mutant:") else []
    return own + [c for c in firsts if c not in own and c in student.expected]


def planted(kind: str) -> mutants.Mutant:
    return next(m for m in mutants.ALL if m.name == kind.partition(":")[2])


def test_expected_codes_are_what_the_grader_gives(klass, hw3):
    from kernelnet.grading.grader import grade, submission_folder

    _, students = klass
    everyone = by_name(students)
    sample = [
        next(s for s in students if s.kind == "reference"),
        next(s for s in students if s.kind == "handout" and s.path.suffix == ".zip"),
        next(
            s
            for s in students
            if s.kind.startswith("mutant:")
            and s.path.suffix == ".zip"
            and len(planted(s.kind).expected) <= 3
        ),
        next(s for s in students if s.kind.startswith("near-copy:")),
    ]
    for student in sample:
        cases = sampled_cases(student, everyone, hw3)
        with submission_folder(student.path) as folder:
            result = grade(restricted(hw3, cases), Path(folder))
        got = {r.test: r.code for r in result.results}
        assert got == {c: student.expected[c] for c in cases}, (
            student.name,
            student.kind,
            [(r.test, r.code, r.reason) for r in result.results],
        )


def test_the_notebook_students_get_their_notebook_codes(klass, hw3):
    notebooks = pytest.importorskip("kernelnet.grading.notebooks")
    if not notebooks.notebooks_available():
        pytest.skip("kernelnet[notebooks] is not installed")
    from kernelnet.grading.grader import grade, submission_folder

    _, students = klass
    first = hw3.files[0].functions[0].cases[0].name
    for kind in classroom.NOTEBOOK_KINDS:
        (student,) = [s for s in students if s.kind == kind]
        with submission_folder(student.path) as folder:
            result = grade(restricted(hw3, [first]), Path(folder))
        got = {r.test: r.code for r in result.results}
        assert got == {first: 0, NOTEBOOK: student.expected[NOTEBOOK]}, result.results
