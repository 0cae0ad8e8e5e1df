import gzip
import shutil
import struct

import numpy as np
import pytest

from kernelnet.data.mnist import FILES, load_mnist, parse_idx
from kernelnet.data.registry import data_root
from kernelnet.errors import DataError


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def test_documented_facts(mnist):
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.test_images.shape == (
        10000,
        28,
        28,
    )
    assert np.bincount(mnist.train_labels).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(mnist.test_labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert mnist.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    pixels = mnist.train_images.astype(np.float64) / 255
    assert pixels.mean() == pytest.approx(0.1307, abs=1e-4)
    assert pixels.std() == pytest.approx(0.3081, abs=1e-4)


def test_arrays_are_uint8_so_callers_must_convert(mnist):
    assert mnist.train_images.dtype == np.uint8


def idx_images(count, rows=28, cols=28, magic=2051, payload=None):
    header = struct.pack(">iiii", magic, count, rows, cols)
    return header + (payload if payload is not None else bytes(count * rows * cols))


def test_bad_magic_number():
    with pytest.raises(DataError, match="f.idx: bad IDX magic number 2049 \\(expected 2051\\)"):
        parse_idx(idx_images(2, magic=2049), "f.idx", 2051)


def test_wrong_image_shape():
    with pytest.raises(DataError, match="images are 32x32, expected 28x28"):
        parse_idx(idx_images(1, 32, 32), "f.idx", 2051)


def test_truncated_payload():
    raw = idx_images(3)[:-10]
    with pytest.raises(DataError, match="truncated or corrupt"):
        parse_idx(raw, "f.idx", 2051)


def test_truncated_header():
    with pytest.raises(DataError, match="truncated IDX header"):
        parse_idx(b"\x00\x00", "f.idx", 2051)


def copy_mnist(tmp_path):
    target = tmp_path / "mnist"
    shutil.copytree(data_root() / "mnist", target)
    return target


def test_missing_file_names_path_and_how_to_get_it(tmp_path):
    target = copy_mnist(tmp_path)
    (target / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz.*kernelnet data fetch mnist"):
        load_mnist(tmp_path)


def test_corrupt_gzip_names_the_file(tmp_path):
    target = copy_mnist(tmp_path)
    path = target / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: corrupt or truncated"):
        load_mnist(tmp_path)


def test_sha256_pin_is_checked(tmp_path):
    target = copy_mnist(tmp_path)
    path = target / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(
        DataError, match="t10k-labels-idx1-ubyte.gz: sha256 .* expected " + FILES["test_labels"][1]
    ):
        load_mnist(tmp_path)
