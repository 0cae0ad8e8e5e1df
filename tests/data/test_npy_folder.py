"""The course's data layout: features and labels as separate .npy files, given as a folder
(X.npy and y.npy, or X_train.npy ... y_test.npy) or as the features file itself
(data/q1x.npy, its labels data/q1y.npy). Read exactly, never unpickled, every problem one
line naming the file; the folder's identity is its files' contents; the command line
trains on it."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kernelnet.config.sweep import data_identity
from kernelnet.data import files
from kernelnet.data.files import file_content_digest, load_train_test, read_labelled
from kernelnet.data.registry import load_binary
from kernelnet.errors import DataError, ResourceError
from tests.helpers import within_deadline

TIMEOUT = 120


def save(folder: Path, **arrays) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    return folder


def load(path, **options):
    return within_deadline(lambda: read_labelled(Path(path), **options))


def blobs(n=40, classes=("a", "b", "c"), seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(3 * i, 1.0, size=(n, 2)) for i in range(len(classes))])
    return X, np.repeat(np.array(classes), n)


# -- round trips ---------------------------------------------------------------------


def test_a_folder_of_x_and_y_reads_back_exactly(tmp_path):
    X, y = blobs()
    data = load(save(tmp_path / "data", X=X, y=y))
    np.testing.assert_array_equal(data.X, X)  # bit for bit
    assert data.X.dtype == np.float64
    np.testing.assert_array_equal(data.y, y)
    # integer labels stay those integers; uint8 pixels and a Fortran-ordered X are read
    # as the values they are
    pixels = np.asfortranarray(np.arange(60, dtype=np.uint8).reshape(20, 3))
    codes = np.arange(20) % 2 * 7
    data = load(save(tmp_path / "pixels", X=pixels, y=codes))
    np.testing.assert_array_equal(data.X, pixels.astype(np.float64))
    assert data.y.dtype == np.int64 and data.y.tolist() == codes.tolist()


def test_four_files_are_train_and_test_as_an_npz_of_them_is(tmp_path):
    iris = load_binary("iris_binary")
    parts = {"X_train": iris.X_train, "y_train": iris.y_train,
             "X_test": iris.X_test, "y_test": iris.y_test}  # fmt: skip
    folder = save(tmp_path / "iris", **parts)
    np.savez(tmp_path / "iris.npz", **parts)
    from_folder = load_train_test(str(folder), 0, 0.25)
    from_npz = load_train_test(str(tmp_path / "iris.npz"), 0, 0.25)
    for a, b in zip(from_folder, from_npz):
        np.testing.assert_array_equal(a.X, b.X)
        np.testing.assert_array_equal(a.y, b.y)
        assert a.y.dtype == b.y.dtype


def test_x_and_y_win_over_train_files_and_train_files_alone_are_split(tmp_path):
    X, y = blobs()
    folder = save(tmp_path / "both", X=X, y=y, X_train=X[:10], y_train=y[:10])
    assert len(load(folder).y) == len(y)
    only_train = save(tmp_path / "train", X_train=X, y_train=y)
    train, test = load_train_test(str(only_train), 0, 0.25)
    assert len(train.y) + len(test.y) == len(y)
    assert sorted(np.concatenate([train.y, test.y]).tolist()) == sorted(y.tolist())


@pytest.mark.parametrize(
    "features, labels",
    [("q1x", "q1y"), ("X", "y"), ("X_train", "y_train"), ("train_x", "train_y"),
     ("xor_x", "xor_y"), ("q2X-test", "q2y-test")],
)  # fmt: skip
def test_a_features_file_finds_its_labels_beside_it(tmp_path, features, labels):
    X, y = blobs()
    save(tmp_path / "data", **{features: X, labels: y})
    data = load(tmp_path / "data" / f"{features}.npy")
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.y, y)


def test_a_name_without_a_lone_x_is_one_line(tmp_path):
    save(tmp_path / "data", images=np.zeros((4, 2)), labels=np.arange(4))
    with pytest.raises(DataError, match="images.npy: cannot tell which file holds its labels"):
        load(tmp_path / "data" / "images.npy")
    with pytest.raises(DataError, match="a data folder holds X.npy and y.npy.*has images.npy"):
        load(tmp_path / "data")


# -- hostile and broken files ----------------------------------------------------------


class Touch:
    """Unpickling this creates a file: proof that something unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("role", ["X", "y"])
