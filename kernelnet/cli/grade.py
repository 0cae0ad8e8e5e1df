"""``kernelnet grade ASSIGNMENT SUBMISSION``: run an assignment's tests on a submission in
the sandbox and answer with the assignment's codes (kernelnet/grading/grader.py does the
work)."""

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from kernelnet.cli.guard import user_errors


def grade(
    assignment: Annotated[
        str, typer.Argument(help="A shipped assignment (hw3, labs), or the path of a spec .yaml.")
    ],
    submission: Annotated[
        Path, typer.Argument(help="The submission: a folder of .py files, or a .zip of them.")
    ] = Path("."),
    all_tests: Annotated[
        bool, typer.Option("--all", help="Run the hidden tests too (instructors).")
    ] = False,
    json_path: Annotated[
        Optional[Path],
        typer.Option("--json", help="Also write Gradescope's results.json here."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Grade SUBMISSION against ASSIGNMENT's tests, each in a sandboxed child process, and
    print every test's code, points and reason. Exit 0 when all pass, 1 when a test failed,
    2 for a usage or spec error. Students check their work (visible tests, with hints):

    kernelnet grade hw3 .

    Instructors grade everything and write Gradescope's results.json:

    kernelnet grade hw3 submissions/alice.zip --all --json results.json
    """
    with user_errors(debug):
        from kernelnet.grading.grader import grade as run_grade
        from kernelnet.grading.grader import gradescope_results, submission_folder
        from kernelnet.grading.spec import load_assignment

        spec = load_assignment(assignment)
        with submission_folder(submission) as folder:
            result = run_grade(spec, folder, include_hidden=all_tests, progress=_progress())
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
        rows.append([r.name, r.function, str(r.code), f"{r.score:g}/{r.max_score:g}", reason])
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
