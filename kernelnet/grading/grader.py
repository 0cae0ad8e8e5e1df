"""Grading one submission against an assignment spec: every test case's code, points and
reason.

For each case the parent draws the inputs and computes the expected outputs with
kernelnet's reference (:func:`kernelnet.grading.spec.expected_outputs`); only the inputs
and the students' data files go to the sandbox (:mod:`kernelnet.grading.sandbox`), which
calls the student's function in a limited child and hands back its outputs as data. The
parent then judges them (:func:`kernelnet.grading.spec.judge`, ``judge_metric`` for
training cases). How the sandbox's outcome becomes a code:

=================  =====================================================================
ok                 the comparison's code (0, 50-55, 60, 61)
exception          2, with the student's own traceback lines
not_implemented    40
timeout, cpu       70 (time limit)
memory_limit       71
forbidden          72 (an import the assignment does not allow)
output_too_large   73
crashed            1 (ended without a result: ``os._exit``, a signal, closed pipes)
bad_output         50 (returned something that is not numbers)
sandbox_error      5 (kernelnet's side; not the student's fault)
=================  =====================================================================

A submission is a folder or a ``.zip`` of ``.py`` (and ``.ipynb``) files (unpacked into a
temporary folder with sizes bounded before inflating, names flattened, nothing executed).
With ``notebooks``, each ``.ipynb`` of the submission is one more test: run top to bottom
in the sandbox (:mod:`kernelnet.grading.notebooks`), code 2 with the failing cell when a
cell raises, ``assignment.notebooks.points`` when every cell runs.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import tempfile
import time
import zipfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kernelnet.errors import ConfigError
from kernelnet.grading import gradebook
from kernelnet.grading.codes import Code, Verdict
from kernelnet.grading.gradebook import TestRow
from kernelnet.grading.roster import MAX_ZIP_BYTES
from kernelnet.grading.sandbox import MAX_SOURCE_BYTES, Limits, Outcome, Session, Status
from kernelnet.grading.spec import (
    AssignmentSpec,
    CaseSpec,
    FileSpec,
    FunctionSpec,
    expected_outputs,
    judge,
    judge_metric,
    write_data,
)
from kernelnet.safe_read import open_regular

MAX_MEMBERS = 500
MAX_NOTEBOOK_BYTES = 16 * 2**20  # outputs and figures included
_MEMBER_BOUNDS = {".py": MAX_SOURCE_BYTES, ".ipynb": MAX_NOTEBOOK_BYTES}

_STATUS_CODES = {
    Status.EXCEPTION: Code.EXCEPTION,
    Status.NOT_IMPLEMENTED: Code.NOT_IMPLEMENTED,
    Status.TIMEOUT: Code.TIME_LIMIT,
    Status.CPU_LIMIT: Code.TIME_LIMIT,
    Status.MEMORY_LIMIT: Code.MEMORY_LIMIT,
    Status.FORBIDDEN: Code.FORBIDDEN,
    Status.OUTPUT_TOO_LARGE: Code.OUTPUT_TOO_LARGE,
    Status.CRASHED: Code.UNKNOWN_FAILURE,
    Status.BAD_OUTPUT: Code.WRONG_OUTPUT,
    Status.SANDBOX_ERROR: Code.SANDBOX_ERROR,
}


@dataclass(frozen=True)
class Grade:
    assignment: str
    results: tuple[TestRow, ...]
    skipped_hidden: int  # hidden cases not run (a student checking their own work)
    seconds: float

    @property
    def score(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def max_score(self) -> float:
        return sum(r.max_points for r in self.results)

    @property
    def all_passed(self) -> bool:
        return all(r.passed for r in self.results)


@contextlib.contextmanager
def submission_folder(path: Path) -> Iterator[Path]:
    """The folder holding a submission's files: ``path`` itself, or a temporary folder
    with the .py and .ipynb files of a .zip (each member's declared size checked before
    inflating; at most MAX_MEMBERS members, so at most 500 x 16 MiB inflated)."""
    path = Path(path)
    if path.is_dir():
        yield path
        return
    if path.suffix.lower() != ".zip":
        what = "no such file or folder" if not path.exists() else "not a folder or a .zip"
        raise ConfigError(f"{path}: {what}; give the submission's folder or a .zip of it")
    with tempfile.TemporaryDirectory(prefix="kernelnet-submission-") as folder:
        _unzip_sources(path, Path(folder))
        yield Path(folder)


def _unzip_sources(path: Path, folder: Path) -> None:
    try:
        with open_regular(path, MAX_ZIP_BYTES) as (handle, _), zipfile.ZipFile(handle) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise ConfigError(f"{path}: {len(members):,} members (at most {MAX_MEMBERS})")
            seen: set[str] = set()
            for member in members:
                name = Path(member.filename).name  # folders inside the zip are flattened
                bound = _MEMBER_BOUNDS.get(Path(name).suffix)
                if member.is_dir() or bound is None or name.startswith("."):
                    continue
                if "__MACOSX" in Path(member.filename).parts:  # a Mac's resource forks
                    continue
                if name in seen:
                    raise ConfigError(f"{path}: two files named {name}; keep one")
                if member.file_size > bound:
                    raise ConfigError(
                        f"{path}: {member.filename} inflates to {member.file_size:,} bytes "
                        f"(a {Path(name).suffix} file may have {bound:,})"
                    )
                seen.add(name)
                with archive.open(member) as source:
                    (folder / name).write_bytes(source.read(bound + 1))
    except (zipfile.BadZipFile, EOFError, RuntimeError, NotImplementedError) as exc:
        raise ConfigError(f"{path}: not a readable .zip ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None


def _returned(outcome: Outcome) -> Any:
    """The student's return value rebuilt from the sandbox's named arrays (``"0"`` for a
    value; ``"0", "1", ...`` for a tuple, ``"1/W1"`` for a dict in it; keys for a dict)."""
    outputs = outcome.outputs
    if outcome.returned == "none":
        return None
    if outcome.returned == "value":
        return outputs.get("0")
    if outcome.returned == "dict":
        return dict(outputs)
    items: dict[int, Any] = {}
    for name, value in outputs.items():
        head, _, key = name.partition("/")
        if key:
            items.setdefault(int(head), {})[key] = value
        else:
            items[int(head)] = value
    return tuple(items[i] for i in sorted(items))


def _limits(case: CaseSpec) -> Limits:
    return Limits(
        wall_seconds=float(case.time_limit),
        cpu_seconds=max(1, math.ceil(case.time_limit)),
        memory_bytes=int(case.memory_mb * 2**20),
    )


def _verdict(
    spec: AssignmentSpec,
    function: FunctionSpec,
    case: CaseSpec,
    inputs: dict[str, Any],
    expected: Any,
    outcome: Outcome,
) -> Verdict:
    if outcome.status is not Status.OK:
        return Verdict(_STATUS_CODES[outcome.status], outcome.message)
    got = _returned(outcome)
    if case.metric is not None:
        return judge_metric(spec, function, case, inputs, got)
    before = {k: v for k, v in inputs.items() if isinstance(v, np.ndarray)}
    return judge(function, case, expected, got, before, outcome.inputs_after)


def chosen_cases(
    spec: AssignmentSpec, include_hidden: bool = True, skip: Collection[str] = ()
) -> list[tuple[FileSpec, FunctionSpec, CaseSpec]]:
    """The cases a grading runs, in the assignment's order: the visible ones only unless
    ``include_hidden``, without those ``skip`` names (a case, or a function: all its cases).
    A name in ``skip`` that is neither is a config error listing the valid names."""
    every = [
        (file, function, case)
        for file in spec.files
        for function in file.functions
        for case in function.cases
    ]
    known = {case.name for _, _, case in every} | {function.name for _, function, _ in every}
    unknown = sorted(set(skip) - known)
    if unknown:
        hint = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        tip = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(
            f"skip: {spec.name} has no test or function {unknown[0]!r}{tip}; "
            f"its tests: {', '.join(case.name for _, _, case in every)}"
        )
    return [
        (file, function, case)
        for file, function, case in every
        if (include_hidden or case.visibility != "hidden")
        and case.name not in skip
        and function.name not in skip
    ]


# The students' data files of each assignment, written once per process (a class of 200
# would otherwise write MNIST's 37 MB 200 times): derived from the spec alone, never
# changed (the sandbox copies them, or hard-links them read-only, into each child), and
# removed when the process exits (TemporaryDirectory's finalizer).
_HANDOUT_DATA: dict[tuple, tuple[tempfile.TemporaryDirectory, list[Path]]] = {}


def handout_data(spec: AssignmentSpec) -> list[Path]:
    """The paths of ``spec``'s handout data files, written on first use in this process."""
    key = (spec.source, spec.data)
    held = _HANDOUT_DATA.get(key)
    if held is None or not all(path.is_file() for path in held[1]):
        folder = tempfile.TemporaryDirectory(prefix="kernelnet-grading-data-")
        held = (folder, write_data(spec, Path(folder.name), handout_only=True))
        _HANDOUT_DATA[key] = held
    return held[1]


