"""One command per experiment, plus ``run`` for any config file. Thin: parse, call, print."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from kernelnet.cli.options import CommonOptions, with_common_options
from kernelnet.experiments.catalog import CATALOG

FLAGGED = ("svm-primal", "kernel-table", "mnist")  # written out below, with their own flags


def reflow(text: str) -> str:
    """Join the lines of each paragraph (the terminal re-wraps them); keep example lines."""
    paragraphs = []
    for paragraph in text.strip().split("\n\n"):
        lines = [line.strip() for line in paragraph.splitlines()]
        if lines and lines[0].startswith("Example"):
            paragraphs.append("\n\n".join(lines))
        else:
            paragraphs.append(" ".join(lines))
    return "\n\n".join(paragraphs)


def describe(name: str) -> str:
    """A command's --help: its catalog line, then the details."""
    entry = CATALOG[name]
    return reflow(f"{entry.help}\n\n{entry.details}")


def launch(name: str, common: CommonOptions, flags: dict[str, tuple[str, str | None]]) -> None:
    from kernelnet.cli.launch import launch as run_experiment  # imported when a command runs

    run_experiment(name, common, flags)


def _plain(name: str):
    """The command of an experiment that has no flags of its own."""

    def command(common: CommonOptions) -> None:
        launch(name, common, {})

    command.__name__ = name.replace("-", "_")
    return with_common_options(command)


def register(app: typer.Typer) -> None:
    """Experiments with their own flags are written out; every other registered experiment
    gets a plain command, with its ``details`` as help."""

    @app.command(
        "svm-primal",
        help=describe("svm-primal"),
    )
    @with_common_options
    def svm_primal(
        common: CommonOptions,
        epochs: Annotated[
            Optional[str],
            typer.Option(help="Training lengths to sweep, comma-separated (e.g. 1,3,10,30,100)."),
        ] = None,
    ) -> None:
        launch("svm-primal", common, {"svm.epochs": ("--epochs", epochs)})

    @app.command(
        "kernel-table",
        help=describe("kernel-table"),
    )
    @with_common_options
    def kernel_table(
        common: CommonOptions,
        kernels: Annotated[
            Optional[str],
            typer.Option(help="Kernels to run, comma-separated (linear,poly,sigmoid,rbf)."),
        ] = None,
        datasets: Annotated[
            Optional[str],
            typer.Option(help="Datasets to run, comma-separated (moons,circles,linear,xor)."),
        ] = None,
    ) -> None:
        launch(
            "kernel-table",
            common,
            {"kernel.name": ("--kernels", kernels), "data.dataset": ("--datasets", datasets)},
        )

    @app.command(
        "mnist",
        help=describe("mnist"),
    )
    @with_common_options
    def mnist(
        common: CommonOptions,
        epochs: Annotated[Optional[str], typer.Option(help="Number of training epochs.")] = None,
    ) -> None:
        launch("mnist", common, {"train.epochs": ("--epochs", epochs)})

    for name, entry in CATALOG.items():
        if name not in FLAGGED and entry.command:
            app.command(name, help=describe(name))(_plain(name))

    @app.command(
        "run",
        help="""Run one or more config files; each file's `experiment:` key
picks the experiment. The common options apply to every file.

Example:  kernelnet run configs/kernel-table.yaml --set svm.C=10""",
    )
    @with_common_options
    def run(
        common: CommonOptions,
        configs: Annotated[
            Optional[list[Path]], typer.Argument(help="Config files to run, in order.")
        ] = None,
    ) -> None:
        from kernelnet.cli.launch import launch_files

        launch_files(list(configs or []), common)
