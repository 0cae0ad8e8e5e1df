"""Where grid cells run: in this process, in worker processes, or on a Dask cluster.

Every executor yields :class:`CellResult` objects as cells finish; the runner alone
writes the run folder's summary files and its log. Results do not depend on the executor:
each cell's Generator comes from the run seed and the cell's canonical config, never from
the order of execution. Neither does the log: a cell that runs in another process records
what it logs (:func:`run_cell` with ``capture_log``) and its result carries the records
back, for the runner to emit (:func:`emit_cell_log`) as if the cell had run in its process.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import ctypes
import dataclasses
import importlib.util
import logging
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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
    cells finish, in any order, each computed with ``threads`` BLAS threads, and a cell
    that ran outside this process with what it logged in ``log_records`` (the runner logs
    them); an executor never writes the run's summary files nor its log."""

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
    capture_log: bool = False,
) -> CellResult:
    """Run one cell with ``threads`` BLAS threads; any failure becomes a recorded result,
    never an exception. With ``capture_log`` (away from the run's process) what the cell
    logs is kept in the result's ``log_records`` instead of being lost there."""
    if not capture_log:
        return _run_cell(experiment, cell, run, progress, threads)
    with captured_log() as records:
        result = _run_cell(experiment, cell, run, progress, threads)
    return dataclasses.replace(result, log_records=records)


def _run_cell(
    experiment: Experiment,
    cell: Cell,
    run: RunDir,
    progress: StepProgress | None,
    threads: int,
) -> CellResult:
    token = _CELL_ID.set(cell.id)
    try:
        with _CELL_NAMES:
            return _run_named_cell(experiment, cell, run, progress, threads)
    finally:
        _CELL_ID.reset(token)


def _run_named_cell(
    experiment: Experiment,
    cell: Cell,
    run: RunDir,
    progress: StepProgress | None,
    threads: int,
) -> CellResult:
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


# A cell's log records, away from the run's process. While a cell runs with capture_log, a
# handler on the package logger keeps the records its context logs (a context variable,
# as the runner's RunLog does, so cells in the threads of one Dask worker keep theirs
# apart) as plain fields: a record's args and traceback need not pickle, its text does.
# The package logger lets INFO through meanwhile (the run's log.txt has INFO lines when a
# cell runs in the run's process); a forked worker already has that level from its
# parent, a Dask worker process is lowered while any cell captures.
_CAPTURING: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "kernelnet_cell_records", default=None
)
RECORD_FIELDS = (
    "name", "levelno", "levelname", "pathname", "filename", "module", "lineno", "funcName",
    "created", "msecs", "relativeCreated", "thread", "threadName", "process", "processName",
)  # fmt: skip


class _CellRecords(logging.Handler):
    def __init__(self, records: list[dict[str, Any]]):
        super().__init__()
        self.records = records

    def filter(self, record: logging.LogRecord) -> bool:
        return _CAPTURING.get() is self.records  # read in the thread that logs the record

    def emit(self, record: logging.LogRecord) -> None:
        _CELL_NAMES.filter(record)  # named here too: a handler added while others ran
        fields = {name: getattr(record, name, None) for name in RECORD_FIELDS}
        fields["msg"] = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        fields["exc_text"] = record.exc_text
        fields["stack_info"] = record.stack_info
        self.records.append(fields)


# Which cell this context is running, so that what it logs names the cell wherever it runs:
# a record whose text does not hold the cell's id is led by ``cell <id>: `` (a solver's
# "cvxopt failed" says which cell), the same serially, in a worker and on Dask.
_CELL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "kernelnet_cell_id", default=None
)


