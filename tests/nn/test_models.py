import math

import numpy as np
import pytest

from kernelnet.data.mnist import load_mnist
from kernelnet.errors import Diverged
from kernelnet.nn.models import MLP, two_layer_net
from kernelnet.nn.optim import SGD, Adam
from kernelnet.nn.trainer import TrainSettings
from kernelnet.nn.trainer import train_classifier as train


@pytest.fixture(scope="module")
def mnist_small():
    data = load_mnist()
    X = data.train_images[:2000].reshape(2000, -1).astype(np.float32) / 255
    return X, data.train_labels[:2000].astype(np.int64)


def test_initial_softmax_loss_with_small_weights_is_log_10(mnist_small):
    X, y = mnist_small
    model = two_layer_net(784, 100, 10, np.random.default_rng(0), weight_scale=1e-3)
    loss, _ = model.loss(X[:500], y[:500], train=False)
    assert loss == pytest.approx(math.log(10), abs=0.1)


def test_twenty_examples_can_be_overfit(mnist_small):
    X, y = mnist_small[0][:20], mnist_small[1][:20]
    rng = np.random.default_rng(0)
    model = MLP.create(784, [100], 10, rng, init="he")
    train(model, Adam(lr=1e-3), X, y, X, y, TrainSettings(epochs=60, batch_size=20), rng)
    assert (model.predict(X) == y).mean() == 1.0


def test_non_finite_loss_raises_diverged_with_epoch_step_and_lr(mnist_small):
    X, y = mnist_small
    X = X * 255
    rng = np.random.default_rng(0)
    model = MLP.create(784, [50], 10, rng, activation="identity", weight_scale=1e-2)
    with pytest.raises(Diverged, match="try a lower learning rate") as info:
        train(model, SGD(lr=10.0), X, y, X[:100], y[:100], TrainSettings(epochs=3), rng)
    assert set(info.value.details) == {"epoch", "step", "lr", "loss"}
    assert info.value.details["lr"] == 10.0
    loss = info.value.details["loss"]  # non-finite, or beyond 1e4 times the first loss
    assert not math.isfinite(loss) or loss > 1e4 * math.log(10)


def test_training_is_reproducible_from_the_seed(mnist_small):
    X, y = mnist_small

    def run():
        rng = np.random.default_rng(42)
        model = MLP.create(784, [30], 10, rng, dropout=0.2, batchnorm=True, init="he")
        train(model, SGD(lr=0.05), X, y, X[:200], y[:200], TrainSettings(epochs=2), rng)
        return model.params["W1"]

    np.testing.assert_array_equal(run(), run())


def test_keep_best_restores_the_best_validation_epoch(mnist_small):
    X, y = mnist_small
    rng = np.random.default_rng(0)
    model = MLP.create(784, [30], 10, rng, init="he")
    history = train(
        model,
        SGD(lr=0.1),
        X[:1500],
        y[:1500],
        X[1500:],
        y[1500:],
        TrainSettings(epochs=4, keep_best=True),
        rng,
    )
    final = (model.predict(X[1500:]) == y[1500:]).mean()
    assert final == pytest.approx(history.best_value)


def test_early_stopping_stops_after_patience(mnist_small):
    X, y = mnist_small
    rng = np.random.default_rng(0)
    model = MLP.create(784, [30], 10, rng, init="he")
    # learning rate 0: validation accuracy never improves after epoch 1
    history = train(
        model, SGD(lr=0.0), X, y, X[:100], y[:100], TrainSettings(epochs=10, patience=2), rng
    )
    assert history.stopped_early and len(history.rows) == 3 and history.best_epoch == 1


def test_lr_decays_per_epoch(mnist_small):
    X, y = mnist_small
    rng = np.random.default_rng(0)
    model = MLP.create(784, [10], 10, rng)
    history = train(
        model,
        SGD(lr=1e-3),
        X[:300],
        y[:300],
        X[:50],
        y[:50],
        TrainSettings(epochs=3, lr_decay=0.5),
        rng,
    )
    assert [r["lr"] for r in history.rows] == [1e-3, 5e-4, 2.5e-4]


def test_batchnorm_layers_have_no_redundant_bias():
    model = MLP.create(4, [3, 2], 2, np.random.default_rng(0), batchnorm=True)
    assert sorted(model.params) == ["W1", "W2", "W3", "b3", "beta1", "beta2", "gamma1", "gamma2"]


def test_weight_decay_adds_half_lambda_w_squared():
    rng = np.random.default_rng(0)
    model = MLP.create(3, [4], 2, rng, dtype=np.float64, weight_decay=0.5)
    plain = MLP(model.hidden, params=model.params)
    X, y = rng.normal(size=(5, 3)), rng.integers(0, 2, 5)
    penalty = 0.25 * sum(float((model.params[k] ** 2).sum()) for k in ("W1", "W2"))
    assert model.loss(X, y)[0] == pytest.approx(plain.loss(X, y)[0] + penalty)