def notebooks_in(folder: Path) -> list[str]:
    """The notebooks of a submission (top-level ``.ipynb`` files), by name."""
    return sorted(
        p.name
        for p in Path(folder).iterdir()
        if p.suffix == ".ipynb" and not p.name.startswith(".")
    )


def grade(
    spec: AssignmentSpec,
    submission: Path,
    *,
    include_hidden: bool = True,
    skip: Collection[str] = (),
    notebooks: bool = True,
    progress: Callable[[int, int, str], None] | None = None,
) -> Grade:
    """Run every case of ``spec`` (the visible ones only unless ``include_hidden``; none
    that ``skip`` names) on the submission in ``submission`` (a folder; see
    :func:`submission_folder` for a .zip), each in its own sandboxed process, then, with
    ``notebooks``, run each of its notebooks top to bottom (raises NotebooksUnavailable when
    it has some and the extra is not installed)."""
    started = time.monotonic()
    chosen = chosen_cases(spec, include_hidden, skip)
    skipped = sum(len(f.cases) for file in spec.files for f in file.functions) - len(chosen)
    books = notebooks_in(submission) if notebooks else []
    if books:
        from kernelnet.grading.notebooks import NotebooksUnavailable, notebooks_available

        if not notebooks_available():
            raise NotebooksUnavailable()
    total = len(chosen) + len(books)
    results = []
    data_files = handout_data(spec)
    with Session(submission, data_files, spec.allowed_imports) as session:
        for done, (file, function, case) in enumerate(chosen):
            if progress is not None:
                progress(done, total, case.name)
            results.append(_run_case(spec, session, file, function, case))
    for done, book in enumerate(books, start=len(chosen)):
        if progress is not None:
            progress(done, total, book)
        results.append(_run_notebook(spec, submission, book, data_files))
    if progress is not None:
        progress(total, total, "")
    return Grade(spec.name, tuple(results), skipped, time.monotonic() - started)


