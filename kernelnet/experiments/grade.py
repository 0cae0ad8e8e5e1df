"""``grade``: a class's submissions graded against an assignment, one cell per submission.

A grading run is a run like any other: its own folder, ``--workers`` and Dask, Ctrl-C
keeping every graded submission, ``--resume``, ``runs list/show/compare``. Each cell grades
one submission (a folder or a .zip, :mod:`kernelnet.grading.grader`) and stores, in its cell
folder, Gradescope's ``results.json`` to return to the student and ``grading.log`` (every
test's code, time, reason and the student's own traceback lines). The cell's metrics rows
are its tests (metrics.csv: one row per submission and test). The report rebuilds the
gradebook from the stored cells and writes ``grades.csv`` (one row per student),
``report.html`` (the class report) and the tables: each test's pass rate and most frequent
failing code, the grades, identical submissions, limits hit.

A cell's id is ``submission=<name>`` (the folder's name or the zip's stem), so two grading
runs of one class line up in ``runs compare`` wherever the files were.
"""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelnet.config import Cell, param
from kernelnet.errors import ConfigError
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    CellResult,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
)
from kernelnet.grading.roster import has_notebooks, read_manifest, submission_name
from kernelnet.tables import Table

GRADES_TABLE_ROWS = 40  # the rest are in grades.csv


@dataclass
class GradeConfig(ExperimentConfig):
    assignment: str = param(
        "hw3",
        sweepable=False,
        help="a shipped assignment (hw3, labs) or the path of an instructor's spec .yaml",
    )
    submission: str = param(
        "",
        id_text=submission_name,
        help="a submission's folder or .zip; a list grades each one as a cell",
    )
    hidden: bool = param(True, sweepable=False, help="run the hidden tests too")
    skip: list[str] = param(
        default_factory=list,
        sweepable=False,
        help="tests (or functions: all their tests) not run, e.g. [mnist_two_layer_net]",
    )
    notebooks: bool = param(
        True,
        sweepable=False,
        help="run each submission's .ipynb files top to bottom (needs kernelnet[notebooks])",
    )
    manifest: str = param(
        "",
        sweepable=False,
        outcome=False,
        help="a CSV with submission and student columns: the student ids of grades.csv",
    )


@functools.lru_cache(maxsize=4)
def _assignment(name: str):
    from kernelnet.grading.spec import load_assignment

    return load_assignment(name)


def preflight(cells: list[Cell]) -> None:
    """Before a run folder exists: the spec loads, ``skip`` names real tests, every
    submission is there, the manifest reads, and notebooks can run if any are to be."""
    from kernelnet.grading.grader import chosen_cases

    if not cells:
        return
    config = cells[0].config
    spec = _assignment(config.assignment)
    chosen_cases(spec, config.hidden, config.skip)
    if config.manifest:
        read_manifest(Path(config.manifest))
    for cell in cells:
        path = Path(cell.config.submission)
        if not cell.config.submission:
            raise ConfigError(
                "grade: give the submissions to grade: kernelnet grade ASSIGNMENT FOLDER..."
            )
        if not (path.is_dir() or (path.is_file() and path.suffix.lower() == ".zip")):
            what = "no such folder or file" if not path.exists() else "not a folder or a .zip"
            raise ConfigError(f"grade: submission {path}: {what}")
    if config.notebooks and any(has_notebooks(Path(c.config.submission)) for c in cells):
        from kernelnet.grading.notebooks import NotebooksUnavailable, notebooks_available

        if not notebooks_available():
            raise NotebooksUnavailable(
                f"{NotebooksUnavailable().args[0]}; or grade without the notebooks: "
                "--set notebooks=false"
            )


def run_cell(config: GradeConfig, ctx: CellContext) -> CellOutput:
    from kernelnet.grading.grader import grade, gradescope_results, submission_folder
    from kernelnet.grading.similarity import submission_digest

    spec = _assignment(config.assignment)
    with submission_folder(Path(config.submission)) as folder:
        digest = submission_digest(folder)
        graded = grade(
            spec,
            folder,
            include_hidden=config.hidden,
            skip=config.skip,
            notebooks=config.notebooks,
            progress=ctx.progress,
        )
    ctx.files.write_json("results.json", gradescope_results(graded))
    ctx.files.write_text("grading.log", _log_text(config, graded))
    ctx.log.info(
        "%s: %g / %g points in %.1f s",
        submission_name(config.submission),
        graded.score,
        graded.max_score,
        graded.seconds,
    )
    return CellOutput(
        [row.as_row() for row in graded.results],
        {"digest": digest, "seconds": graded.seconds},
    )


def _log_text(config: GradeConfig, graded: Any) -> str:
    lines = [
        f"{graded.assignment}: {submission_name(config.submission)} ({config.submission})",
        f"{graded.score:g} / {graded.max_score:g} points in {graded.seconds:.1f} s",
        "",
    ]
    for r in graded.results:
        lines.append(f"[{r.code:>2}] {r.test} ({r.file}: {r.function}) {r.seconds:.2f} s")
        if r.reason:
            lines.append(f"     {r.reason}")
        lines += [f"     | {line.rstrip()}" for line in r.traceback]
    if graded.skipped_hidden:
        lines.append(f"{graded.skipped_hidden} hidden test(s) not run")
    return "\n".join(lines) + "\n"


