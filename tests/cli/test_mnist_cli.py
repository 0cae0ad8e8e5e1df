import csv
import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from kernelnet.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def folder_of(result) -> Path:
    return Path(result.stdout.strip().splitlines()[-1])


def test_default_config_reaches_96_percent(tmp_path):
    result = invoke("mnist", "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    folder = folder_of(result)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["test_accuracy"] >= 0.96
    assert {"best_val_accuracy", "epochs", "seconds_per_epoch"} <= set(summary)
    rows = list(csv.reader(open(folder / "metrics.csv")))
    assert rows[0] == [
        "cell", "epoch", "loss", "train_accuracy", "val_accuracy", "test_accuracy", "lr",
        "seconds",
    ]  # fmt: skip
    assert [r[0] for r in rows[1:]] == ["single"] * 6
    assert [r[1] for r in rows[1:]] == ["0", "1", "2", "3", "4", "5"]  # 0: before training
    assert rows[1][2] == "" and float(rows[1][4]) < 0.25  # untrained: no loss, near chance
    assert float(rows[3][6]) == 0.001 * 0.95
    assert float(rows[1 + summary["best_epoch"]][5]) == summary["test_accuracy"]
    plots = ("training", "loss_and_accuracy", "early_stopping", "confusion", "misclassified")
    for plot in (*plots, "first_layer_weights"):
        assert (folder / "plots" / "single" / f"{plot}.png").is_file()
    with np.load(folder / "cells" / "single" / "model.npz") as saved:
        assert saved["W1"].shape == (784, 100) and saved["W2"].shape == (100, 10)


def test_divergence_marks_the_run_diverged_with_a_hint(tmp_path):
    result = invoke(
        "mnist",
        "--runs-dir",
        tmp_path,
        "--set",
        "data.train_size=2000",
        "--set",
        "model.activation=identity",
        "--set",
        "model.weight_scale=0.01",
        "--set",
        "train.learning_rate=10",
        "--epochs",
        "2",
    )
    assert result.exit_code == 1
    folder = folder_of(result)
    assert json.loads((folder / "run.json").read_text())["status"] == "diverged"
    failure = json.loads((folder / "summary.json").read_text())["failed_cells"][0]
    assert failure["status"] == "diverged" and "try a lower learning rate" in failure["error"]
    row = next(csv.DictReader(open(folder / "metrics.csv")))
    assert row["lr"] == "10.0" and int(row["epoch"]) >= 1 and int(row["step"]) >= 1


def test_overlapping_validation_split_is_a_config_error(tmp_path):
    result = invoke("mnist", "--runs-dir", tmp_path, "--set", "data.train_size=58000")
    assert result.exit_code == 2 and "validation images would overlap training" in result.stderr


def test_gradcheck_command_passes(tmp_path):
    result = invoke("gradcheck", "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(open(folder_of(result) / "metrics.csv")))
    # at least the 18 checks it always had (the gradcheck lab is gaining more)
    assert len(rows) >= 18 and all(r["passed"] == "True" for r in rows)
