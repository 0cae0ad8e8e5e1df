"""One command per experiment, plus ``run`` for any config file. Thin: parse, call, print."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from kernelnet.cli.launch import launch, launch_files
from kernelnet.cli.options import CommonOptions, with_common_options
from kernelnet.experiments import REGISTRY

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
        help=reflow(
            REGISTRY["svm-primal"].help
            + """

The objective is E(w,b) = 1/2 ||w||^2 + C sum_i max(0, 1 - y_i (w.x_i + b)); training
starts at w = 0, b = 0 and every sweep point trains from zero, so results are exactly
reproducible. Defaults: configs/svm-primal.yaml (iris_binary, C = 5, learning rate 1e-3).

Examples:  kernelnet svm-primal --epochs 100
           kernelnet svm-primal --set svm.C=0.5,5,50 --epochs 30"""
        ),
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
        help=reflow(
            REGISTRY["kernel-table"].help
            + """

Solves max sum(a) - 1/2 a'(yy' * K)a subject to 0 <= a <= C, y'a = 0 with cvxopt for every
dataset x kernel cell and prints test accuracy as a table; plots show decision functions,
margins and support vectors. A Gram matrix that is not positive semidefinite (sigmoid) is
flagged in the results. Defaults: configs/kernel-table.yaml.

Examples:  kernelnet kernel-table
           kernelnet kernel-table --kernels rbf --set kernel.gamma=0.05,0.2,1"""
        ),
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
        help=reflow(
            REGISTRY["mnist"].help
            + """

The default config (configs/mnist.yaml) is the classic course setup: the first 55,000
training images for training, the last 5,000 for validation, the 10,000 test images for
test; raw pixels 0..255; one hidden layer of 100 ReLU units; plain SGD with learning rate
1e-3 decayed by 0.95 per epoch; batch 100; 5 epochs. configs/mnist-deep.yaml shows batch
norm, dropout, Adam and early stopping.

Examples:  kernelnet mnist

           kernelnet mnist --epochs 10 --set train.optimizer=adam"""
        ),
    )
    @with_common_options
    def mnist(
        common: CommonOptions,
        epochs: Annotated[Optional[str], typer.Option(help="Number of training epochs.")] = None,
    ) -> None:
        launch("mnist", common, {"train.epochs": ("--epochs", epochs)})

    for name, experiment in REGISTRY.items():
        if name not in FLAGGED:
            app.command(name, help=reflow(f"{experiment.help}\n\n{experiment.details}"))(
                _plain(name)
            )

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
        launch_files(list(configs or []), common)