class _CellNames(logging.Filter):
    """On the package logger's handlers while any cell of this process runs (a count, as
    cells in threads begin and end in any order): names the running cell in each record its
    context logs. Records of other threads (no cell) pass unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._count = 0
        self._handlers: list[logging.Handler] = []

    def filter(self, record: logging.LogRecord) -> bool:
        cell_id = _CELL_ID.get()
        if cell_id is not None and record.name.startswith("kernelnet"):
            text = record.getMessage()
            if cell_id not in text:
                record.msg, record.args = f"cell {cell_id}: {text}", None
        return True

    def __enter__(self) -> None:
        with self._lock:
            if self._count == 0:
                self._handlers = list(logging.getLogger("kernelnet").handlers)
                for handler in self._handlers:
                    handler.addFilter(self)
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._count -= 1
            if self._count == 0:
                for handler in self._handlers:
                    handler.removeFilter(self)
                self._handlers = []


_CELL_NAMES = _CellNames()


class _InfoWhileCapturing:
    """The package logger at INFO (at least) while any cell of this process captures, then
    its own level again: a count, since cells in threads begin and end in any order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._saved = logging.NOTSET

    def __enter__(self) -> None:
        package_log = logging.getLogger("kernelnet")
        with self._lock:
            if self._count == 0:
                self._saved = package_log.level
                if package_log.getEffectiveLevel() > logging.INFO:
                    package_log.setLevel(logging.INFO)
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._count -= 1
            if self._count == 0:
                logging.getLogger("kernelnet").setLevel(self._saved)


_INFO_WHILE_CAPTURING = _InfoWhileCapturing()


@contextlib.contextmanager
def captured_log() -> Iterator[list[dict[str, Any]]]:
    """The records this context logs through the ``kernelnet`` loggers while it lasts,
    each as the plain fields :func:`emit_cell_log` makes a record of again."""
    records: list[dict[str, Any]] = []
    handler = _CellRecords(records)
    package_log = logging.getLogger("kernelnet")
    token = _CAPTURING.set(records)
    package_log.addHandler(handler)
    try:
        with _INFO_WHILE_CAPTURING:
            yield records
    finally:
        package_log.removeHandler(handler)
        _CAPTURING.reset(token)


