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
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kernelnet import blas, cell_store
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
from kernelnet.executors import Executor, SerialExecutor
from kernelnet.experiments.base import CellResult, Experiment, ReportContext
from kernelnet.provenance import environment
from kernelnet.runs import RunDir, RunFolderError, run_lock, utc_now
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


def resolve_experiment_config(experiment: Experiment, raw: RawConfig) -> dict[str, Any]:
    """Validate ``raw`` against the experiment's schema, pinning ``experiment:``."""
    named = raw.values.get("experiment")
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


@contextlib.contextmanager
def _log_to(path: Path) -> Iterator[None]:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    previous = package_log.level
    package_log.addHandler(handler)
    package_log.setLevel(logging.INFO)
    try:
        yield
    finally:
        package_log.removeHandler(handler)
        package_log.setLevel(previous)
        handler.close()


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
        raise ConfigError(
            f"{run.path}: the config no longer matches the run's config "
            f"(sha256 {digest[:12]} vs {str(run.manifest.get('config_sha256'))[:12]});"
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
    return done


def execute(
    experiment: Experiment,
    resolved: dict[str, Any],
    runs_dir: Path,
    argv: list[str] | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
    resume: RunDir | None = None,
    force: bool = False,
    max_cells: int = MAX_CELLS,
) -> RunOutcome:
    """Run every cell of a resolved config (the missing or failed ones when resuming,
    which ``force`` allows across code versions); see the module docstring."""
    argv = list(sys.argv if argv is None else argv)
    executor = executor or SerialExecutor()
    cells = expand(experiment.schema, resolved, max_cells)
    experiment.preflight(cells)
    executor.prepare(experiment, cells)
    run = resume or RunDir.create(runs_dir, experiment.name)
    with run_lock(run), _log_to(run.file("log.txt")):
        if resume is None:
            try:
                _start(experiment, resolved, run, cells, argv, executor.threads)
                run.publish()
            except OSError as exc:
                run.discard()
                raise RunFolderError(
                    f"{runs_dir}: cannot write a run folder ({_why(exc)})"
                ) from None
            run.link_latest(runs_dir)
            done: dict[int, CellResult] = {}
        else:
            done = _reopen(experiment, resolved, run, cells, argv, force)
        return _run_cells(experiment, resolved, run, cells, done, executor, progress)


def _why(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def _run_cells(
    experiment: Experiment,
    resolved: dict[str, Any],
    run: RunDir,
    cells: list[Cell],
    done: dict[int, CellResult],
    executor: Executor,
    progress: Progress | None,
) -> RunOutcome:
    started = time.time()
    results: dict[int, CellResult] = dict(done)
    with _sigterm_as_interrupt():
        try:
            pending = [c for c in cells if c.index not in done]
            log.info(
                "run %s: %d cell(s) of %s, %d to run, %s worker(s)",
                run.path,
                len(cells),
                experiment.name,
                len(pending),
                executor.workers,
            )
            step_progress = progress if executor.workers == 1 else None
            for result in executor.run(experiment, pending, run, step_progress):
                result = store_cell(run, result)
                results[result.cell.index] = result
                if progress is not None:
                    progress.cell_done(len(results), len(cells), result)
            ordered = [results[c.index] for c in cells]
            status, tables, report_error = _write_results(experiment, run, resolved, ordered)
        except KeyboardInterrupt:
            _finish(run, "interrupted", started)
            log.error("run interrupted after %d of %d cell(s)", len(results), len(cells))
            raise
        except OSError as exc:  # a full or read-only disk: say so, mark the run if we can
            log.error("run failed: cannot write the run folder", exc_info=True)
            with contextlib.suppress(OSError):
                _finish(run, "failed", started)
            raise RunFolderError(
                f"{run.path}: cannot write the run folder ({_why(exc)}); the run is marked "
                f"failed where that could be written, and {len(results)} finished cell(s) "
                "are kept"
            ) from None
        except BaseException:
            log.error("run failed", exc_info=True)
            _finish(run, "failed", started)
            raise
        _finish(run, status, started)
    return RunOutcome(run, status, tables, ordered, report_error)


def _write_results(
    experiment: Experiment, run: RunDir, resolved: dict[str, Any], results: list[CellResult]
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
    run.write_text("metrics.csv", metrics_csv(results))
    _write_tables(experiment, run, generic + cells, log_them=False)
    run.write_json("summary.json", summary)
    report_error = ""
    try:
        report = experiment.report(ReportContext(run, resolved, results))
    except Exception as exc:
        report_error = f"{type(exc).__name__}: {exc}"
        log.error("the report failed (every cell result is saved): %s", report_error, exc_info=True)
        run.write_json(
            "summary.json", {**summary, "status": "failed", "report_error": report_error}
        )
        return "failed", generic, report_error
    tables = [*report.tables, *generic]
    _write_tables(experiment, run, tables + cells)
    run.write_json("summary.json", {**report.summary, **summary})
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
