"""Input checks run before any solver: shapes, finiteness, sample counts, labels.

Messages follow scikit-learn's wording (and quote the offending sizes) so they are
recognisable: "Found input variables with inconsistent numbers of samples: [80, 79]".

Labels are exact, whatever file they come from (the text of a CSV or LIBSVM file, or an
.npz array), so a recorded label mapping always shows the true labels:

- labels that are all integers (``1``, ``1.0``, ``1e3``: the written number is an integer)
  become int64 when every one fits, so ``1`` and ``1.0`` are one class;
- an integer written as one (ASCII digits) that does not fit int64 keeps every label as
  text, exactly as written (``10000000000000000000`` is never wrapped to a negative);
- other numbers become float64 when each prints back as the number written (``0.5``,
  ``1e300``), else every label stays text as written (``0.30000000000000000001``);
- as soon as one label is not a number, all are text, as written;
- NaN and infinities among numeric labels are refused (a NaN class never equals itself),
  as is one number written two ways among labels that must stay text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from kernelnet.errors import DataError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


def check_features(X: Any, name: str = "X") -> np.ndarray:
    """Return ``X`` as a finite float64 array of shape ``(n_samples, n_features)``."""
    if np.iscomplexobj(X):  # np.asarray would drop the imaginary parts with only a warning
        raise DataError(f"{name}: complex data not supported (give real numbers)")
    try:
        array = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric: {exc}") from None
    if array.ndim != 2:
        raise DataError(f"{name} must be 2-D (n_samples, n_features); got shape {array.shape}")
    if array.shape[0] == 0:
        raise DataError(f"Found array with 0 sample(s) (shape={array.shape}) in {name}")
    if array.shape[1] == 0:
        raise DataError(f"Found array with 0 feature(s) (shape={array.shape}) in {name}")
    if np.isnan(array).any():
        raise DataError(f"Input {name} contains NaN")
    if not np.isfinite(array).all():
        raise DataError(f"Input {name} contains infinity")
    return array


def check_X_y(X: Any, y: Any, name: str = "X") -> tuple[np.ndarray, np.ndarray]:
    """Check features and a 1-D label vector of matching length."""
    features = check_features(X, name)
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise DataError(f"y must be 1-D (n_samples,); got shape {labels.shape}")
    if labels.dtype.kind == "c":  # as scikit-learn refuses it, with or without it loaded
        raise DataError("y: complex data not supported (give real labels)")
    if labels.dtype.kind == "O":
        kinds = {"string" if isinstance(v, str) else "number" for v in labels.tolist()}
        if len(kinds) > 1:  # np.unique cannot order them: scikit-learn's message
            raise DataError("y: Mix of label input types (string and number)")
    if labels.shape[0] != features.shape[0]:
        raise DataError(
            "Found input variables with inconsistent numbers of samples: "
            f"[{features.shape[0]}, {labels.shape[0]}]"
        )
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise DataError("Input y contains NaN or infinity")
    return features, labels


def check_n_features(X: np.ndarray, expected: int, name: str = "X") -> np.ndarray:
    """Prediction-time check that ``X`` has the feature count the model was fitted on."""
    features = check_features(X, name)
    if features.shape[1] != expected:
        raise DataError(
            f"{name} has {features.shape[1]} features, but the model was fitted with "
            f"{expected} features"
        )
    return features


def binary_labels(y: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """Map a two-class label vector to float64 {-1, +1}: the smaller label becomes -1.

    Returns ``(y_pm, mapping)`` with ``mapping`` from original label (as text) to -1/+1,
    so the run can record exactly what was done.
    """
    classes = np.unique(y)
    if classes.size < 2:
        raise DataError(
            f"The number of classes has to be greater than one; got {classes.size} class"
        )
    if classes.size > 2:
        raise DataError(
            f"a binary SVM needs exactly two classes; got {classes.size} classes: "
            f"{classes.tolist()}"
        )
    y_pm = np.where(y == classes[1], 1.0, -1.0)
    return y_pm, {label_text(classes[0]): -1, label_text(classes[1]): 1}


def label_text(value: Any) -> str:
    """A label as the text a mapping records (NumPy scalars as their Python value)."""
    return str(value.item() if isinstance(value, np.generic) else value)


def classes_of(mapping: dict[str, int]) -> np.ndarray:
    """The original labels of a recorded mapping, in the order of their mapped values,
    read back by the rules the labels were read by (see the module docstring), so they
    come back as the same values: ints as int64, floats as float64, text as text."""
    labels = sorted(mapping, key=mapping.get)
    return labels_from_text(labels, lambda i: f"label mapping: label {labels[i]!r}")


def labels_from_text(texts: Sequence[str], where: Callable[[int], str]) -> np.ndarray:
    """Distinct label texts (stripped, none empty) as exact labels, element ``i`` being the
    label ``texts[i]`` names; ``where(i)`` says where ``texts[i]`` was first seen (a file
    and line) for the one-line error. The rules are the module docstring's."""
    if not all(_DECIMAL.fullmatch(t) or _NOT_FINITE.fullmatch(t) for t in texts):
        return np.array(texts, dtype=str)
    for i, text in enumerate(texts):
        if _NOT_FINITE.fullmatch(text):
            what = "NaN, which never equals itself" if "nan" in text.lower() else "infinite"
            raise DataError(
                f"{where(i)}: the label {text!r} is {what}, so it cannot name a class; give "
                "the sample a finite label or remove it"
            )
    exact = [Decimal(text) for text in texts]  # exact: no rounding, whatever the exponent
    big_integer = any(
        _INTEGER.fullmatch(text) and not _fits_int64(value) for text, value in zip(texts, exact)
    )
    if not big_integer:
        if all(value == value.to_integral_value() and _fits_int64(value) for value in exact):
            return np.array([int(value) for value in exact], dtype=np.int64)
        floats = [float(text) for text in texts]
        if all(Decimal(repr(f)) == value for f, value in zip(floats, exact)):
            return np.array(floats, dtype=np.float64)
    # Text, as written: two spellings of one number would silently be two classes.
    first: dict[Decimal, int] = {}
    for i, value in enumerate(exact):
        j = first.setdefault(value, i)
        if j != i:
            raise DataError(
                f"{where(i)}: the label {texts[i]!r} is the number {texts[j]!r} ({where(j)}) "
                "written another way, and these labels are kept as text (not every one is "
                "a 64-bit integer or a float64 that prints as written); write each class "
                "one way"
            )
    return np.array(texts, dtype=str)


