"""Comparing runs: config differences and metric differences cell by cell."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelnet.runs import RunDir

TIMING_COLUMNS = ("seconds", "fit_seconds")


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: tree}


def config_differences(a: Path, b: Path) -> list[tuple[str, Any, Any]]:
    """(dotted key, value in a, value in b) for every key whose resolved value differs."""
    left = flatten(RunDir(a).read_config())
    right = flatten(RunDir(b).read_config())
    return [
        (k, left.get(k), right.get(k))
        for k in sorted(set(left) | set(right))
        if left.get(k) != right.get(k)
    ]


def _row_key_columns(run: RunDir) -> tuple[str, ...]:
    """The experiment's own row key (e.g. ``epoch``), from the registry."""
    from kernelnet.experiments import REGISTRY

    experiment = REGISTRY.get(run.manifest.get("experiment"))
    return experiment.row_key if experiment is not None else ()


def _swept_labels(run: RunDir) -> set[str]:
    """The swept keys' columns of a run (from grid.json; none if it cannot be read)."""
    try:
        cells = run.read_grid().get("cells", [])
        return {label for cell in cells for label in cell.get("params", {})}
    except (OSError, ValueError, AttributeError, TypeError):
        return set()


def _labelled(rows: list[dict[str, str]], keys: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Rows by ``cell`` plus the row key (``cell=C=1,epoch=3``); a run without a cell
    column (or rows the key does not tell apart) falls back to positions."""
    labelled: dict[str, dict[str, str]] = {}
    for index, row in enumerate(rows):
        if "cell" in row:
            label = ",".join(f"{k}={row.get(k, '')}" for k in ("cell", *keys))
        else:
            label = f"row {index + 1}"
        if label in labelled:
            label = f"{label} (row {index + 1})"
        labelled[label] = row
    return labelled


def labelled_rows(path: Path) -> dict[str, dict[str, str]]:
    """A run's metrics rows by the label :func:`metric_differences` gives them."""
    run = RunDir.open(path)
    return _labelled(run.read_metrics(), _row_key_columns(run))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class MetricDifference:
    row: str  # "cell=dataset=moons,kernel=rbf" (plus the row key, e.g. ",epoch=3")
    column: str
    a: str
    b: str

    @property
    def delta(self) -> float | None:
        left, right = _number(self.a), _number(self.b)
        return None if left is None or right is None else right - left


def metric_differences(
    a: Path,
    b: Path,
    ignore: tuple[str, ...] = TIMING_COLUMNS,
) -> list[MetricDifference]:
    """Every metric value that differs between two runs, rows matched by their cell and
    the experiment's row key; a row present in one run only differs in every column."""
    run_a, run_b = RunDir.open(a), RunDir.open(b)
    keys = _row_key_columns(run_a) or _row_key_columns(run_b)
    left = _labelled(run_a.read_metrics(), keys)
    right = _labelled(run_b.read_metrics(), keys)
    # A row's swept values are its cell's identity (what ``cell`` names), shown already as
    # config differences: two grading runs of a class moved elsewhere differ in every path.
    identity = {"cell", *keys, *_swept_labels(run_a), *_swept_labels(run_b)}
    differences = []
    for name in list(dict.fromkeys([*left, *right])):
        ra, rb = left.get(name, {}), right.get(name, {})
        for column in dict.fromkeys([*ra, *rb]):
            if column in ignore or column in identity:
                continue
            va, vb = ra.get(column, ""), rb.get(column, "")
            na, nb = _number(va), _number(vb)
            same = va == vb or (
                na is not None
                and nb is not None
                and (na == nb or (math.isnan(na) and math.isnan(nb)))
            )
            if not same:
                differences.append(MetricDifference(name, column, va, vb))
    return differences
