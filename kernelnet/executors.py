"""Where grid cells run: in this process, or in a pool of worker processes.

Every executor yields :class:`CellResult` objects as cells finish; the runner alone
writes the run folder's summary files. Results do not depend on the executor: each
cell's Generator comes from the run seed and the cell's canonical config, never from the
order of execution.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Protocol

import numpy as np

from kernelnet.config import Cell
from kernelnet.errors import ConfigError, Diverged, KernelnetError
from kernelnet.experiments.base import CellContext, CellResult, Experiment
from kernelnet.runs import RunDir
from kernelnet.seeding import cell_rng

log = logging.getLogger(__name__)

BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class StepProgress(Protocol):
    def step(self, done: int, total: int, label: str) -> None: ...


class Executor(Protocol):
    """Where cells run (Hydra's Launcher is the model): ``run`` yields one CellResult per
    cell as cells finish, in any order; it never writes the run's summary files."""

    workers: int

    def run(
        self,
        experiment: Experiment,
        cells: list[Cell],
        run: RunDir,
        progress: StepProgress | None = None,
    ) -> Iterator[CellResult]: ...


def run_cell(
    experiment: Experiment, cell: Cell, run: RunDir, progress: StepProgress | None = None
) -> CellResult:
    """Run one cell; any failure becomes a recorded result, never an exception."""
    logger = logging.getLogger(f"kernelnet.experiments.{experiment.name}")
    rng = cell_rng(cell.config.seed, cell.digest)
    context = CellContext(cell, run.cell_files(cell.id), rng, logger)
    if progress is not None:
        context = dataclasses.replace(context, progress=progress.step)
    try:
        output = experiment.run_cell(cell.config, context)
    except Diverged as exc:
        log.error("cell %s diverged: %s", cell.id, exc)
        return CellResult(cell, "diverged", [dict(exc.details)], error=str(exc))
    except KernelnetError as exc:
        log.error("cell %s failed: %s", cell.id, exc)
        fields = getattr(exc, "fields", {})
        return CellResult(cell, "failed", [dict(fields)], error=str(exc))
    except Exception as exc:  # a bug in one cell must not lose the rest of the grid
        log.error("cell %s crashed: %s: %s", cell.id, type(exc).__name__, exc, exc_info=True)
        return _crashed(cell, f"{type(exc).__name__}: {exc}")
    return CellResult(cell, "complete", output.rows, output.artifacts)


def _crashed(cell: Cell, why: str) -> CellResult:
    return CellResult(cell, "failed", [{}], error=why)


class SerialExecutor:
    """Cells one after another in this process (the default)."""

    workers = 1

    def run(
        self,
        experiment: Experiment,
        cells: list[Cell],
        run: RunDir,
        progress: StepProgress | None = None,
    ) -> Iterator[CellResult]:
        for cell in cells:
            yield run_cell(experiment, cell, run, progress)


def _worker_run_cell(experiment: Experiment, cell: Cell, run_path: str) -> CellResult:
    """In a worker process: log to the run's log.txt (appending) rather than stderr."""
    package_log = logging.getLogger("kernelnet")
    if not package_log.handlers:
        handler = logging.FileHandler(Path(run_path) / "log.txt", encoding="utf-8")
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s %(levelname)s [worker {os.getpid()}] %(name)s: %(message)s"
            )
        )
        package_log.addHandler(handler)
        package_log.setLevel(logging.INFO)
    return run_cell(experiment, cell, RunDir(Path(run_path)))


