"""Your own data: CSV, NumPy ``.npz`` and LIBSVM/SVMlight text files.

- CSV: a header row, then one sample per row; the label is the last column, or the column
  named by ``data.label_column``. Features must be numbers; labels may be any text.
- ``.npz`` (read with ``allow_pickle=False``): ``X`` and ``y``, or the four arrays
  ``X_train``, ``y_train``, ``X_test``, ``y_test``.
- LIBSVM (``.libsvm``, ``.svm``, ``.svmlight``, ``.txt``): ``label index:value ...`` with
  1-based indices; missing indices are 0.

A single file is split into train and test by ``data.test_fraction``, stratified by class,
with a Generator derived from the run seed and the file's name, unless ``data.test_path``
names a test file of the same format. Every problem names the file, and the line where it
helps, before any solver runs.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kernelnet.data.validation import check_X_y
from kernelnet.errors import DataError
from kernelnet.seeding import named_rng

CSV_SUFFIXES = (".csv",)
NPZ_SUFFIXES = (".npz",)
LIBSVM_SUFFIXES = (".libsvm", ".svm", ".svmlight", ".txt")
SUFFIXES = CSV_SUFFIXES + NPZ_SUFFIXES + LIBSVM_SUFFIXES
MAX_BYTES = 2 * 2**30


@dataclass(frozen=True)
class Labelled:
    X: np.ndarray  # (n, d) float64, finite
    y: np.ndarray  # (n,) labels as read (numbers or text)


def looks_like_path(name: str) -> bool:
    return "/" in name or Path(name).suffix.lower() in SUFFIXES


def _open_checked(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"dataset file not found: {path}")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"{path}: unknown format; use one of {', '.join(SUFFIXES)}")
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"{path}: larger than {MAX_BYTES:,} bytes")
    return path


def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path}:{line}: column {column!r}: {text!r} is not a number") from None
    if math.isnan(value):
        raise DataError(f"{path}:{line}: column {column!r} contains NaN")
    if math.isinf(value):
        raise DataError(f"{path}:{line}: column {column!r} contains infinity")
    return value


def read_csv(path: Path, label_column: str | None = None) -> Labelled:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a CSV file ({exc})") from None
    rows = [
        (number, row) for number, row in enumerate(rows, start=1) if any(c.strip() for c in row)
    ]
    if not rows:
        raise DataError(f"{path}: empty file")
    (_, header), body = rows[0], rows[1:]
    header = [name.strip() for name in header]
    if label_column is None:
        label_index = len(header) - 1
    elif label_column in header:
        label_index = header.index(label_column)
    else:
        raise DataError(f"{path}: no column {label_column!r} (columns: {', '.join(header)})")
    if len(header) < 2:
        raise DataError(f"{path}: needs a header row with features and a label column")
    if not body:
        raise DataError(f"{path}: Found array with 0 sample(s): no rows after the header")
    features, labels = [], []
    for line, row in body:
        if len(row) != len(header):
            raise DataError(f"{path}:{line}: expected {len(header)} fields, got {len(row)}")
        labels.append(row[label_index].strip())
        features.append(
            [
                _number(text.strip(), path, line, header[i])
                for i, text in enumerate(row)
                if i != label_index
            ]
        )
    return Labelled(np.array(features, dtype=np.float64), _labels(labels))


def _labels(texts: list[str]) -> np.ndarray:
    """Labels as numbers when they all are (so 1 and 1.0 are one class), else as text."""
    try:
        values = np.array([float(t) for t in texts])
    except ValueError:
        return np.array(texts)
    return values.astype(np.int64) if np.all(values == np.round(values)) else values


def read_libsvm(path: Path) -> Labelled:
    entries, labels, width = [], [], 0
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    for line, text in enumerate(lines, start=1):
        text = text.split("#", 1)[0].strip()
        if not text:
            continue
        label, *pairs = text.split()
        row = {}
        for pair in pairs:
            index, sep, value = pair.partition(":")
            if not sep or not index.isdigit() or int(index) < 1:
                raise DataError(f"{path}:{line}: {pair!r} is not index:value (1-based index)")
            row[int(index) - 1] = _number(value, path, line, f"feature {index}")
        width = max([width, *(i + 1 for i in row)])
        entries.append(row)
        labels.append(label)
    if not entries:
        raise DataError(f"{path}: Found array with 0 sample(s): no data lines")
    if width == 0:
        raise DataError(f"{path}: Found array with 0 feature(s)")
    X = np.zeros((len(entries), width))
    for i, row in enumerate(entries):
        for j, value in row.items():
            X[i, j] = value
    return Labelled(X, _labels(labels))


def read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as exc:
        raise DataError(f"{path}: holds objects, not plain arrays ({exc})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    for keys in (("X", "y"), ("X_train", "y_train", "X_test", "y_test")):
        if all(key in arrays for key in keys):
            return {key: arrays[key] for key in keys}
    raise DataError(
        f"{path}: needs arrays X and y, or X_train, y_train, X_test and y_test "
        f"(has {', '.join(sorted(arrays)) or 'none'})"
    )


def read_labelled(path: Path, label_column: str | None = None) -> Labelled | tuple:
    """One file: a Labelled, or (train, test) for an .npz holding both."""
    path = _open_checked(path)
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        data = read_csv(path, label_column)
    elif suffix in LIBSVM_SUFFIXES:
        data = read_libsvm(path)
    else:
        arrays = read_npz(path)
        if "X" in arrays:
            data = Labelled(*check_X_y(arrays["X"], arrays["y"], f"{path}: X"))
        else:
            return (
                Labelled(*check_X_y(arrays["X_train"], arrays["y_train"], f"{path}: X_train")),
                Labelled(*check_X_y(arrays["X_test"], arrays["y_test"], f"{path}: X_test")),
            )
    X, y = check_X_y(data.X, data.y, str(path))
    return Labelled(X, y)


def stratified_split(data: Labelled, test_fraction: float, rng: np.random.Generator, where: str):
    """(train, test) with about ``test_fraction`` of every class in test (at least one
    sample of each class stays in train)."""
    test: list[int] = []
    for label in np.unique(data.y):
        members = np.flatnonzero(data.y == label)
        members = members[rng.permutation(members.size)]
        count = min(int(round(test_fraction * members.size)), members.size - 1)
        test.extend(members[:count].tolist())
    test_index = np.sort(np.array(test, dtype=np.int64))
    train_index = np.setdiff1d(np.arange(data.y.size), test_index)
    if test_index.size == 0:
        raise DataError(f"{where}: too few samples for a test set of {test_fraction:g}")
    return (
        Labelled(data.X[train_index], data.y[train_index]),
        Labelled(data.X[test_index], data.y[test_index]),
    )


def load_train_test(
    dataset: str,
    seed: Any,
    test_fraction: float,
    test_path: str | None = None,
    label_column: str | None = None,
) -> tuple[Labelled, Labelled]:
    """Train and test parts of a user's data file (see the module docstring)."""
    path = Path(dataset).expanduser()
    read = read_labelled(path, label_column)
    if isinstance(read, tuple):
        train, test = read
    elif test_path:
        other = read_labelled(Path(test_path).expanduser(), label_column)
        if isinstance(other, tuple):
            raise DataError(f"{test_path}: a test file holds X and y, not four arrays")
        train, test = read, other
    else:
        rng = named_rng(seed, f"split {path.name}")
        train, test = stratified_split(read, test_fraction, rng, str(path))
    if test.X.shape[1] != train.X.shape[1]:
        raise DataError(
            f"{test_path or path}: the test data has {test.X.shape[1]} features but the "
            f"training data has {train.X.shape[1]}"
        )
    return train, test