def _fits_int64(value: Decimal) -> bool:
    # adjusted() is the exponent of the leading digit: no 10^999999999-digit int is built
    return value.adjusted() <= 18 and INT64_MIN <= int(value) <= INT64_MAX


def exact_labels(y: Any, where: str) -> np.ndarray:
    """A label array as read from a file (an .npz ``y``), by the module docstring's rules:
    integers as int64 (uint64 beyond int64 as the exact integers' text), integral floats
    as int64 when every one fits, other floats as float64, text by the text rules. NaN,
    infinite, complex and undecodable labels are refused with one line naming ``where``."""
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.size == 0:
        return labels  # check_X_y says what is wrong with its shape
    kind = labels.dtype.kind
    if kind == "b":
        return labels
    if kind == "i":
        return labels.astype(np.int64)
    if kind == "u":
        if labels.max() <= INT64_MAX:
            return labels.astype(np.int64)
        classes, codes = np.unique(labels, return_inverse=True)
        return np.array([str(int(c)) for c in classes.tolist()], dtype=str)[codes]
    if kind == "f":
        values = labels.astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            what = "NaN, which never equals itself" if np.isnan(values[bad[0]]) else "infinite"
            raise DataError(
                f"{where}: label {bad[0]} is {what}, so it cannot name a class; give the "
                "sample a finite label or remove it"
            )
        integral = np.all(values == np.round(values))
        if integral and np.all((values >= -(2.0**63)) & (values < 2.0**63)):
            return values.astype(np.int64)  # exact: every integral float64 is an integer
        return values
    if kind in "US":
        classes, codes = np.unique(labels, return_inverse=True)
        try:
            texts = [(c.decode("utf-8") if isinstance(c, bytes) else c).strip() for c in classes]
        except UnicodeDecodeError:
            raise DataError(f"{where}: labels that are not UTF-8 text") from None
        empty = [i for i, t in enumerate(texts) if not t]
        if empty:
            raise DataError(f"{where}: label {int(np.flatnonzero(codes == empty[0])[0])} is empty")
        distinct, merged = np.unique(np.array(texts, dtype=str), return_inverse=True)
        values = labels_from_text(
            distinct.tolist(),
            lambda i: f"{where}: label {int(np.flatnonzero(merged[codes] == i)[0])}",
        )
        return values[merged[codes]]
    raise DataError(f"{where}: holds {labels.dtype} labels; labels must be numbers or text")
