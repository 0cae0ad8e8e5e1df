"""The one place where the shared steps of every run live.

Resolve -> expand the grid (unique, file-safe cell ids) -> preflight data checks -> create
the run folder -> write config.yaml (first), grid.json and run.json (``running``) -> hand
the cells to an executor (serial, process pool or Dask; each cell has its own Generator and
its own file writer), storing every finished cell as data under ``cells/<id>/`` at once and
recording failures without stopping the grid -> write metrics.csv (every row stamped with
its cell and swept values), metrics.md and summary.json -> the experiment's report, which
can fail without losing anything -> final status. SIGINT and SIGTERM mark the run
``interrupted``. ``--resume`` reopens a folder, checks the config hash, and runs only the
cells not stored as complete.

A run's log.txt holds that run's lines only, whatever runs beside it in other threads (see
:class:`RunLog`). What ends a run (interrupted, the folder cannot be written, a bug, a
report that raised) is written to log.txt alone, with its traceback: the caller says it in
one line (the command line's error line, the exception the Python API raises).
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import io
import logging
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from kernelnet import blas, cell_store, safe_write
from kernelnet.config import (
    Cell,
    RawConfig,
    config_error,
    config_sha256,
    dump_config,
    expand,
    format_value,
    resolve,
)
from kernelnet.config.schema import outcome_values
from kernelnet.config.sweep import MAX_CELLS, sweep_axes
from kernelnet.errors import ConfigError
from kernelnet.executors import Executor, SerialExecutor, emit_cell_log
from kernelnet.experiments.base import CellResult, Experiment, ReportContext
from kernelnet.provenance import environment
from kernelnet.runs import RunDir, RunFolderError, run_lock, utc_now
from kernelnet.search import Plan, search_table
from kernelnet.tables import Table

log = logging.getLogger(__name__)
package_log = logging.getLogger("kernelnet")


class Progress(Protocol):
    """What the runner reports while it works (the CLI draws it as progress bars)."""

    def cell_done(self, done: int, total: int, result: CellResult) -> None: ...

    def step(self, done: int, total: int, label: str) -> None: ...


@dataclass(frozen=True)
class RunOutcome:
    run: RunDir
    status: str
    tables: list[Table]
    results: list[CellResult]
    report_error: str = ""  # the report raised: every cell result is saved regardless

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "complete" else 1

    @property
    def failures(self) -> list[CellResult]:
        return [r for r in self.results if not r.ok]


def named_experiment(raw: RawConfig) -> str | None:
    """The config's ``experiment:`` value, None when it names none; a config error at the
    key when it is not a name (a list, a mapping, a number)."""
    named = raw.values.get("experiment")
    if named is None or isinstance(named, str):
        return named
    from kernelnet.experiments import REGISTRY  # imported here: it loads every experiment

    got = {list: "a list", dict: "a mapping", bool: "true/false"}.get(type(named), repr(named))
    raise config_error(
        raw.locations.get("experiment"),
        "experiment",
        f"must be an experiment name, one of {', '.join(REGISTRY)} (got {got})",
    )


def resolve_experiment_config(experiment: Experiment, raw: RawConfig) -> dict[str, Any]:
    """Validate ``raw`` against the experiment's schema, pinning ``experiment:``."""
    named = named_experiment(raw)
    if named is not None and named != experiment.name:
        raise config_error(
            raw.locations.get("experiment"),
            "experiment",
            f"this config is for {named!r}, not {experiment.name!r}",
        )
    resolved = resolve(experiment.schema, raw.values, raw.locations)
    resolved["experiment"] = experiment.name
    axes = sweep_axes(experiment.schema, resolved)
    if experiment.single_cell and axes:
        path = axes[0].path
        raise config_error(
            raw.locations.get(path),
            path,
            f"{experiment.name} runs as one cell; give one value, not a sweep "
            f"(run the command once per value instead)",
        )
    return resolved


