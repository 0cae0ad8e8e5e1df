"""Input checks run before any solver: shapes, finiteness, sample counts, binary labels.

Messages follow scikit-learn's wording (and quote the offending sizes) so they are
recognisable: "Found input variables with inconsistent numbers of samples: [80, 79]".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kernelnet.errors import DataError


def check_features(X: Any, name: str = "X") -> np.ndarray:
    """Return ``X`` as a finite float64 array of shape ``(n_samples, n_features)``."""
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
    """The original labels of a recorded mapping, in the order of their mapped values
    (numbers come back as numbers)."""
    labels = sorted(mapping, key=mapping.get)
    try:
        values = [float(label) for label in labels]
    except ValueError:
        return np.array(labels)
    numbers = np.array(values)
    return numbers.astype(np.int64) if np.all(numbers == np.round(numbers)) else numbers
