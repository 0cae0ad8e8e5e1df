import csv
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.experiments.optimizers import (
    SURFACES,
    adam_bias_check,
    nesterov_check,
    trajectory,
)


def test_adam_moments_are_unbiased():
    mean_dev, second_dev = adam_bias_check(np.random.default_rng(0))
    assert mean_dev < 0.05 and second_dev < 0.02


def test_adam_without_bias_correction_would_be_biased():
    # the check can fail: at t = 1 the raw first moment is (1 - beta1) mu = 0.1 mu
    from kernelnet.nn.optim import Adam

    adam, params = Adam(lr=0.0), {"w": np.zeros(5000)}
    adam.step(params, {"w": np.random.default_rng(1).normal(0.5, 2.0, 5000)})
    assert abs(adam._m["w"].mean() - 0.05) < 0.01


def test_nesterov_forms_agree():
    assert nesterov_check() < 1e-12


def test_surface_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    for surface in SURFACES.values():
        p = rng.normal(size=2)
        numeric = [(surface.f(p + e) - surface.f(p - e)) / 2e-6 for e in np.eye(2) * 1e-6]
        np.testing.assert_allclose(surface.grad(p), numeric, rtol=1e-5, atol=1e-7)


def test_the_plateau_traps_sgd_but_not_adam():
    plateau = SURFACES["plateau"]
    stuck = trajectory(plateau, "sgd", 0.9, 300)[-1]
    escaped = trajectory(plateau, "adam", 0.9, 300)[-1]
    assert np.linalg.norm(stuck) > 4 and np.linalg.norm(escaped) < 1e-3


def test_optimizers_experiment(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "optimizers",
            "--runs-dir",
            str(tmp_path),
            "--quiet",
            "--set",
            "mnist.train_size=1000",
            "--set",
            "mnist.epochs=1",
            "--set",
            "optimizer.name=sgd,adam",
        ],
    )
    assert result.exit_code == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert len(rows) == 2 * 4  # 3 surfaces + the MNIST run, per optimizer
    for plot in ("trajectories.png", "mnist_loss.png"):
        assert (folder / "plots" / plot).is_file()
