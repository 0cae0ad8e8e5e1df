"""``kernelnet runs list|show|compare``: look at past runs."""

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from kernelnet.cli.launch import user_errors
from kernelnet.cli.render import diagnostics, print_tables, stderr_console, stdout_console
from kernelnet.compare import config_differences, metric_differences
from kernelnet.config import read_config_file
from kernelnet.experiments import get_experiment
from kernelnet.runner import execute, resolve_experiment_config
from kernelnet.runs import RunDir, RunFolderError, RunInfo, iter_runs
from kernelnet.tables import Table

runs_app = typer.Typer(help="List and inspect run folders.", no_args_is_help=True)

RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Where run folders are.")]


HEADLINES = ("test_accuracy", "mean_test_accuracy", "best_test_accuracy", "passed")


def _headline(info: RunInfo) -> str:
    """The run's headline number from summary.json, if it has one of the usual keys."""
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
    return "—" if seconds is None else f"{seconds:.1f}"


@runs_app.command("list")
def list_runs(
    runs_dir: RunsDir = Path("runs"),
    experiment: Annotated[Optional[str], typer.Option(help="Only this experiment.")] = None,
    status: Annotated[Optional[str], typer.Option(help="Only runs with this status.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List runs, oldest first. A run left `running` whose process is gone shows as
    interrupted."""
    found = [
        r
        for r in iter_runs(runs_dir)
        if (experiment is None or r.manifest.get("experiment") == experiment)
        and (status is None or r.status == status)
    ]
    if as_json:
        sys.stdout.write(
            json.dumps(
                [
                    {
                        "path": str(r.path),
                        "experiment": r.manifest.get("experiment"),
                        "status": r.status,
                        "started": r.manifest.get("started"),
                        "seconds": r.manifest.get("seconds"),
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
            r.manifest.get("started", "?"),
            r.manifest.get("experiment", "?"),
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
    run: Annotated[Path, typer.Argument(help="A run folder (or runs/latest).")],
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Print a run's tables and summary, and list its plots."""
    with user_errors(debug):
        folder = RunDir.open(run)
    console = stdout_console()
    console.print(
        f"[bold]{escape(str(folder.manifest.get('experiment')))}[/] "
        f"{escape(run.resolve().name)}: {RunInfo(run, folder.manifest).status}"
    )
    if folder.file("metrics.md").is_file():
        console.print(folder.file("metrics.md").read_text(errors="replace"), markup=False)
    if folder.file("summary.json").is_file():
        console.print(
            "summary.json:", folder.file("summary.json").read_text(errors="replace"), markup=False
        )
    plots = folder.file("plots")
    for plot in sorted(plots.rglob("*.png")) if plots.is_dir() else []:
        console.print(f"plot: {plot}", markup=False)


@runs_app.command("compare")
def compare_runs(
    run_a: Annotated[Path, typer.Argument(help="First run folder.")],
    run_b: Annotated[Path, typer.Argument(help="Second run folder.")],
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Show how two runs differ: resolved config values, then metrics cell by cell
    (rows matched by their cell and the experiment's row key, e.g. epoch; timing columns
    ignored). Exits 0 if the metrics are identical, 1 if not."""
    a, b = run_a, run_b
    console = stdout_console()
    with user_errors(debug):
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
    run: Annotated[Path, typer.Argument(help="The run folder to re-execute.")],
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the new folder.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Re-execute a run from its saved config.yaml into a new run folder beside it, and say
    whether the metrics match exactly (timing columns aside). Exits 1 if they do not."""
    with user_errors(debug):
        saved = RunDir.open(run.resolve())
        saved.read_metrics()  # refuse before running anything if there is nothing to compare
        folder = saved.path
        experiment = get_experiment(saved.manifest.get("experiment"), str(folder / "run.json"))
        resolved = resolve_experiment_config(experiment, read_config_file(folder / "config.yaml"))
        with diagnostics(quiet, debug):
            outcome = execute(experiment, resolved, folder.parent.parent)
        differences = metric_differences(folder, outcome.run.path)
    console = stderr_console()
    if differences:
        console.print(f"[bold red]{len(differences)} metric value(s) differ[/] from {folder}")
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
