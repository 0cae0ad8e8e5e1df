"""The ``kernelnet`` command-line interface (Typer)."""

from typing import Annotated, Optional

import typer

import kernelnet
from kernelnet.cli import experiments, grade, reproduce
from kernelnet.cli.data import data_app
from kernelnet.cli.handout import handout
from kernelnet.cli.init import init
from kernelnet.cli.runs import rerun, runs_app

app = typer.Typer(
    rich_markup_mode=None,
    name="kernelnet",
    help="Classic machine-learning experiments from first principles: SVMs (primal and "
    "dual), kernels, neural networks. Every run writes a folder with its resolved config, "
    "metrics tables, parameters and plots; the last line printed is that folder.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kernelnet {kernelnet.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        Optional[bool],
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = None,
) -> None:
    """kernelnet command-line interface."""


experiments.register(app)
reproduce.register(app)
app.add_typer(runs_app, name="runs")
app.add_typer(data_app, name="data")
app.command("rerun")(rerun)
app.command("init")(init)
app.command("handout")(handout)
app.command("grade", help=experiments.reflow(grade.HELP))(grade.command)


def main() -> None:
    import sys

    from kernelnet.cli.guard import run_app

    sys.exit(run_app(app))
