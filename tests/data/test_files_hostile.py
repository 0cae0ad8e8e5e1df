"""Users' data files as a hostile (or unlucky) user gives them: files that never end or
never stop growing, archives that inflate past the memory limit or declare more than
they hold, LIBSVM indices that ask for terabytes, labels that lose their values, a
spreadsheet's byte-order mark, a CSV without a header row. Each is one line naming the
file, exit 2 on the command line, before anything big is allocated; good data is read
exactly.

Command-line cases run as real subprocesses with a timeout (a hang fails the test), the
loader cases in a thread with a deadline."""

import gzip
import io
import json
import os
import re
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from kernelnet.data import files
from kernelnet.data.files import load_train_test, read_labelled
from kernelnet.data.mnist import load_mnist
from kernelnet.data.registry import DataFileOptions, load_binary, load_labelled
from kernelnet.data.validation import classes_of
from kernelnet.errors import DataError, ResourceError
from tests.helpers import within_deadline

TIMEOUT = 60
BIG = ("0", "10000000000000000000", "20000000000000000000")


def kernelnet_cli(tmp_path, command, dataset, *more, env=None):
    return subprocess.run(
        [sys.executable, "-m", "kernelnet", command, "-q", "--runs-dir", str(tmp_path / "runs"),
         "--set", f"data.dataset={dataset}", *map(str, more)],
        capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, **(env or {})},
    )  # fmt: skip


