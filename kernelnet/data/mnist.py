"""MNIST from the original IDX files (gzip-compressed), verified by sha256 of the
decompressed bytes, with the header checked before any pixel is read.

Each file is opened through :mod:`kernelnet.safe_read` (a FIFO or a link to ``/dev/zero``
is refused at once; at most ``MAX_GZ_BYTES``), and decompressed no further than its
header's dimensions, which are checked first against what a gzip file of its size can
hold: a header declaring 10^9 images is refused before a byte of them is inflated.

IDX: big-endian; magic 2051 (images: count, rows, cols) or 2049 (labels: count), then a
uint8 payload. Arrays come back as uint8; convert to float before arithmetic (uint8
arithmetic wraps silently).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kernelnet.data.registry import SHIPPED_BYTES, data_root
from kernelnet.errors import DataError
from kernelnet.safe_read import ReadRefused, open_regular

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
MAX_GZ_BYTES = SHIPPED_BYTES
MAX_IDX_BYTES = 2**28  # decompressed; the training images are 47 MB
MAX_DEFLATE_RATIO = 1032  # deflate's limit: no gzip file inflates further
FILES = {
    "train_images": (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    "train_labels": (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    "test_images": (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "test_labels": (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}
HOW_TO_GET = "it ships under data/mnist/; with internet, `kernelnet data fetch mnist` downloads it"


def read_gz(path: Path, expected_magic: int) -> bytes:
    """The decompressed IDX bytes (header and payload) of a gzip file, inflated no further
    than the header's dimensions declare (checked first against the file's size)."""
    try:
        with open_regular(path, MAX_GZ_BYTES) as (handle, size):
            with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
                head = stream.read(8)
                if len(head) == 8:
                    head += stream.read(idx_header_size(head, str(path), expected_magic) - 8)
                shape = idx_shape(head, str(path), expected_magic)
                payload = int(np.prod(shape, dtype=object))
                if payload > min(MAX_IDX_BYTES, MAX_DEFLATE_RATIO * size):
                    raise DataError(
                        f"{path}: its header declares {shape} ({payload:,} bytes), more than "
                        f"a {size:,}-byte gzip file of MNIST can hold; the file is corrupt"
                    )
                body = stream.read(payload)
                extra = stream.read(1)
    except FileNotFoundError:
        raise DataError(f"MNIST file not found: {path} ({HOW_TO_GET})") from None
    except ReadRefused as exc:
        raise DataError(f"{exc} ({HOW_TO_GET})") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip file: {exc}") from None
    if extra:
        raise DataError(f"{path}: more data than its header declares ({shape}); it is corrupt")
    return head + body


def idx_header_size(raw: bytes, name: str, expected_magic: int) -> int:
    """Bytes of the IDX header that ``raw`` (at least its first 8 bytes) starts."""
    if len(raw) < 8:
        raise DataError(f"{name}: truncated IDX header ({len(raw)} bytes)")
    (magic,) = struct.unpack(">i", raw[:4])
    if magic != expected_magic:
        raise DataError(f"{name}: bad IDX magic number {magic} (expected {expected_magic})")
    return 4 + 4 * (3 if magic == IMAGES_MAGIC else 1)


def idx_shape(raw: bytes, name: str, expected_magic: int) -> tuple[int, ...]:
    """The (count,) or (count, 28, 28) an IDX header declares."""
    header = idx_header_size(raw, name, expected_magic)
    if len(raw) < header:
        raise DataError(f"{name}: truncated IDX header ({len(raw)} bytes)")
    shape = struct.unpack(f">{(header - 4) // 4}i", raw[4:header])
    if min(shape) < 0:
        raise DataError(f"{name}: the IDX header declares a negative size {shape}")
    if len(shape) == 3 and shape[1:] != (28, 28):
        raise DataError(f"{name}: images are {shape[1]}x{shape[2]}, expected 28x28")
    return shape


def parse_idx(raw: bytes, name: str, expected_magic: int) -> np.ndarray:
    """Parse IDX bytes into a uint8 array of shape (count,) or (count, rows, cols)."""
    shape = idx_shape(raw, name, expected_magic)
    header = 4 + 4 * len(shape)
    expected = int(np.prod(shape, dtype=object))
    if len(raw) - header != expected:
        raise DataError(
            f"{name}: payload has {len(raw) - header} bytes but the header promises {expected} "
            f"(shape {shape}); the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@dataclass(frozen=True)
class Mnist:
    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray  # (10000, 28, 28) uint8
    test_labels: np.ndarray  # (10000,) uint8


def load_mnist(root: Path | None = None, verify: bool = True) -> Mnist:
    """The four MNIST arrays from ``<root>/mnist/*.gz``; checks sha256 pins and headers.

    The arrays are read-only and kept for the life of the process, keyed on the files'
    sizes and modification times (a run's checks and its cells read the files once)."""
    folder = (root or data_root()) / "mnist"
    return _load(folder, _stamp(folder), verify)


def _stamp(folder: Path) -> tuple:
    stamps = []
    for name, _ in FILES.values():
        try:
            stat = (folder / f"{name}.gz").stat()
            stamps.append((stat.st_size, stat.st_mtime_ns, stat.st_ino))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


@functools.lru_cache(maxsize=2)
def _load(folder: Path, stamp: tuple, verify: bool) -> Mnist:
    arrays = {}
    for key, (name, pin) in FILES.items():
        path = folder / f"{name}.gz"
        magic = IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC
        raw = read_gz(path, magic)
        if verify:
            digest = hashlib.sha256(raw).hexdigest()
            if digest != pin:
                raise DataError(
                    f"{path}: sha256 of the decompressed data is {digest}, expected {pin}"
                )
        arrays[key] = parse_idx(raw, str(path), magic)
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"MNIST {part}: {images.shape[0]} images but {labels.shape[0]} labels")
    return Mnist(**arrays)


N_TRAIN, N_TEST = 60_000, 10_000
PIXEL_MEAN, PIXEL_STD = 0.1307 * 255, 0.3081 * 255  # of the raw 0..255 training pixels
NORMALIZATIONS = ("none", "scale", "standardize")


def pixels(images: np.ndarray, normalize: str = "scale", dtype: type = np.float64) -> np.ndarray:
    """uint8 images (n, 28, 28) -> (n, 784) floats, converted before any arithmetic:
    ``none`` keeps 0..255, ``scale`` divides by 255, ``standardize`` is (x - mean) / std."""
    x = images.reshape(len(images), int(np.prod(images.shape[1:]))).astype(dtype)
    if normalize == "scale":
        x /= 255
    elif normalize == "standardize":
        x -= PIXEL_MEAN
        x /= PIXEL_STD
    elif normalize != "none":
        raise ValueError(f"normalize must be one of {NORMALIZATIONS} (got {normalize!r})")
    return x


@dataclass(frozen=True)
class MnistSplit:
    """Features (n, 784) and int64 labels of the standard split."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def mnist_split(
    train: int,
    val: int = 0,
    test: int = N_TEST,
    normalize: str = "scale",
    dtype: type = np.float64,
) -> MnistSplit:
    """The one way kernelnet slices MNIST: training images are the first ``train`` of the
    60,000, validation images the last ``val`` of them (disjoint when train + val <=
    60,000), test images the first ``test`` of the 10,000. Only the rows used are
    converted."""
    if not (0 < train <= N_TRAIN and 0 <= val <= N_TRAIN and 0 < test <= N_TEST):
        raise ValueError(f"sizes out of range: train {train}, val {val}, test {test}")
    data = load_mnist()
    labels = data.train_labels.astype(np.int64)
    return MnistSplit(
        pixels(data.train_images[:train], normalize, dtype),
        labels[:train],
        pixels(data.train_images[N_TRAIN - val :], normalize, dtype),
        labels[N_TRAIN - val :],
        pixels(data.test_images[:test], normalize, dtype),
        data.test_labels[:test].astype(np.int64),
    )