def test_a_pickled_object_array_is_refused_unread(tmp_path, role):
    marker = tmp_path / "unpickled"
    X, y = blobs()
    hostile = np.empty(len(y), dtype=object)
    hostile[:] = [Touch(marker)] * len(y)
    folder = save(tmp_path / "data", X=X, y=y)
    np.save(folder / f"{role}.npy", hostile if role == "y" else hostile[:, None],
            allow_pickle=True)  # fmt: skip
    with pytest.raises(DataError, match=f"{role}.npy: holds Python objects .* never unpickles"):
        load(folder)
    assert not marker.exists()


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"X": np.zeros((80, 2)), "y": np.zeros(79)},
         r"X.npy and y.npy: inconsistent numbers of samples: \[80, 79\]"),
        ({"X": np.zeros((10, 2, 2)), "y": np.zeros(10)},
         r"X.npy: X must be 2-D \(samples x features\); got shape \(10, 2, 2\)"),
        ({"X": np.zeros(10), "y": np.zeros(10)}, r"got shape \(10,\) \(one feature per column"),
        ({"X": np.zeros((10, 2)), "y": np.zeros((10, 1))}, r"y.npy: labels must be 1-D"),
        ({"X": np.array([["1", "2"]] * 4), "y": np.arange(4)},
         r"X.npy: holds <U1 values; features must be numbers"),
        ({"X": np.array([[1.0, np.nan]] * 4), "y": np.arange(4)}, r"X.npy contains NaN"),
        ({"X": np.zeros((4, 2)), "y": np.array([0, 1, np.inf, 1])}, r"y.npy: label 2 is infinite"),
        ({"X": np.zeros((4, 2), dtype=[("a", "<f8")]), "y": np.arange(4)},
         r"X.npy: holds \[\('a', '<f8'\)\] values, not plain numbers"),
        ({"X": np.zeros((0, 2)), "y": np.zeros(0)}, r"0 sample\(s\)"),
    ],
)  # fmt: skip
def test_bad_arrays_are_one_line_naming_the_file(tmp_path, arrays, message):
    with pytest.raises(DataError, match=message):
        load(save(tmp_path / "data", **arrays))


def raw_npy(header_shape, dtype="<f8", payload=b"") -> bytes:
    buffer = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": header_shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + payload


@pytest.mark.parametrize(
    "content, message",
    [
        (raw_npy((10**6, 10**6)), r"declares \(1000000, 1000000\) float64 .* but holds 0"),
        (raw_npy((4, 2), payload=b"\0" * 63),
         r"declares \(4, 2\) float64 \(64 bytes\) but holds 63"),
        (b"PK\x03\x04 not numpy at all", r"not an .npy file"),
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': <f8" + b" " * 40, r"a damaged .npy header"),
    ],
)  # fmt: skip
def test_files_declaring_more_than_they_hold_are_refused_before_reading(tmp_path, content, message):
    folder = save(tmp_path / "data", y=np.arange(4))
    (folder / "X.npy").write_bytes(content)
    with pytest.raises(DataError, match=message):
        load(folder)


def test_missing_labels_are_one_line(tmp_path):
    folder = save(tmp_path / "data", X=np.zeros((4, 2)))
    with pytest.raises(DataError, match=r"data: a data folder holds X.npy and y.npy.*has X.npy\)"):
        load(folder)
    save(folder, q1x=np.zeros((4, 2)))
    with pytest.raises(DataError, match=r"q1x.npy: its labels file q1y.npy is not beside it"):
        load(folder / "q1x.npy")
    with pytest.raises(DataError, match="dataset file not found: .*q9x.npy"):
        load(folder / "q9x.npy")


