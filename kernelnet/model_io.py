"""Fitted estimators as data: ``model.json`` (which estimator, its parameters, its learned
state) and ``model-arrays.npz`` (read with ``allow_pickle=False``). Loading picks the class
from a fixed list and sets data on it; nothing read from disk is executed.

Each estimator says what its learned state is (``_state()``, a tree of data) and takes it
back (``_set_state(state)``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kernelnet.cell_store import decode, encode
from kernelnet.runs import read_arrays

MODEL, MODEL_ARRAYS = "model.json", "model-arrays.npz"


def _classes() -> dict[str, type]:
    from kernelnet.knn import KNeighborsClassifier
    from kernelnet.nn.estimator import MLPClassifier
    from kernelnet.svm.estimator import KernelSVM
    from kernelnet.svm.linear import LinearSVM

    return {c.__name__: c for c in (KernelSVM, LinearSVM, MLPClassifier, KNeighborsClassifier)}


def save_model(files: Any, estimator: Any) -> None:
    """Write a fitted estimator into a cell's folder (``files`` is its CellFiles)."""
    arrays: dict[str, np.ndarray] = {}
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in estimator.get_params().items()}
    params = {k: v for k, v in params.items() if not isinstance(v, np.random.Generator)}
    document = {
        "format": 1,
        "estimator": type(estimator).__name__,
        "params": encode(params, arrays, "params"),
        "state": encode(estimator._state(), arrays, "state"),
    }
    files.save_npz(MODEL_ARRAYS, **arrays)
    files.write_json(MODEL, document)


def load_model(folder: Path) -> Any:
    """The estimator saved in ``folder``; ValueError saying why if there is none usable."""
    try:
        document = json.loads((folder / MODEL).read_text(encoding="utf-8"))
        arrays = read_arrays(folder / MODEL_ARRAYS)
    except FileNotFoundError:
        raise ValueError(f"{folder}: this cell saved no estimator") from None
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{folder}: the saved model is unreadable ({exc})") from None
    classes = _classes()
    name = document.get("estimator") if isinstance(document, dict) else None
    if name not in classes:
        raise ValueError(f"{folder}: not a kernelnet model ({name!r})")
    cls = classes[name]
    params = decode(document["params"], arrays)
    valid = set(cls().get_params())
    estimator = cls(**{k: v for k, v in params.items() if k in valid})
    estimator._set_state(decode(document["state"], arrays))
    return estimator
