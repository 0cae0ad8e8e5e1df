import csv
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.experiments.optimizers import (
    SURFACES,
    adam_bias_check,
    first_reach,
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
    assert len(rows) == 2 * 7  # 3 surfaces from 2 starting states + the MNIST run
    assert {(r["problem"], r["start"]) for r in rows if r["optimizer"] == "adam"} == {
        ("plateau", "rest"), ("valley", "rest"), ("rosenbrock", "rest"),
        ("plateau", "moving"), ("valley", "moving"), ("rosenbrock", "moving"),
        ("mnist-mlp", "rest"),
    }  # fmt: skip
    for plot in ("trajectories.png", "mnist_loss.png"):
        assert (folder / "plots" / plot).is_file()


def test_prior_steps_change_nothing_for_sgd_which_has_no_state():
    plateau = SURFACES["plateau"]
    np.testing.assert_array_equal(
        trajectory(plateau, "sgd", 0.9, 50), trajectory(plateau, "sgd", 0.9, 50, 5, 0.5)
    )


def test_moving_momentum_starts_with_the_velocity_of_its_prior_steps():
    # v after k prior steps of gradient -g u: lr g u (1 + mu + ... + mu^(k-1)); the first
    # real step is w1 = w0 + mu v - lr grad(w0)
    plateau, lr, mu, g, k = SURFACES["plateau"], SURFACES["plateau"].sgd_lr, 0.9, 0.5, 5
    start = np.array(plateau.start)
    towards = -start / np.linalg.norm(start)  # the minimum is the origin
    velocity = lr * g * towards * sum(mu**i for i in range(k))
    expected = start + mu * velocity - lr * plateau.grad(start)
    path = trajectory(plateau, "momentum", mu, 1, k, g)
    np.testing.assert_allclose(path[1], expected, rtol=1e-14)
    np.testing.assert_array_equal(path[0], start)  # it starts where the table says


def _ranking(prior_steps: int) -> list[str]:
    plateau = SURFACES["plateau"]
    reached = {}
    for name in ("momentum", "adagrad", "adam"):
        path = trajectory(plateau, name, 0.9, 300, prior_steps, 0.5)
        step = first_reach(path, plateau.minimum, 0.1)
        reached[name] = np.inf if step is None else step
    return sorted(reached, key=reached.get)


def test_the_course_ranking_holds_when_already_moving_and_not_at_rest():
    assert _ranking(5) == ["momentum", "adam", "adagrad"]  # the course's answer
    assert _ranking(0) == ["adam", "adagrad", "momentum"]  # from rest: adaptive first


def test_first_reach_is_the_first_index_within_the_distance():
    path = np.array([[3.0, 0.0], [0.5, 0.0], [0.05, 0.0], [0.2, 0.0], [0.0, 0.0]])
    assert first_reach(path, (0.0, 0.0), 0.1) == 2
    assert first_reach(path, (9.0, 9.0), 0.1) is None


def test_the_tables_say_which_start_they_use(tmp_path):
    result = CliRunner().invoke(
        app,
        ["optimizers", "--runs-dir", str(tmp_path), "--set", "optimizer.name=momentum,adagrad",
         "--set", "optimizer.start=[moving]", "--set", "optimizer.surfaces=[plateau]",
         "--set", "mnist.train_size=200", "--set", "mnist.val_size=100",
         "--set", "mnist.epochs=1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "moving = 5 steps already taken towards the minimum" in result.stdout
    assert "rest = no history" not in result.stdout
    assert "momentum (5) > adagrad (never" in result.stdout
    assert "Every run starts at rest" in result.stdout  # the MNIST table