def refused(done, tmp_path, *fragments):
    """Exit 2, one line on stderr holding every fragment, no traceback, no run folder."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, (fragment, done.stderr)
    assert not (tmp_path / "runs").exists()


def load(path, **options):
    return within_deadline(lambda: read_labelled(Path(path), **options))


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


def two_class_csv(path: Path, rows=20, header="a,b,label\n") -> Path:
    body = "".join(f"{i},{i % 3},{'xy'[i % 2]}\n" for i in range(rows))
    return write(path, header + body)


def npy_bytes(array=None, *, header_shape=None, dtype="<f8", payload=b"") -> bytes:
    """An .npy: of ``array``, or a bare header declaring ``header_shape`` and ``payload``."""
    buffer = io.BytesIO()
    if array is not None:
        np.save(buffer, array)
        return buffer.getvalue()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": dtype, "fortran_order": False, "shape": header_shape}
    )
    return buffer.getvalue() + payload


def npz(path: Path, members: dict[str, bytes], method=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return path


# -- not a regular file: refused at once, through the command line and the loader --------


def test_a_fifo_as_the_data_file_is_refused_at_once(tmp_path):
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    started = time.monotonic()
    refused(kernelnet_cli(tmp_path, "svm-primal", fifo), tmp_path, "data.csv: a FIFO")
    assert time.monotonic() - started < 30
    with pytest.raises(DataError, match="a FIFO, not a regular file"):
        load(fifo)
    os.mkfifo(tmp_path / "data.libsvm")
    with pytest.raises(DataError, match="a FIFO"):
        load(tmp_path / "data.libsvm")


def test_a_link_to_dev_zero_is_refused_not_read_forever(tmp_path):
    for name in ("zero.libsvm", "zero.csv", "zero.npz"):
        os.symlink("/dev/zero", tmp_path / name)
        with pytest.raises(DataError, match=f"{name}: a device, not a regular file"):
            load(tmp_path / name)
    refused(kernelnet_cli(tmp_path, "svm-primal", tmp_path / "zero.libsvm"), tmp_path,
            "zero.libsvm: a device")  # fmt: skip


def test_a_directory_named_like_a_data_file_is_refused(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(DataError, match="folder.csv: a directory, not a regular file"):
        load(tmp_path / "folder.csv")
    # the test file of a split goes through the same reader
    (tmp_path / "test.npz").mkdir()
    with pytest.raises(DataError, match="test.npz: a directory"):
        load_train_test(
            str(two_class_csv(tmp_path / "train.csv")), 0, 0.25, str(tmp_path / "test.npz")
        )


def test_a_file_over_the_hard_byte_bound_is_refused_unread(tmp_path, monkeypatch):
    data = two_class_csv(tmp_path / "data.csv", rows=200)
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 1000)
    for path in (data, write(tmp_path / "data.libsvm", "1 1:1\n" * 200)):
        with pytest.raises(DataError, match=r"bytes, over the 1,000-byte bound"):
            load(path)


# -- .npz: members checked before inflating ---------------------------------------------


def test_a_zip_bomb_member_is_refused_by_the_estimate_before_inflating(tmp_path):
    zeros = np.zeros(4 * 2**20)  # 32 MiB of float64 zeros: about 32 KiB deflated
    bomb = npz(tmp_path / "bomb.npz",
               {"X": npy_bytes(zeros.reshape(-1, 2)), "y": npy_bytes(np.zeros(2 * 2**20))},
               zipfile.ZIP_DEFLATED)  # fmt: skip
    assert bomb.stat().st_size < 1_000_000
    done = kernelnet_cli(tmp_path, "svm-primal", bomb, env={"KERNELNET_MEMORY_LIMIT": "8M"})
    refused(done, tmp_path, "bomb.npz: reading and splitting its arrays", "over the 8.0 MB limit",
            "store a subset of its rows", "KERNELNET_MEMORY_LIMIT")  # fmt: skip


def test_a_member_over_the_hard_bound_is_refused_before_inflating(tmp_path, monkeypatch):
    bomb = npz(tmp_path / "bomb.npz",
               {"X": npy_bytes(np.zeros((2**19, 2))), "y": npy_bytes(np.zeros(2**19))},
               zipfile.ZIP_DEFLATED)  # fmt: skip
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="bomb.npz: inflates to .* over the 1,048,576-byte"):
            load(bomb)
        assert tracemalloc.get_traced_memory()[1] < 2**20  # nothing was inflated
    finally:
        tracemalloc.stop()


def test_an_npz_header_declaring_10_12_elements_is_one_line(tmp_path):
    liar = npz(tmp_path / "liar.npz", {"X": npy_bytes(header_shape=(10**12, 2), payload=bytes(16)),
                                      "y": npy_bytes(np.zeros(2))})  # fmt: skip
    with pytest.raises(DataError, match=r"liar.npz: X: declares \(1000000000000, 2\) float64"):
        load(liar)
    refused(kernelnet_cli(tmp_path, "svm-primal", liar), tmp_path, "liar.npz: X: declares")


def test_a_truncated_npz_a_renamed_npy_and_objects_are_one_line(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, X=np.ones((10, 2)), y=np.arange(10) % 2)
    truncated = write(tmp_path / "truncated.npz", good.read_bytes()[:300])
    with pytest.raises(DataError, match="truncated.npz: not an .npz archive"):
        load(truncated)
    bare = tmp_path / "bare.npz"
    np.save(tmp_path / "bare.npy", np.ones((10, 2)))
    (tmp_path / "bare.npy").rename(bare)
    with pytest.raises(DataError, match="bare.npz: not an .npz archive"):
        load(bare)
    objects = npz(tmp_path / "objects.npz", {"X": npy_bytes(header_shape=(2,), dtype="|O"),
                                             "y": npy_bytes(np.zeros(2))})  # fmt: skip
    with pytest.raises(DataError, match="objects.npz: X: holds object values"):
        load(objects)


def test_complex_features_in_an_npz_are_refused_not_cast(tmp_path):
    path = tmp_path / "complex.npz"
    np.savez(path, X=np.ones((6, 2)) * (1 + 2j), y=np.arange(6) % 2)
    with pytest.raises(DataError, match="complex.npz: X: complex data not supported"):
        load(path)


def test_uint8_features_are_estimated_as_float64_before_the_copy(tmp_path, monkeypatch):
    path = tmp_path / "pixels.npz"
    np.savez(path, X=np.zeros((4096, 256), dtype=np.uint8), y=np.arange(4096) % 2)
    monkeypatch.setenv("KERNELNET_MEMORY_LIMIT", "4M")  # the file: 1 MB; as float64: 16 MB
    with pytest.raises(ResourceError, match=r"pixels.npz: X \(4,096 x 256\) as float64"):
        load(path)


# -- LIBSVM -----------------------------------------------------------------------------


def libsvm(path: Path, widest: int, rows: int = 30) -> Path:
    lines = [f"{(-1) ** i} 1:{i} 2:0.5" for i in range(rows)]
    lines[7] = f"1 1:1 {widest}:1"
    return write(path, "\n".join(lines) + "\n")


def test_a_libsvm_index_of_10_12_is_refused_by_the_dense_estimate(tmp_path):
    path = libsvm(tmp_path / "wide.libsvm", 10**12)
    done = kernelnet_cli(tmp_path, "svm-primal", path)
    refused(done, tmp_path, "wide.libsvm: X as 30 x 1,000,000,000,000 dense float64",
            "on line 8", "TB of memory", "keep only the features in use")  # fmt: skip


def test_a_libsvm_index_of_10_6_is_refused_before_allocating(tmp_path, monkeypatch):
    path = libsvm(tmp_path / "wide.libsvm", 10**6)  # dense: 30 x 10^6 float64 = 240 MB
    monkeypatch.setenv("KERNELNET_MEMORY_LIMIT", "64M")
    tracemalloc.start()
    try:
        with pytest.raises(ResourceError, match=r"X as 30 x 1,000,000 dense float64 .*line 8"):
            load(path)
        assert tracemalloc.get_traced_memory()[1] < 8 * 2**20
    finally:
        tracemalloc.stop()
    done = kernelnet_cli(tmp_path, "mlp", path, env={"KERNELNET_MEMORY_LIMIT": "64M"})
    refused(done, tmp_path, "wide.libsvm: X as 30 x 1,000,000 dense", "over the 64.0 MB limit")
    monkeypatch.setenv("KERNELNET_MEMORY_LIMIT", "1G")  # within the limit it is read
    assert load(path).X.shape == (30, 10**6)


def test_a_long_libsvm_file_is_refused_as_it_streams(tmp_path, monkeypatch):
    path = write(tmp_path / "long.libsvm", "".join(f"1 1:{i} 2:1 3:1\n" for i in range(200_000)))
    monkeypatch.setenv("KERNELNET_MEMORY_LIMIT", "2M")
    with pytest.raises(ResourceError, match="long.libsvm: parsing its .* index:value pairs"):
        load(path)


@pytest.mark.parametrize(
    "line, message",
    [
        ("1 ²:1", r"'²:1' is not index:value \(a 1-based index of digits\)"),
        ("1 ١:1", r"'١:1' is not index:value"),
        ("1 0:1", "index '0': indices are 1-based"),
        ("1 1:1 1:2", "index 1 repeats index 1; indices must be ascending on each line"),
        ("1 3:1 2:2", "index 2 comes after index 3; indices must be ascending"),
        ("1 " + "9" * 5000 + ":1", r"index 9{24}\.\.\. has 5,000 digits \(at most 18\)"),
        ("1 1:nan", "column 'feature 1' contains NaN"),
    ],
)
def test_libsvm_indices_are_ascii_ascending_and_bounded(tmp_path, line, message):
    path = write(tmp_path / "bad.libsvm", f"1 1:1\n{line}\n-1 1:0\n")
    with pytest.raises(DataError, match="bad.libsvm:2: " + message):
        load(path)


def test_a_superscript_index_is_one_line_on_the_command_line(tmp_path):
    path = write(tmp_path / "sup.libsvm", "1 1:1\n-1 ²:1\n")
    refused(kernelnet_cli(tmp_path, "svm-primal", path), tmp_path, "sup.libsvm:2: '²:1'")


def test_a_libsvm_line_over_the_line_bound_is_refused(tmp_path, monkeypatch):
    path = write(tmp_path / "one.libsvm", "1 " + " ".join(f"{i}:1" for i in range(1, 2000)))
    monkeypatch.setattr(files, "MAX_LINE_BYTES", 1000)
    with pytest.raises(DataError, match="one.libsvm:1: longer than 1,000 bytes"):
        load(path)


# -- CSV: streamed and estimated --------------------------------------------------------


def test_a_csv_heading_past_the_memory_limit_is_refused_as_it_streams(tmp_path, monkeypatch):
    path = two_class_csv(tmp_path / "many.csv", rows=100_000)  # 2 features: 1.6 MB as float64
    monkeypatch.setenv("KERNELNET_MEMORY_LIMIT", "1M")
    with pytest.raises(ResourceError) as caught:
        load(path)
    # projected from the share of the file read when the first check came: about right
    assert re.search(r"many.csv: X as about 10[0-4],\d{3} x 2 float64", str(caught.value))
    assert "use a subset of its rows" in str(caught.value)
    done = kernelnet_cli(tmp_path, "svm-primal", path, env={"KERNELNET_MEMORY_LIMIT": "1M"})
    refused(done, tmp_path, "many.csv: X as about", "over the 1.0 MB limit")


def test_csv_features_are_stored_compactly(tmp_path):
    path = two_class_csv(tmp_path / "data.csv", rows=50_000)
    tracemalloc.start()
    try:
        data = load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert data.X.shape == (50_000, 2)
    # float64 X (800 KB), int64 label codes (400 KB) and growth: not ~60 bytes a value
    assert peak < 4 * 2**20, peak


# -- labels read exactly ----------------------------------------------------------------


def big_label_csv(path: Path) -> Path:
    rows = [
        f"{i % 7},{(i * 3) % 5 + 3 * k},{label}" for k, label in enumerate(BIG) for i in range(12)
    ]
    return write(path, "a,b,label\n" + "\n".join(rows) + "\n")


def test_big_integer_labels_are_three_classes_with_the_exact_mapping(tmp_path):
    path = big_label_csv(tmp_path / "big.csv")
    data = load(path)
    assert sorted(set(data.y.tolist())) == sorted(BIG)
    # the config's data section as the experiments give it
    section = SimpleNamespace(dataset=str(path), **vars(DataFileOptions()))
    split = load_labelled(section, 0)
    assert split.label_mapping == {"0": 0, "10000000000000000000": 1, "20000000000000000000": 2}
    done = kernelnet_cli(tmp_path, "kernel-table", path, "--set", "kernel.name=linear")
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    stored = json.loads(next((folder / "cells").glob("*/result.json")).read_text())
    assert stored["artifacts"]["label_mapping"] == split.label_mapping


def test_labels_from_libsvm_and_npz_are_exact_too(tmp_path):
    lines = [f"{label} 1:{i} 2:1" for label in BIG for i in range(4)]
    data = load(write(tmp_path / "big.libsvm", "\n".join(lines) + "\n"))
    assert sorted(set(data.y.tolist())) == sorted(BIG)
    path = tmp_path / "big.npz"
    np.savez(path, X=np.ones((12, 2)), y=np.repeat(np.array([0, 10**19, 2**64 - 1], np.uint64), 4))
    y = load(path).y
    assert sorted(set(y.tolist())) == ["0", "10000000000000000000", "18446744073709551615"]
    np.savez(path, X=np.ones((6, 2)), y=np.array([1.0, 2.0, 1.0, 2.0, 1.0, 2.0]))
    assert load(path).y.dtype == np.int64  # integral floats are the integers
    np.savez(path, X=np.ones((4, 2)), y=np.array([0.5, np.nan, 0.5, 1.5]))
    with pytest.raises(DataError, match="big.npz: y: label 1 is NaN, which never equals itself"):
        load(path)


@pytest.mark.parametrize(
    "labels, expected",
    [
        (["1", "1.0", "2", "2.00"], [1, 1, 2, 2]),  # one class each, written two ways
        (["1", "+1", "1e0", "-3"], [1, 1, 1, -3]),
        (["9007199254740993", "9007199254740993.0", "0", "0"], [9007199254740993] * 2 + [0, 0]),
        (["0.5", "1e300", "0.5", "1e300"], [0.5, 1e300, 0.5, 1e300]),
        (["0.1", "0.30000000000000000001", "0.1", "0.1"],  # not a float64 as written: text
         ["0.1", "0.30000000000000000001", "0.1", "0.1"]),
        (["cat", "nan", "cat", "nan"], ["cat", "nan", "cat", "nan"]),  # text: 'nan' is a word
    ],
)  # fmt: skip
def test_labels_are_numbers_only_when_exact(tmp_path, labels, expected):
    rows = "".join(f"{i},{i % 2},{label}\n" for i, label in enumerate(labels))
    y = load(write(tmp_path / "labels.csv", "a,b,label\n" + rows)).y
    assert y.tolist() == expected
    assert type(y.tolist()[0]) is type(expected[0])


@pytest.mark.parametrize(
    "labels, message",
    [
        (["1", "nan", "2"], "labels.csv:3: the label 'nan' is NaN, which never equals itself"),
        (["1", "2", "-inf"], "labels.csv:4: the label '-inf' is infinite"),
        (["1", "", "2"], r"labels.csv:3: the label \(column 'label'\) is empty"),
        (["10000000000000000000", "1e19", "0"],
         "labels.csv:3: the label '1e19' is the number '10000000000000000000'"),
    ],
)  # fmt: skip
def test_labels_that_cannot_name_a_class_are_one_line(tmp_path, labels, message):
    rows = "".join(f"{i},{i % 2},{label}\n" for i, label in enumerate(labels))
    with pytest.raises(DataError, match=message):
        load(write(tmp_path / "labels.csv", "a,b,label\n" + rows))


def test_a_nan_label_is_one_line_on_the_command_line(tmp_path):
    path = write(tmp_path / "nan.csv", "a,b,label\n" + "1,2,0\n3,4,1\n" * 5 + "5,6,nan\n")
    refused(kernelnet_cli(tmp_path, "svm-primal", path), tmp_path, "nan.csv:12: the label 'nan'")


def test_a_recorded_mapping_reads_back_as_the_labels_it_maps():
    assert classes_of({"0": 0, BIG[1]: 1, BIG[2]: 2}).tolist() == list(BIG)
    assert classes_of({"-1": -1, "1": 1}).dtype == np.int64
    assert classes_of({"0.5": -1, "1e+300": 1}).tolist() == [0.5, 1e300]
    assert classes_of({"cat": -1, "dog": 1}).tolist() == ["cat", "dog"]


def test_a_test_file_with_labels_of_another_kind_is_matched(tmp_path):
    train = write(tmp_path / "train.csv", "a,b,label\n" + "1,2,0.5\n3,4,1\n" * 4)
    test = write(tmp_path / "test.csv", "a,b,label\n1,2,1\n3,4,1\n")
    train_part, test_part = load_train_test(str(train), 0, 0.25, str(test))
    assert train_part.y.dtype == test_part.y.dtype == np.float64
    assert set(test_part.y.tolist()) <= set(train_part.y.tolist())


# -- issue 21: a spreadsheet's CSV ------------------------------------------------------


def test_a_utf8_bom_is_not_part_of_the_first_column_name(tmp_path):
    rows = "".join(f"{'xy'[i % 2]},{i},{i % 3}\n" for i in range(20))
    path = write(tmp_path / "bom.csv", "\ufeffspecies,a,b\n" + rows)  # as spreadsheets save
    assert path.read_bytes().startswith(b"\xef\xbb\xbfspecies")
    data = load(path, label_column="species")
    assert data.X.shape == (20, 2) and set(data.y.tolist()) == {"x", "y"}
    done = kernelnet_cli(tmp_path, "svm-primal", path, "--set", "data.label_column=species",
                         "--set", "svm.epochs=5")  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_csv_without_a_header_row_keeps_its_first_sample(tmp_path):
    path = write(tmp_path / "bare.csv", "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    data = load(path)
    assert data.X.shape == (20, 2)  # no sample taken as the header
    assert data.X[0].tolist() == [0.0, 0.0] and data.y[:2].tolist() == [0, 1]
    with pytest.raises(DataError, match="bare.csv: data.label_column='label', but its first row "
                                        "is all numbers, so it has no header row"):  # fmt: skip
        load(path, label_column="label")
    bad = write(tmp_path / "word.csv", "1,2,0\n3,x,1\n")
    with pytest.raises(DataError, match="word.csv:2: column 'column 2': 'x' is not a number"):
        load(bad)


def test_semicolon_and_tab_separated_files_are_read(tmp_path):
    for name, sep in (("semi.csv", ";"), ("tabs.csv", "\t")):
        rows = "".join(f"{i}{sep}{i % 3}{sep}{'ab'[i % 2]}\n" for i in range(10))
        data = load(write(tmp_path / name, f"x1{sep}x2{sep}label\n" + rows))
        assert data.X.shape == (10, 2) and set(data.y.tolist()) == {"a", "b"}


# -- the shipped data's readers ---------------------------------------------------------


def test_a_fifo_or_dev_zero_in_the_shipped_data_folder_is_refused(tmp_path, monkeypatch):
    (tmp_path / "toy2d").mkdir()
    os.mkfifo(tmp_path / "toy2d" / "moons.npz")
    os.symlink("/dev/zero", tmp_path / "toy2d" / "xor.npz")
    monkeypatch.setenv("KERNELNET_DATA", str(tmp_path))
    with pytest.raises(DataError, match="moons.npz: a FIFO, not a regular file"):
        within_deadline(lambda: load_binary("moons"))
    with pytest.raises(DataError, match="xor.npz: a device, not a regular file"):
        within_deadline(lambda: load_binary("xor"))
    done = kernelnet_cli(tmp_path, "kernel-table", "moons", env={"KERNELNET_DATA": str(tmp_path)})
    refused(done, tmp_path, "moons.npz: a FIFO")


def test_mnist_files_that_never_end_or_declare_too_much_are_refused(tmp_path):
    folder = tmp_path / "fifo" / "mnist"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "train-images-idx3-ubyte.gz")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: a FIFO"):
        within_deadline(lambda: load_mnist(tmp_path / "fifo"))
    folder = tmp_path / "zero" / "mnist"
    folder.mkdir(parents=True)
    os.symlink("/dev/zero", folder / "train-images-idx3-ubyte.gz")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: a device"):
        within_deadline(lambda: load_mnist(tmp_path / "zero"))
    folder = tmp_path / "huge" / "mnist"
    folder.mkdir(parents=True)
    # a 10^9-image header over a stream of zeros that would inflate to 784 GB
    header = struct.pack(">iiii", 2051, 10**9, 28, 28)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + bytes(2**20)))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"declares \(1000000000, 28, 28\) .* corrupt"):
            within_deadline(lambda: load_mnist(tmp_path / "huge"))
        assert tracemalloc.get_traced_memory()[1] < 2**20
    finally:
        tracemalloc.stop()
