"""Finished cells as data: ``cells/<cell id>/result.json`` and ``result-arrays.npz``.

What a cell returns (metrics rows and the artifacts its report draws from) is stored as
JSON plus NumPy arrays read with ``allow_pickle=False``: nothing read back is ever
executed. Artifacts may hold dicts with string keys, lists, tuples (read back as lists),
str, int, float (NaN and infinities included), bool, None, NumPy scalars and arrays of
numbers, booleans or strings; anything else is refused when the cell is saved, so a report
always sees exactly what ``--resume`` will see.

A stored result is tied to the cell's id and the digest of its canonical config; one
that is missing, damaged, or made for other settings is ignored (the cell runs again).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import numpy as np

from kernelnet import safe_read
from kernelnet.config import Cell
from kernelnet.experiments.base import CellResult
from kernelnet.runs import CELLS_DIR, RunDir

log = logging.getLogger(__name__)

FORMAT = 1
RESULT, ARRAYS = "result.json", "result-arrays.npz"
STATUSES = ("complete", "failed", "diverged")
_ARRAY, _FLOAT = "$array", "$float"


class NotData(TypeError):
    """An artifact that cannot be stored as data."""


def encode(value: Any, arrays: dict[str, np.ndarray], where: str = "artifacts") -> Any:
    """A JSON-ready copy of ``value``; arrays go to ``arrays`` and are referenced by name."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or key.startswith("$"):
                raise NotData(f"{where}: key {key!r} (keys must be strings not starting with $)")
            out[key] = encode(item, arrays, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [encode(item, arrays, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufcU":
            raise NotData(f"{where}: array of dtype {value.dtype} is not data")
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {_ARRAY: name}
    if isinstance(value, np.generic):
        return encode(value.item(), arrays, where)
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT: repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise NotData(f"{where}: {type(value).__name__} is not data (use dicts, lists and arrays)")


def decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            return arrays[value[_ARRAY]]
        if set(value) == {_FLOAT}:
            if value[_FLOAT] not in ("nan", "inf", "-inf"):
                raise ValueError(f"bad float {value[_FLOAT]!r}")
            return float(value[_FLOAT])
        return {key: decode(item, arrays) for key, item in value.items()}
    if isinstance(value, list):
        return [decode(item, arrays) for item in value]
    return value


def save_result(run: RunDir, result: CellResult) -> None:
    """Store a finished cell (arrays first, so a result.json on disk always has its arrays)."""
    arrays: dict[str, np.ndarray] = {}
    document = {
        "format": FORMAT,
        "cell": result.cell.id,
        "config_digest": result.cell.digest,
        "status": result.status,
        "error": result.error,
        "rows": encode(result.rows, arrays, "rows"),
        "artifacts": encode(result.artifacts, arrays),
    }
    folder = f"{CELLS_DIR}/{result.cell.id}"
    run.save_npz(f"{folder}/{ARRAYS}", **arrays)
    text = json.dumps(document, indent=1, allow_nan=False) + "\n"
    run.write_text(f"{folder}/{RESULT}", text)


def load_result(run: RunDir, cell: Cell) -> CellResult:
    """The stored result of ``cell``; ValueError (with the reason) if there is none that
    belongs to this cell's settings or it is damaged."""
    folder = f"{CELLS_DIR}/{cell.id}"
    try:
        document = safe_read.read_json(run.file(f"{folder}/{RESULT}"), root=run.path)
        arrays = run.read_arrays(f"{folder}/{ARRAYS}")
    except FileNotFoundError:
        raise ValueError("not stored") from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise ValueError(f"unreadable ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError("not a kernelnet cell result")
    if document.get("cell") != cell.id or document.get("config_digest") != cell.digest:
        raise ValueError("stored for other settings")
    status, error = document.get("status"), document.get("error")
    rows = decode(document.get("rows"), arrays)
    artifacts = decode(document.get("artifacts"), arrays)
    if (
        status not in STATUSES
        or not isinstance(error, str)
        or not isinstance(rows, list)
        or not all(isinstance(row, dict) for row in rows)
        or not isinstance(artifacts, dict)
    ):
        raise ValueError("malformed")
    return CellResult(cell, status, rows, artifacts, error)


def load_results(
    run: RunDir, cells: list[Cell], completed_only: bool = True
) -> dict[int, CellResult]:
    """The stored results of ``cells`` that can be used, by cell index; anything damaged
    or stale is logged and left out (so the cell runs again)."""
    found: dict[int, CellResult] = {}
    for cell in cells:
        try:
            result = load_result(run, cell)
        except (ValueError, KeyError, TypeError) as exc:
            if str(exc) != "not stored":
                log.warning("cell %s: stored result ignored (%s); it runs again", cell.id, exc)
            continue
        if result.ok or not completed_only:
            found[cell.index] = result
    return found
