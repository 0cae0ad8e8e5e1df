"""The one trainer: divergence as a status in every gradient-trained experiment, strict
JSON, and checkpoints that resume to exactly the numbers of an uninterrupted run."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.nn.models import MLP
from kernelnet.nn.optim import Adam
from kernelnet.nn.trainer import CHECKPOINT, Trainer, TrainSettings, train_classifier
from kernelnet.runs import RunDir

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def folder_of(result) -> Path:
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "command, sets",
    [
        # a finite loss of ~1e28: only the explosion bound catches it
        ("mnist", ["train.learning_rate=1e3", "train.epochs=2", "data.train_size=2000"]),
        ("svm-primal", ["svm.learning_rate=1e6", "svm.epochs=30"]),
        ("fit", ["fit.learning_rate=1e150", "fit.target=sine", "fit.activation=relu",
                 "fit.architecture=1x8", "fit.steps=50"]),
        ("optimizers", ["optimizer.name=sgd", "mnist.sgd_lr=1e4", "mnist.train_size=500",
                        "mnist.val_size=100", "mnist.epochs=1", "optimizer.steps=5"]),
    ],
)  # fmt: skip
def test_divergence_is_a_status_with_epoch_step_lr_and_a_hint(tmp_path, command, sets):
    result = invoke(command, "--runs-dir", tmp_path, *(a for s in sets for a in ("--set", s)))
    folder = folder_of(result)
    manifest = json.loads((folder / "run.json").read_text())
    summary_text = (folder / "summary.json").read_text()
    summary = json.loads(summary_text)  # strict JSON: no NaN or Infinity anywhere
    assert "NaN" not in summary_text and "Infinity" not in summary_text
    assert result.exit_code == 1, result.stderr
    assert manifest["status"] == "diverged"
    failure = summary["failed_cells"][0]
    assert failure["status"] == "diverged"
    assert "try a lower learning rate" in failure["error"] and "epoch" in failure["error"]
    row = next(csv.DictReader(open(folder / "metrics.csv")))
    assert float(row["lr"]) > 0 and int(row["epoch"]) >= 0


def test_json_files_say_which_values_were_not_finite(tmp_path):
    run = RunDir(tmp_path)
    run.write_json("x.json", {"a": {"b": float("nan")}, "c": [1.0, float("-inf")], "d": 2})
    data = json.loads((tmp_path / "x.json").read_text())
    assert data["a"]["b"] is None and data["c"] == [1.0, None] and data["d"] == 2
    assert data["non_finite_values"] == {"a.b": "nan", "c[1]": "-inf"}


def _classifier(tmp_path, epochs, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 20)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    model = MLP.create(20, [16], 2, rng, init="he", batchnorm=True, dropout=0.1)
    settings = TrainSettings(epochs=epochs, batch_size=32, lr_decay=0.9)
    history = train_classifier(
        model, Adam(lr=1e-2), X, y, X[:60], y[:60], settings, rng, 50,
        checkpoints=RunDir(tmp_path).cell_files("cell"), fingerprint="f",
    )  # fmt: skip
    return model, history


def test_a_checkpoint_continues_to_exactly_the_uninterrupted_numbers(tmp_path):
    whole_model, whole = _classifier(tmp_path / "whole", 6)
    (tmp_path / "parts").mkdir()
    _classifier(tmp_path / "parts", 3)  # stops after epoch 3, leaving its checkpoint
    saved = tmp_path / "parts" / "cells" / "cell" / CHECKPOINT
    assert json.loads(saved.read_text())["rows"][-1]["epoch"] == 3
    model, history = _classifier(tmp_path / "parts", 6)  # same seed: continues from epoch 3
    assert history.resumed_from == 3
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in history.rows]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in whole.rows]
    assert history.iteration_loss == whole.iteration_loss
    for name, value in whole_model.state().items():
        np.testing.assert_array_equal(model.state()[name], value)


def test_a_foreign_or_damaged_checkpoint_is_ignored(tmp_path):
    (tmp_path / "a").mkdir()
    _classifier(tmp_path / "a", 2)
    saved = tmp_path / "a" / "cells" / "cell" / CHECKPOINT
    document = json.loads(saved.read_text())
    document["token"] = "0" * 16  # no longer matches its arrays
    saved.write_text(json.dumps(document))
    _, history = _classifier(tmp_path / "a", 2)
    assert history.resumed_from == 0


def test_the_trainer_takes_any_loss_function():
    rng = np.random.default_rng(0)
    model = MLP.create(1, [8], 1, rng, init="xavier", dtype=np.float64, loss_name="mse")
    x = np.linspace(-1, 1, 50)[:, None]
    settings = TrainSettings(epochs=200, batch_size=50, keep_best=False, shuffle=False)
    history = Trainer(
        model, Adam(lr=1e-2), lambda b: model.loss(x[b], 2 * x[b]), 50, settings, rng
    ).fit()
    assert history.rows[-1]["loss"] < 0.01 * history.rows[0]["loss"]


def test_resume_after_sigkill_mid_training_reaches_the_uninterrupted_numbers(tmp_path):
    args = [
        sys.executable, "-m", "kernelnet", "mnist", "--quiet",
        "--set", "data.train_size=20000", "--set", "data.val_size=1000",
        "--set", "data.test_size=1000", "--set", "train.epochs=4", "--set", "model.dropout=0.1",
        "--set", "model.batchnorm=true", "--set", "train.optimizer=adam",
    ]  # fmt: skip
    process = subprocess.Popen([*args, "--runs-dir", str(tmp_path / "killed")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.time() + 120
    checkpoint = None
    while time.time() < deadline and checkpoint is None:
        found = list((tmp_path / "killed").glob("mnist/*/cells/single/checkpoint.json"))
        checkpoint = found[0] if found else None
        time.sleep(0.05)
    assert checkpoint is not None, "no checkpoint was written"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    epochs_done = json.loads(checkpoint.read_text())["rows"][-1]["epoch"]
    assert 1 <= epochs_done < 4
    folder = checkpoint.parents[2]
    resumed = invoke("run", "--resume", folder, "--quiet")
    assert resumed.exit_code == 0, resumed.stderr
    assert (
        f"continuing from the checkpoint of epoch {epochs_done}" in (folder / "log.txt").read_text()
    )
    assert not (folder / "cells" / "single" / "checkpoint.json").exists()  # done with it
    fresh = subprocess.run([*args, "--runs-dir", str(tmp_path / "fresh")], capture_output=True,
                           text=True)  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr

    def rows(path: Path):
        return [
            {k: v for k, v in r.items() if k != "seconds"}
            for r in csv.DictReader(open(path / "metrics.csv"))
        ]

    fresh_folder = Path(fresh.stdout.strip().splitlines()[-1])
    assert rows(folder) == rows(fresh_folder)
    with (
        np.load(folder / "cells/single/model.npz") as a,
        np.load(fresh_folder / "cells/single/model.npz") as b,
    ):
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])


HELD_OUT_X = np.random.default_rng(9).normal(size=(80, 10)).astype(np.float32)
HELD_OUT = (HELD_OUT_X, (HELD_OUT_X[:, 0] - HELD_OUT_X[:, 2] > 0).astype(np.int64))


def _toy_data_and_model():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 10)).astype(np.float32)
    y = (X[:, 0] - X[:, 2] > 0).astype(np.int64)
    model = MLP.create(10, [12], 2, rng, init="he", batchnorm=True, dropout=0.1)
    return rng, X, y, model


def _toy_fit(evaluate_first: bool, also_evaluate=None, epochs=3, checkpoints=None):
    """A batch-norm, dropout MLP (both use the Generator) on a separable toy problem."""
    rng, X, y, model = _toy_data_and_model()
    settings = TrainSettings(epochs=epochs, batch_size=25, evaluate_first=evaluate_first)
    extra = {} if checkpoints is None else {"checkpoints": checkpoints, "fingerprint": "f"}
    history = train_classifier(
        model, Adam(lr=1e-2), X, y, X[:50], y[:50], settings, rng, 40,
        also_evaluate=also_evaluate, **extra,
    )  # fmt: skip
    return model, history


def _without(rows, *keys):
    return [{k: v for k, v in r.items() if k not in ("seconds", *keys)} for r in rows]


def test_epoch_zero_is_the_untrained_model_and_changes_no_later_number():
    _, X, y, untrained = _toy_data_and_model()
    plain_model, plain = _toy_fit(False)
    model, history = _toy_fit(True)
    zero = history.rows[0]
    assert zero["epoch"] == 0 and zero["loss"] is None
    # the weights the fit starts from, scored before any step (chance level, not trained)
    assert zero["val_accuracy"] == float((untrained.predict(X[:50]) == y[:50]).mean())
    assert zero["val_accuracy"] < plain.rows[-1]["val_accuracy"]
    assert [r["epoch"] for r in history.rows] == [0, 1, 2, 3]
    assert _without(history.rows[1:]) == _without(plain.rows)
    assert history.iteration_loss == plain.iteration_loss
    assert history.best_epoch == plain.best_epoch >= 1
    for name, value in plain_model.state().items():
        np.testing.assert_array_equal(model.state()[name], value)


def test_epoch_zero_is_off_unless_asked():
    assert TrainSettings().evaluate_first is False
    assert _toy_fit(False)[1].rows[0]["epoch"] == 1


def test_also_evaluate_adds_an_accuracy_per_epoch_that_draws_nothing():
    _, plain = _toy_fit(True)
    model, history = _toy_fit(True, {"test_accuracy": HELD_OUT})
    assert _without(history.rows, "test_accuracy") == _without(plain.rows)
    assert all(0 <= r["test_accuracy"] <= 1 for r in history.rows)
    # keep-best restores the best validation epoch: its recorded test accuracy is the
    # restored model's
    restored = float((model.predict(HELD_OUT[0]) == HELD_OUT[1]).mean())
    assert history.rows[history.best_epoch]["test_accuracy"] == restored


def test_a_checkpoint_with_epoch_zero_resumes_without_evaluating_it_again(tmp_path):
    _, whole = _toy_fit(True, epochs=4)
    files = RunDir(tmp_path).cell_files("cell")
    _toy_fit(True, epochs=2, checkpoints=files)
    _, history = _toy_fit(True, epochs=4, checkpoints=files)
    assert history.resumed_from == 2
    assert [r["epoch"] for r in history.rows] == [0, 1, 2, 3, 4]
    assert _without(history.rows) == _without(whole.rows)
