"""``kernelnet reproduce``: every shipped config, one report."""

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from kernelnet.cli.guard import user_errors
from kernelnet.errors import ConfigError
from kernelnet.shipped import shipped


def register(app: typer.Typer) -> None:
    @app.command("reproduce")
    def reproduce_command(
        configs: Annotated[
            Optional[Path],
            typer.Option(
                "--configs", help="Folder of configs to run (default: the shipped configs/)."
            ),
        ] = None,
        runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run folders go.")] = Path(
            "runs"
        ),
        quiet: Annotated[
            bool, typer.Option("--quiet", "-q", help="Print only the report folder.")
        ] = False,
        debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    ) -> None:
        """Run every config in configs/ and write REPORT.md (what `make reproduce` runs).

        Each experiment gets its own run folder; the report folder
        (<runs-dir>/reproduce/<time>-<id>/) links them. Exits 1 if any experiment failed.

        \b
        Examples:  kernelnet reproduce
                   kernelnet reproduce --runs-dir /tmp/kernelnet-runs --quiet
        """
        from rich.text import Text

        from kernelnet.cli.render import diagnostics, print_tables, stderr_console, stdout_console
        from kernelnet.reproduce import reproduce

        folder = configs or shipped("configs")
        with user_errors(debug):
            paths = sorted(folder.glob("*.yaml"))
            if not paths:
                raise ConfigError(f"no *.yaml configs found in {folder}")
            console = stderr_console()

            def announce(run) -> None:
                if not quiet:
                    colour = "green" if run.status == "complete" else "red"
                    console.print(
                        Text.assemble(
                            (f"{run.status:>9}", colour),
                            f" {run.config.name} ({run.seconds:.1f} s) {run.run_path or run.error}",
                        ),
                        highlight=False,
                    )

            with diagnostics(quiet, debug):
                report, results, table = reproduce(paths, runs_dir, on_run=announce)
        if not quiet:
            print_tables([table], stdout_console())
        sys.stdout.write(f"{report.path}\n")
        if any(r.status != "complete" for r in results):
            raise typer.Exit(1)
