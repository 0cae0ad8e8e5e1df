"""``kernelnet runs list|show``: look at past runs."""

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from kernelnet.cli.render import print_tables, stdout_console
from kernelnet.runs import RunInfo, iter_runs
from kernelnet.tables import Table

runs_app = typer.Typer(help="List and inspect run folders.", no_args_is_help=True)

RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Where run folders are.")]


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
            _duration(r),
            str(r.path),
        ]
        for r in found
    ]
    print_tables(
        [
            Table(
                f"Runs in {runs_dir}",
                ["started (UTC)", "experiment", "status", "seconds", "folder"],
                rows,
                align=["left", "left", "left", "right", "left"],
            )
        ],
        stdout_console(),
    )


@runs_app.command("show")
def show_run(run: Annotated[Path, typer.Argument(help="A run folder (or runs/latest).")]) -> None:
    """Print a run's tables and summary, and list its plots."""
    if not (run / "run.json").is_file():
        sys.stderr.write(f"error: {run} is not a run folder (no run.json)\n")
        raise typer.Exit(2)
    console = stdout_console()
    manifest = json.loads((run / "run.json").read_text())
    console.print(
        f"[bold]{manifest.get('experiment')}[/] {run.resolve().name}: "
        f"{RunInfo(run, manifest).status}"
    )
    if (run / "metrics.md").is_file():
        console.print((run / "metrics.md").read_text(), markup=False)
    for plot in sorted((run / "plots").glob("*.png")) if (run / "plots").is_dir() else []:
        console.print(f"plot: {plot}", markup=False)
