import csv
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.experiments.siamese import make_pairs, pair_step
from kernelnet.nn.gradcheck import numeric_gradient, relative_error
from kernelnet.nn.models import MLP
from kernelnet.nn.similarity import cosine_backward, cosine_forward


def test_cosine_is_safe_at_zero_vectors():
    z = np.array([[0.0, 0.0], [1.0, 2.0]])
    w = np.array([[1.0, 1.0], [0.0, 0.0]])
    with np.errstate(all="raise"):
        cos, cache = cosine_forward(z, w)
        dz, dw = cosine_backward(np.ones(2), cache)
    np.testing.assert_array_equal(cos, [0.0, 0.0])
    assert np.isfinite(dz).all() and np.isfinite(dw).all()


def test_cosine_of_parallel_and_opposite_vectors():
    cos, _ = cosine_forward(
        np.array([[1.0, 2.0], [1.0, 2.0]]), np.array([[2.0, 4.0], [-3.0, -6.0]])
    )
    np.testing.assert_allclose(cos, [1.0, -1.0])


def test_shared_tower_gradient_is_the_sum_over_both_towers():
    rng = np.random.default_rng(0)
    tower = MLP.create(4, [3], 2, rng, init="he", dtype=np.float64, activation="tanh")
    xa, xb = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    y = np.array([1.0, -1, 1, -1, 1, -1])
    _, grads = pair_step(tower, xa, xb, y)
    for name, value in tower.params.items():
        numeric = numeric_gradient(lambda: pair_step(tower, xa, xb, y)[0], value)
        assert relative_error(grads[name], numeric) < 1e-7, name


def test_pairs_are_balanced_and_labelled_correctly():
    labels = np.random.default_rng(1).integers(0, 10, 500)
    first, second, y = make_pairs(labels, 400, np.random.default_rng(2))
    assert (y > 0).sum() == 200
    np.testing.assert_array_equal(labels[first] == labels[second], y > 0)


def test_training_improves_pair_accuracy(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "siamese",
            "--runs-dir",
            str(tmp_path),
            "--quiet",
            "--set",
            "siamese.train_pairs=2000",
            "--set",
            "siamese.test_pairs=1000",
            "--set",
            "siamese.epochs=3",
        ],
    )
    assert result.exit_code == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert float(rows[-1]["pair_accuracy"]) > float(rows[0]["pair_accuracy"]) + 0.1
    assert float(rows[-1]["test_loss"]) < float(rows[0]["test_loss"])
    assert float(rows[-1]["cos_same"]) > float(rows[-1]["cos_different"]) + 0.3
    assert (folder / "plots" / "single" / "siamese.png").is_file()
