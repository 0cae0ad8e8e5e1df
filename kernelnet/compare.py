"""Comparing runs: config differences and metric differences cell by cell."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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
    left = flatten(yaml.safe_load((a / "config.yaml").read_text()))
    right = flatten(yaml.safe_load((b / "config.yaml").read_text()))
    return [
        (k, left.get(k), right.get(k))
        for k in sorted(set(left) | set(right))
        if left.get(k) != right.get(k)
    ]


def read_metrics(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _key_columns(folder: Path, rows: list[dict[str, str]]) -> list[str]:
    """The columns that identify a row: the swept settings, plus epoch for training curves."""
    try:
        grid = json.loads((folder / "grid.json").read_text())
        labels = list(dict.fromkeys(k for c in grid["cells"] for k in c["params"]))
    except (OSError, json.JSONDecodeError, KeyError):
        labels = []
    columns = list(rows[0]) if rows else []
    keys = [c for c in columns if c in labels] + [c for c in ("epoch",) if c in columns]
    return keys


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class MetricDifference:
    row: str  # "dataset=moons,kernel=rbf" or the row number
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
    """Every metric cell that differs between two runs, rows matched by their settings."""
    rows_a, rows_b = read_metrics(a), read_metrics(b)
    keys = _key_columns(a, rows_a) or _key_columns(b, rows_b)

    def label(row: dict[str, str], index: int) -> str:
        return ",".join(f"{k}={row.get(k)}" for k in keys) if keys else f"row {index + 1}"

    left = {label(r, i): r for i, r in enumerate(rows_a)}
    right = {label(r, i): r for i, r in enumerate(rows_b)}
    differences = []
    for name in list(dict.fromkeys([*left, *right])):
        ra, rb = left.get(name, {}), right.get(name, {})
        for column in dict.fromkeys([*ra, *rb]):
            if column in ignore or column in keys:
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
