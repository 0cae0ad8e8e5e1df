"""``kernelnet runs list|show|compare``: look at past runs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from kernelnet.cli.guard import user_errors

if TYPE_CHECKING:
    from kernelnet.runs import RunInfo

# Each command imports what it uses when it runs: listing or completing commands stays cheap.

runs_app = typer.Typer(help="List and inspect run folders.", no_args_is_help=True)

RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Where run folders are.")]
RUN_HELP = "a run folder, `latest`, a run id (20261123-101500-ab12) or a unique prefix of one."


HEADLINES = ("test_accuracy", "mean_test_accuracy", "best_test_accuracy", "passed")


def _headline(info: RunInfo) -> str:
    """The run's headline number from summary.json, if it has one of the usual keys."""
    from kernelnet.runs import RunDir, RunFolderError

    try:
        summary = RunDir(info.path).read_summary()
    except RunFolderError:
        return "—"
    for key in HEADLINES:
        value = summary.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"{key} {value:.4g}"
    return "—"


def _duration(info: RunInfo) -> str:
    seconds = info.manifest.get("seconds")
    ok = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
    return f"{seconds:.1f}" if ok else "—"


def _text(value: object) -> str:
    return value if isinstance(value, str) else "?"


def _warn(message: str) -> None:
    from kernelnet.cli.render import stderr_console

    stderr_console().print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)


