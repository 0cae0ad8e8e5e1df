"""Your own data through the command line: CSV, .npz and LIBSVM files, split from the run
seed or with a test file, labels of any type mapped and recorded; bad files are one line."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import kernelnet
from kernelnet.cli import app
from kernelnet.data.files import load_train_test

runner = CliRunner()


def blobs(n=60, classes=("cat", "dog"), seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(3 * i, 1.0, size=(n, 2)) for i in range(len(classes))])
    y = np.repeat(np.array(classes), n)
    return X, y


def write_csv(path: Path, X, y, header=("x1", "x2", "label"), label_first=False):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for features, label in zip(X, y):
            row = [*map(repr, features.tolist())]
            writer.writerow([label, *row] if label_first else [*row, label])
    return path


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def folder_of(result) -> Path:
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("command", ["kernel-table", "svm-primal", "asym-svm"])
def test_a_csv_with_text_labels_runs_and_records_the_mapping(tmp_path, command):
    data = write_csv(tmp_path / "pets.csv", *blobs())
    extra = {"kernel-table": ["--set", "kernel.name=rbf"], "svm-primal": ["--epochs", "30"],
             "asym-svm": ["--set", "svm.cost_ratio=1"]}[command]  # fmt: skip
    result = invoke(command, "--runs-dir", tmp_path / "runs", "--quiet",
                    "--set", f"data.dataset={data}", *extra)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    folder = folder_of(result)
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert float(rows[-1]["test_accuracy"]) >= 0.9
    stored = json.loads(next((folder / "cells").glob("*/result.json")).read_text())
    assert stored["artifacts"]["label_mapping"] == {"cat": -1, "dog": 1}


def test_label_column_test_path_npz_and_libsvm(tmp_path):
    X, y = blobs()
    first = write_csv(tmp_path / "first.csv", X, y, ("label", "a", "b"), label_first=True)
    train, test = load_train_test(str(first), 0, 0.25, label_column="label")
    assert train.X.shape == (90, 2) and test.X.shape == (30, 2)
    assert sorted(np.unique(test.y).tolist()) == ["cat", "dog"]  # stratified: both classes
    assert np.sum(test.y == "cat") == np.sum(test.y == "dog") == 15
    other = write_csv(tmp_path / "other.csv", *blobs(seed=1))
    train, test = load_train_test(str(first), 0, 0.25, str(other), "label")
    assert train.X.shape == (120, 2) and test.X.shape == (120, 2)

    np.savez(tmp_path / "xy.npz", X=X, y=(y == "dog").astype(int))
    np.savez(tmp_path / "four.npz", X_train=X[::2], y_train=y[::2], X_test=X[1::2],
             y_test=y[1::2])  # fmt: skip
    assert load_train_test(str(tmp_path / "xy.npz"), 0, 0.5)[1].X.shape == (60, 2)
    assert load_train_test(str(tmp_path / "four.npz"), 0, 0.5)[0].X.shape == (60, 2)

    labels = np.where(y == "dog", 1, -1)
    lines = [f"{label} 1:{float(a)!r} 2:{float(b)!r}" for (a, b), label in zip(X, labels)]
    lines[0] = lines[0].split(" 2:")[0]  # a missing index is 0
    (tmp_path / "data.libsvm").write_text("\n".join(lines) + "\n")
    train, test = load_train_test(str(tmp_path / "data.libsvm"), 0, 0.25)
    assert train.X.shape[1] == 2 and set(np.unique(train.y).tolist()) == {-1, 1}


def test_the_split_comes_from_the_run_seed(tmp_path):
    data = write_csv(tmp_path / "pets.csv", *blobs())
    a = load_train_test(str(data), 0, 0.25)[1].X
    b = load_train_test(str(data), 0, 0.25)[1].X
    c = load_train_test(str(data), 1, 0.25)[1].X
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_knn_takes_a_multiclass_file(tmp_path):
    data = write_csv(tmp_path / "three.csv", *blobs(classes=("a", "b", "c")))
    result = invoke("knn", "--runs-dir", tmp_path / "runs", "--quiet",
                    "--set", f"data.dataset={data}", "--set", "knn.k=1,5")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = json.loads((folder_of(result) / "summary.json").read_text())
    assert summary["by_dataset"][str(data)]["test_accuracy"] > 0.9


def _bad(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: _bad(t, "nan.csv", "a,b,label\n1,2,x\n1,nan,y\n"),
         "nan.csv:3: column 'b' contains NaN"),
        (lambda t: _bad(t, "inf.csv", "a,b,label\n1,inf,x\n"),
         "inf.csv:2: column 'b' contains infinity"),
        (lambda t: _bad(t, "ragged.csv", "a,b,label\n1,2,x\n1,y\n"),
         "ragged.csv:3: expected 3 fields, got 2"),
        (lambda t: _bad(t, "word.csv", "a,b,label\n1,two,x\n"),
         "word.csv:2: column 'b': 'two' is not a number"),
        (lambda t: _bad(t, "one.csv", "a,b,label\n" + "1,2,x\n" * 8), "got 1 class"),
        (lambda t: _bad(t, "empty.csv", ""), "empty.csv: empty file"),
        (lambda t: _bad(t, "bad.libsvm", "1 1:2 x:3\n"), "bad.libsvm:1: 'x:3' is not index:value"),
        (lambda t: t / "missing.csv", "dataset file not found"),
    ],
)  # fmt: skip
def test_bad_files_are_one_line_exit_2_and_no_run_folder(tmp_path, make, message):
    path = make(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "kernelnet", "kernel-table", "--runs-dir", str(tmp_path / "runs"),
         "--set", f"data.dataset={path}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_an_npz_holding_objects_is_refused_unread(tmp_path):
    np.savez(tmp_path / "objects.npz", X=np.array([object()] * 4, dtype=object), y=np.ones(4))
    result = invoke("kernel-table", "--runs-dir", tmp_path / "runs",
                    "--set", f"data.dataset={tmp_path / 'objects.npz'}")  # fmt: skip
    assert result.exit_code == 2 and "holds object values" in result.stderr


def test_a_misspelt_shipped_name_gets_a_suggestion(tmp_path):
    result = invoke("kernel-table", "--runs-dir", tmp_path, "--set", "data.dataset=moosn")
    assert result.exit_code == 2 and "did you mean 'moons'?" in result.stderr


def test_kernel_table_takes_multiclass_files_one_vs_one_like_svc(tmp_path):
    from sklearn.svm import SVC

    X, y = blobs(n=40, classes=("a", "b", "c"))
    data = write_csv(tmp_path / "three.csv", X, y)
    result = invoke("kernel-table", "--runs-dir", tmp_path / "runs", "--quiet",
                    "--set", f"data.dataset={data}", "--set", "kernel.name=rbf,linear")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rows = {r["kernel"]: r for r in csv.DictReader(open(folder_of(result) / "metrics.csv"))}
    train, test = load_train_test(str(data), 0, 0.25)
    for kernel in ("rbf", "linear"):
        ref = SVC(kernel=kernel, C=1.0, gamma=0.2).fit(train.X, train.y)
        assert float(rows[kernel]["test_accuracy"]) == ref.score(test.X, test.y)
    refused = invoke("svm-primal", "--runs-dir", tmp_path / "runs", "--set", f"data.dataset={data}")
    assert refused.exit_code == 2 and "needs exactly two classes" in refused.stderr


def test_the_mlp_experiment_trains_on_a_multiclass_file(tmp_path, monkeypatch):
    # A relative path keeps the cell's config (and so its seed) the same on every test run.
    monkeypatch.chdir(tmp_path)
    data = write_csv(tmp_path / "three.csv", *blobs(n=50, classes=("a", "b", "c")))
    result = invoke("mlp", "--runs-dir", tmp_path / "runs", "--quiet",
                    "--set", "data.dataset=three.csv", "--set", "train.epochs=30")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    folder = folder_of(result)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.8  # three overlapping blobs (centres 3 sd apart)
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 31))
    model = kernelnet.load_run(folder).model()
    train, test = load_train_test(str(data), 0, 0.25)
    assert model.score(test.X, test.y) == summary["test_accuracy"]  # raw data in, as saved
    assert (folder / "cells" / "single" / "model.json").is_file()
    assert (folder / "plots" / "single" / "training.png").is_file()
