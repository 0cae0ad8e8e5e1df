"""Choosing settings: the ``search`` section every experiment config has.

Candidates are the cells of the config's grid (its sweeps, times ``search.trials`` random
draws for the settings given as distributions: :mod:`kernelnet.config.distributions`).
``search.strategy`` decides what is run:

- ``all`` (the default): every candidate, as a grid always was;
- ``halving``: successive halving. Round 0 runs every candidate with ``search.resource``
  (an integer setting: epochs, a training-set size) at ``search.min_resource``; each round
  keeps the best ``1/search.factor`` of the candidates (at least one) by ``search.metric``
  and multiplies the resource by the factor, until one candidate is left or the resource
  reaches the config's own value of that setting (the last round runs there).

Every candidate at every resource is an ordinary cell (its id names the resource, e.g.
``C=1,gamma=0.1,epochs=9``), so workers, Dask, ``--resume``, ``runs compare`` and the report
work as for any grid, and a cell gives the same numbers inside a search as alone. The rounds
are a function of the cells' stored results, so a resumed search reaches the same rounds.

The section describes the run, not a cell: it is left out of every digest (like
``plots``), so a cell's Generator and stored result do not depend on how it was searched for,
and a resumed run with other search settings reuses every stored cell they still ask for.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kernelnet.config.schema import field_types, param
from kernelnet.config.sweep import Cell, format_value, search_dimensions, with_value
from kernelnet.errors import ConfigError
from kernelnet.tables import Table

if TYPE_CHECKING:
    from kernelnet.experiments.base import CellResult

STRATEGIES = ("all", "halving")
# The metric a search ranks by when search.metric is not given: the first of these its
# cells' rows have (cross-validated scores first: ranking on the test set would be cheating).
DEFAULT_METRICS = ("cv_mean", "val_accuracy", "validation_accuracy", "best_val_accuracy")


@dataclass
class SearchSection:
    strategy: str = param(
        "all",
        choices=STRATEGIES,
        sweepable=False,
        help="all: run every candidate; halving: successive halving over search.resource",
    )
    trials: int = param(
        10,
        ge=1,
        le=10_000,
        sweepable=False,
        help="random-search candidates drawn for the settings given as distributions",
    )
    metric: str = param(
        "",
        sweepable=False,
        help="the metrics column a search ranks by (default: cv_mean, else a validation "
        "accuracy); the last row of a cell counts",
    )
    goal: str = param("max", choices=("max", "min"), sweepable=False, help="max or min")
    resource: str = param(
        "",
        sweepable=False,
        help="halving: the integer setting each round grows (e.g. svm.epochs, mlp.epochs)",
    )
    min_resource: int = param(1, ge=1, sweepable=False, help="halving: round 0's resource")
    factor: int = param(3, ge=2, le=100, sweepable=False, help="halving: keep 1/factor")


def section(resolved: dict[str, Any]) -> SearchSection:
    return SearchSection(**resolved.get("search", {}))


def metric_value(result: CellResult, metric: str) -> float | None:
    """The cell's score: ``metric`` in its last row with one (None: failed, or no score)."""
    if not result.ok:
        return None
    for row in reversed(result.rows):
        value = row.get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) if math.isfinite(value) else None
    return None


def choose_metric(settings: SearchSection, results: list[CellResult]) -> str:
    """``search.metric``, or the first of :data:`DEFAULT_METRICS` the rows have."""
    if settings.metric:
        return settings.metric
    columns = {key for result in results for row in result.rows for key in row}
    for name in DEFAULT_METRICS:
        if name in columns:
            return name
    raise ConfigError(
        "search: the cells' rows have no cross-validated or validation score to rank by; "
        "turn on cross-validation (--set cv.folds=5) or name a column with search.metric"
    )


