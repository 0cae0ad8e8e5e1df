"""Fitted estimators as data: ``model.json`` (which estimator, its parameters, its learned
state) and ``model-arrays.npz`` (plain arrays, never unpickled). Loading picks the class
from a fixed list and sets data on it; nothing read from disk is executed.

Each estimator says what its learned state is (``_state()``, a tree of data), how a saved
one is checked (``_check_state(view)``, next to it) and takes it back
(``_set_state(state)``). A model read back is checked as a whole before any of it is used:
both files through the bounded reader (:mod:`kernelnet.safe_read`: regular files inside the
run folder, sizes and JSON depth bounded, archive members checked before inflating), the
document's shape, every parameter against the estimator's ``_parameter_constraints``, every
state key, dtype, shape (relative to each other: coefficients to support vectors to
``n_features_in``, layer to layer) and finiteness, and finally one prediction. Anything
wrong is one :class:`~kernelnet.errors.ModelError` naming the file and what is wrong, at
load: never a KeyError, IndexError or matmul error at predict time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from kernelnet import safe_read
from kernelnet.errors import ModelError

MODEL, MODEL_ARRAYS = "model.json", "model-arrays.npz"
FORMAT = 1
MODEL_JSON_DEPTH = 16  # a saved model nests 5 deep; anything far deeper is not one
_ARRAY, _FLOAT = "$array", "$float"  # cell_store.encode's markers
_DOCUMENT_KEYS = ("format", "estimator", "params", "state")
_UNSAVED_PARAMS = ("random_state",)  # a Generator given as random_state is not saved
# Parameters an estimator gained after models were saved without them: absent, a saved model
# is read with the default, which is what every model saved before had.
_ADDED_LATER = {"LinearSVM": ("update",)}


def _classes() -> dict[str, type]:
    from kernelnet.knn import KNeighborsClassifier
    from kernelnet.nn.estimator import MLPClassifier
    from kernelnet.svm.estimator import KernelSVM
    from kernelnet.svm.linear import LinearSVM

    return {c.__name__: c for c in (KernelSVM, LinearSVM, MLPClassifier, KNeighborsClassifier)}


def save_model(files: Any, estimator: Any) -> None:
    """Write a fitted estimator into a cell's folder (``files`` is its CellFiles)."""
    from kernelnet.cell_store import encode

    arrays: dict[str, np.ndarray] = {}
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in estimator.get_params().items()}
    params = {k: v for k, v in params.items() if not isinstance(v, np.random.Generator)}
    document = {
        "format": FORMAT,
        "estimator": type(estimator).__name__,
        "params": encode(params, arrays, "params"),
        "state": encode(estimator._state(), arrays, "state"),
    }
    files.save_npz(MODEL_ARRAYS, **arrays)
    files.write_json(MODEL, document)


