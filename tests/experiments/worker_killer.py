"""A test-only experiment for the executors: cells that log, fail, or wait in their worker
process until a test kills it with SIGKILL.

What a cell does beyond drawing a number comes from the environment, not the config, so
that a run with a killed worker has the same cells (ids, digests, Generators) as the
serial run it is compared with:
- ``WORKER_KILLER_DIR``: a folder; without it no cell waits for anything.
- ``WORKER_KILLER_VICTIM=N``: the cell ``n=N`` writes its process id to
  ``attempt-1.pid`` there and waits to be killed; the retry of it runs normally, or with
  ``WORKER_KILLER_AGAIN=1`` writes ``attempt-2.pid`` and waits to be killed again.
  Every cell after it (``n > N``) waits for the file ``killed-1``, which the test writes
  once it has killed the first worker: those cells all run after the kill.
The config's ``cell.chatty`` makes every cell log an INFO line and a warning through its
context's logger (naming the cell) and a warning through a package logger (naming none);
``cell.fail=N`` makes the cell ``n=N`` fail.
"""

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from kernelnet.config import param
from kernelnet.errors import CellFailed
from kernelnet.experiments.base import CellOutput, Experiment, ExperimentConfig, Report

log = logging.getLogger("kernelnet.tests.worker_killer")

WAIT_SECONDS = 60  # a test that never kills (a defect) fails the cell instead of hanging


@dataclass
class Behaviour:
    n: int = param(default_factory=lambda: list(range(8)), ge=0, label="n")
    chatty: bool = param(False, sweepable=False)
    fail: int = param(-1, sweepable=False)


@dataclass
class WorkerKillerConfig(ExperimentConfig):
    cell: Behaviour = field(default_factory=Behaviour)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _wait_for(path: Path, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not path.exists():
        if time.monotonic() > deadline:
            raise CellFailed(f"{what} within {WAIT_SECONDS} s")
        time.sleep(0.01)


def _be_killed(folder: Path, attempt: int) -> None:
    _write_atomically(folder / f"attempt-{attempt}.pid", str(os.getpid()))
    time.sleep(WAIT_SECONDS)
    raise CellFailed(f"nobody killed this worker within {WAIT_SECONDS} s")


def run_cell(config, ctx):
    n = config.cell.n
    if config.cell.chatty:
        ctx.log.info("%s: an info line from the cell", ctx.cell.id)
        ctx.log.warning("%s: a warning from the cell", ctx.cell.id)
        log.warning("a warning that names no cell, #%d", n)
    if n == config.cell.fail:
        raise CellFailed("asked to fail")
    folder = os.environ.get("WORKER_KILLER_DIR")
    victim = int(os.environ.get("WORKER_KILLER_VICTIM", "-1"))
    if folder and n == victim:
        attempt = 2 if (Path(folder) / "attempt-1.pid").exists() else 1
        if attempt == 1 or os.environ.get("WORKER_KILLER_AGAIN") == "1":
            _be_killed(Path(folder), attempt)
    elif folder and n > victim >= 0:
        _wait_for(Path(folder) / "killed-1", "the victim's worker was not killed")
    row = {"n": n, "draw": float(ctx.rng.random()), "pid": os.getpid()}
    return CellOutput([row])


def report(ctx):
    return Report([], {"completed": len(ctx.completed)})


EXPERIMENT = Experiment("worker-killer", WorkerKillerConfig, run_cell, report)
