import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from kernelnet import cell_store
from kernelnet.cli import app
from kernelnet.errors import ConfigError
from kernelnet.experiments.fit import parse_architecture


def run_fit(runs: Path, *settings: str) -> Path:
    arguments = ["fit", "--runs-dir", str(runs), "--quiet"]
    for setting in settings:
        arguments += ["--set", setting]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    folder = run_fit(
        tmp_path_factory.mktemp("runs"),
        "fit.target=sine,abs",
        "fit.activation=identity,tanh",
        "fit.architecture=[3x16, 'branches:2x16']",
        "fit.steps=600",
        "fit.patience=0",
    )
    assert (folder / "plots" / "fits.png").is_file()
    assert (folder / "plots" / "training_curves.png").is_file()
    return list(csv.DictReader(open(folder / "metrics.csv")))


def test_a_linear_network_can_only_fit_a_line(rows):
    for row in (r for r in rows if r["activation"] == "identity"):
        assert float(row["max_second_difference"]) < 1e-10
        assert float(row["train_mse"]) >= float(row["best_line_train_mse"]) - 1e-12


def test_a_nonlinear_network_beats_the_best_line(rows):
    for row in (r for r in rows if r["activation"] == "tanh"):
        assert float(row["train_mse"]) < 0.5 * float(row["best_line_train_mse"])


def test_without_patience_every_step_runs(rows):
    for row in rows:
        assert row["steps_run"] == "600" and row["stopped_early"] == "False"
        assert 1 <= int(row["best_step"]) <= 600


@pytest.fixture(scope="module")
def skip_rows(tmp_path_factory):
    folder = run_fit(
        tmp_path_factory.mktemp("runs"),
        "fit.target=abs,sine",
        "fit.activation=relu",
        "fit.architecture=['skip:3x16', 'skip-chain:3x16']",
        "fit.steps=600",
        "fit.patience=0",
    )
    return {
        (r["target"], r["architecture"]): r for r in csv.DictReader(open(folder / "metrics.csv"))
    }


def test_the_assignments_skip_network_fits_abs_but_not_a_sine(skip_rows):
    """As written, the ReLU skip network is c0 + c1 x + c2 relu(x): |x| = 2 relu(x) - x is
    within reach (the noise floor is 0.05^2), sin 2x is not (the best such curve leaves a
    train MSE near 0.4); the chained reading, a deep network, fits the sine far better."""
    assert float(skip_rows["abs", "skip:3x16"]["train_mse"]) < 2 * 0.05**2
    literal = float(skip_rows["sine", "skip:3x16"]["train_mse"])
    assert literal > 0.1
    assert float(skip_rows["sine", "skip-chain:3x16"]["train_mse"]) < 0.5 * literal


@pytest.fixture(scope="module")
def overfit(tmp_path_factory):
    """Few noisy points and a wide network: it overfits, so early stopping triggers."""
    folder = run_fit(
        tmp_path_factory.mktemp("runs"),
        "fit.target=sine",
        "fit.activation=tanh",
        "fit.architecture=1x64",
        "fit.train_points=15",
        "fit.noise=0.3",
        "fit.learning_rate=0.03",
        "fit.steps=3000",
        "fit.patience=100",
    )
    row = next(csv.DictReader(open(folder / "metrics.csv")))
    stored = next((folder / "cells").iterdir())
    document = json.loads((stored / "result.json").read_text())
    artifacts = cell_store.decode(
        document["artifacts"], dict(np.load(stored / "result-arrays.npz"))
    )
    return folder, row, artifacts


def test_early_stopping_stops_patience_steps_after_the_best_step(overfit):
    _, row, artifacts = overfit
    best, run = int(row["best_step"]), int(row["steps_run"])
    assert row["stopped_early"] == "True" and run == best + 100 < 3000
    val = artifacts["val_curve"]
    assert len(val) == run == len(artifacts["train_curve"])
    assert val[best - 1] == val.min()  # the best step is the lowest held-out MSE ...
    assert (val[best:] > val[best - 1]).all()  # ... and no later step lowered it
    # the weights of the best step are the ones kept
    assert float(row["val_mse"]) == pytest.approx(val[best - 1], rel=1e-12)


def test_the_report_says_why_training_stopped(overfit):
    """Few noisy points: past the best step the training loss keeps falling while the
    held-out MSE does not, and the table says so."""
    folder, row, _ = overfit
    report = (folder / "metrics.md").read_text()
    assert "### Early stopping (patience 100)" in report
    line = next(
        r
        for r in report.splitlines()
        if r.startswith("| sine | tanh | 1x64 |") and "training loss still falling" in r
    )
    assert f"| {row['best_step']} | {row['steps_run']} |" in line
    assert (folder / "plots" / "training_curves.png").is_file()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["early_stopping"] == {"stopped_early": 1, "steps_run": int(row["steps_run"])}


def test_architecture_syntax():
    assert parse_architecture("3x32") == ("mlp", 3, 32)
    assert parse_architecture("branches:2x8") == ("branches", 2, 8)
    assert parse_architecture("skip:3x16") == ("skip", 3, 16)
    assert parse_architecture("skip-chain:3x4") == ("skip-chain", 3, 4)
    for bad in ("3", "x32", "res:2x8", "0x4", "skip:0x4"):
        with pytest.raises(ConfigError):
            parse_architecture(bad)


def test_the_shipped_config_has_the_skip_network_and_early_stopping():
    shipped = Path(__file__).resolve().parents[2] / "configs" / "fit.yaml"
    fit = yaml.safe_load(shipped.read_text())["fit"]
    assert "skip:3x16" in fit["architecture"] and fit["patience"] > 0
