"""What an experiment is: a config schema, a function per grid cell, and a report.

The runner owns every shared step (run folder, config dump, logging, status, row
stamping, tables, CSV, the cell store); an experiment only computes and reports.
``run_cell`` gets one cell's config and a :class:`CellContext`: the cell, a writer scoped
to the cell (its files can never collide with another cell's), a Generator derived from
the run seed and the cell's canonical config, a logger and progress. It returns metrics
rows and artifacts that are data (see :mod:`kernelnet.cell_store`). ``report`` turns the
cell results into tables, figures and a summary; it must work with zero, one or many
completed cells.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kernelnet.config import Cell, format_value, param
from kernelnet.config.schema import Spec
from kernelnet.runs import PLOTS_DIR, CellFiles, RunDir
from kernelnet.search import SearchSection
from kernelnet.seeding import named_rng
from kernelnet.tables import Table


@dataclass
class ExperimentConfig:
    """Keys every experiment config has."""

    experiment: str = param("", sweepable=False, help="which experiment this config is for")
    seed: int = param(0, ge=0, help="run seed; each cell's Generator derives from it")
    plots: bool = param(
        True,
        sweepable=False,
        outcome=False,
        help="draw the figures (false, or --no-plots, skips them: numbers are the same)",
    )
    # How the run chooses among its cells (kernelnet.search): about the run, never a cell,
    # so it is left out of every digest, as plots is.
    search: SearchSection = field(
        default_factory=SearchSection, metadata={"spec": Spec(sweepable=False, outcome=False)}
    )


def _no_progress(done: int, total: int, label: str) -> None:
    return None


@dataclass(frozen=True)
class CellContext:
    cell: Cell  # id and swept values; the config itself is passed separately
    files: CellFiles  # the only place a cell writes
    rng: np.random.Generator  # from the run seed and the cell's canonical config
    log: logging.Logger
    progress: Callable[[int, int, str], None] = _no_progress  # (done, total, label) within a cell

    def shared_rng(self, purpose: str) -> np.random.Generator:
        """A Generator every cell of the run gets alike for ``purpose`` (e.g. one fixed
        probe point set that all cells are compared on)."""
        return named_rng(self.cell.config.seed, purpose)


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
    # What the cell logged where the run's logging cannot see it (in a worker process, on a
    # Dask worker), as plain fields of each record, for the runner to emit in the run's
    # process; empty when the cell ran there. Never stored: the run's log.txt has them.
    log_records: list[dict[str, Any]] = field(default_factory=list)

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
    results: list[CellResult]  # every cell in grid order, failed ones included

    @property
    def completed(self) -> list[CellResult]:
        return [r for r in self.results if r.ok]

    @property
    def many(self) -> bool:
        """More than one cell: tables and figures must say which cell they show."""
        return len(self.results) > 1

    def rng(self, purpose: str) -> np.random.Generator:
        """A Generator for run-level work (a numerical check in the report)."""
        return named_rng(self.config["seed"], purpose)

    @property
    def plots(self) -> bool:
        """Figures are wanted (config ``plots``, ``--no-plots``); numbers never depend on it."""
        return bool(self.config.get("plots", True))

    def save_figure(self, name: str, draw: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """A figure about the whole run, ``plots/<name>.png``: ``draw(*args, **kwargs)``,
        called only when figures are wanted."""
        from kernelnet.plotting import save

        if self.plots:
            save(self.run, f"{PLOTS_DIR}/{name}.png", draw(*args, **kwargs))

    def save_cell_figure(
        self, result: CellResult, name: str, draw: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        """A figure of one cell, ``plots/<cell id>/<name>.png`` (drawn only when wanted)."""
        if self.plots:
            self.files(result).save_figure(name, draw(*args, **kwargs))

    def files(self, result: CellResult) -> CellFiles:
        """The writer of one cell (for its per-cell figures)."""
        return self.run.cell_files(result.cell.id)


def label_of(result: CellResult, exclude: tuple[str, ...] = ()) -> str:
    """The swept settings of a cell other than ``exclude``, as ``key=value, ...``."""
    return ", ".join(
        f"{k}={format_value(v)}" for k, v in result.cell.params.items() if k not in exclude
    )


def cell_names(results: list[CellResult], name: Callable[[CellResult], str]) -> list[str]:
    """``name(result)`` for each cell (its construction, its optimizer, ...) when that
    tells the cells apart, else each cell's swept settings."""
    names = [name(r) for r in results]
    return names if len(set(names)) == len(names) else [label_of(r) for r in results]


def figure_suffix(setting: str) -> str:
    """A file-name suffix for the figure of one group of cells: ``_gamma=0.2,C=1`` for the
    setting ``gamma=0.2, C=1`` (values made file-safe), "" for the only group."""
    from kernelnet.config.sweep import safe_text

    if not setting:
        return ""
    pieces = (piece.partition("=") for piece in setting.split(", "))
    text = ",".join(f"{safe_text(key)}={safe_text(value)}" for key, _, value in pieces)
    return "_" + safe_text(text, 120) if len(text) > 120 else "_" + text


def group_cells(results: list[CellResult], within: tuple[str, ...]) -> dict[str, list[CellResult]]:
    """Cells grouped by their swept settings other than the axes in ``within`` (which a
    table or figure lays out itself), in grid order. The key is the group's label, ``""``
    when nothing else is swept."""
    groups: dict[str, list[CellResult]] = {}
    for result in results:
        groups.setdefault(label_of(result, within), []).append(result)
    return groups


def _no_preflight(cells: list[Cell]) -> None:
    return None


def each_cell_data(cells: list[Cell], load: Callable[[Any, Any], Any]) -> Iterator[tuple]:
    """``(cell, load(cell.config.data, seed))`` for every cell, each distinct dataset (and
    split) loaded once: what a preflight checks before a run folder exists."""
    loaded: dict[tuple, Any] = {}
    for cell in cells:
        d = cell.config.data
        key = (d.dataset, d.label_column, d.test_path, d.test_fraction, cell.config.seed)
        if key not in loaded:
            loaded[key] = load(d, cell.config.seed)
        yield cell, loaded[key]


def where(experiment: str, cell: Cell, cells: list[Cell]) -> str:
    """How a preflight line names the cell: ``"mlp cell hidden=64: "``, or ``"mlp: "``."""
    return f"{experiment} cell {cell.id}: " if len(cells) > 1 else f"{experiment}: "


def _each_dataset(cells: list[Cell], load: Callable[[Any, Any], Any]) -> None:
    for _ in each_cell_data(cells, load):
        pass


def verify_datasets(cells: list[Cell]) -> None:
    """Preflight for experiments with a two-class ``data`` section: load each distinct
    dataset (and split) once, so a data problem stops the run before a folder exists."""
    from kernelnet.data.registry import load_binary_data

    _each_dataset(cells, load_binary_data)


def verify_labelled_datasets(cells: list[Cell]) -> None:
    """The same for experiments that take any number of classes."""
    from kernelnet.data.registry import load_labelled

    _each_dataset(cells, load_labelled)


@dataclass(frozen=True)
class Experiment:
    name: str  # the command name, also the config's `experiment:` value (help: catalog.py)
    schema: type
    run_cell: Callable[[Any, CellContext], CellOutput]
    report: Callable[[ReportContext], Report]
    preflight: Callable[[list[Cell]], None] = _no_preflight  # raise DataError early
    row_key: tuple[str, ...] = ()  # what tells a cell's metrics rows apart (e.g. "epoch")
    single_cell: bool = False  # one cell by nature: the runner refuses a sweep
