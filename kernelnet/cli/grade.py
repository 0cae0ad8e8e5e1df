"""``kernelnet grade ASSIGNMENT SUBMISSIONS...``: one submission checked at once (a student's
own check: a table of codes, no run folder), or a class graded as a run of the ``grade``
experiment (kernelnet/experiments/grade.py): one cell per submission, every common option."""

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from kernelnet.cli.guard import user_errors
from kernelnet.cli.options import CommonOptions, with_common_options

HELP = """Grade SUBMISSIONS against ASSIGNMENT's tests, each test in a sandboxed child
process.

One submission (a folder of .py files or a .zip) is checked at once: every test's code,
points and reason are printed; exit 0 when all pass, 1 when a test failed.

Several submissions, or a class folder holding them (a folder or a .zip per student, as
Gradescope and LMS exports are), are a grading run, one cell per submission: --workers and
--scheduler spread the class, Ctrl-C keeps what is graded and --resume finishes the rest.
The run folder holds grades.csv (one row per student; ids from --manifest or the class
folder's manifest.csv), metrics.csv (one row per submission and test), report.html for the
class, and each submission's results.json (Gradescope's format) and grading.log in its cell
folder. Exit 1 when a submission could not be graded at all (a damaged zip, say); 2 for a
usage, spec or data error.

Examples:  kernelnet grade hw3 .

           kernelnet grade hw3 alice.zip --all --json results.json

           kernelnet grade hw3 submissions/ --workers 2

           kernelnet grade hw3 submissions/ --set 'skip=[mnist_two_layer_net]'

           kernelnet grade --resume latest"""


def grade(
    common: CommonOptions,
    assignment: Annotated[
        Optional[str],
        typer.Argument(help="A shipped assignment (hw3, labs), or the path of a spec .yaml."),
    ] = None,
    submissions: Annotated[
        Optional[list[Path]],
        typer.Argument(
            help="Submissions: folders of .py files or .zip files, or class folders of them."
        ),
    ] = None,
    all_tests: Annotated[
        bool, typer.Option("--all", help="One submission: run the hidden tests too.")
    ] = False,
    json_path: Annotated[
        Optional[Path],
        typer.Option("--json", help="One submission: also write Gradescope's results.json here."),
    ] = None,
    manifest: Annotated[
        Optional[Path],
        typer.Option(
            "--manifest",
            help="A class: a CSV with submission and student columns, the student ids of "
            "grades.csv (default: the class folder's manifest.csv, if any).",
        ),
    ] = None,
) -> None:
    paths = list(submissions or [])
    if _one_submission(common, paths):
        _grade_one(
            assignment or "hw3",
            paths[0] if paths else Path("."),
            all_tests,
            json_path,
            common.debug,
        )
        return
    with user_errors(common.debug):
        if json_path is not None or all_tests:
            from kernelnet.errors import ConfigError

            flag = "--json" if json_path is not None else "--all"
            raise ConfigError(
                f"{flag} is for one submission; a class's grading run runs the hidden tests "
                "(the config's hidden: true) and writes each submission's results.json in its "
                "cell folder"
            )
    _grade_class(common, assignment, paths, manifest)


def _one_submission(common: CommonOptions, paths: list[Path]) -> bool:
    """A student's own check: at most one path, itself a submission, and no run options."""
    from kernelnet.grading.roster import is_submission

    run_options = (
        common.resume
        or common.config
        or common.set
        or common.workers != 1
        or common.scheduler
        or common.scheduler_file
        or common.dry_run
        or common.print_config
    )
    if run_options or len(paths) > 1:
        return False
    return not paths or is_submission(paths[0]) or not paths[0].exists()


def _grade_class(
    common: CommonOptions, assignment: Optional[str], paths: list[Path], manifest: Optional[Path]
) -> None:
    """A grading run: the ``grade`` experiment launched as any experiment is, its assignment,
    submissions and manifest taken from the arguments."""
    from kernelnet.cli.launch import launch
    from kernelnet.grading.roster import class_manifest, find_submissions

    def arguments(raw) -> None:
        chosen = manifest
        if assignment is not None:
            raw.set("assignment", assignment, "ASSIGNMENT")
        if paths:
            found = find_submissions(paths)
            raw.set("submission", [str(p) for p in found], "SUBMISSIONS")
            chosen = chosen or class_manifest(paths)
        if chosen is not None:
            raw.set("manifest", str(Path(chosen).resolve()), "--manifest")

    launch("grade", common, {}, arguments)


def _grade_one(
    assignment: str, submission: Path, all_tests: bool, json_path: Optional[Path], debug: bool
) -> None:
    with user_errors(debug):
        from kernelnet.grading.grader import grade as run_grade
        from kernelnet.grading.grader import gradescope_results, notebooks_in, submission_folder
        from kernelnet.grading.spec import load_assignment

        spec = load_assignment(assignment)
        with submission_folder(submission) as folder:
            notebooks = bool(notebooks_in(folder))
            if notebooks:
                from kernelnet.grading.notebooks import notebooks_available

                notebooks = notebooks_available()
                if not notebooks:
                    _say(
                        "notebooks not run: they need kernelnet's notebooks extra "
                        "(pip install 'kernelnet[notebooks]')"
                    )
            result = run_grade(
                spec, folder, include_hidden=all_tests, notebooks=notebooks, progress=_progress()
            )
        if json_path is not None:
            from kernelnet.safe_write import write_text_atomic

            text = json.dumps(gradescope_results(result), indent=2) + "\n"
            try:
                write_text_atomic(json_path, text)
            except OSError as exc:
                from kernelnet.errors import ConfigError

                raise ConfigError(f"--json {json_path}: cannot write it ({exc})") from None
    _render(result, hints=not all_tests)
    if not result.all_passed:
        raise typer.Exit(1)


def _say(line: str) -> None:
    from kernelnet.cli.render import stderr_console

    stderr_console().print(line, markup=False, highlight=False, soft_wrap=True)


def _progress():
    """A line per test on stderr (off a terminal too: grading takes seconds per test)."""
    from kernelnet.cli.render import stderr_console

    console = stderr_console()

    def step(done: int, total: int, name: str) -> None:
        if name:
            console.print(f"[{done + 1}/{total}] {name}", markup=False, highlight=False)

    return step


def _render(result, hints: bool) -> None:
    from kernelnet.cli.render import print_tables, stdout_console
    from kernelnet.grading.codes import HINTS
    from kernelnet.tables import Table

    rows = []
    for r in result.results:
        reason = r.reason
        if r.traceback:
            reason = f"{reason} [{r.traceback[-1].strip()}]"
        if hints and not r.passed and r.code in HINTS:
            reason = f"{reason} (hint: {HINTS[r.code]})"
        rows.append([r.test, r.function, str(r.code), f"{r.points:g}/{r.max_points:g}", reason])
    note = (
        f"{result.skipped_hidden} hidden test(s) not run (instructors: --all)"
        if result.skipped_hidden
        else ""
    )
    table = Table(
        f"{result.assignment}: {result.score:g} / {result.max_score:g} points",
        ["test", "function", "code", "points", "reason"],
        rows,
        note=note,
        align=["left", "left", "right", "right", "left"],
    )
    print_tables([table], stdout_console())
    sys.stdout.flush()


command = with_common_options(grade)
command.__doc__ = HELP
