"""Where grid cells run: in this process, or in a pool of worker processes.

Every executor yields :class:`CellResult` objects as cells finish; the runner alone
writes the run folder's summary files. Results do not depend on the executor: each
cell's Generator comes from the run seed and the cell's canonical config, never from the
order of execution.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import importlib.util
import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from kernelnet import blas
from kernelnet.blas import DEFAULT_THREADS, blas_threads
from kernelnet.config import Cell
from kernelnet.dask_connect import (
    close_client,
    connect_client,
    parse_scheduler_address,
    read_scheduler_file,
)
from kernelnet.errors import ConfigError, Diverged, KernelnetError
from kernelnet.experiments.base import CellContext, CellResult, Experiment
from kernelnet.footprint import memory_limit
from kernelnet.runs import RunDir
from kernelnet.safe_read import inside, read_bytes
from kernelnet.seeding import cell_rng

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # prctl option: a signal for this process when its parent dies


class StepProgress(Protocol):
    def step(self, done: int, total: int, label: str) -> None: ...


@runtime_checkable
class Executor(Protocol):
    """Where cells run (Hydra's Launcher is the model): ``prepare`` checks, before any run
    folder exists, that the cells can run there; ``run`` yields one CellResult per cell as
    cells finish, in any order, each computed with ``threads`` BLAS threads; an executor
    never writes the run's summary files."""

    workers: int
    threads: int

    def prepare(self, experiment: Experiment, cells: list[Cell]) -> None: ...

    def run(
        self,
        experiment: Experiment,
        cells: list[Cell],
        run: RunDir,
        progress: StepProgress | None = None,
    ) -> Iterator[CellResult]: ...


def run_cell(
    experiment: Experiment,
    cell: Cell,
    run: RunDir,
    progress: StepProgress | None = None,
    threads: int = DEFAULT_THREADS,
) -> CellResult:
    """Run one cell with ``threads`` BLAS threads; any failure becomes a recorded result,
    never an exception."""
    logger = logging.getLogger(f"kernelnet.experiments.{experiment.name}")
    rng = cell_rng(cell.config.seed, cell.digest)
    context = CellContext(cell, run.cell_files(cell.id), rng, logger)
    if progress is not None:
        context = dataclasses.replace(context, progress=progress.step)
    try:
        with blas_threads(threads):
            output = experiment.run_cell(cell.config, context)
    except Diverged as exc:
        log.error("cell %s diverged: %s", cell.id, exc)
        return CellResult(cell, "diverged", [dict(exc.details)], error=str(exc))
    except KernelnetError as exc:
        log.error("cell %s failed: %s", cell.id, exc)
        fields = getattr(exc, "fields", {})
        return CellResult(cell, "failed", [dict(fields)], error=str(exc))
    except OSError as exc:
        if exc.filename and inside(Path(exc.filename), run.path):
            raise  # the run folder cannot be written: the runner says so, once, for the run
        log.error("cell %s crashed: %s: %s", cell.id, type(exc).__name__, exc, exc_info=True)
        return _crashed(cell, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a bug in one cell must not lose the rest of the grid
        log.error("cell %s crashed: %s: %s", cell.id, type(exc).__name__, exc, exc_info=True)
        return _crashed(cell, f"{type(exc).__name__}: {exc}")
    return CellResult(cell, "complete", output.rows, output.artifacts)


def _crashed(cell: Cell, why: str) -> CellResult:
    return CellResult(cell, "failed", [{}], error=why)


class SerialExecutor:
    """Cells one after another in this process (the default)."""

    workers = 1

    def __init__(self, threads: int = DEFAULT_THREADS):
        self.threads = threads

    def prepare(self, experiment: Experiment, cells: list[Cell]) -> None:
        return None  # the runner's preflight already ran in this process

    def run(
        self,
        experiment: Experiment,
        cells: list[Cell],
        run: RunDir,
        progress: StepProgress | None = None,
    ) -> Iterator[CellResult]:
        for cell in cells:
            yield run_cell(experiment, cell, run, progress, self.threads)


def _die_with_parent(parent: int) -> None:
    """Worker initializer. Workers are forked (a spawned worker spends half a second
    importing what the parent already has, longer than a grid of small cells takes), so
    they start with the parent's state, and undo what is the parent's alone: its signal
    handlers (Ctrl-C and SIGTERM are the parent's to handle; SIGTERM kills a worker, and
    the kernel sends it when the parent dies) and its log handlers (the terminal is the
    parent's; a worker logs to the run's log.txt)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    package_log = logging.getLogger("kernelnet")
    for handler in list(package_log.handlers):
        package_log.removeHandler(handler)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _worker_run_cells(
    experiment: Experiment, cells: list[Cell], run_path: str, threads: int
) -> list[CellResult]:
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
    run = RunDir(Path(run_path))
    return [run_cell(experiment, cell, run, threads=threads) for cell in cells]


@contextlib.contextmanager
def _blas_environment(threads: int) -> Iterator[None]:
    """BLAS thread counts in the environment workers start with (so a BLAS library a
    worker loads itself never starts more threads than a cell uses)."""
    saved = {name: os.environ.get(name) for name in blas.THREAD_VARIABLES}
    os.environ.update(blas.environment_for(threads))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: running cells are abandoned (their workers terminated), queued
    ones cancelled. Used when the run is interrupted."""
    for process in list(getattr(pool, "_processes", {}).values()):
        with contextlib.suppress(OSError):
            process.terminate()
    # Waiting is quick once the workers are gone, and leaves no pool thread for the
    # interpreter's exit to wake (Python 3.11's shutdown(wait=False) can then print a
    # "Bad file descriptor" traceback at exit: a race fixed in later versions).
    pool.shutdown(wait=True, cancel_futures=True)


class ProcessExecutor:
    """Cells in ``workers`` processes forked from this one (they start at once, with what
    this process has imported), in batches of cells (about four per worker), each cell with
    ``threads`` BLAS threads (the same count as every other executor, so results do not
    depend on where a cell ran). Workers die with their parent. A cell whose worker dies
    (killed, out of memory) is retried once, alone in a fresh worker, which also pins a
    crash on the cell that causes it; if that worker dies too, only that cell fails.
    Interrupted, the pool is stopped at once: finished batches are kept by the runner,
    running ones are abandoned."""

    def __init__(self, workers: int, threads: int = DEFAULT_THREADS):
        if workers < 1:
            raise ValueError(f"workers must be >= 1 (got {workers})")
        self.workers = workers
        self.threads = threads

    def prepare(self, experiment: Experiment, cells: list[Cell]) -> None:
        return None  # workers read the same files as this process

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        )

    def _submit(
        self, pool: ProcessPoolExecutor, experiment: Experiment, cells: list[Cell], run: RunDir
    ):
        return pool.submit(_worker_run_cells, experiment, cells, str(run.path), self.threads)

    def _batches(self, cells: list[Cell]) -> list[list[Cell]]:
        """Cells in about four batches per worker: one task per cell costs more to ship
        than a cell of milliseconds takes, and four per worker still balance the load."""
        size = max(1, len(cells) // (4 * self.workers))
        return [cells[i : i + size] for i in range(0, len(cells), size)]

    def run(
        self,
        experiment: Experiment,
        cells: list[Cell],
        run: RunDir,
        progress: StepProgress | None = None,
    ) -> Iterator[CellResult]:
        pending = {cell.index: cell for cell in cells}
        # Workers start when tasks are submitted and inherit the environment then.
        with _blas_environment(self.threads):
            pool = self._pool(self.workers)
            try:
                futures = [self._submit(pool, experiment, b, run) for b in self._batches(cells)]
                for future in as_completed(futures):
                    try:
                        results = future.result()
                    except BrokenProcessPool:
                        break  # a worker died: retry the cells still pending one by one
                    for result in results:
                        del pending[result.cell.index]
                        yield result
            except BaseException:  # interrupted (or the consumer stopped): stop at once
                _stop(pool)
                raise
            pool.shutdown(wait=True, cancel_futures=True)
            for cell in pending.values():
                log.warning("cell %s: its worker process died; retrying it once, alone", cell.id)
                yield self._isolated(experiment, cell, run)

    def _isolated(self, experiment: Experiment, cell: Cell, run: RunDir) -> CellResult:
        pool = self._pool(1)
        try:
            (result,) = self._submit(pool, experiment, [cell], run).result()
        except BrokenProcessPool:
            log.error("cell %s: its worker process died again; the cell fails", cell.id)
            pool.shutdown(wait=True, cancel_futures=True)
            return _crashed(cell, "worker process died while running this cell (twice)")
        except BaseException:
            _stop(pool)
            raise
        pool.shutdown(wait=True)
        return result


def make_executor(
    workers: int = 1,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    threads: int = DEFAULT_THREADS,
) -> Executor:
    """Dask when a scheduler is named (argument or DASK_SCHEDULER_ADDRESS), else a process
    pool for more than one worker, else serial."""
    if type(workers) is not int or workers < 1:  # bool is not a worker count
        raise ConfigError(f"workers must be a whole number of at least 1, not {workers!r}")
    for name, value in (("--scheduler", scheduler), ("--scheduler-file", scheduler_file)):
        if value is not None and not str(value).strip():
            raise ConfigError(f"{name} must not be empty (leave it out to run locally)")
    source = "--scheduler"
    if not scheduler and not scheduler_file and os.environ.get("DASK_SCHEDULER_ADDRESS"):
        scheduler, source = os.environ["DASK_SCHEDULER_ADDRESS"], "DASK_SCHEDULER_ADDRESS"
    if scheduler or scheduler_file:
        return DaskExecutor(scheduler, scheduler_file, threads=threads, source=source)
    if workers == 1:
        return SerialExecutor(threads)
    return ProcessExecutor(workers, threads)


def _files_under(folder: Path) -> dict[str, bytes]:
    """Every regular file under ``folder`` (a cell's scratch folder on a worker) by its path
    relative to it, each read through the one bounded reader: a FIFO, a device or a link
    out of the folder that a cell left there is refused (ReadRefused), not read, and so is
    a file over the worker's memory limit (``KERNELNET_MEMORY_LIMIT``)."""
    bound = memory_limit()
    files = {}
    for parent, _, names in os.walk(folder):  # links to folders are not followed
        for name in names:
            path = Path(parent) / name
            files[str(path.relative_to(folder))] = read_bytes(path, bound, folder)
    return files


def _dask_run_cell(
    experiment: Experiment, cell: Cell, threads: int
) -> tuple[CellResult, dict[str, bytes]]:
    """On a Dask worker: run the cell in a scratch folder and send its files back, so the
    client alone writes the real run folder. Data is loaded on the worker from its own
    data folder; no arrays travel in the task graph."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kernelnet-cell-") as scratch:
        result = run_cell(experiment, cell, RunDir(Path(scratch)), threads=threads)
        try:
            return result, _files_under(Path(scratch))
        except OSError as exc:
            log.error("cell %s: its files cannot be sent back: %s", cell.id, exc)
            return _crashed(cell, f"its files cannot be sent back from the worker: {exc}"), {}


def _worker_facts(experiment: Experiment, cells: list[Cell]) -> dict[str, str]:
    """On a Dask worker: its versions, and whether it can load the experiment's data."""
    import kernelnet

    facts = {"kernelnet": kernelnet.__version__, "numpy": np.__version__, "data": "ok"}
    try:
        experiment.preflight(cells)
    except KernelnetError as exc:
        facts["data"] = str(exc)
    return facts


# Connecting to a scheduler. Dask's own connect() retries the TCP connection within its
# timeout, but then waits for the peer's handshake without one and trusts the length
# prefix it reads: a port that accepts and stays silent hangs it forever, and an HTTP
# server's "HTTP/1.1" read as a length asks for 3 EiB. So an address is first probed here,
# under one hard deadline, by a few messages of Dask's own protocol with every length
# bounded; only an address that answers as a scheduler gets a Client.


class DaskExecutor:
    """Cells as tasks on an existing Dask distributed cluster (``pip install kernelnet[dask]``).

    Connects to ``address`` (tcp://host:port), a ``scheduler_file``, or an existing
    ``client``; a connection this executor made is closed when its check refuses the
    cluster, when a run ends, or by :meth:`close` (a ``client`` passed in is the caller's
    and left open). Before any cell is sent, every worker is asked for its kernelnet and
    numpy versions and to load the experiment's data: a mismatch or missing data is
    refused, naming the worker, since results must not depend on where a cell ran."""

    def __init__(
        self,
        address: str | None = None,
        scheduler_file: str | None = None,
        client=None,
        threads: int = DEFAULT_THREADS,
        source: str = "--scheduler",
    ):
        self.threads = threads
        self._owned = client is None
        if client is None:
            # Only looked for: importing distributed takes a second or two, which an
            # address that is refused at once need not wait for.
            if importlib.util.find_spec("distributed") is None:
                raise ConfigError(
                    "Dask execution needs the optional extra: pip install 'kernelnet[dask]'"
                )
            if address:
                where = address
            elif scheduler_file is None:
                raise ConfigError("name a Dask scheduler: --scheduler ADDRESS or --scheduler-file")
            else:
                address = read_scheduler_file(scheduler_file)
                source = f"--scheduler-file {scheduler_file}: its address"
                where = f"{address} (from {scheduler_file})"
            parsed = parse_scheduler_address(address, source)
            client = connect_client(parsed, where, source)
        self.client = client
        try:
            self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        except BaseException:
            self.close()
            raise
        if self._owned:
            atexit.register(self.close)  # before distributed's own exit handlers run

    def close(self) -> None:
        """Close the connection this executor made (idempotent; a client passed in stays)."""
        if not self._owned or self.client is None:
            return
        client, self.client = self.client, None
        atexit.unregister(self.close)
        close_client(client)

    def _connected(self):
        if self.client is None:
            raise ConfigError("this DaskExecutor's connection is closed; make a new one")
        return self.client

    def prepare(self, experiment: Experiment, cells: list[Cell]) -> None:
        """Every worker runs this kernelnet and numpy and can load the data (a refusal
        closes the connection: the run will not happen)."""
        try:
            self._check_workers(experiment, cells)
        except BaseException:
            self.close()
            raise

    def _check_workers(self, experiment: Experiment, cells: list[Cell]) -> None:
        import kernelnet

        mine = {"kernelnet": kernelnet.__version__, "numpy": np.__version__}
        try:
            facts = self._connected().run(_worker_facts, experiment, cells)
        except KernelnetError:
            raise
        except Exception as exc:  # e.g. a worker whose kernelnet lacks this code
            raise ConfigError(
                f"the Dask workers could not run kernelnet's check ({type(exc).__name__}: "
                f"{exc}); install this kernelnet on every worker and restart them"
            ) from None
        if not facts:
            raise ConfigError("the Dask cluster has no workers; start some with `dask worker`")
        for worker, theirs in facts.items():
            versions = {k: theirs[k] for k in mine}
            if versions != mine:
                raise ConfigError(
                    f"Dask worker {worker} runs {versions}, this process {mine}; "
                    "install the same kernelnet and numpy on every worker"
                )
            if theirs["data"] != "ok":
                raise ConfigError(
                    f"Dask worker {worker} cannot load the data: {theirs['data']} "
                    "(set KERNELNET_DATA on the workers, or install kernelnet's data there)"
                )

    def run(
        self,
        experiment: Experiment,
        cells: list[Cell],
        run: RunDir,
        progress: StepProgress | None = None,
    ) -> Iterator[CellResult]:
        """The cells' results as they finish; the connection this executor made is closed
        when the run ends, however it ends (an executor serves one run)."""
        from distributed import as_completed

        client = self._connected()
        futures = {
            client.submit(_dask_run_cell, experiment, cell, self.threads, pure=False): cell
            for cell in cells
        }
        try:
            for future in as_completed(list(futures), loop=client.loop):
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
        except BaseException:
            with contextlib.suppress(Exception):
                client.cancel(list(futures))
            raise
        finally:
            self.close()
