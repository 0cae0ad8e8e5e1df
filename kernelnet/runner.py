"""The one place where the shared steps of every run live.

Resolve -> expand the grid -> preflight data checks -> create the run folder -> write
config.yaml (first), grid.json and run.json (``running``) -> hand the cells to an executor
(serial, process pool or Dask; each cell has its own Generator), saving every finished cell
under ``cells/`` at once and recording failures without stopping the grid -> write
metrics.csv, metrics.md, summary.json -> final status. SIGINT and SIGTERM mark the run
``interrupted``. ``--resume`` reopens a folder, checks the config hash, and runs only the
cells not saved as complete.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kernelnet.config import (
    Cell,
    RawConfig,
    config_error,
    config_sha256,
    dump_config,
    expand,
    resolve,
)
from kernelnet.errors import ConfigError
from kernelnet.executors import ProcessExecutor, SerialExecutor
from kernelnet.experiments.base import CellResult, Experiment, ReportContext
from kernelnet.provenance import environment
from kernelnet.runs import RunDir, utc_now
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


def metrics_csv(results: list[CellResult]) -> str:
    """Columns in the order the completed rows give them (failed rows keep what they have)."""
    columns: list[str] = []
    for result in sorted(results, key=lambda r: not r.ok):
        for row in result.rows:
            columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for result in results:
        for row in result.rows:
            writer.writerow({k: v for k, v in row.items() if v is not None})
    return buffer.getvalue()


def _failure_table(failures: list[CellResult]) -> Table:
    return Table(
        "Failed cells",
        ["cell", "status", "error"],
        [[r.cell.id, r.status, r.error] for r in failures],
        align=["left", "left", "left"],
    )


def _final_status(results: list[CellResult]) -> str:
    statuses = {r.status for r in results}
    if "diverged" in statuses:
        return "diverged"
    return "failed" if "failed" in statuses else "complete"


CELLS_DIR = "cells"


def save_cell_result(run: RunDir, result: CellResult) -> None:
    """Persist a finished cell at once (``cells/<index>.pkl``), so a run killed later keeps
    it and ``--resume`` can skip it."""
    run.write_with(
        f"{CELLS_DIR}/{result.cell.index:05d}.pkl",
        lambda handle: pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL),
    )


def load_cell_results(run: RunDir, cells: list[Cell]) -> dict[int, CellResult]:
    """The completed cells saved in ``run`` whose ids still match this grid."""
    found: dict[int, CellResult] = {}
    for cell in cells:
        path = run.file(f"{CELLS_DIR}/{cell.index:05d}.pkl")
        try:
            with open(path, "rb") as handle:
                result = pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError):
            continue
        if result.ok and result.cell.id == cell.id:
            found[cell.index] = result
    return found


def _grid_description(cells: list[Cell], argv: list[str]) -> dict[str, Any]:
    return {
        "command": argv,
        "cells": [{"index": c.index, "id": c.id, "params": c.params} for c in cells],
    }


def _start(
    experiment: Experiment,
    resolved: dict[str, Any],
    runs_dir: Path,
    cells: list[Cell],
    argv: list[str],
    resume: RunDir | None,
):
    """A new run folder (config.yaml first), or the one being resumed, checked."""
    digest = config_sha256(resolved)
    if resume is None:
        run = RunDir.create(runs_dir, experiment.name)
        run.write_text("config.yaml", dump_config(resolved))
        run.write_json("grid.json", _grid_description(cells, argv))
        run.update_manifest(
            experiment=experiment.name,
            status="running",
            started=utc_now(),
            finished=None,
            seconds=None,
            argv=argv,
            config_sha256=digest,
            seed=resolved.get("seed"),
            cells=len(cells),
            pid=os.getpid(),
            **environment(),
        )
        run.link_latest(runs_dir)
        return run, {}
    run = resume
    try:
        run.manifest = json.loads(run.file("run.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{run.path}: not a run folder that can be resumed ({exc})") from None
    if run.manifest.get("experiment") != experiment.name:
        raise ConfigError(
            f"{run.path} is a {run.manifest.get('experiment')!r} run, not {experiment.name!r}"
        )
    if run.manifest.get("config_sha256") != digest:
        raise ConfigError(
            f"{run.path}: the config no longer matches the run's config "
            f"(sha256 {digest[:12]} vs {str(run.manifest.get('config_sha256'))[:12]});"
            " resume with the same config, or start a new run"
        )
    done = load_cell_results(run, cells)
    run.update_manifest(
        status="running",
        pid=os.getpid(),
        finished=None,
        resumed=[
            *run.manifest.get("resumed", []),
            {"at": utc_now(), "argv": argv, "skipped_cells": len(done)},
        ],
    )
    return run, done


def execute(
    experiment: Experiment,
    resolved: dict[str, Any],
    runs_dir: Path,
    argv: list[str] | None = None,
    progress: Progress | None = None,
    executor: SerialExecutor | ProcessExecutor | None = None,
    resume: RunDir | None = None,
) -> RunOutcome:
    """Run every cell of a resolved config (the missing or failed ones when resuming);
    see the module docstring."""
    argv = list(sys.argv if argv is None else argv)
    executor = executor or SerialExecutor()
    cells = expand(experiment.schema, resolved)
    experiment.preflight(cells)
    run, done = _start(experiment, resolved, runs_dir, cells, argv, resume)
    started = time.time()
    results: dict[int, CellResult] = dict(done)
    with _log_to(run.file("log.txt")), _sigterm_as_interrupt():
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
                save_cell_result(run, result)
                results[result.cell.index] = result
                if progress is not None:
                    progress.cell_done(len(results), len(cells), result)
            ordered = [results[c.index] for c in cells]
            status = _final_status(ordered)
            tables = _write_results(experiment, run, resolved, ordered, status)
        except KeyboardInterrupt:
            _finish(run, "interrupted", started)
            log.error("run interrupted after %d of %d cell(s)", len(results), len(cells))
            raise
        except BaseException:
            log.error("run failed:\n%s", traceback.format_exc())
            _finish(run, "failed", started)
            raise
        _finish(run, status, started)
    return RunOutcome(run, status, tables, ordered)


def _write_results(
    experiment: Experiment,
    run: RunDir,
    resolved: dict[str, Any],
    results: list[CellResult],
    status: str,
) -> list[Table]:
    report = experiment.report(ReportContext(run, resolved, results))
    tables = list(report.tables)
    failures = [r for r in results if not r.ok]
    if failures:
        tables.append(_failure_table(failures))
    run.write_text("metrics.csv", metrics_csv(results))
    markdown = "\n".join(t.to_markdown() for t in tables)
    run.write_text("metrics.md", f"# {experiment.name} — {run.path.name}\n\n{markdown}")
    run.write_json(
        "summary.json",
        {
            "experiment": experiment.name,
            "status": status,
            "cells": len(results),
            "failed_cells": [
                {"cell": r.cell.id, "status": r.status, "error": r.error} for r in failures
            ],
            **report.summary,
        },
    )
    log.info("results:\n%s", markdown)
    return tables


def _finish(run: RunDir, status: str, started: float) -> None:
    run.update_manifest(status=status, finished=utc_now(), seconds=round(time.time() - started, 3))