# Per-run logging. Every run adds its own handler for log.txt to the package logger; a
# record belongs to the run whose context logged it: the thread that executes the run sets
# _CURRENT_RUN, and a context variable is per thread (and per asyncio task), so four runs
# in four threads of one process never see each other's records, nor a run the records of
# a thread that runs none (a notebook reading another run meanwhile). A thread a run starts
# begins with an empty context; to log into the run it is started with the run's context
# (``contextvars.copy_context().run``). No executor needs that today: the pool's and Dask's
# result handling runs in the run's own thread (their internal threads log nothing of
# kernelnet's). A cell that ran in another process (a worker, a Dask worker) sends what it
# logged back with its result, and the run's thread logs it again (executors.emit_cell_log)
# before storing the cell: the terminal and log.txt get each record once, whatever the
# executor, and log.txt has one writer, this process.
_CURRENT_RUN: contextvars.ContextVar[RunLog | None] = contextvars.ContextVar(
    "kernelnet_current_run", default=None
)
_ACTIVE: list[RunLog] = []
_ACTIVE_LOCK = threading.Lock()
_saved_level: list[int] = []  # the package logger's level before the first active run


class _RunFileHandler(logging.FileHandler):
    """log.txt, opened by :func:`kernelnet.safe_write.open_for_appending`, best effort: a
    record that cannot be written (a full disk) is dropped without logging's two-screen
    "--- Logging error ---" report on stderr; the run's own error line says the folder
    cannot be written."""

    def _open(self) -> IO[str]:
        return safe_write.open_for_appending(Path(self.baseFilename))

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        return None


class _ThisRun(logging.Filter):
    def __init__(self, owner: RunLog):
        super().__init__()
        self.owner = owner

    def filter(self, record: logging.LogRecord) -> bool:
        return _CURRENT_RUN.get() is self.owner  # read in the thread that logs the record


class RunLog:
    """One run's log.txt: what its context logs through the ``kernelnet`` loggers, and
    :meth:`note`, which writes to log.txt only (not to the terminal's handler, nor to the
    loggers a program configured): for the lines that end a run, which its caller says."""

    def __init__(self, path: Path):
        self.handler = _RunFileHandler(path, encoding="utf-8")
        self.handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        self.handler.addFilter(_ThisRun(self))

    def note(self, level: int, message: str, *args: Any, traceback: bool = False) -> None:
        record = log.makeRecord(
            log.name, level, __file__, 0, message, args, sys.exc_info() if traceback else None
        )
        self.handler.handle(record)


def _activate(run_log: RunLog) -> None:
    with _ACTIVE_LOCK:
        if not _ACTIVE:
            _saved_level[:] = [package_log.level]
            if package_log.level == logging.NOTSET or package_log.level > logging.INFO:
                package_log.setLevel(logging.INFO)
        _ACTIVE.append(run_log)
        package_log.addHandler(run_log.handler)


def _deactivate(run_log: RunLog) -> None:
    with _ACTIVE_LOCK:
        package_log.removeHandler(run_log.handler)
        _ACTIVE.remove(run_log)
        if not _ACTIVE and _saved_level:  # the last run to end gives the level back
            package_log.setLevel(_saved_level.pop())


@contextlib.contextmanager
def _log_to(path: Path) -> Iterator[RunLog]:
    """Log this context's records (the run's) to ``path`` while the run lasts."""
    run_log = RunLog(path)
    token = _CURRENT_RUN.set(run_log)
    _activate(run_log)
    try:
        yield run_log
    finally:
        _deactivate(run_log)
        _CURRENT_RUN.reset(token)
        run_log.handler.close()


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM. ``folder`` is its run folder (None: stopped
    before one was made); ``message`` is the one line that says what became of it and,
    when there is a folder, the command that finishes it."""

    def __init__(self, folder: Path | None, state: str = "is marked interrupted"):
        self.folder = folder
        if folder is None:
            self.message = "stopped before a run folder was made; nothing to resume"
        else:
            command = f"kernelnet run --resume {shlex.quote(str(folder))}"
            self.message = f"the run folder {folder} {state}; finish it with: {command}"
        super().__init__(self.message)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM takes SIGINT's path (KeyboardInterrupt), in the main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interruptible(folder: Path | None = None) -> Iterator[None]:
    """While a run is being prepared (connecting to a cluster, checking data): SIGTERM
    takes Ctrl-C's path, and either becomes :class:`Interrupted` saying that no run folder
    was made (or, resuming ``folder``, that it is unchanged)."""
    with _sigterm_as_interrupt():
        try:
            yield
        except Interrupted:
            raise
        except KeyboardInterrupt as exc:
            raise (Interrupted(folder, "is unchanged") if folder else Interrupted(None)) from exc


def stamped_rows(result: CellResult) -> list[dict[str, Any]]:
    """The cell's metrics rows, each led by ``cell`` (its id) and every swept value as the
    id writes it (one column per axis label); a cell without rows still gets one row."""
    stamp = {"cell": result.cell.id}
    stamp |= {label: format_value(v) for label, v in result.cell.params.items()}
    return [
        {**stamp, **{k: v for k, v in row.items() if k not in stamp}}
        for row in (result.rows or [{}])
    ]


def metrics_csv(results: list[CellResult]) -> str:
    """One line per metrics row of every cell. Columns: ``cell``, the swept keys, then the
    experiment's own columns in the order the completed rows give them."""
    stamped = {result.cell.index: stamped_rows(result) for result in results}
    columns: list[str] = []
    for result in sorted(results, key=lambda r: not r.ok):  # completed cells name columns first
        for row in stamped[result.cell.index]:
            columns += [key for key in row if key not in columns]
    rows = [row for result in results for row in stamped[result.cell.index]]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: v for k, v in row.items() if v is not None})
    return buffer.getvalue()