@runs_app.command("list")
def list_runs(
    runs_dir: RunsDir = Path("runs"),
    experiment: Annotated[Optional[str], typer.Option(help="Only this experiment.")] = None,
    status: Annotated[Optional[str], typer.Option(help="Only runs with this status.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List runs, oldest first. A run left `running` whose process is gone shows as
    interrupted."""
    from kernelnet.cli.render import print_tables, stdout_console
    from kernelnet.runs import iter_runs
    from kernelnet.tables import Table

    found = [
        r
        for r in iter_runs(runs_dir, warn=_warn)
        if (experiment is None or r.manifest.get("experiment") == experiment)
        and (status is None or r.status == status)
    ]
    if as_json:
        sys.stdout.write(
            json.dumps(
                [
                    {
                        "path": str(r.path),
                        "experiment": _text(r.manifest.get("experiment")),
                        "status": r.status,
                        "started": _text(r.manifest.get("started")),
                        "seconds": r.manifest.get("seconds") if _duration(r) != "—" else None,
                        "headline": _headline(r),
                    }
                    for r in found
                ],
                indent=2,
            )
            + "\n"
        )
        return
    rows = [
        [
            _text(r.manifest.get("started")),
            _text(r.manifest.get("experiment")),
            r.status,
            _headline(r),
            _duration(r),
            str(r.path),
        ]
        for r in found
    ]
    print_tables(
        [
            Table(
                f"Runs in {runs_dir}",
                ["started (UTC)", "experiment", "status", "headline", "seconds", "folder"],
                rows,
                align=["left", "left", "left", "left", "right", "left"],
            )
        ],
        stdout_console(),
    )


@runs_app.command("show")
def show_run(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    runs_dir: RunsDir = Path("runs"),
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Print a run's tables and summary, and list its plots."""
    from rich.markup import escape

    from kernelnet.cli.render import stdout_console
    from kernelnet.runs import RunFolderError, RunInfo, resolve_run

    with user_errors(debug):
        folder = resolve_run(run, runs_dir)
    console = stdout_console()
    console.print(
        f"[bold]{escape(_text(folder.manifest.get('experiment')))}[/] "
        f"{escape(folder.path.resolve().name)}: "
        f"{escape(str(RunInfo(folder.path, folder.manifest).status))}"
    )
    readers = {
        "metrics.md": lambda: folder.read_text_file("metrics.md"),
        "summary.json": lambda: "summary.json: " + json.dumps(folder.read_summary(), indent=2),
    }
    for name, read in readers.items():
        if os.path.lexists(folder.file(name)):
            try:
                console.print(read(), markup=False)
            except RunFolderError as exc:
                _warn(f"skipped {exc}")
    plots = folder.file("plots")
    if plots.is_dir() and not plots.is_symlink():
        for directory, _, names in os.walk(plots, followlinks=False):
            for name in sorted(names):
                if name.endswith(".png"):
                    console.print(f"plot: {Path(directory) / name}", markup=False)


@runs_app.command("compare")
def compare_runs(
    run_a: Annotated[str, typer.Argument(help="The first run: " + RUN_HELP)],
    run_b: Annotated[str, typer.Argument(help="The second run.")],
    runs_dir: RunsDir = Path("runs"),
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Show how two runs differ: resolved config values, then metrics cell by cell
    (rows matched by their cell and the experiment's row key, e.g. epoch; timing columns
    ignored). Exits 0 if the metrics are identical, 1 if not."""
    from kernelnet.cli.render import print_tables, stdout_console
    from kernelnet.compare import config_differences, metric_differences
    from kernelnet.runs import resolve_run
    from kernelnet.tables import Table

    console = stdout_console()
    with user_errors(debug):
        a, b = resolve_run(run_a, runs_dir).path, resolve_run(run_b, runs_dir).path
        configs = config_differences(a, b)
        metrics = metric_differences(a, b)
    tables = [
        Table(
            "Config differences",
            ["key", str(a.name), str(b.name)],
            [[k, repr(x), repr(y)] for k, x, y in configs] or [["(none)", "", ""]],
            align=["left", "left", "left"],
        ),
        Table(
            "Metric differences",
            ["row", "column", str(a.name), str(b.name), "b − a"],
            [
                [d.row, d.column, d.a, d.b, "" if d.delta is None else f"{d.delta:+.6g}"]
                for d in metrics
            ]
            or [["(none: identical)", "", "", "", ""]],
            align=["left", "left", "right", "right", "right"],
        ),
    ]
    print_tables(tables, console)
    if metrics:
        raise typer.Exit(1)


def rerun(
    run: Annotated[str, typer.Argument(help="The run to re-execute: " + RUN_HELP)],
    runs_dir: RunsDir = Path("runs"),
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the new folder.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Re-execute a run from its saved config.yaml into a new run folder beside it, and say
    whether the metrics match exactly (timing columns aside). Exits 1 if they do not."""
    from rich.markup import escape

    from kernelnet.cli.render import diagnostics, print_tables, stderr_console, stdout_console
    from kernelnet.compare import metric_differences
    from kernelnet.config import read_config_file
    from kernelnet.experiments import get_experiment
    from kernelnet.runner import execute, resolve_experiment_config
    from kernelnet.runs import RunFolderError, resolve_run
    from kernelnet.tables import Table

    with user_errors(debug):
        saved = resolve_run(run, runs_dir)
        saved.read_metrics()  # refuse before running anything if there is nothing to compare
        saved.read_config()
        folder = saved.path.resolve()
        experiment = get_experiment(saved.manifest.get("experiment"), str(folder / "run.json"))
        if folder.parent.name != experiment.name:
            raise RunFolderError(f"{folder}: not in a <runs-dir>/{experiment.name}/ folder")
        resolved = resolve_experiment_config(experiment, read_config_file(folder / "config.yaml"))
        with diagnostics(quiet, debug):
            outcome = execute(experiment, resolved, folder.parent.parent)
        differences = metric_differences(folder, outcome.run.path)
    console = stderr_console()
    if differences:
        console.print(
            f"[bold red]{len(differences)} metric value(s) differ[/] from {escape(str(folder))}"
        )
        print_tables(
            [
                Table(
                    "Metric differences",
                    ["row", "column", "before", "now"],
                    [[d.row, d.column, d.a, d.b] for d in differences[:50]],
                )
            ],
            stdout_console(),
        )
    elif not quiet:
        console.print(f"[green]metrics match exactly[/] ({folder.name} → {outcome.run.path.name})")
    sys.stdout.write(f"{outcome.run.path}\n")
    if differences:
        raise typer.Exit(1)
