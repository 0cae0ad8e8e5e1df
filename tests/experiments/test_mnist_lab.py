"""The mnist lab's epoch 0, test curve, loss-and-accuracy figure and early-stopping replay."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.experiments.mnist import stopping_point
from kernelnet.nn.models import MLP
from kernelnet.nn.optim import SGD
from kernelnet.nn.trainer import Trainer, TrainSettings

CURVES = [
    [0.5, 0.6, 0.7, 0.65, 0.66, 0.69, 0.71, 0.70, 0.69, 0.68],
    [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05],
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
    [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],  # a tie is not an improvement
]


def scripted_trainer(curve, patience):
    """The real Trainer, its validation accuracy read from ``curve`` epoch by epoch."""
    rng = np.random.default_rng(0)
    model = MLP.create(2, [2], 2, rng, dtype=np.float64)
    epoch = iter(curve)

    def loss_and_grads(batch):
        return 1.0, {k: np.zeros_like(v) for k, v in model.params.items()}

    settings = TrainSettings(epochs=len(curve), batch_size=4, patience=patience)
    trainer = Trainer(model, SGD(), loss_and_grads, 4, settings, rng,
                      lambda: {"val_accuracy": next(epoch)}, "val_accuracy")  # fmt: skip
    return trainer.fit()


@pytest.mark.parametrize("curve", CURVES)
@pytest.mark.parametrize("patience", [1, 2, 3, 5])
def test_the_replay_stops_where_the_trainer_stops(curve, patience):
    history = scripted_trainer(curve, patience)
    point = stopping_point(range(1, len(curve) + 1), curve, patience)
    assert point.best_epoch == history.best_epoch
    assert point.best_value == history.best_value
    if history.stopped_early:
        assert point.stop_epoch == history.rows[-1]["epoch"]
    else:
        assert point.stop_epoch is None and len(history.rows) == len(curve)


def test_the_replay_ignores_epoch_zero_and_says_why():
    # epoch 0 (the untrained model) is a baseline, never the best epoch
    point = stopping_point([0, 1, 2, 3, 4], [0.99, 0.5, 0.7, 0.6, 0.65], 2)
    assert (point.best_epoch, point.stop_epoch) == (2, 4)
    assert point.why == "epochs 3-4 not above 70.00% (epoch 2)"
    never = stopping_point([0, 1, 2], [0.1, 0.5, 0.7], 2)
    assert never.why == "never 2 epochs without a new best up to epoch 2; best 70.00% (epoch 2)"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    result = CliRunner().invoke(
        app,
        ["mnist", "--runs-dir", str(folder), "--epochs", "3",
         "--set", "data.train_size=3000", "--set", "data.val_size=500",
         "--set", "data.test_size=1000"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return result, Path(result.stdout.strip().splitlines()[-1])


def test_the_table_starts_at_epoch_zero_with_test_accuracy(small_run):
    result, folder = small_run
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert rows[0]["loss"] == "" and all(r["loss"] for r in rows[1:])
    # untrained: near chance for ten classes (weights N(0, 1e-3^2) score ~ uniformly)
    assert 0.02 < float(rows[0]["val_accuracy"]) < 0.25
    assert float(rows[-1]["val_accuracy"]) > 0.8
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["epochs"] == 3 and summary["untrained_val_accuracy"] == float(
        rows[0]["val_accuracy"]
    )
    # keep-best restores the best validation epoch: its test accuracy is the final one
    best = rows[summary["best_epoch"]]
    assert float(best["test_accuracy"]) == summary["test_accuracy"]
    assert "Epoch 0 is the untrained model" in " ".join(result.stdout.split())  # wrapped


def test_the_figures_and_the_early_stopping_table(small_run):
    result, folder = small_run
    for plot in ("loss_and_accuracy", "early_stopping", "training"):
        assert (folder / "plots" / "single" / f"{plot}.png").is_file()
    assert "Early stopping on validation accuracy" in result.stdout
    assert "trained without early stopping (patience 0)" in result.stdout
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["early_stopping"]) == {"1", "2", "3"}


def test_epoch_zero_and_the_test_curve_can_be_turned_off(tmp_path):
    result = CliRunner().invoke(
        app,
        ["mnist", "--runs-dir", str(tmp_path), "--epochs", "1", "--quiet",
         "--set", "data.train_size=1000", "--set", "data.val_size=200",
         "--set", "data.test_size=200", "--set", "train.epoch_zero=false",
         "--set", "train.test_curve=false"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    header, *rows = list(csv.reader(open(folder / "metrics.csv")))
    assert header == ["cell", "epoch", "loss", "train_accuracy", "val_accuracy", "lr", "seconds"]
    assert [r[1] for r in rows] == ["1"]