def _failure_table(failures: list[CellResult]) -> Table:
    return Table(
        "Failed cells",
        ["cell", "status", "error"],
        [[r.cell.id, r.status, r.error] for r in failures],
        align=["left", "left", "left"],
    )


def _cells_table(results: list[CellResult]) -> Table:
    return Table(
        f"Cells ({len(results)})",
        ["#", "cell", "status"],
        [[str(r.cell.index), r.cell.id, r.status] for r in results],
        align=["right", "left", "left"],
    )


def _final_status(results: list[CellResult]) -> str:
    statuses = {r.status for r in results}
    if "diverged" in statuses:
        return "diverged"
    return "failed" if "failed" in statuses else "complete"


def store_cell(run: RunDir, result: CellResult) -> CellResult:
    """Save a finished cell at once (so a run killed later keeps it and ``--resume`` can
    skip it) and return it as read back: what the report sees is what a resume sees. An
    artifact that is not data fails the cell (a bug in the experiment, said plainly)."""
    try:
        cell_store.save_result(run, result)
    except cell_store.NotData as exc:
        log.error("cell %s: its results cannot be stored: %s", result.cell.id, exc)
        result = CellResult(result.cell, "failed", result.rows, {}, f"cannot store results: {exc}")
        cell_store.save_result(run, result)
    return cell_store.load_result(run, result.cell)


def _grid_description(cells: list[Cell], argv: list[str]) -> dict[str, Any]:
    return {
        "command": argv,
        "cells": [
            {"index": c.index, "id": c.id, "params": c.params, "keys": c.paths} for c in cells
        ],
    }


def _start(
    experiment: Experiment,
    resolved: dict[str, Any],
    run: RunDir,
    cells: list[Cell],
    argv: list[str],
    threads: int,
) -> None:
    """Fill a new run folder: config.yaml first, then grid.json and run.json."""
    run.write_text("config.yaml", dump_config(resolved))
    run.write_json("grid.json", _grid_description(cells, argv))
    run.update_manifest(
        experiment=experiment.name,
        status="running",
        started=utc_now(),
        finished=None,
        seconds=None,
        argv=argv,
        config_sha256=config_sha256(outcome_values(experiment.schema, resolved)),
        seed=resolved.get("seed"),
        cells=len(cells),
        pid=os.getpid(),
        blas_threads_per_cell=threads,
        blas=blas.library(),
        **environment(),
    )


