"""The shipped datasets: where each lives under ``data/``, its sha256 pin, how to load it.

The data folder is ``$KERNELNET_DATA`` if set, else the data shipped with kernelnet (inside
the installed package, or ``data/`` in a checkout; see :mod:`kernelnet.shipped`). Its files
are read through :mod:`kernelnet.safe_read`: a FIFO or a link to ``/dev/zero`` in the
folder is refused at once, and no file is read past ``SHIPPED_BYTES``.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kernelnet.config.schema import param
from kernelnet.data.validation import binary_labels, check_X_y, classes_of, label_text
from kernelnet.errors import DataError
from kernelnet.safe_read import ReadRefused, open_regular, read_npz
from kernelnet.shipped import shipped

SHIPPED_BYTES = 64 * 2**20  # the largest shipped file is MNIST's 9.9 MB of training images


@dataclass(frozen=True)
class NpzDataset:
    """A train/test split stored as one .npz with X_train, y_train, X_test, y_test."""

    name: str
    relative_path: str
    sha256: str
    description: str


@dataclass(frozen=True)
class BinarySplit:
    """A two-class train/test split with labels mapped to float64 {-1, +1}."""

    name: str
    X_train: np.ndarray  # (n_train, n_features) float64
    y_train: np.ndarray  # (n_train,) float64 in {-1, +1}
    X_test: np.ndarray
    y_test: np.ndarray
    label_mapping: dict[str, int] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]


TOY2D = ("moons", "circles", "linear", "xor")

_NPZ_DATASETS = {
    spec.name: spec
    for spec in [
        NpzDataset(
            "iris_binary",
            "iris_binary/iris_binary.npz",
            "8206a3215ecaa1f72a5b627e9aa02b0490f4f1bca3fc55b6f7dfe9e947718ffa",
            "two-class Iris, 4 features, 76 train / 24 test",
        ),
        NpzDataset(
            "moons",
            "toy2d/moons.npz",
            "658c616df7c9e0e352afae4f839de2e68e2618c619370e72f1f684223d84be9f",
            "two interleaved half circles, noise 0.3, 60 train / 40 test",
        ),
        NpzDataset(
            "circles",
            "toy2d/circles.npz",
            "7a95d7d5ff9c2b8a0603aa0d560ccef0a0794b08bde58ee346f9a5fe3d2a5646",
            "two concentric circles, noise 0.2, 60 train / 40 test",
        ),
        NpzDataset(
            "linear",
            "toy2d/linear.npz",
            "38ef6542f82da4030b3b058b65500e4b2fa7b64c925ac26e1e0efe35288df12e",
            "two roughly linearly separable blobs, 60 train / 40 test",
        ),
        NpzDataset(
            "xor",
            "toy2d/xor.npz",
            "0a091ad655c3062bdf9eb2e58913c72be6714ace2800232fe2598e92e6145ed3",
            "four Gaussian blobs labelled by XOR, 60 train / 40 test",
        ),
    ]
}

BINARY_DATASETS = tuple(_NPZ_DATASETS)


def data_root() -> Path:
    """Where datasets are looked for (see module docstring)."""
    if os.environ.get("KERNELNET_DATA"):
        return Path(os.environ["KERNELNET_DATA"])
    return shipped("data")


def sha256_file(path: Path, chunk: int = 1 << 20, max_bytes: int = SHIPPED_BYTES) -> str:
    """sha256 of a regular file of at most ``max_bytes``, read in ``chunk``-byte blocks
    (FileNotFoundError, or ReadRefused for anything else safe_read will not read)."""
    digest = hashlib.sha256()
    read = 0
    with open_regular(path, max_bytes) as (handle, _):
        while block := handle.read(chunk):
            read += len(block)
            if read > max_bytes:
                raise ReadRefused(f"{path}: grew past the {max_bytes:,}-byte bound while read")
            digest.update(block)
    return digest.hexdigest()


def verified_path(relative: str, sha256: str, root: Path | None = None) -> Path:
    """The dataset file's path after checking it exists and matches its sha256 pin."""
    path = (root or data_root()) / relative
    try:
        actual = sha256_file(path)
    except FileNotFoundError:
        raise DataError(
            f"dataset file not found: {path} (kernelnet ships it as {shipped('data') / relative}; "
            "unset KERNELNET_DATA to use that copy, or point it at a folder holding the file)"
        ) from None
    except ReadRefused as exc:
        raise DataError(str(exc)) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if actual != sha256:
        raise DataError(
            f"{path}: sha256 mismatch (expected {sha256}, got {actual}); file is corrupt"
        )
    return path


