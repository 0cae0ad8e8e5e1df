import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import log_loss

from kernelnet.nn.functional import sigmoid, softmax, softplus
from kernelnet.nn.losses import (
    binary_cross_entropy_with_logits,
    mean_squared_error,
    multiclass_hinge,
    softmax_cross_entropy,
)


def test_softmax_cross_entropy_is_finite_for_huge_logits():
    scores = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]])
    with np.errstate(all="raise"):
        loss, grad = softmax_cross_entropy(scores, np.array([1, 2]))
    assert loss == pytest.approx((2000.0 + 1.0 + math.log1p(math.exp(-1.0))) / 2)
    assert np.isfinite(grad).all()


def test_sigmoid_and_softplus_at_1000_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            s = sigmoid(np.array([1000.0, -1000.0, 0.0]))
            p = softplus(np.array([1000.0, -1000.0]))
    np.testing.assert_allclose(s, [1.0, 0.0, 0.5], atol=1e-300)
    np.testing.assert_allclose(p, [1000.0, 0.0], atol=1e-300)


def test_cross_entropy_matches_scikit_learn_log_loss():
    rng = np.random.default_rng(0)
    scores, y = rng.normal(size=(20, 5)), rng.integers(0, 5, 20)
    loss, _ = softmax_cross_entropy(scores, y)
    assert loss == pytest.approx(log_loss(y, softmax(scores), labels=range(5)), rel=1e-12)


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    rng = np.random.default_rng(1)
    scores, y = rng.normal(size=(6, 3)), rng.integers(0, 3, 6)
    _, grad = softmax_cross_entropy(scores, y)
    np.testing.assert_allclose(grad, (softmax(scores) - np.eye(3)[y]) / 6, atol=1e-15)


def test_uniform_scores_give_log_of_the_class_count():
    assert softmax_cross_entropy(np.zeros((4, 10)), np.arange(4))[0] == pytest.approx(math.log(10))


def test_multiclass_hinge_matches_a_loop_reference():
    rng = np.random.default_rng(2)
    scores, y = rng.normal(size=(7, 4)), rng.integers(0, 4, 7)
    expected = (
        sum(
            max(0.0, scores[i, j] - scores[i, y[i]] + 1)
            for i in range(7)
            for j in range(4)
            if j != y[i]
        )
        / 7
    )
    assert multiclass_hinge(scores, y)[0] == pytest.approx(expected)


def test_binary_cross_entropy_matches_its_definition():
    z = np.array([[-3.0, 0.5], [2.0, 0.0]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    s = 1 / (1 + np.exp(-z))
    expected = -(y * np.log(s) + (1 - y) * np.log(1 - s)).mean()
    assert binary_cross_entropy_with_logits(z, y)[0] == pytest.approx(expected, rel=1e-12)
    with np.errstate(all="raise"):
        loss, _ = binary_cross_entropy_with_logits(
            np.array([1000.0, -1000.0]), np.array([0.0, 1.0])
        )
    assert loss == pytest.approx(1000.0)


def test_mean_squared_error():
    loss, grad = mean_squared_error(np.array([[1.0, 2.0]]), np.array([[0.0, 4.0]]))
    assert loss == pytest.approx(2.5)
    np.testing.assert_allclose(grad, [[1.0, -2.0]])