def code_mismatches(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """How the code that made a run differs from this one: kernelnet or numpy version, or
    the git commit (when both are known)."""
    found = []
    for name in ("kernelnet", "numpy"):
        theirs = (recorded.get("versions") or {}).get(name)
        mine = current["versions"][name]
        if theirs != mine:
            found.append(f"{name} {theirs} (run) vs {mine} (now)")
    theirs, mine = (
        (recorded.get("git") or {}).get("commit"),
        (current.get("git") or {}).get("commit"),
    )
    if theirs and mine and theirs != mine:
        found.append(f"git commit {theirs[:12]} (run) vs {mine[:12]} (now)")
    return found


def _reopen(
    experiment: Experiment,
    resolved: dict[str, Any],
    run: RunDir,
    cells: list[Cell],
    argv: list[str],
    force: bool,
) -> dict[int, CellResult]:
    """Check a run being resumed (held under its lock) and return its usable stored cells."""
    try:
        run.manifest = run.read_manifest()
    except RunFolderError as exc:
        raise ConfigError(f"--resume: not a run folder that can be resumed: {exc}") from None
    if run.manifest.get("experiment") != experiment.name:
        raise ConfigError(
            f"{run.path} is a {run.manifest.get('experiment')!r} run, not {experiment.name!r}"
        )
    digest = config_sha256(outcome_values(experiment.schema, resolved))
    if run.manifest.get("config_sha256") != digest:
        changed = _config_changes(experiment, run, resolved)
        what = (
            f": {changed}"
            if changed
            else f" (sha256 {digest[:12]} vs {str(run.manifest.get('config_sha256'))[:12]})"
        )
        raise ConfigError(
            f"{run.path}: the config no longer matches the run's config{what};"
            " resume with the same config, or start a new run"
        )
    current = environment()
    mismatches = code_mismatches(run.manifest, current)
    if mismatches and not force:
        raise ConfigError(
            f"{run.path} was made by other code ({'; '.join(mismatches)}): its cells would mix "
            "with this code's; start a new run, or resume anyway with --force"
        )
    done = cell_store.load_results(run, cells)
    entry = {"at": utc_now(), "argv": argv, "skipped_cells": len(done), "pid": os.getpid()}
    if mismatches:
        entry["forced_despite"] = mismatches
    run.update_manifest(
        status="running",
        pid=os.getpid(),
        finished=None,
        resumed=[*run.manifest.get("resumed", []), entry],
    )
    if cells and len(done) == len(cells):
        # Said on stderr (a warning is what the command line shows) once the run is
        # reopened; the results files and the report are written again from the stored
        # cells, as after any resume.
        log.warning(
            "nothing to run: all %d cell(s) of %s were already complete", len(cells), run.path
        )
    return done


CHANGES_SHOWN = 3  # changed keys named in a refused resume before "and N more"


def _config_changes(experiment: Experiment, run: RunDir, resolved: dict[str, Any]) -> str:
    """``svm.C: 5 in the run, 10 now; seed: ...`` for the outcome keys whose values differ
    between the run's saved config.yaml (read by the strict loader and resolved by the
    schema) and ``resolved``, compared as the digest sees them; "" when the saved config
    cannot be read or shows no difference (the digest alone then says they differ)."""
    from kernelnet.compare import flatten
    from kernelnet.config import read_config_file
    from kernelnet.errors import KernelnetError

    try:  # resolved again, so that both sides have the schema's types and defaults
        raw = read_config_file(run.file("config.yaml"))
        saved = resolve(experiment.schema, raw.values, raw.locations)
    except (KernelnetError, OSError):
        return ""
    before = flatten(outcome_values(experiment.schema, saved))
    after = flatten(outcome_values(experiment.schema, resolved))

    def canonical(value: Any) -> str:
        return config_sha256({"value": value})

    def shown(value: Any, missing: bool) -> str:
        text = "(absent)" if missing else format_value(value)
        return text if len(text) <= 40 else f"{text[:30]}… ({len(text):,} characters)"

    changed = [
        f"{key}: {shown(before.get(key), key not in before)} in the run, "
        f"{shown(after.get(key), key not in after)} now"
        for key in sorted(set(before) | set(after))
        if key not in before or key not in after or canonical(before[key]) != canonical(after[key])
    ]
    more = len(changed) - CHANGES_SHOWN
    return "; ".join(changed[:CHANGES_SHOWN]) + (f"; and {more} more" if more > 0 else "")


def execute(
    experiment: Experiment,
    resolved: dict[str, Any],
    runs_dir: Path | str,
    argv: list[str] | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
    resume: RunDir | None = None,
    force: bool = False,
    max_cells: int = MAX_CELLS,
) -> RunOutcome:
    """Run every cell of a resolved config (the missing or failed ones when resuming,
    which ``force`` allows across code versions); see the module docstring.

    Ends in a RunOutcome, or raises: :class:`Interrupted` (Ctrl-C, SIGTERM),
    RunFolderError (the folder cannot be written; one line saying what was kept),
    ConfigError/DataError (before any folder exists), or a bug's own exception."""
    if resume is None and not str(runs_dir).strip():  # Path("") would be "." by now
        raise RunFolderError("runs_dir must not be empty (give a folder, such as 'runs')")
    runs_dir = Path(runs_dir)
    argv = list(sys.argv if argv is None else argv)
    executor = executor or SerialExecutor()
    try:
        return _execute(
            experiment, resolved, runs_dir, argv, progress, executor, resume, force, max_cells
        )
    finally:
        close = getattr(executor, "close", None)  # a Dask connection serves one run
        if close is not None:
            close()


def _execute(
    experiment: Experiment,
    resolved: dict[str, Any],
    runs_dir: Path,
    argv: list[str],
    progress: Progress | None,
    executor: Executor,
    resume: RunDir | None,
    force: bool,
    max_cells: int,
) -> RunOutcome:
    with interruptible(resume.path if resume else None):
        plan = Plan(experiment.schema, resolved, expand(experiment.schema, resolved, max_cells))
        cells = plan.first()
        experiment.preflight(cells)
        executor.prepare(experiment, cells)
        run = resume or RunDir.create(runs_dir, experiment.name)
    with _sigterm_as_interrupt():
        try:
            with run_lock(run), _log_to(run.file("log.txt")) as run_log:
                if resume is None:
                    _begin(experiment, resolved, run, cells, argv, executor.threads, runs_dir)
                    done: dict[int, CellResult] = {}
                else:
                    with interruptible(run.path):
                        done = _reopen(experiment, resolved, run, cells, argv, force)
                return _run_cells(
                    experiment, resolved, run, plan, cells, done, executor, progress, run_log
                )
        except OSError as exc:  # the lock or log.txt could not be opened, run.json written
            if run.final_path is not None and run.path != run.final_path:
                run.discard()
                raise RunFolderError(
                    f"{runs_dir}: cannot write a run folder ({_why(exc)})"
                ) from None
            raise RunFolderError(f"{run.path}: cannot write the run folder ({_why(exc)})") from None


def _begin(
    experiment: Experiment,
    resolved: dict[str, Any],
    run: RunDir,
    cells: list[Cell],
    argv: list[str],
    threads: int,
    runs_dir: Path,
) -> None:
    """Fill a new (hidden) folder and publish it; if that fails or is interrupted, the
    folder is removed: a run folder is never visible half made."""
    try:
        _start(experiment, resolved, run, cells, argv, threads)
        run.publish()
    except OSError as exc:
        run.discard()
        raise RunFolderError(f"{runs_dir}: cannot write a run folder ({_why(exc)})") from None
    except KeyboardInterrupt as exc:
        run.discard()
        raise Interrupted(None) from exc
    run.link_latest(runs_dir)


def _why(exc: OSError) -> str:
    if exc.strerror is None:  # a refusal with its own message (safe_write's WriteRefused)
        return str(exc)
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror}{where}"


