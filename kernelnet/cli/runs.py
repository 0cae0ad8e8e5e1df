"""``kernelnet runs list|show|compare|plot``: look at past runs."""

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


def _check_filters(experiment: str | None, status: str | None) -> None:
    """A filter value no run can have (a typo) is refused naming the valid ones, instead of
    listing nothing as if there were no such runs."""
    from kernelnet.errors import ConfigError
    from kernelnet.experiments.catalog import CATALOG
    from kernelnet.runs import STATUSES

    for flag, value, valid in (
        ("--status", status, STATUSES),
        ("--experiment", experiment, tuple(CATALOG)),
    ):
        if value is not None and value not in valid:
            raise ConfigError(f"{flag} {value!r}: not one of {', '.join(valid)}")


@runs_app.command("list")
def list_runs(
    runs_dir: RunsDir = Path("runs"),
    experiment: Annotated[
        Optional[str], typer.Option(help="Only this experiment (svm-primal, knn, ...).")
    ] = None,
    status: Annotated[
        Optional[str],
        typer.Option(
            help="Only runs with this status: running, complete, failed, interrupted or diverged."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List runs, oldest first. A run left `running` whose process is gone shows as
    interrupted.

    \b
    Examples:  kernelnet runs list --status complete
               kernelnet runs list --experiment svm-primal --json
    """
    from kernelnet.cli.render import print_tables, stdout_console
    from kernelnet.runs import iter_runs
    from kernelnet.tables import Table

    with user_errors(False):
        _check_filters(experiment, status)
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
    """Print a run's tables and summary, and list its plots.

    \b
    Examples:  kernelnet runs show latest
               kernelnet runs show 20261123-1015 --runs-dir runs
    """
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


@runs_app.command("plot")
def plot_run(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    metric: Annotated[
        Optional[str],
        typer.Option(
            "--metric",
            "-m",
            help="The metrics.csv column to draw (default: cv_mean if present, else the "
            "experiment's headline, e.g. test_accuracy).",
        ),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            "-o",
            help="Where to write the PNG (default: the run's plots/sweep_<metric>.png).",
        ),
    ] = None,
    runs_dir: RunsDir = Path("runs"),
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Draw a metric of a run against its swept values: a line (with error bars when the
    run has the metric's spread, e.g. cv_std) for one swept key, a heat map for two, a heat
    map per value of the others for more; log axes where the values are log-spaced; the best
    cell marked. Rows per epoch: each cell's last epoch. Prints the file written.

    \b
    Examples:  kernelnet runs plot latest
               kernelnet runs plot 20261123-101500-ab12 --metric train_accuracy --out c.png
    """
    from kernelnet.runs import resolve_run
    from kernelnet.sweep_plot import plot_run as draw_sweep

    with user_errors(debug):
        folder = resolve_run(run, runs_dir)
        written = draw_sweep(folder, metric, out)
    sys.stdout.write(f"{written}\n")


ONE_SIDED_SHOWN = 10  # cells named in a "only in" line before "... and N more"


def _row_labels(folder: Path) -> tuple[list[str], dict[str, str]]:
    """A run's metrics rows as :func:`kernelnet.compare.metric_differences` names them, in
    order, and each label's cell id."""
    from kernelnet.compare import labelled_rows

    rows = labelled_rows(folder)
    return list(rows), {label: row["cell"] for label, row in rows.items() if "cell" in row}


def _only_in(name: str, mine: list[str], cells: dict[str, str], theirs: set[str]) -> str:
    """``3 cell(s) only in RUN: C=1, C=2, C=3`` for the rows of ``mine`` missing from
    ``theirs``: a cell none of whose rows the other run has is named by its id, any other
    one-sided row by its label; "" when there are none."""
    missing = [label for label in mine if label not in theirs]
    if not missing:
        return ""
    shared_cells = {cells[label] for label in mine if label in theirs and label in cells}
    names = list(
        dict.fromkeys(
            cells[label] if label in cells and cells[label] not in shared_cells else label
            for label in missing
        )
    )
    whole = sum(1 for n in names if n not in missing)
    kind = "cell(s)" if whole == len(names) else "cell(s) or row(s)"
    # ids of a grid of several axes hold commas themselves (C=1,epochs=2)
    between = "; " if any("," in n for n in names) else ", "
    shown = between.join(names[:ONE_SIDED_SHOWN])
    hidden = len(names) - ONE_SIDED_SHOWN
    more = f"{between}... and {hidden} more" if hidden > 0 else ""
    return f"{len(names)} {kind} only in {name}: {shown}{more}"


@runs_app.command("compare")
def compare_runs(
    run_a: Annotated[str, typer.Argument(help="The first run: " + RUN_HELP)],
    run_b: Annotated[str, typer.Argument(help="The second run.")],
    runs_dir: RunsDir = Path("runs"),
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Show how two runs differ: resolved config values, then metrics cell by cell
    (rows matched by their cell and the experiment's row key, e.g. epoch; timing columns
    ignored). Rows found in one run only are summarized in one line per run. Exits 0 if
    the metrics are identical, 1 if not.

    \b
    Examples:  kernelnet runs compare 20261123-101500-ab12 latest
               kernelnet runs compare runs/svm-primal/20261123-1015 runs/svm-primal/20261124
    """
    from kernelnet.cli.render import print_tables, stdout_console
    from kernelnet.compare import config_differences, metric_differences
    from kernelnet.runs import resolve_run
    from kernelnet.tables import Table

    console = stdout_console()
    with user_errors(debug):
        a, b = resolve_run(run_a, runs_dir).path, resolve_run(run_b, runs_dir).path
        configs = config_differences(a, b)
        metrics = metric_differences(a, b)
        (labels_a, cells_a), (labels_b, cells_b) = _row_labels(a), _row_labels(b)
    # A row one run lacks differs in every column: one line per run says which cells they
    # are, and the table keeps the values of the rows both runs have.
    one_sided = set(labels_a).symmetric_difference(labels_b)
    shared = [d for d in metrics if d.row not in one_sided]
    summary = [
        line
        for line in (
            _only_in(a.name, labels_a, cells_a, set(labels_b)),
            _only_in(b.name, labels_b, cells_b, set(labels_a)),
        )
        if line
    ]
    nothing = "(none in the rows both runs have)" if summary else "(none: identical)"
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
                for d in shared
            ]
            or [[nothing, "", "", "", ""]],
            align=["left", "left", "right", "right", "right"],
        ),
    ]
    print_tables(tables, console)
    for line in summary:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
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
    whether the metrics match exactly (timing columns aside). Exits 1 if they do not.

    \b
    Examples:  kernelnet rerun latest
               kernelnet rerun 20261123-101500-ab12 --runs-dir runs --quiet
    """
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