def load_binary(name: str, root: Path | None = None) -> BinarySplit:
    """Load a shipped two-class dataset, verified and validated, labels mapped to {-1, +1}."""
    if name not in _NPZ_DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid: {', '.join(_NPZ_DATASETS)}")
    spec = _NPZ_DATASETS[name]
    path = verified_path(spec.relative_path, spec.sha256, root)
    try:
        arrays = read_npz(path, SHIPPED_BYTES)
        parts = {key: arrays[key] for key in ("X_train", "y_train", "X_test", "y_test")}
    except (OSError, ValueError) as exc:  # the file changed since its pin was checked
        raise DataError(f"{path}: cannot read dataset: {exc}") from None
    except KeyError as exc:
        raise DataError(f"{path}: cannot read dataset: no array {exc}") from None
    X_train, y_train = check_X_y(parts["X_train"], parts["y_train"], "X_train")
    X_test, y_test = check_X_y(parts["X_test"], parts["y_test"], "X_test")
    if X_test.shape[1] != X_train.shape[1]:
        raise DataError(
            f"{path}: X_test has {X_test.shape[1]} features but X_train has {X_train.shape[1]}"
        )
    y_train_pm, mapping = binary_labels(y_train)
    unknown = {label_text(v) for v in np.unique(y_test)} - set(mapping)
    if unknown:
        raise DataError(f"{path}: y_test has labels not seen in training: {sorted(unknown)}")
    y_test_pm = np.array([mapping[label_text(v)] for v in y_test], dtype=np.float64)
    return BinarySplit(name, X_train, y_train_pm, X_test, y_test_pm, mapping)


def verify_binary(names) -> None:
    """Load each named dataset once so that a data problem stops a run before it starts."""
    for name in dict.fromkeys(names):
        load_binary(name)


def unknown_dataset(name: str, valid: tuple[str, ...]) -> DataError:
    hint = difflib.get_close_matches(name, valid, n=1)
    suggestion = f"did you mean {hint[0]!r}? " if hint else ""
    return DataError(
        f"unknown dataset {name!r}: {suggestion}give one of {', '.join(valid)}, or a path to "
        "a CSV, .npz or LIBSVM file, an X .npy file or a folder of X.npy and y.npy"
    )


def load_binary_data(data: Any, seed: Any) -> BinarySplit:
    """A two-class split from a config's data section: a shipped set by name, or a user's
    file (``data.dataset`` a path; see :mod:`kernelnet.data.files`), labels mapped to
    {-1, +1} and the mapping recorded."""
    if data.dataset in _NPZ_DATASETS:
        return load_binary(data.dataset)
    split = load_labelled(data, seed)
    try:
        y_train, mapping = binary_labels(split.y_train)
    except DataError as exc:
        raise DataError(f"{split.name}: {exc}") from None
    y_test = np.where(split.y_test == split.classes[1], 1.0, -1.0)
    return BinarySplit(split.name, split.X_train, y_train, split.X_test, y_test, mapping)


DATASET_HELP = (
    "a shipped set (iris_binary, moons, circles, linear, xor) or a path to a CSV, .npz or "
    "LIBSVM file, a features .npy beside its labels (data/q1x.npy with data/q1y.npy), or a "
    "folder of X.npy and y.npy (see data.label_column, data.test_path, data.test_fraction)"
)


@dataclass(frozen=True)
class LabelledSplit:
    """A train/test split with labels as they are (two or more classes)."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    label_mapping: dict[str, int]  # label (as text) -> -1/+1 for two classes, else its index

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.y_train)


def load_labelled(data: Any, seed: Any, extra_names: tuple[str, ...] = ()) -> LabelledSplit:
    """A split with any number of classes: a shipped two-class set (labels -1/+1, as the
    binary experiments see it) or a user's file (labels as read)."""
    from kernelnet.data.files import load_train_test, looks_like_path

    name = data.dataset
    if name in _NPZ_DATASETS:
        split = load_binary(name)
        negative, positive = classes_of(split.label_mapping)  # the labels as shipped

        def original(y_pm: np.ndarray) -> np.ndarray:
            return np.where(y_pm > 0, positive, negative)

        return LabelledSplit(
            name,
            split.X_train,
            original(split.y_train),
            split.X_test,
            original(split.y_test),
            split.label_mapping,
        )
    if not looks_like_path(name):
        raise unknown_dataset(name, (*BINARY_DATASETS, *extra_names))
    train, test = load_train_test(name, seed, data.test_fraction, data.test_path, data.label_column)
    classes = np.unique(train.y)
    if classes.size < 2:
        raise DataError(f"{name}: needs at least two classes; got 1 class")
    if classes.size == 2:  # as every two-class model reads it: the smaller label is -1
        mapping = binary_labels(train.y)[1]
    else:
        mapping = {label_text(c): i for i, c in enumerate(classes)}
    unknown = {label_text(v) for v in np.unique(test.y)} - set(mapping)
    if unknown:
        raise DataError(f"{name}: the test data has labels not seen in training: {sorted(unknown)}")
    return LabelledSplit(name, train.X, train.y, test.X, test.y, mapping)


@dataclass
class DataFileOptions:
    """How a user's data file is read and split (ignored for the shipped sets)."""

    label_column: str | None = param(
        None, sweepable=False, help="CSV: the label column's name (default: the last column)"
    )
    test_path: str | None = param(
        None, sweepable=False, help="a separate test file; else the file is split"
    )
    test_fraction: float = param(
        0.25, gt=0, lt=1, help="share of each class held out for test when splitting a file"
    )