def _try_finish(run: RunDir, status: str, started: float) -> OSError | None:
    """Record the final status in run.json; the OSError if it could not be written (then
    run.json still says ``running``, with the pid of a process that no longer runs it)."""
    try:
        _finish(run, status, started)
    except OSError as exc:
        return exc
    return None


def _run_cells(
    experiment: Experiment,
    resolved: dict[str, Any],
    run: RunDir,
    plan: Plan,
    cells: list[Cell],
    done: dict[int, CellResult],
    executor: Executor,
    progress: Progress | None,
    run_log: RunLog,
) -> RunOutcome:
    """Run the plan's rounds (one, unless the search is successive halving: each round's
    cells follow from the results of the round before, stored ones included on a resume)."""
    started = time.time()
    results: dict[int, CellResult] = dict(done)
    every_cell: list[Cell] = []
    round_cells = cells
    try:
        while round_cells:
            if every_cell:  # a later round: listed in grid.json, its stored cells reused
                grid = run.read_json("grid.json")
                run.write_json(
                    "grid.json", _grid_description(every_cell + round_cells, grid["command"])
                )
                results |= cell_store.load_results(run, round_cells)
            every_cell += round_cells
            pending = [c for c in round_cells if c.index not in results]
            log.info(
                "run %s: %d cell(s) of %s, %d to run, %s worker(s)",
                run.path,
                len(round_cells),
                experiment.name,
                len(pending),
                executor.workers,
            )
            step_progress = progress if executor.workers == 1 else None
            for result in executor.run(experiment, pending, run, step_progress):
                emit_cell_log(result)
                result = store_cell(run, result)
                results[result.cell.index] = result
                if progress is not None:
                    progress.cell_done(len(results), plan.planned, result)
            round_cells = plan.next([results[c.index] for c in round_cells])
        ordered = [results[c.index] for c in every_cell]
        status, tables, report_error = _write_results(
            experiment, run, resolved, ordered, run_log, plan
        )
    except KeyboardInterrupt as exc:
        run_log.note(
            logging.ERROR, "run interrupted after %d of %d cell(s)", len(results), len(cells)
        )
        problem = _try_finish(run, "interrupted", started)
        state = (
            "is marked interrupted"
            if problem is None
            else f"could not be marked interrupted ({_why(problem)})"
        )
        raise Interrupted(run.path, state) from exc
    except OSError as exc:  # a full or read-only disk: say so, mark the run if we can
        run_log.note(logging.ERROR, "run failed: cannot write the run folder", traceback=True)
        problem = _try_finish(run, "failed", started)
        marked = "the run is marked failed" if problem is None else "run.json could not be updated"
        raise RunFolderError(
            f"{run.path}: cannot write the run folder ({_why(exc)}); {marked}, and "
            f"{len(results)} finished cell(s) are kept; when it can be written, finish it "
            f"with: kernelnet run --resume {shlex.quote(str(run.path))}"
        ) from None
    except BaseException:  # a bug: its caller shows it; log.txt keeps the traceback
        run_log.note(logging.ERROR, "run failed", traceback=True)
        _try_finish(run, "failed", started)
        raise
    problem = _try_finish(run, status, started)
    if problem is not None:  # it still says running; readers see no process holding it
        run_log.note(logging.ERROR, "run.json could not record the status %s", status)
        raise RunFolderError(
            f"{run.path}: every cell ran and the results are written, but run.json could not "
            f"record that the run {'completed' if status == 'complete' else status} "
            f"({_why(problem)})"
        )
    return RunOutcome(run, status, tables, ordered, report_error)