def ranked(results: list[CellResult], metric: str, goal: str) -> list[CellResult]:
    """Best first; cells without a score last. Ties go to the smaller spread when the metric
    is a mean with a ``_std`` beside it (``cv_mean``, ``cv_std``: as kernelnet.cv's best
    cell), then to grid order."""
    sign = -1.0 if goal == "max" else 1.0
    spread = f"{metric[: -len('_mean')]}_std" if metric.endswith("_mean") else None

    def key(pair: tuple[int, CellResult]) -> tuple[int, float, float, int]:
        score = metric_value(pair[1], metric)
        std = metric_value(pair[1], spread) if spread else None
        return (
            score is None,
            0.0 if score is None else sign * score,
            0.0 if std is None else std,
            pair[0],
        )

    return [result for _, result in sorted(enumerate(results), key=key)]


@dataclass(frozen=True)
class Halving:
    """The rounds of successive halving over ``candidates`` (the grid's cells)."""

    schema: type
    resolved: dict[str, Any]
    candidates: tuple[Cell, ...]

    @property
    def settings(self) -> SearchSection:
        return section(self.resolved)

    @property
    def full_resource(self) -> int:
        """The resource's value in the config: the last round's."""
        value: Any = self.resolved
        for part in self.settings.resource.split("."):
            value = value[part]
        return value

    @property
    def label(self) -> str:
        return self.settings.resource.rsplit(".", 1)[-1]

    def resource(self, round_index: int) -> int:
        grown = self.settings.min_resource * self.settings.factor**round_index
        return min(grown, self.full_resource)

    def round_cells(self, value: int, survivors: list[Cell], first_index: int) -> list[Cell]:
        """The cells of a round: each surviving candidate at the round's resource."""
        return [
            with_value(
                self.schema, cell, self.settings.resource, self.label, value, first_index + i
            )
            for i, cell in enumerate(survivors)
        ]

    def survivors(self, candidates: list[Cell], results: list[CellResult]) -> list[Cell]:
        """The best ``1/factor`` (at least one) of a round's candidates, in grid order."""
        metric = choose_metric(self.settings, results)
        if all(metric_value(result, metric) is None for result in results):
            columns = sorted({key for result in results for row in result.rows for key in row})
            raise ConfigError(
                f"search.metric: no cell of the round has a number in {metric!r} to rank by "
                f"(the rows have: {', '.join(columns) or 'nothing'})"
            )
        keep = max(1, math.ceil(len(candidates) / self.settings.factor))
        by_id = {result.cell.id: candidate for candidate, result in zip(candidates, results)}
        best = {r.cell.id for r in ranked(results, metric, self.settings.goal)[:keep]}
        return [by_id[i] for i in by_id if i in best]


def check(schema: type, resolved: dict[str, Any]) -> None:
    """A halving search names an integer setting that is one value: refused in one line
    before anything runs otherwise."""
    settings = section(resolved)
    if settings.strategy != "halving":
        return  # search.resource and its bounds only matter to halving
    if not settings.resource:
        raise ConfigError(
            "search.strategy=halving needs search.resource: the integer setting each round "
            "grows (e.g. svm.epochs)"
        )
    kind, value = _setting(schema, resolved, settings.resource)
    if kind is not int or not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(
            f"search.resource: {settings.resource} must be one whole-number setting "
            f"(its value is {format_value(value)})"
        )
    if settings.min_resource > value:
        raise ConfigError(
            f"search.min_resource ({settings.min_resource}) is above {settings.resource} "
            f"({value}), the last round's resource"
        )


def _setting(schema: type, resolved: dict[str, Any], path: str) -> tuple[Any, Any]:
    kind: Any = schema
    value: Any = resolved
    for part in path.split("."):
        types = field_types(kind) if dataclasses.is_dataclass(kind) else {}
        if part not in types:
            raise ConfigError(f"search.resource: no setting {path!r}")
        kind, value = types[part][0], value[part]
    return kind, value


def best_summary(
    results: list[CellResult], resolved: dict[str, Any], config_path: str
) -> dict[str, Any] | None:
    """summary.json's ``search``: the best cell, its score, its test score and the command
    that reruns exactly it (None when no cell has a score)."""
    settings = section(resolved)
    if not results:
        return None
    try:
        metric = choose_metric(settings, results)
    except ConfigError:
        return None
    best = ranked(results, metric, settings.goal)[0]
    score = metric_value(best, metric)
    if score is None:
        return None
    return {
        "strategy": settings.strategy,
        "metric": metric,
        "goal": settings.goal,
        "best_cell": best.cell.id,
        "best_score": score,
        "best_test_accuracy": metric_value(best, "test_accuracy"),
        "cells_run": len(results),
        "rerun": rerun_command(best.cell, config_path),
    }


