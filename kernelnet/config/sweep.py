"""Grid expansion: every swept value (a list where one value is expected) is an axis;
the cells are the Cartesian product of the axes, in the schema's field order."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

from kernelnet.config.schema import field_types, is_sweep, spec_of


@dataclass(frozen=True)
class Axis:
    path: str  # dotted config path, e.g. "svm.C"
    label: str  # short name used in cell ids, e.g. "C"
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Cell:
    """One point of the grid: the swept values and the full config they give."""

    index: int
    id: str  # stable id built from the swept settings, e.g. "dataset=moons,kernel=rbf"
    params: dict[str, Any]  # axis label -> value
    config: Any  # an instance of the experiment's schema, every value single


def format_value(value: Any) -> str:
    """Short, round-trippable text for ids and file names (1.0 -> '1', 0.001 -> '0.001')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        short = format(value, "g")
        return short if float(short) == value else repr(value)
    if isinstance(value, list):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def sweep_axes(schema: type, resolved: dict[str, Any], path: str = "") -> list[Axis]:
    """The axes of a resolved config, outermost first."""
    axes: list[Axis] = []
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for name, (kind, _) in field_types(schema).items():
        child = f"{path}.{name}" if path else name
        value = resolved[name]
        if dataclasses.is_dataclass(kind):
            axes.extend(sweep_axes(kind, value, child))
        elif is_sweep(value, kind):
            label = spec_of(fields[name]).label or name
            axes.append(Axis(child, label, tuple(value)))
    labels = [a.label for a in axes]
    return [dataclasses.replace(a, label=a.path) if labels.count(a.label) > 1 else a for a in axes]


def _set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        tree = tree[key]
    tree[leaf] = value


def build(schema: type, values: dict[str, Any]) -> Any:
    """Instantiate a (nested) schema dataclass from a resolved dict of single values."""
    kwargs = {}
    for name, (kind, _) in field_types(schema).items():
        value = values[name]
        kwargs[name] = build(kind, value) if dataclasses.is_dataclass(kind) else value
    return schema(**kwargs)


def _copy_tree(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy_tree(v) if isinstance(v, dict) else v for k, v in tree.items()}


def expand(schema: type, resolved: dict[str, Any]) -> list[Cell]:
    """All cells of the grid a resolved config describes (one cell when nothing is swept)."""
    axes = sweep_axes(schema, resolved)
    cells = []
    for index, combo in enumerate(itertools.product(*(a.values for a in axes))):
        values = _copy_tree(resolved)
        for axis, value in zip(axes, combo):
            _set_path(values, axis.path, value)
        params = {a.label: v for a, v in zip(axes, combo)}
        cell_id = ",".join(f"{k}={format_value(v)}" for k, v in params.items()) or "single"
        cells.append(Cell(index, cell_id, params, build(schema, values)))
    return cells