def _write_results(
    experiment: Experiment,
    run: RunDir,
    resolved: dict[str, Any],
    results: list[CellResult],
    run_log: RunLog,
    plan: Plan | None = None,
) -> tuple[str, list[Table], str]:
    """Write every cell's rows, the generic tables and the summary (failed cells and their
    errors included) first; then run the experiment's report. A report that raises marks
    the run failed, with its error in summary.json and its traceback in log.txt, and
    loses nothing. Returns (status, tables, report error or "")."""
    status = _final_status(results)
    failures = [r for r in results if not r.ok]
    generic = [_failure_table(failures)] if failures else []
    cells = [_cells_table(results)] if len(results) > 1 else []
    summary = {
        "experiment": experiment.name,
        "status": status,
        "cells": len(results),
        "failed_cells": [
            {"cell": r.cell.id, "status": r.status, "error": r.error} for r in failures
        ],
    }
    best = plan.summary(results, str(run.path / "config.yaml")) if plan else None
    if best is not None:
        summary["search"] = best
        if plan.chose:
            generic.append(search_table(best))
    run.write_text("metrics.csv", metrics_csv(results))
    _write_tables(experiment, run, generic + cells, log_them=False)
    run.write_json("summary.json", summary)
    report_error = ""
    try:
        report = experiment.report(ReportContext(run, resolved, results))
    except Exception as exc:
        report_error = f"{type(exc).__name__}: {exc}"
        run_log.note(
            logging.ERROR,
            "the report failed (every cell result is saved): %s",
            report_error,
            traceback=True,
        )
        run.write_json(
            "summary.json", {**summary, "status": "failed", "report_error": report_error}
        )
        return "failed", generic, report_error
    tables = [*report.tables, *generic]
    _write_tables(experiment, run, tables + cells)
    run.write_json("summary.json", {**report.summary, **summary})
    if resolved.get("plots", True):
        from kernelnet.sweep_plot import add_sweep_figure  # matplotlib: only when drawing

        try:
            add_sweep_figure(run)  # plots/sweep_<metric>.png when the run sweeps something
        except Exception as exc:  # a figure never costs a finished run its status
            run_log.note(logging.WARNING, "the sweep figure was not drawn: %s", exc, traceback=True)
    return status, tables, report_error


def _write_tables(
    experiment: Experiment, run: RunDir, tables: list[Table], log_them: bool = True
) -> None:
    markdown = "\n".join(t.to_markdown() for t in tables)
    run.write_text("metrics.md", f"# {experiment.name} — {run.path.name}\n\n{markdown}")
    if log_them and markdown:
        log.info("results:\n%s", markdown)


def _finish(run: RunDir, status: str, started: float) -> None:
    run.update_manifest(status=status, finished=utc_now(), seconds=round(time.time() - started, 3))