def rerun_command(cell: Cell, config_path: str) -> str:
    """The command that runs exactly ``cell`` again: the run's saved config with every
    swept or searched setting fixed to the cell's value (and no search left to do)."""
    fixed = [
        f"--set {shlex.quote(f'{path}={format_value(cell.params[label])}')}"
        for label, path in cell.paths.items()
    ]
    return " ".join(
        ["kernelnet", "run", shlex.quote(config_path), *fixed, "--set", "search.strategy=all"]
    )


class Plan:
    """What a run executes, round by round: :meth:`first` cells, then :meth:`next` ones
    given the results of the round before (an empty list: the run is done)."""

    def __init__(self, schema: type, resolved: dict[str, Any], cells: list[Cell]):
        check(schema, resolved)
        self.resolved = resolved
        self.halving = (
            Halving(schema, resolved, tuple(cells))
            if section(resolved).strategy == "halving" and len(cells) > 1
            else None
        )
        self.cells = cells
        self.searched = bool(search_dimensions(schema, resolved)) or bool(section(resolved).metric)
        self.candidates: list[Cell] = list(cells)
        self.resource = 0  # the resource of the round run last
        self.rounds = 0  # rounds planned so far
        self.last_round: list[Cell] = []
        self.planned = 0

    def _round(self, value: int) -> list[Cell]:
        self.resource, self.rounds = value, self.rounds + 1
        self.last_round = self.halving.round_cells(value, self.candidates, self.planned)
        self.planned += len(self.last_round)
        return self.last_round

    def first(self) -> list[Cell]:
        if self.halving is None:
            self.planned, self.last_round = len(self.cells), self.cells
            return self.cells
        return self._round(self.halving.resource(0))

    def next(self, results: list[CellResult]) -> list[Cell]:
        """The next round's cells, from the results of the round just run (in its order)."""
        if self.halving is None or self.resource >= self.halving.full_resource:
            return []
        self.candidates = self.halving.survivors(self.candidates, results)
        grown = self.halving.resource(self.rounds)
        # A single survivor has nothing left to be compared with: it goes to the full budget.
        return self._round(self.halving.full_resource if len(self.candidates) == 1 else grown)

    @property
    def chose(self) -> bool:
        """Whether the run searched (halving, distributions or a named metric): then its
        best candidate is a table of its own; a plain cross-validated grid's best is in the
        experiment's CV table."""
        return self.halving is not None or self.searched

    def summary(self, results: list[CellResult], config_path: str) -> dict[str, Any] | None:
        """summary.json's ``search`` entry: the best of the last round (halving compares
        candidates at the full resource only)."""
        cross_validated = any("cv_mean" in row for r in results for row in r.rows)
        if not (self.halving or self.searched or cross_validated):
            return None  # a plain grid: nothing was chosen
        final = {cell.id for cell in self.last_round}
        pool = [r for r in results if r.cell.id in final] if self.halving else results
        entry = best_summary(pool, self.resolved, config_path)
        if entry is not None:
            entry["cells_run"] = len(results)
            if self.halving:
                entry["candidates"] = len(self.cells)
        return entry


def search_table(entry: dict[str, Any]) -> Table:
    """The best candidate in one table: what the run chose, and how to run it again."""
    score = f"{entry['best_score']:.6g}"
    test = entry.get("best_test_accuracy")
    how = (
        f"successive halving: {entry['candidates']} candidates, {entry['cells_run']} cells"
        if entry["strategy"] == "halving"
        else f"{entry['cells_run']} cells"
    )
    return Table(
        f"Best by {entry['metric']} ({entry['goal']}; {how})",
        ["cell", entry["metric"], "test accuracy"],
        [[entry["best_cell"], score, "" if test is None else f"{100 * test:.2f}%"]],
        note=f"rerun exactly it: {entry['rerun']}",
        align=["left", "right", "right"],
    )