def gradebook_of(config: dict[str, Any], results: list[CellResult]):
    """The class's gradebook from its stored cells (and the manifest's student ids)."""
    from kernelnet.grading.gradebook import Gradebook, SubmissionGrade, TestRow
    from kernelnet.grading.grader import chosen_cases

    spec = _assignment(config["assignment"])
    chosen = chosen_cases(spec, config["hidden"], config["skip"])
    students = read_manifest(Path(config["manifest"])) if config["manifest"] else {}
    submissions = []
    for result in results:
        name = submission_name(result.cell.config.submission)
        tests = tuple(TestRow.from_row(row) for row in result.rows if "test" in row)
        submissions.append(
            SubmissionGrade(
                submission=name,
                student=students.get(name, name),
                status="graded" if result.ok else "failed",
                error=result.error,
                seconds=float(result.artifacts.get("seconds", 0.0)),
                tests=tests if result.ok else (),
                digest=str(result.artifacts.get("digest", "")),
            )
        )
    names = [case.name for _, _, case in chosen]
    max_points = {case.name: float(case.points) for _, _, case in chosen}
    for s in submissions:  # the notebooks, as the submissions that have them named them
        for t in s.tests:
            if t.test not in max_points:
                names.append(t.test)
                max_points[t.test] = t.max_points
    files = list(dict.fromkeys([file.name for file, _, _ in chosen]))
    files += [t.file for t in (t for s in submissions for t in s.tests) if t.file not in files]
    return Gradebook(
        spec.name, tuple(submissions), tuple(names), max_points, tuple(dict.fromkeys(files))
    )


def report(ctx: ReportContext) -> Report:
    from kernelnet.grading.class_report import class_report_html
    from kernelnet.grading.codes import MEANINGS

    book = gradebook_of(ctx.config, ctx.results)
    ctx.run.write_text("grades.csv", book.grades_csv())
    title = f"{book.assignment}: {len(book.submissions)} submission(s) — {ctx.run.path.name}"
    ctx.run.write_text("report.html", class_report_html(book, title))
    graded = [s for s in book.submissions if s.status == "graded"]
    scores = [s.score for s in graded]
    tables = [_tests_table(book, MEANINGS), _grades_table(book)]
    duplicates = book.duplicates()
    if duplicates:
        tables.append(
            Table(
                "Identical or near-identical submissions (same code up to comments, "
                "spacing and names)",
                ["group", "submissions"],
                [[str(i + 1), ", ".join(group)] for i, group in enumerate(duplicates)],
                align=["right", "left"],
            )
        )
    limited = [(s, t) for s in graded for t in s.limits_hit]
    if limited:
        tables.append(
            Table(
                "Limits hit",
                ["submission", "test", "code", "reason"],
                [[s.submission, t.test, str(t.code), t.reason] for s, t in limited],
                align=["left", "left", "right", "left"],
            )
        )
    summary = {
        "assignment": book.assignment,
        "submissions": len(book.submissions),
        "graded": len(graded),
        "not_graded": len(book.submissions) - len(graded),
        "max_score": book.max_score,
        "mean_score": statistics.fmean(scores) if scores else None,
        "median_score": statistics.median(scores) if scores else None,
        "full_marks": sum(s.score == book.max_score for s in graded),
        "pass_rates": {test: book.pass_rate(test) for test in book.tests},
        "duplicates": [list(group) for group in duplicates],
        "limits_hit": len(limited),
    }
    return Report(tables, summary)


def _tests_table(book: Any, meanings: dict) -> Table:
    rows = []
    for test in book.tests:
        counts = book.code_counts(test)
        total = sum(counts.values())
        failing = [(code, n) for code, n in counts.most_common() if code != 0]
        rate = book.pass_rate(test)
        if failing:
            code, n = failing[0]
            common = f"{code} {meanings.get(code, '')} ({n / total:.0%})".strip()
        else:
            common = "—"
        rows.append(
            [test, f"{book.max_points[test]:g}", "—" if rate is None else f"{rate:.0%}", common]
        )
    return Table(
        f"Tests ({book.assignment})",
        ["test", "points", "passed", "most frequent failing code"],
        rows,
        align=["left", "right", "right", "left"],
    )


def _grades_table(book: Any) -> Table:
    ordered = sorted(book.submissions, key=lambda s: (-s.score, s.student))
    shown = ordered[:GRADES_TABLE_ROWS]
    errors = any(s.error for s in shown)
    rows = [
        [
            s.student,
            s.submission,
            f"{s.score:g}/{book.max_score:g}" if s.status == "graded" else "not graded",
            *(f"{s.file_scores.get(f, 0.0):g}" for f in book.files),
            *([s.error] if errors else []),
        ]
        for s in shown
    ]
    rest = len(ordered) - len(shown)
    columns = ["student", "submission", "score", *book.files]
    align = ["left", "left", "right", *("right" for _ in book.files)]
    return Table(
        "Grades",
        columns + (["error"] if errors else []),
        rows,
        note=f"{rest} more in grades.csv" if rest > 0 else "",
        align=align + (["left"] if errors else []),
    )


EXPERIMENT = Experiment(
    name="grade",
    schema=GradeConfig,
    run_cell=run_cell,
    report=report,
    preflight=preflight,
    row_key=("test",),
)