def test_a_symlink_out_of_the_folder_is_refused(tmp_path):
    outside = save(tmp_path / "outside", X=np.zeros((4, 2)), y=np.arange(4))
    folder = save(tmp_path / "data", y=np.arange(4))
    os.symlink(outside / "X.npy", folder / "X.npy")
    with pytest.raises(DataError, match=r"X.npy: a link out of .*data"):
        load(folder)
    # a features file named directly may be anywhere; its labels, found beside it, may not
    # link out of its folder
    pair = save(tmp_path / "pair", q1x=np.zeros((4, 2)))
    os.symlink(outside / "y.npy", pair / "q1y.npy")
    with pytest.raises(DataError, match=r"q1y.npy: a link out of"):
        load(pair / "q1x.npy")
    # a link that stays inside is followed
    inside = save(tmp_path / "inside", X=np.zeros((4, 2)), labels=np.arange(4) % 2)
    os.symlink("labels.npy", inside / "y.npy")
    assert load(inside).y.tolist() == [0, 1, 0, 1]


def test_a_fifo_or_device_as_a_member_is_refused_at_once(tmp_path):
    folder = save(tmp_path / "data", X=np.zeros((4, 2)))
    os.mkfifo(folder / "y.npy")
    with pytest.raises(DataError, match=r"y.npy: a FIFO, not a regular file"):
        load(folder)
    pair = save(tmp_path / "pair", q1y=np.arange(4))
    os.symlink("/dev/zero", pair / "q1x.npy")
    with pytest.raises(DataError, match=r"q1x.npy: a device, not a regular file"):
        load(pair / "q1x.npy")


def test_size_bounds_are_checked_before_reading(tmp_path, monkeypatch):
    folder = save(tmp_path / "data", X=np.zeros((400, 2)), y=np.arange(400) % 2)
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 1000)
    with pytest.raises(DataError, match=r"X.npy: 6,528 bytes, over the 1,000-byte bound"):
        load(folder)
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 2**30)
    pixels = save(tmp_path / "pixels", X=np.zeros((1000, 100), np.uint8), y=np.arange(1000) % 2)
    monkeypatch.setenv("KERNELNET_MEMORY_LIMIT", "1M")  # 100 KB of uint8 -> 1.6 MB float64
    with pytest.raises(ResourceError, match=r"X.npy: \(1000, 100\) uint8 and its float64"):
        load(pixels)


# -- identity: the content of the files, not the folder's name --------------------------


def test_the_digest_follows_the_files_contents(tmp_path, monkeypatch):
    X, y = blobs()
    folder = save(tmp_path / "data", X=X, y=y)
    digest = file_content_digest(str(folder))
    assert digest is not None and len(digest) == 64
    shutil.copytree(folder, tmp_path / "copy")
    assert file_content_digest(str(tmp_path / "copy")) == digest
    changed = y.copy()
    changed[-1] = "a"
    np.save(tmp_path / "copy" / "y.npy", changed)  # one label changed
    assert file_content_digest(str(tmp_path / "copy")) != digest
    # which file is X matters, not only the bytes present
    swapped = save(tmp_path / "swapped", X_train=X, y_train=y)
    assert file_content_digest(str(swapped)) != digest
    # a features file's identity includes its labels file
    save(tmp_path / "pair", q1x=X, q1y=y)
    pair = file_content_digest(str(tmp_path / "pair" / "q1x.npy"))
    np.save(tmp_path / "pair" / "q1y.npy", changed)
    assert file_content_digest(str(tmp_path / "pair" / "q1x.npy")) not in (None, pair)
    # no digest for what the loaders refuse
    os.remove(tmp_path / "pair" / "q1y.npy")
    assert file_content_digest(str(tmp_path / "pair" / "q1x.npy")) is None
    os.symlink(folder / "X.npy", tmp_path / "pair" / "X.npy")
    np.save(tmp_path / "pair" / "y.npy", y)
    assert file_content_digest(str(tmp_path / "pair")) is None  # X links out of the folder
    # the config's cell identity: however the folder's path is spelled
    monkeypatch.chdir(tmp_path)
    for spelling in ("data", "./data", "data/", str(folder)):
        identity = data_identity({"data": {"dataset": spelling}})
        assert identity["data"]["dataset"] == {"$sha256": digest}, spelling
    # a shipped set's name stays a name even if a folder of that name exists
    save(tmp_path / "moons", X=X, y=y)
    assert data_identity({"data": {"dataset": "moons"}}) == {"data": {"dataset": "moons"}}


