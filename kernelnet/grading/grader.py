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

A submission is a folder or a ``.zip`` of ``.py`` files (unpacked into a temporary folder
with sizes bounded before inflating, names flattened, nothing executed).
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kernelnet.errors import ConfigError
from kernelnet.grading.codes import Code, Verdict
from kernelnet.grading.sandbox import MAX_SOURCE_BYTES, Limits, Outcome, Status, run_function
from kernelnet.grading.spec import (
    AssignmentSpec,
    CaseSpec,
    FunctionSpec,
    expected_outputs,
    judge,
    judge_metric,
    write_data,
)
from kernelnet.safe_read import open_regular

MAX_ZIP_BYTES = 64 * 2**20
MAX_MEMBERS = 500

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
class TestResult:
    """One test case of one submission."""

    name: str  # the case's name (unique in the assignment)
    file: str
    function: str
    code: int
    score: float
    max_score: float
    visibility: str  # visible | hidden
    reason: str  # one line a student can act on ("" on success)
    seconds: float
    traceback: tuple[str, ...] = ()  # the student's own lines, for code 2

    @property
    def passed(self) -> bool:
        return self.code == Code.SUCCESS


@dataclass(frozen=True)
class Grade:
    assignment: str
    results: tuple[TestResult, ...]
    skipped_hidden: int  # hidden cases not run (a student checking their own work)
    seconds: float

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results)

    @property
    def max_score(self) -> float:
        return sum(r.max_score for r in self.results)

    @property
    def all_passed(self) -> bool:
        return all(r.passed for r in self.results)


@contextlib.contextmanager
def submission_folder(path: Path) -> Iterator[Path]:
    """The folder holding a submission's .py files: ``path`` itself, or a temporary folder
    with the .py files of a .zip (each member's declared size checked before inflating)."""
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
                if member.is_dir() or not name.endswith(".py") or name.startswith("."):
                    continue
                if name in seen:
                    raise ConfigError(f"{path}: two files named {name}; keep one")
                if member.file_size > MAX_SOURCE_BYTES:
                    raise ConfigError(
                        f"{path}: {member.filename} inflates to {member.file_size:,} bytes "
                        f"(a source file may have {MAX_SOURCE_BYTES:,})"
                    )
                seen.add(name)
                with archive.open(member) as source:
                    (folder / name).write_bytes(source.read(MAX_SOURCE_BYTES + 1))
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


def grade(
    spec: AssignmentSpec,
    submission: Path,
    *,
    include_hidden: bool = True,
    progress: Callable[[int, int, str], None] | None = None,
) -> Grade:
    """Run every case of ``spec`` (the visible ones only unless ``include_hidden``) on the
    submission in ``submission`` (a folder; see :func:`submission_folder` for a .zip)."""
    started = time.monotonic()
    chosen = [
        (file, function, case)
        for file in spec.files
        for function in file.functions
        for case in function.cases
        if include_hidden or case.visibility != "hidden"
    ]
    skipped = sum(len(f.cases) for file in spec.files for f in file.functions) - len(chosen)
    results = []
    with tempfile.TemporaryDirectory(prefix="kernelnet-grading-data-") as data:
        data_files = write_data(spec, Path(data), handout_only=True)
        for done, (file, function, case) in enumerate(chosen):
            if progress is not None:
                progress(done, len(chosen), case.name)
            inputs, expected = expected_outputs(function, case)
            outcome = run_function(
                submission,
                Path(file.name).stem,
                function.name,
                inputs,
                _limits(case),
                data_files,
                spec.allowed_imports,
            )
            verdict = _verdict(spec, function, case, inputs, expected, outcome)
            passed = verdict.code == Code.SUCCESS
            results.append(
                TestResult(
                    case.name,
                    file.name,
                    function.name,
                    int(verdict.code),
                    float(case.points) if passed else 0.0,
                    float(case.points),
                    case.visibility,
                    "" if passed else verdict.reason,
                    outcome.seconds,
                    outcome.traceback if verdict.code == Code.EXCEPTION else (),
                )
            )
    if progress is not None:
        progress(len(chosen), len(chosen), "")
    return Grade(spec.name, tuple(results), skipped, time.monotonic() - started)


def gradescope_results(grade: Grade) -> dict[str, Any]:
    """Gradescope's ``results.json``: the score and one entry per test (hidden tests are
    shown to students once grades are published)."""
    return {
        "score": grade.score,
        "execution_time": round(grade.seconds, 3),
        "output": f"{grade.assignment}: {grade.score:g} / {grade.max_score:g} points",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [
            {
                "name": f"{r.name} ({r.file}: {r.function})",
                "score": r.score,
                "max_score": r.max_score,
                "status": "passed" if r.passed else "failed",
                "output": "passed" if r.passed else f"code {r.code}: {r.reason}",
                "visibility": "visible" if r.visibility == "visible" else "after_published",
            }
            for r in grade.results
        ],
    }
