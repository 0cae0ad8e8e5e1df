"""Grid expansion: every swept value (a list where one value is expected) is an axis;
the cells are the Cartesian product of the axes, in the schema's field order.

A cell's id is built from its swept values after validation (so ``1`` and ``1.0`` in a
float field give the same id, and :func:`~kernelnet.config.schema.resolve` refuses a sweep
that lists one value twice). Ids are used as file and folder names: a value whose text
holds anything but letters, digits and ``. _ + -`` is slugged and given a short hash of
its exact text, so ids stay unique and safe (``construction=k1_k2~3fa9c1`` for
``k1 * k2``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from kernelnet.config.distributions import Dimension, candidates, is_distribution
from kernelnet.config.schema import field_types, is_sweep, outcome_values, spec_of
from kernelnet.errors import ConfigError


@dataclass(frozen=True)
class Axis:
    path: str  # dotted config path, e.g. "svm.C"
    label: str  # short name used in cell ids, e.g. "C"
    values: tuple[Any, ...]
    id_text: Any = None  # value -> its text in a cell id (None: the value's own text)


MAX_CELLS = 10_000  # the largest grid run without --max-cells
DEFAULT_TRIALS = 10  # random-search candidates drawn when search.trials is not given
SINGLE_CELL_ID = "single"  # the id of the one cell of a config that sweeps nothing
_SAFE = re.compile(r"[A-Za-z0-9._+-]+")
_MAX_VALUE_TEXT = 40
_MAX_ID = 160


@dataclass(frozen=True)
class Cell:
    """One point of the grid: the swept values and the full config they give."""

    index: int
    id: str  # unique, file-safe id built from the swept values, e.g. "dataset=moons,C=1"
    params: dict[str, Any]  # axis label -> value
    config: Any  # an instance of the experiment's schema, every value single
    paths: dict[str, str] = dataclasses.field(default_factory=dict)  # label -> dotted key

    @property
    def values(self) -> dict[str, Any]:
        """The cell's full config as a plain nested dict of single values."""
        return dataclasses.asdict(self.config)

    @property
    def digest(self) -> str:
        """sha256 of the cell's canonical full config, a user's data file counted by its
        content (:func:`data_identity`): what its randomness and stored results are tied to,
        whatever grid it sits in and however the file's path is spelled."""
        return canonical_digest(data_identity(outcome_values(type(self.config), self.values)))


def canonical_digest(values: Any) -> str:
    """sha256 of a config tree, independent of key order and formatting."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


# The config keys (section, field) that may name a user's data file. A shipped set's name
# (moons, iris_binary, mnist) is not a path and stays as it is.
DATA_FILE_KEYS = (("data", "dataset"), ("data", "test_path"))
CONTENT_KEY = "$sha256"  # {"$sha256": hex} stands for a file: no config value is a dict


def data_identity(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with every :data:`DATA_FILE_KEYS` value that names an existing regular
    data file replaced by ``{"$sha256": <sha256 of its bytes>}``.

    ``pets.csv``, ``./pets.csv``, its absolute path and a copy under another name are the
    same data, so they give one digest (one Generator, one stored result); a file with one
    value changed is other data (a ``--resume`` after an edit runs its cells again). A
    value that names no readable file is left as written: the experiment's preflight says
    what is wrong with it.
    """
    out = dict(values)
    for section, key in DATA_FILE_KEYS:
        part = out.get(section)
        if not isinstance(part, dict) or not isinstance(part.get(key), str):
            continue
        from kernelnet.data.files import file_content_digest  # NumPy: only for a digest

        content = file_content_digest(part[key], must_look_like_path=key == "dataset")
        if content is not None:
            out[section] = {**part, key: {CONTENT_KEY: content}}
    return out


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def safe_text(text: str, limit: int = _MAX_VALUE_TEXT) -> str:
    """``text`` if it is short and made of file-safe characters, else a slug of it plus a
    short hash of the exact text (so two different texts never give the same result)."""
    if _SAFE.fullmatch(text) and len(text) <= limit:
        return text
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_.")[: limit - 8] or "value"
    return f"{slug}~{_short_hash(text)}"


def _id_text(value: Any) -> str:
    """A value as it appears in a cell id: a list of numbers joins its items with ``_``
    (``[256, 128]`` -> ``256_128``; no number's text holds ``_``), anything else is
    :func:`format_value` made file-safe."""
    if isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        return "_".join(format_value(v) for v in value) or "empty"
    return safe_text(format_value(value))