# -- the command line ------------------------------------------------------------------


def kernelnet(tmp_path, *args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "kernelnet", *args, "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd,
    )  # fmt: skip


def test_mlp_trains_on_a_folder_from_the_command_line(tmp_path):
    X, y = blobs(n=50)
    save(tmp_path / "data", X=X, y=y)
    done = kernelnet(tmp_path, "mlp", "-q", "--set", "data.dataset=data",
                     "--set", "train.epochs=30", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = Path(done.stdout.strip().splitlines()[-1])
    if not run.is_absolute():
        run = tmp_path / run
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.8
    stored = json.loads((run / "cells" / "single" / "result.json").read_text())
    assert stored["artifacts"]["label_mapping"] == {"a": 0, "b": 1, "c": 2}
    train, test = load_train_test(str(tmp_path / "data"), 0, 0.25)
    assert len(train.y) + len(test.y) == 150


def test_svm_primal_on_the_shipped_set_as_npy_files_gives_its_numbers(tmp_path):
    iris = load_binary("iris_binary")
    save(tmp_path / "iris", X_train=iris.X_train, y_train=iris.y_train,
         X_test=iris.X_test, y_test=iris.y_test)  # fmt: skip
    rows = {}
    for dataset in ("iris_binary", str(tmp_path / "iris")):
        done = kernelnet(tmp_path, "svm-primal", "-q", "--set", f"data.dataset={dataset}")
        assert done.returncode == 0, done.stderr
        with open(Path(done.stdout.strip().splitlines()[-1]) / "metrics.csv") as handle:
            rows[dataset] = [{k: v for k, v in r.items()} for r in csv.DictReader(handle)]
    assert rows["iris_binary"] == rows[str(tmp_path / "iris")]  # every digit
    assert rows["iris_binary"][-1]["objective"].startswith("21.3289")


def test_the_assignment_s_features_file_from_the_command_line(tmp_path):
    iris = load_binary("iris_binary")
    save(tmp_path / "data", q1x=iris.X_train, q1y=iris.y_train.astype(np.int64))
    done = kernelnet(tmp_path, "svm-primal", "-q", "--set", "data.dataset=data/q1x.npy",
                     "--set", "svm.epochs=100", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda f: save(f, X=np.zeros((80, 2)), y=np.arange(79) % 2),
         "inconsistent numbers of samples: [80, 79]"),
        (lambda f: save(f, X=np.zeros((8, 2))), "a data folder holds X.npy and y.npy"),
        (lambda f: (save(f, y=np.arange(8) % 2),
                    np.save(f / "X.npy", np.array([[None, 1]] * 8, dtype=object),
                            allow_pickle=True)),
         "X.npy: holds Python objects"),
    ],
)  # fmt: skip
def test_bad_folders_are_one_line_exit_2_and_no_run_folder(tmp_path, make, fragment):
    make(tmp_path / "data")
    done = kernelnet(tmp_path, "mlp", "-q", "--set", f"data.dataset={tmp_path / 'data'}")
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert fragment in done.stderr
    assert not (tmp_path / "runs").exists()