@contextlib.contextmanager
def _blas_threads(threads: int) -> Iterator[None]:
    """Set BLAS thread counts in the environment that spawned workers inherit."""
    saved = {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in BLAS_THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class ProcessExecutor:
    """Cells in ``workers`` fresh processes, each limited to cores // workers BLAS threads
    so the pool does not oversubscribe the machine. A worker that dies (killed, out of
    memory) fails only its own cell: after a crash the unfinished cells are retried one
    per fresh single-worker pool, which pins the crash on the cell that causes it."""

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError(f"workers must be >= 1 (got {workers})")
        self.workers = workers
        self.threads = max(1, (os.cpu_count() or 1) // workers)

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    def run(
        self,
        experiment: Experiment,
        cells: list[Cell],
        run: RunDir,
        progress: StepProgress | None = None,
    ) -> Iterator[CellResult]:
        pending = {cell.index: cell for cell in cells}
        # Workers are spawned when tasks are submitted and read the BLAS limits then, so
        # the limits stay in the environment for as long as pools are being used.
        with _blas_threads(self.threads):
            pool = self._pool(self.workers)
            try:
                futures = {
                    pool.submit(_worker_run_cell, experiment, cell, str(run.path)): cell
                    for cell in cells
                }
                for future in as_completed(futures):
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        break  # a worker died: isolate the cells still pending
                    del pending[futures[future].index]
                    yield result
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            for cell in pending.values():
                yield self._isolated(experiment, cell, run)

    def _isolated(self, experiment: Experiment, cell: Cell, run: RunDir) -> CellResult:
        pool = self._pool(1)
        try:
            return pool.submit(_worker_run_cell, experiment, cell, str(run.path)).result()
        except BrokenProcessPool:
            log.error("cell %s: its worker process died", cell.id)
            return _crashed(cell, "worker process died while running this cell")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def make_executor(
    workers: int = 1, scheduler: str | None = None, scheduler_file: str | None = None
):
    """Dask when a scheduler is named (argument or DASK_SCHEDULER_ADDRESS), else a process
    pool for more than one worker, else serial."""
    scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if scheduler or scheduler_file:
        return DaskExecutor(scheduler, scheduler_file)
    return SerialExecutor() if workers == 1 else ProcessExecutor(workers)


def _files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _dask_run_cell(experiment: Experiment, cell: Cell) -> tuple[CellResult, dict[str, bytes]]:
    """On a Dask worker: run the cell in a scratch folder and send its files back, so the
    client alone writes the real run folder. Data is loaded on the worker from its own
    data folder; no arrays travel in the task graph."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kernelnet-cell-") as scratch:
        result = run_cell(experiment, cell, RunDir(Path(scratch)))
        return result, _files_under(Path(scratch))


def _worker_versions() -> dict[str, str]:
    import kernelnet

    return {"kernelnet": kernelnet.__version__, "numpy": np.__version__}


class DaskExecutor:
    """Cells as tasks on an existing Dask distributed cluster (``pip install kernelnet[dask]``).

    Connects to ``address`` (tcp://host:port), a ``scheduler_file``, or an existing
    ``client``; refuses workers whose kernelnet or numpy versions differ from this
    process's, since results must not depend on where a cell ran."""

    def __init__(self, address: str | None = None, scheduler_file: str | None = None, client=None):
        try:
            from distributed import Client
        except ImportError:
            raise KernelnetError(
                "Dask execution needs the optional extra: pip install 'kernelnet[dask]'"
            ) from None
        try:
            self.client = client or Client(
                address=address, scheduler_file=scheduler_file, set_as_default=False, timeout="10s"
            )
        except (OSError, TimeoutError, ValueError) as exc:
            where = address or scheduler_file
            raise ConfigError(f"cannot connect to the Dask scheduler at {where}: {exc}") from None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        self._check_versions()

    def _check_versions(self) -> None:
        mine = _worker_versions()
        for worker, theirs in self.client.run(_worker_versions).items():
            if theirs != mine:
                raise ConfigError(
                    f"Dask worker {worker} runs {theirs}, this process {mine}; "
                    "install the same kernelnet and numpy on every worker"
                )

    def run(
        self,
        experiment: Experiment,
        cells: list[Cell],
        run: RunDir,
        progress: StepProgress | None = None,
    ) -> Iterator[CellResult]:
        from distributed import as_completed

        futures = {
            self.client.submit(_dask_run_cell, experiment, cell, pure=False): cell for cell in cells
        }
        for future in as_completed(futures):
            cell = futures[future]
            try:
                result, files = future.result()
            except Exception as exc:  # a worker lost mid-cell, or the task raised
                log.error("cell %s failed on the cluster: %s", cell.id, exc)
                yield _crashed(cell, f"Dask task failed: {type(exc).__name__}: {exc}")
                continue
            for relative, content in files.items():
                run.write_with(relative, lambda handle, data=content: handle.write(data))
            yield result
