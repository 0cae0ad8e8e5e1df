"""A class's grades as data: one :class:`SubmissionGrade` per submission, one
:class:`TestRow` per submission and test, and the files an instructor uploads or returns
(``grades.csv``, one row per student; a submission's Gradescope ``results.json``).

A grading run (:mod:`kernelnet.experiments.grade`) stores each graded submission as a cell;
:func:`from_cells` rebuilds the gradebook from the stored cells, so a resumed or re-read run
gives the same gradebook as the run that graded it. The class report
(:mod:`kernelnet.grading.class_report`) draws from the same object.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kernelnet.grading.codes import Code

# Codes that say the submission hit one of the sandbox's limits (the report lists them).
LIMIT_CODES = frozenset({int(Code.TIME_LIMIT), int(Code.MEMORY_LIMIT), int(Code.OUTPUT_TOO_LARGE)})


@dataclass(frozen=True)
class TestRow:
    """One test of one submission (a line of the grading run's metrics.csv)."""

    test: str  # the case's name, unique in the assignment
    file: str  # the student's file it tests (``two_layer_net.py``; a notebook's name)
    function: str
    code: int
    points: float
    max_points: float
    seconds: float
    visibility: str  # visible | hidden
    reason: str  # "" on success
    # the student's own traceback lines, for code 2 (grading.log and the student's table;
    # not a metrics.csv column, so a row read back has none)
    traceback: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.code == Code.SUCCESS

    def as_row(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "file": self.file,
            "function": self.function,
            "code": self.code,
            "points": self.points,
            "max_points": self.max_points,
            "seconds": round(self.seconds, 3),
            "visibility": self.visibility,
            "reason": self.reason,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TestRow:
        return cls(
            str(row["test"]),
            str(row["file"]),
            str(row["function"]),
            int(row["code"]),
            float(row["points"]),
            float(row["max_points"]),
            float(row["seconds"]),
            str(row["visibility"]),
            str(row.get("reason") or ""),
        )


@dataclass(frozen=True)
class SubmissionGrade:
    """One submission of the class, graded (``status == "graded"``) or not (``"failed"``:
    it could not be graded at all, ``error`` says why, and it scores nothing)."""

    submission: str  # the name the export gave it: its folder's name or its zip's stem
    student: str  # the student id (from the manifest; the submission's name without one)
    status: str  # graded | failed
    error: str
    seconds: float
    tests: tuple[TestRow, ...]
    digest: str  # sha256 of its normalized source (equal for near-identical submissions)

    @property
    def score(self) -> float:
        return sum(t.points for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.max_points for t in self.tests)

    @property
    def file_scores(self) -> dict[str, float]:
        """Points per student file, in the assignment's file order."""
        totals: dict[str, float] = {}
        for t in self.tests:
            totals[t.file] = totals.get(t.file, 0.0) + t.points
        return totals

    @property
    def limits_hit(self) -> tuple[TestRow, ...]:
        """The tests that ended at a time, memory or output limit."""
        return tuple(t for t in self.tests if t.code in LIMIT_CODES)


@dataclass(frozen=True)
class Gradebook:
    assignment: str
    submissions: tuple[SubmissionGrade, ...]  # in grading-run order (the cells' order)
    tests: tuple[str, ...]  # every test's name, in the assignment's order
    max_points: dict[str, float]  # test -> its points
    files: tuple[str, ...]  # the student files, in the assignment's order

    @property
    def max_score(self) -> float:
        return sum(self.max_points.values())

    def results(self, test: str) -> list[TestRow]:
        """That test's row of every graded submission."""
        return [t for s in self.submissions for t in s.tests if t.test == test]

    def pass_rate(self, test: str) -> float | None:
        rows = self.results(test)
        return sum(r.passed for r in rows) / len(rows) if rows else None

    def code_counts(self, test: str) -> Counter[int]:
        return Counter(r.code for r in self.results(test))

    def duplicates(self) -> list[tuple[str, ...]]:
        """Groups of two or more submissions with the same normalized source, each group's
        submission names in run order; groups ordered by their first member."""
        groups: dict[str, list[str]] = {}
        for s in self.submissions:
            if s.digest:
                groups.setdefault(s.digest, []).append(s.submission)
        return [tuple(names) for names in groups.values() if len(names) > 1]

    def grades_csv(self) -> str:
        """One row per submission: student, submission, status, total, max, one column per
        file (``points <file>``), seconds and the error of an ungraded submission."""
        columns = [
            "student",
            "submission",
            "status",
            "score",
            "max_score",
            *(f"points {f}" for f in self.files),
            "seconds",
            "error",
        ]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for s in self.submissions:
            per_file = s.file_scores
            writer.writerow(
                [
                    s.student,
                    s.submission,
                    s.status,
                    _number(s.score),
                    _number(self.max_score),
                    *(_number(per_file.get(f, 0.0)) for f in self.files),
                    f"{s.seconds:.3f}",
                    s.error,
                ]
            )
        return buffer.getvalue()


def _number(value: float) -> str:
    return f"{value:g}"


def gradescope_results(assignment: str, tests: Iterable[TestRow], seconds: float) -> dict[str, Any]:
    """Gradescope's ``results.json``: the score and one entry per test (hidden tests are
    shown to students once grades are published)."""
    tests = list(tests)
    score = sum(t.points for t in tests)
    max_score = sum(t.max_points for t in tests)
    return {
        "score": score,
        "execution_time": round(seconds, 3),
        "output": f"{assignment}: {score:g} / {max_score:g} points",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [
            {
                "name": f"{t.test} ({t.file}: {t.function})",
                "score": t.points,
                "max_score": t.max_points,
                "status": "passed" if t.passed else "failed",
                "output": "passed" if t.passed else f"code {t.code}: {t.reason}",
                "visibility": "visible" if t.visibility == "visible" else "after_published",
            }
            for t in tests
        ],
    }