def _run_case(
    spec: AssignmentSpec, session: Session, file: FileSpec, function: FunctionSpec, case: CaseSpec
) -> TestRow:
    inputs, expected = expected_outputs(function, case)
    outcome = session.call(Path(file.name).stem, function.name, inputs, _limits(case))
    verdict = _verdict(spec, function, case, inputs, expected, outcome)
    return _result(
        case.name, file.name, function.name, float(case.points), case.visibility, verdict, outcome
    )


def _run_notebook(spec: AssignmentSpec, submission: Path, book: str, data_files) -> TestRow:
    from kernelnet.grading.notebooks import run_notebook

    settings = spec.notebooks
    limits = Limits(
        wall_seconds=settings.time_limit,
        cpu_seconds=max(1, math.ceil(settings.time_limit)),
        memory_bytes=int(settings.memory_mb * 2**20),
    )
    outcome = run_notebook(submission, book, limits, data_files, spec.allowed_imports)
    if outcome.status is Status.OK:
        verdict = Verdict(Code.SUCCESS, "")
    else:
        verdict = Verdict(_STATUS_CODES[outcome.status], outcome.message)
    return _result(book, book, NOTEBOOK_FUNCTION, settings.points, "visible", verdict, outcome)


NOTEBOOK_FUNCTION = "(every cell, top to bottom)"


def _result(
    name: str,
    file: str,
    function: str,
    points: float,
    visibility: str,
    verdict: Verdict,
    outcome: Outcome,
) -> TestRow:
    passed = verdict.code == Code.SUCCESS
    return TestRow(
        name,
        file,
        function,
        int(verdict.code),
        points if passed else 0.0,
        points,
        outcome.seconds,
        visibility,
        "" if passed else verdict.reason,
        outcome.traceback if verdict.code == Code.EXCEPTION else (),
    )


def gradescope_results(grade: Grade) -> dict[str, Any]:
    """Gradescope's ``results.json`` for one graded submission."""
    return gradebook.gradescope_results(grade.assignment, grade.results, grade.seconds)
