"""A test-only experiment whose cells succeed, fail, or kill their own process."""

import os
import signal
from dataclasses import dataclass, field

from kernelnet import blas
from kernelnet.config import param
from kernelnet.errors import CellFailed
from kernelnet.experiments.base import CellOutput, Experiment, ExperimentConfig, Report


@dataclass
class Behaviour:
    mode: str = param(
        default_factory=lambda: ["ok", "die", "fail", "ok2"],
        choices=("ok", "die", "fail", "ok2"),
        label="mode",
    )


@dataclass
class CrashingConfig(ExperimentConfig):
    cell: Behaviour = field(default_factory=Behaviour)


def run_cell(config, ctx):
    if config.cell.mode == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    if config.cell.mode == "fail":
        raise CellFailed("asked to fail", fields={"why": "asked"})
    row = {
        "mode": config.cell.mode,
        "draw": float(ctx.rng.random()),
        "blas_threads": blas.current_threads(),  # what the BLAS library really uses
    }
    return CellOutput([row])


def report(ctx):
    return Report([], {"completed": len(ctx.completed)})


EXPERIMENT = Experiment("crashing", CrashingConfig, run_cell, report)