def cell_id(params: dict[str, Any], namers: dict[str, Any] | None = None) -> str:
    """``label=value,...`` in axis order, each value as :func:`format_value` gives it (or as
    ``namers[label]`` names it), made file-safe; ``single`` when nothing is swept."""
    if not params:
        return SINGLE_CELL_ID
    namers = namers or {}
    text = ",".join(
        f"{k}={safe_text(namers[k](v)) if namers.get(k) else _id_text(v)}"
        for k, v in params.items()
    )
    if len(text) > _MAX_ID:
        text = f"{text[: _MAX_ID - 8]}~{_short_hash(text)}"
    return text


def format_value(value: Any) -> str:
    """Short, round-trippable text for ids and file names (1.0 -> '1', 0.001 -> '0.001')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        short = format(value, "g")
        return short if float(short) == value else repr(value)
    if isinstance(value, list):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if is_distribution(value):  # a searched setting: log_uniform(0.1,10)
        ((name, args),) = value.items()
        return f"{name}({','.join(format_value(v) for v in args)})"
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
            spec = spec_of(fields[name])
            axes.append(Axis(child, spec.label or name, tuple(value), spec.id_text))
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


def search_dimensions(
    schema: type, resolved: dict[str, Any], path: str = "", taken: tuple[str, ...] = ()
) -> list[Dimension]:
    """The distribution-valued settings of a resolved config (random search), in schema
    order, each labelled like an axis (its dotted key when the short label is taken)."""
    dimensions: list[Dimension] = []
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for name, (kind, _) in field_types(schema).items():
        child = f"{path}.{name}" if path else name
        value = resolved[name]
        if dataclasses.is_dataclass(kind):
            dimensions.extend(search_dimensions(kind, value, child))
        elif is_distribution(value):
            ((distribution, args),) = value.items()
            label = spec_of(fields[name]).label or name
            dimensions.append(Dimension(child, label, distribution, tuple(args)))
    if path:
        return dimensions
    labels = [d.label for d in dimensions] + list(taken)
    return [
        dataclasses.replace(d, label=d.path) if labels.count(d.label) > 1 else d for d in dimensions
    ]


def trials_of(resolved: dict[str, Any]) -> int:
    """How many random-search candidates a config draws (``search.trials``)."""
    return int(resolved.get("search", {}).get("trials", DEFAULT_TRIALS))


def expand(schema: type, resolved: dict[str, Any], max_cells: int = MAX_CELLS) -> list[Cell]:
    """All cells of the grid a resolved config describes (one cell when nothing is swept):
    the product of its sweeps and, when settings are distributions, of the random-search
    candidates drawn for them (one more axis). The size is computed first: above
    ``max_cells`` it is a config error."""
    axes = sweep_axes(schema, resolved)
    dimensions = search_dimensions(schema, resolved, taken=tuple(a.label for a in axes))
    drawn = candidates(dimensions, resolved["seed"], trials_of(resolved)) if dimensions else [()]
    size = math.prod(len(a.values) for a in axes) * len(drawn)
    if size > max_cells:
        shape = " x ".join(
            [f"{len(a.values)} {a.path}" for a in axes]
            + ([f"{len(drawn)} search candidates"] if dimensions else [])
        )
        raise ConfigError(
            f"the grid has {size:,} cells ({shape}), above the cap of {max_cells:,}; "
            "sweep fewer values, or raise the cap with --max-cells N"
        )
    cells = []
    namers = {a.label: a.id_text for a in axes if a.id_text is not None}
    paths = {a.label: a.path for a in axes} | {d.label: d.path for d in dimensions}
    for index, (combo, candidate) in enumerate(
        itertools.product(itertools.product(*(a.values for a in axes)), drawn)
    ):
        values = _copy_tree(resolved)
        params = {}
        for label, value in zip(list(paths), (*combo, *candidate), strict=True):
            _set_path(values, paths[label], value)
            params[label] = value
        cells.append(Cell(index, cell_id(params, namers), params, build(schema, values), paths))
    _refuse_same_ids(cells)
    return cells


def with_value(schema: type, cell: Cell, path: str, label: str, value: Any, index: int) -> Cell:
    """``cell`` with one more setting fixed (successive halving's resource for a round):
    its own id, config and digest, as if the value had been swept."""
    values = cell.values
    _set_path(values, path, value)
    params = {**cell.params, label: value}
    return Cell(index, cell_id(params), params, build(schema, values), {**cell.paths, label: path})


def _refuse_same_ids(cells: list[Cell]) -> None:
    """Two cells with one id would share a folder (values named alike: two submissions
    called ``alice``, one a folder and one a zip)."""
    seen: dict[str, Cell] = {}
    for cell in cells:
        other = seen.setdefault(cell.id, cell)
        if other is not cell:
            both = " and ".join(
                ", ".join(f"{k}={format_value(v)}" for k, v in c.params.items())
                for c in (other, cell)
            )
            raise ConfigError(f"two cells would both be named {cell.id!r} ({both}); rename one")
