"""The one place where the shared steps of every run live.

Resolve -> expand the grid -> preflight data checks -> create the run folder -> write
config.yaml (first) and run.json (``running``) -> run each cell with its own Generator,
recording failures without stopping the grid -> write metrics.csv, metrics.md,
summary.json -> final status. SIGINT and SIGTERM mark the run ``interrupted``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from kernelnet.config import Cell, RawConfig, config_sha256, dump_config, expand, resolve
from kernelnet.errors import ConfigError, Diverged, KernelnetError
from kernelnet.experiments.base import (
    CellContext,
    CellResult,
    Experiment,
    ReportContext,
)
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
        where = raw.locations.get("experiment")
        raise ConfigError(
            f"{where}: experiment: this config is for {named!r}, not {experiment.name!r}"
            if where
            else f"experiment: this config is for {named!r}, not {experiment.name!r}"
        )
    resolved = resolve(experiment.schema, raw.values, raw.locations)
    resolved["experiment"] = experiment.name
    return resolved


def cell_rng(seed: int, cell_id: str) -> np.random.Generator:
    """A Generator that depends only on the run seed and the cell's id (not its order)."""
    digest = int.from_bytes(hashlib.sha256(cell_id.encode()).digest()[:8], "big")
    return np.random.default_rng(np.random.SeedSequence([seed, digest]))


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


def _run_cell(
    experiment: Experiment, cell: Cell, run: RunDir, progress: Progress | None
) -> CellResult:
    logger = logging.getLogger(f"kernelnet.experiments.{experiment.name}")
    context = CellContext(cell, run, cell_rng(cell.config.seed, cell.id), logger)
    if progress is not None:
        context = dataclasses.replace(context, progress=progress.step)
    try:
        output = experiment.run_cell(cell.config, context)
    except Diverged as exc:
        log.error("cell %s diverged: %s", cell.id, exc)
        return CellResult(cell, "diverged", [{**cell.params, **exc.details}], error=str(exc))
    except KernelnetError as exc:
        log.error("cell %s failed: %s", cell.id, exc)
        fields = getattr(exc, "fields", {})
        return CellResult(cell, "failed", [{**cell.params, **fields}], error=str(exc))
    except Exception as exc:  # a bug in one cell must not lose the rest of the grid
        log.error("cell %s crashed:\n%s", cell.id, traceback.format_exc())
        return CellResult(cell, "failed", [dict(cell.params)], error=f"{type(exc).__name__}: {exc}")
    return CellResult(cell, "complete", output.rows, output.artifacts)


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


def execute(
    experiment: Experiment,
    resolved: dict[str, Any],
    runs_dir: Path,
    argv: list[str] | None = None,
    progress: Progress | None = None,
) -> RunOutcome:
    """Run every cell of a resolved config in a new run folder; see the module docstring."""
    cells = expand(experiment.schema, resolved)
    experiment.preflight(cells)
    run = RunDir.create(runs_dir, experiment.name)
    run.write_text("config.yaml", dump_config(resolved))
    started = time.time()
    run.update_manifest(
        experiment=experiment.name,
        status="running",
        started=utc_now(),
        finished=None,
        seconds=None,
        argv=list(sys.argv if argv is None else argv),
        config_sha256=config_sha256(resolved),
        seed=resolved.get("seed"),
        cells=len(cells),
        pid=os.getpid(),
        **environment(),
    )
    run.link_latest(runs_dir)
    results: list[CellResult] = []
    with _log_to(run.file("log.txt")), _sigterm_as_interrupt():
        try:
            log.info("run %s: %d cell(s) of %s", run.path, len(cells), experiment.name)
            for cell in cells:
                result = _run_cell(experiment, cell, run, progress)
                results.append(result)
                if progress is not None:
                    progress.cell_done(len(results), len(cells), result)
            status = _final_status(results)
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
                    "cells": len(cells),
                    "failed_cells": [
                        {"cell": r.cell.id, "status": r.status, "error": r.error} for r in failures
                    ],
                    **report.summary,
                },
            )
            log.info("results:\n%s", markdown)
        except KeyboardInterrupt:
            _finish(run, "interrupted", started)
            log.error("run interrupted after %d of %d cell(s)", len(results), len(cells))
            raise
        except BaseException:
            log.error("run failed:\n%s", traceback.format_exc())
            _finish(run, "failed", started)
            raise
        _finish(run, status, started)
    return RunOutcome(run, status, tables, results)


def _finish(run: RunDir, status: str, started: float) -> None:
    run.update_manifest(status=status, finished=utc_now(), seconds=round(time.time() - started, 3))