def _kind(value: Any) -> str:
    """What a value read back is, for a message."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


class StateView:
    """One object of a saved model's state, read key by key with checks. Every refusal is
    a ModelError naming the file and the key's path (``state.pairs[2].dual_coef``)."""

    def __init__(self, value: Any, where: str, file: Path):
        self.file, self.where = file, where
        if not isinstance(value, dict):
            raise ModelError(f"{file}: {where}: expected a JSON object, got {_kind(value)}")
        self.value = value

    def fail(self, message: str, key: str | None = None) -> ModelError:
        return ModelError(
            f"{self.file}: {self.where if key is None else self.path(key)}: {message}"
        )

    def path(self, key: str) -> str:
        return f"{self.where}.{key}"

    def require(self, condition: Any, message: str, key: str | None = None) -> None:
        if not condition:
            raise self.fail(message, key)

    def keys(self, *names: str) -> None:
        """Exactly these keys: a missing one or one no version of kernelnet writes is refused."""
        problem = _keys_problem(self.value, names)
        if problem:
            raise self.fail(f"keys {problem} (expected {list(names)})")

    def _get(self, key: str) -> Any:
        if key not in self.value:
            raise self.fail("missing", key)
        return self.value[key]

    def integer(self, key: str, low: int = 0) -> int:
        value = self._get(key)
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
        self.require(ok, f"expected an integer >= {low}, got {_kind(value)}", key)
        return int(value)

    def number(self, key: str, low: float | None = None) -> float:
        """A finite JSON number (at least ``low``)."""
        value = self._get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
        self.require(ok, f"expected a finite number, got {_kind(value)}", key)
        if low is not None:
            self.require(value >= low, f"expected a number >= {low}, got {value!r}", key)
        return float(value)

    def integers(self, key: str, low: int = 0) -> list[int]:
        """A JSON list of integers >= ``low``."""
        value = self._get(key)
        ok = isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= low for v in value
        )
        self.require(ok, f"expected a list of integers >= {low}, got {_kind(value)}", key)
        return [int(v) for v in value]

    def array(self, key: str, kinds: str, shape: tuple[int | None, ...]) -> np.ndarray:
        """An array from model-arrays.npz of a dtype kind in ``kinds`` ("f" float, "iu"
        integers, "biufU" labels) and ``shape`` (None: any extent). Floats must be finite
        (no saved state holds NaN or infinity) and come back as float64."""
        value = self._get(key)
        self.require(isinstance(value, np.ndarray), f"expected an array, got {_kind(value)}", key)
        self.require(
            value.dtype.kind in kinds, f"expected {_kinds_text(kinds)}, got {value.dtype}", key
        )
        expected = "(" + ", ".join("*" if n is None else str(n) for n in shape) + ")"
        fits = value.ndim == len(shape) and all(
            n is None or n == got for n, got in zip(shape, value.shape)
        )
        self.require(fits, f"expected shape {expected}, got {value.shape}", key)
        if value.dtype.kind == "f":
            self.require(np.isfinite(value).all(), "holds NaN or infinity", key)
            return value.astype(np.float64, copy=False)
        return value

    def labels(
        self, key: str, at_least: int, at_most: int | None = None, ordered: bool = True
    ) -> np.ndarray:
        """Class labels: 1-D, finite, distinct and (``ordered``) sorted, as ``np.unique``
        gives them."""
        classes = self.array(key, "biufU", (None,))
        if classes.size < at_least or (at_most is not None and classes.size > at_most):
            span = f"{at_least} or more" if at_most is None else f"{at_least} to {at_most}"
            wanted = str(at_least) if at_most == at_least else span
            raise self.fail(f"expected {wanted} classes, got {classes.size}", key)
        if ordered:
            distinct = np.array_equal(np.unique(classes), classes)
            self.require(distinct, "classes not distinct and sorted", key)
        else:
            self.require(np.unique(classes).size == classes.size, "classes not distinct", key)
        return classes

    def objects(self, key: str, length: int) -> list[StateView]:
        """A JSON list of ``length`` objects, each as a view."""
        value = self._get(key)
        ok = isinstance(value, list) and len(value) == length
        self.require(ok, f"expected a list of {length}, got {_kind(value)}", key)
        return [
            StateView(item, f"{self.path(key)}[{i}]", self.file) for i, item in enumerate(value)
        ]

    def view(self, key: str) -> StateView:
        return StateView(self._get(key), self.path(key), self.file)


def _keys_problem(found: dict, expected: tuple[str, ...] | list[str], unknown="unexpected") -> str:
    """What is wrong with ``found``'s keys (missing ones, then unknown ones), "" if nothing."""
    missing = [name for name in expected if name not in found]
    extra = sorted(str(key) for key in found if key not in expected)
    said = [f"missing {missing}" if missing else "", f"{unknown} {extra}" if extra else ""]
    return ", ".join(part for part in said if part)


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer too large for a float
        return False


def _kinds_text(kinds: str) -> str:
    names = "/".join(
        {"b": "bool", "i": "int", "u": "uint", "f": "float", "U": "str"}[k] for k in kinds
    )
    return f"{'an' if names[0] in 'aeiou' else 'a'} {names} array"


