"""What an experiment is: a config schema, a function per grid cell, and a report.

The runner owns every shared step (run folder, config dump, logging, status, tables,
CSV); an experiment only computes. ``run_cell`` gets one cell's config and a context
with the run folder (to save parameters) and a Generator seeded from the run seed and
the cell id; ``report`` turns all cell results into tables, plots and headline numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kernelnet.config import Cell, param
from kernelnet.runs import RunDir
from kernelnet.tables import Table


@dataclass
class ExperimentConfig:
    """Keys every experiment config has."""

    experiment: str = param("", sweepable=False, help="which experiment this config is for")
    seed: int = param(0, ge=0, help="run seed; each cell's Generator derives from it")


def _no_progress(done: int, total: int, label: str) -> None:
    return None


@dataclass(frozen=True)
class CellContext:
    cell: Cell  # id and swept values; the config itself is passed separately
    run: RunDir
    rng: np.random.Generator
    log: logging.Logger
    progress: Callable[[int, int, str], None] = _no_progress  # (done, total, label) within a cell


@dataclass(frozen=True)
class CellOutput:
    """A cell's metrics rows (lines of metrics.csv: usually one, one per epoch for training
    curves) and in-memory results for the report."""

    rows: list[dict[str, Any]]
    artifacts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    status: str  # "complete" | "failed" | "diverged"
    rows: list[dict[str, Any]]
    artifacts: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    @property
    def row(self) -> dict[str, Any]:
        """The first (for most experiments the only) metrics row."""
        return self.rows[0] if self.rows else {}


@dataclass(frozen=True)
class Report:
    tables: list[Table]
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportContext:
    run: RunDir
    config: dict[str, Any]  # the resolved config (sweeps as lists)
    results: list[CellResult]

    @property
    def completed(self) -> list[CellResult]:
        return [r for r in self.results if r.ok]


def _no_preflight(cells: list[Cell]) -> None:
    return None


def verify_datasets(cells: list[Cell]) -> None:
    """Preflight for experiments with a ``data.dataset`` key: load each dataset once."""
    from kernelnet.data.registry import verify_binary

    verify_binary(cell.config.data.dataset for cell in cells)


@dataclass(frozen=True)
class Experiment:
    name: str  # the command name, also the config's `experiment:` value
    help: str  # one line for --help and listings
    schema: type
    run_cell: Callable[[Any, CellContext], CellOutput]
    report: Callable[[ReportContext], Report]
    preflight: Callable[[list[Cell]], None] = _no_preflight  # raise DataError early
    details: str = ""  # the rest of the command's --help: the maths, defaults, an example