def emit_cell_log(result: CellResult) -> None:
    """In the run's process: log again what the cell logged elsewhere, through the logger
    that logged it (so the run's handlers, its log.txt and the terminal, see it as they see
    a cell run here), each record once (its text already names the cell: _CellNames)."""
    for fields in result.log_records:
        text = str(fields.get("msg", ""))
        record = logging.makeLogRecord({**fields, "msg": text, "args": None, "exc_info": None})
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


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
    """In a new worker. Workers are forked (a spawned worker spends half a second
    importing what the parent already has, longer than a grid of small cells takes), so
    they start with the parent's state, and undo what is the parent's alone: its signal
    handlers (Ctrl-C and SIGTERM are the parent's to handle; SIGTERM kills a worker, and
    the kernel sends it when the parent dies) and its log handlers, its own and those it
    passes records on to (the terminal and log.txt are the parent's; what a cell logs goes
    back with its result, and the parent logs it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    package_log = logging.getLogger("kernelnet")
    for handler in list(package_log.handlers):
        package_log.removeHandler(handler)
    package_log.propagate = False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _worker(
    conn: Connection,
    others: list[Connection],
    parent: int,
    experiment: Experiment,
    cells: dict[int, Cell],
    run_path: str,
    threads: int,
) -> None:
    """A worker process: run the cells whose indices arrive on ``conn``, one at a time in
    the order they arrive, and send each result back; end at None or when the parent's end
    closes. The cells themselves came with the fork: only their indices travel."""
    _die_with_parent(parent)
    for other in others:  # the parent's ends of the other workers' pipes
        other.close()
    run = RunDir(Path(run_path))
    while True:
        try:
            index = conn.recv()
        except EOFError:
            return
        if index is None:
            return
        cell = cells[index]
        try:
            result = run_cell(experiment, cell, run, threads=threads, capture_log=True)
            message = ("done", index, _fields_but_cell(result))
        except Exception as exc:  # the run folder cannot be written: the parent raises it
            message = ("raised", index, exc)
        try:
            conn.send(message)
        except Exception as exc:  # a result (or exception) that does not pickle
            if message[0] == "raised":
                failure = RuntimeError(f"{type(message[2]).__name__}: {message[2]}")
                conn.send(("raised", index, failure))
            else:
                why = f"its result cannot be sent back from the worker: {type(exc).__name__}: {exc}"
                crashed = dataclasses.replace(_crashed(cell, why), log_records=result.log_records)
                conn.send(("done", index, _fields_but_cell(crashed)))


def _fields_but_cell(result: CellResult) -> dict[str, Any]:
    """What a worker sends back of a result: all but its cell, which the parent has (a
    cell carries its whole config, costlier to pickle than a small cell's rows)."""
    return {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "cell"}


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


@dataclasses.dataclass
class _Worker:
    """A worker process, the parent's end of its pipe, and the indices of the cells sent to
    it and not yet done, oldest first: a worker takes them in order, so the first is the
    one it is running. ``alone``: it runs a cell being retried, and gets nothing else until
    that cell is done."""

    process: Any  # multiprocessing's Process of the fork context
    conn: Connection
    assigned: deque[int] = dataclasses.field(default_factory=deque)
    alone: bool = False


PREFETCH = 2  # cells sent to a worker at once: the one it runs, and the next one ready


class _Dispatch:
    """The parent's side of one run on worker processes: which cells are still to be sent
    (``todo``), which wait for a retry alone, and which worker holds which cells."""

    def __init__(
        self, experiment: Experiment, cells: list[Cell], run: RunDir, workers: int, threads: int
    ):
        self.experiment, self.run, self.size, self.threads = experiment, run, workers, threads
        self.cells = {cell.index: cell for cell in cells}
        self.todo = deque(self.cells)  # not sent to a worker, or sent to one that died first
        self.retries: deque[int] = deque()  # cells whose worker died under them
        self.retried: set[int] = set()
        self.workers: list[_Worker] = []

    @property
    def busy(self) -> bool:
        return bool(self.todo or self.retries or any(w.assigned for w in self.workers))

    def fill(self) -> None:
        """Start the workers there is work for (a retry gets a fresh one of its own) and
        give every worker that runs no retry its next cells."""
        while self.retries and len(self.workers) < self.size:
            worker = self._start()
            worker.alone = True
            self._send(worker, self.retries.popleft())
        while self.todo and len(self.workers) < min(self.size, len(self.todo)):
            self._start()
        for worker in self.workers:
            while self.todo and not worker.alone and len(worker.assigned) < PREFETCH:
                self._send(worker, self.todo.popleft())

    def _start(self) -> _Worker:
        mine, theirs = multiprocessing.Pipe()
        others = [w.conn for w in self.workers]
        process = multiprocessing.get_context("fork").Process(
            target=_worker,
            args=(theirs, others, os.getpid(), self.experiment, self.cells, str(self.run.path)),
            kwargs={"threads": self.threads},
        )
        process.start()
        theirs.close()  # the worker's end is the worker's alone: its death closes the pipe
        worker = _Worker(process, mine)
        self.workers.append(worker)
        return worker

    @staticmethod
    def _send(worker: _Worker, index: int) -> None:
        worker.assigned.append(index)
        with contextlib.suppress(OSError):  # it died: seen by wait(), and the cell requeued
            worker.conn.send(index)

    def wait(self) -> Iterator[tuple[_Worker, list[tuple[str, int, Any]], bool]]:
        """Block until a worker sends or ends; then each such worker, the messages it sent,
        and whether it has ended."""
        waited = [w.conn for w in self.workers] + [w.process.sentinel for w in self.workers]
        ready = set(wait(waited))
        for worker in list(self.workers):
            ended = worker.process.sentinel in ready
            if worker.conn in ready or ended:
                messages, gone = _received(worker.conn)
                yield worker, messages, gone or ended

    def done(self, worker: _Worker, index: int, fields: dict[str, Any]) -> CellResult:
        if index != worker.assigned.popleft():
            raise RuntimeError(f"a worker sent cell {index} out of turn")  # a bug, said so
        worker.alone = False
        return CellResult(self.cells[index], **fields)

    def lost(self, worker: _Worker) -> CellResult | None:
        """A worker died: the cell it was running is retried alone, or fails if this was
        its retry (the failed result is returned); the cells sent to it next go back to
        the front of the queue."""
        self.workers.remove(worker)
        worker.conn.close()
        worker.process.join()
        if not worker.assigned:
            return None
        index = worker.assigned.popleft()
        self.todo.extendleft(reversed(worker.assigned))
        cell = self.cells[index]
        if index in self.retried:
            log.error("cell %s: its worker process died again; the cell fails", cell.id)
            return _crashed(cell, "worker process died while running this cell (twice)")
        self.retried.add(index)
        log.warning("cell %s: its worker process died; retrying it once, alone", cell.id)
        self.retries.append(index)
        return None

    def close(self) -> None:
        """Let the idle workers end (None: no more cells), and wait for them."""
        for worker in self.workers:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        for worker in self.workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join()
            worker.conn.close()
        self.workers.clear()

    def stop(self) -> None:
        """Stop every worker now (SIGTERM; they ignore SIGINT): running cells are
        abandoned. Used when the run is interrupted."""
        for worker in self.workers:
            with contextlib.suppress(OSError):
                worker.process.terminate()
        for worker in self.workers:
            worker.process.join()
            worker.conn.close()
        self.workers.clear()


def _received(conn: Connection) -> tuple[list[tuple[str, int, Any]], bool]:
    """The messages waiting on ``conn``, and whether its worker is gone (end of file)."""
    messages = []
    try:
        while conn.poll():
            messages.append(conn.recv())
    except (EOFError, OSError):
        return messages, True
    return messages, False


class ProcessExecutor:
    """Cells in ``workers`` processes forked from this one (they start at once, with what
    this process has imported, the cells included), each cell with ``threads`` BLAS threads
    (the same count as every other executor, so results do not depend on where a cell
    ran). A worker is sent cell indices over its own pipe, the one it runs and the next
    (so it never waits for this process between cells of milliseconds), and sends each
    result back: this process always knows which cell each worker is running.

    Workers die with their parent. A worker that dies (killed, out of memory) is replaced
    at once, and only the cell it was running is retried: once, alone in a fresh worker,
    which pins a crash on the cell that causes it (if that worker dies too, the cell
    fails); the cell sent to it next goes back to the queue, the other workers go on.
    Interrupted, every worker is stopped at once: finished cells are kept by the runner,
    running ones are abandoned."""

    def __init__(self, workers: int, threads: int = DEFAULT_THREADS):
        if workers < 1:
            raise ValueError(f"workers must be >= 1 (got {workers})")
        self.workers = workers
        self.threads = threads

    def prepare(self, experiment: Experiment, cells: list[Cell]) -> None:
        return None  # workers read the same files as this process

    def run(
        self,
        experiment: Experiment,
        cells: list[Cell],
        run: RunDir,
        progress: StepProgress | None = None,
    ) -> Iterator[CellResult]:
        dispatch = _Dispatch(experiment, cells, run, self.workers, self.threads)
        # Workers start (fork) in this environment; replacements too.
        with _blas_environment(self.threads):
            try:
                while dispatch.busy:
                    dispatch.fill()
                    for worker, messages, ended in dispatch.wait():
                        for kind, index, payload in messages:  # sent before it died, if it did
                            if kind == "raised":
                                raise payload
                            yield dispatch.done(worker, index, payload)
                        if ended and (failed := dispatch.lost(worker)) is not None:
                            yield failed
            except BaseException:  # interrupted (or the consumer stopped): stop at once
                dispatch.stop()
                raise
            dispatch.close()


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
    data folder; no arrays travel in the task graph. What the cell logs goes back with
    its result (the worker's own stderr is no one's terminal)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kernelnet-cell-") as scratch, captured_log() as logged:
        result = run_cell(experiment, cell, RunDir(Path(scratch)), threads=threads)
        try:
            files = _files_under(Path(scratch))
        except OSError as exc:
            log.error("cell %s: its files cannot be sent back: %s", cell.id, exc)
            result = _crashed(cell, f"its files cannot be sent back from the worker: {exc}")
            files = {}
    return dataclasses.replace(result, log_records=logged), files


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
        """The cells' results as they finish. A run may call this once per round (a
        successive-halving search); the connection this executor made is closed when the
        run ends (the runner calls :meth:`close`) or when a round fails or is interrupted
        (an executor serves one run)."""
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
            self.close()
            raise