class _Decoder:
    """cell_store's encoding read back strictly: every array reference must name an array
    of the archive (and every array of the archive must be named), markers must be exact."""

    def __init__(self, arrays: dict[str, np.ndarray], file: Path):
        self.arrays, self.file, self.used = arrays, file, set()

    def __call__(self, value: Any, where: str) -> Any:
        if isinstance(value, dict):
            if any(isinstance(key, str) and key.startswith("$") for key in value):
                return self._marker(value, where)
            return {key: self(item, f"{where}.{key}") for key, item in value.items()}
        if isinstance(value, list):
            return [self(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return value

    def _marker(self, value: dict, where: str) -> Any:
        if set(value) == {_ARRAY}:
            name = value[_ARRAY]
            if isinstance(name, str) and name in self.arrays:
                self.used.add(name)
                return self.arrays[name]
            shown = repr(name) if isinstance(name, str) else _kind(name)
            raise ModelError(
                f"{self.file}: {where}: names array {shown}, which {MODEL_ARRAYS} does not hold"
            )
        if set(value) == {_FLOAT} and value[_FLOAT] in ("nan", "inf", "-inf"):
            return float(value[_FLOAT])
        raise ModelError(f"{self.file}: {where}: not a value kernelnet writes ({_kind(value)})")


def _refused(path: Path, exc: BaseException) -> ModelError:
    text = str(exc) or type(exc).__name__
    return ModelError(text if str(path) in text else f"{path}: {text}")


def _read(folder: Path, root: Path) -> tuple[Any, dict[str, np.ndarray]]:
    document_path, arrays_path = folder / MODEL, folder / MODEL_ARRAYS
    try:
        document = safe_read.read_json(
            document_path, safe_read.RUN_FILE_BYTES, root=root, max_depth=MODEL_JSON_DEPTH
        )
    except FileNotFoundError:
        raise ModelError(f"{folder}: this cell saved no estimator") from None
    except (OSError, ValueError) as exc:  # ReadRefused, JSON, UTF-8, depth
        raise _refused(document_path, exc) from None
    try:
        # bounded by the memory limit (KERNELNET_MEMORY_LIMIT), declared sizes first
        arrays = safe_read.read_npz(arrays_path, root=root)
    except FileNotFoundError:
        raise ModelError(f"{arrays_path}: missing (it holds the arrays of {MODEL})") from None
    # RuntimeError: zipfile's answer to an encrypted member
    except (OSError, ValueError, RuntimeError) as exc:
        raise _refused(arrays_path, exc) from None
    return document, arrays


def _params(cls: type, params: Any, file: Path) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise ModelError(f"{file}: params: expected a JSON object, got {_kind(params)}")
    optional = (*_UNSAVED_PARAMS, *_ADDED_LATER.get(cls.__name__, ()))
    expected = [n for n in cls._param_names() if n in params or n not in optional]
    problem = _keys_problem(params, expected, unknown="unknown")
    if problem:
        raise ModelError(f"{file}: params: {problem} for {cls.__name__}")
    return params


def load_model(folder: Path, root: Path | None = None) -> Any:
    """The estimator saved in ``folder`` (a run's ``cells/<cell id>``), checked as a whole;
    ModelError saying which file and what is wrong otherwise. Reads stay inside ``root``
    (default: the run folder holding ``cells/``, else ``folder``)."""
    folder = Path(folder)
    if root is None:
        root = folder.parent.parent if folder.parent.name == "cells" else folder
    document_path = folder / MODEL
    document, arrays = _read(folder, root)
    if not isinstance(document, dict):
        raise ModelError(f"{document_path}: not a kernelnet model (not a JSON object)")
    classes = _classes()
    name = document.get("estimator")
    if not isinstance(name, str) or name not in classes:
        raise ModelError(f"{document_path}: not a kernelnet model ({_kind(name)})")
    problem = _keys_problem(document, _DOCUMENT_KEYS)
    if problem:
        raise ModelError(f"{document_path}: keys {problem}")
    if document["format"] != FORMAT or isinstance(document["format"], bool):
        raise ModelError(
            f"{document_path}: format {_kind(document['format'])}; this kernelnet reads {FORMAT}"
        )
    cls = classes[name]
    decode = _Decoder(arrays, document_path)
    params = _params(cls, decode(document["params"], "params"), document_path)
    state = decode(document["state"], "state")
    estimator = cls(**params)
    try:
        estimator._validate_params()
    except ValueError as exc:
        raise ModelError(f"{document_path}: params: {exc}") from None
    checked = estimator._check_state(StateView(state, "state", document_path))
    unused = sorted(set(arrays) - decode.used)  # after the state: its messages say more
    if unused:
        raise ModelError(f"{folder / MODEL_ARRAYS}: arrays {unused} belong to no part of {MODEL}")
    return _ready(estimator, checked, document_path)


def _ready(estimator: Any, state: dict, where: Path) -> Any:
    """The estimator with its checked state, after one prediction (a row of zeros): the
    last line of defence, so that what the checks missed is still a ModelError here."""
    try:
        with np.errstate(all="ignore"):
            estimator._set_state(state)
            estimator.predict(np.zeros((1, estimator.n_features_in_)))
    except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
        raise ModelError(
            f"{where}: the saved model does not predict ({type(exc).__name__}: {exc})"
        ) from None
    return estimator
