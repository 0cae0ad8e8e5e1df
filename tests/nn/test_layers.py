import numpy as np
import pytest

from kernelnet.nn import layers
from kernelnet.nn.gradcheck import CHECKS, numeric_gradient, relative_error, run_check
from kernelnet.nn.layers import RunningStats


@pytest.mark.parametrize("name", list(CHECKS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_gradient_check_passes(name, seed):
    result = run_check(name, np.random.default_rng(seed))
    assert result.passed, f"{name}: {result.max_relative_error:.3g} >= {result.threshold}"


def test_gradient_check_catches_a_wrong_backward():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4))
    dout = rng.normal(size=(3, 4))
    wrong = dout * (1 - np.tanh(x))  # missing the square
    numeric = numeric_gradient(lambda: float((np.tanh(x) * dout).sum()), x)
    assert relative_error(wrong, numeric) > 1e-3


def test_affine_matches_a_loop_reference():
    rng = np.random.default_rng(0)
    x, W, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=2)
    out, cache = layers.affine_forward(x, W, b)
    expected = np.array(
        [[sum(x[n, d] * W[d, m] for d in range(4)) + b[m] for m in range(2)] for n in range(3)]
    )
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    dout = rng.normal(size=(3, 2))
    dx, dW, db = layers.affine_backward(dout, cache)
    np.testing.assert_allclose(dx, dout @ W.T)
    np.testing.assert_allclose(dW, x.T @ dout)
    np.testing.assert_allclose(db, dout.sum(axis=0))
    assert layers.affine_backward(dout, cache, need_dx=False)[0] is None


def test_relu_derivative_is_heaviside_with_zero_at_zero():
    x = np.array([[-1.0, 0.0, 2.0]])
    out, cache = layers.relu_forward(x)
    np.testing.assert_array_equal(out, [[0, 0, 2]])
    np.testing.assert_array_equal(layers.relu_backward(np.ones_like(x), cache), [[0, 0, 1]])


def test_layers_do_not_modify_their_inputs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3))
    original = x.copy()
    for forward in (
        layers.relu_forward,
        layers.sigmoid_forward,
        layers.tanh_forward,
        layers.leaky_relu_forward,
    ):
        forward(x)
    layers.batchnorm_forward(
        x, np.ones(3), np.zeros(3), RunningStats(np.zeros(3), np.ones(3)), True
    )
    layers.dropout_forward(x, 0.5, True, rng)
    np.testing.assert_array_equal(x, original)


def test_batchnorm_train_normalizes_and_updates_running_stats_apart():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(500, 4))
    running = RunningStats(np.zeros(4), np.ones(4))
    out, _, new = layers.batchnorm_forward(x, np.ones(4), np.zeros(4), running, True, momentum=0.9)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=0), 1, atol=1e-4)
    np.testing.assert_allclose(new.mean, 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(new.var, 0.9 + 0.1 * x.var(axis=0))
    np.testing.assert_array_equal(running.mean, 0)  # the old statistics are untouched


def test_batchnorm_eval_uses_running_stats():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    running = RunningStats(np.array([1.0, 2.0]), np.array([4.0, 1.0]))
    out, _, same = layers.batchnorm_forward(x, np.ones(2), np.zeros(2), running, False, eps=0.0)
    np.testing.assert_allclose(out, [[0.0, 0.0], [1.0, 2.0]])
    assert same is running


def test_inverted_dropout_keeps_the_expectation_and_is_identity_in_eval():
    rng = np.random.default_rng(0)
    x = np.ones((2000, 50))
    out, mask = layers.dropout_forward(x, 0.3, True, rng)
    assert abs(out.mean() - 1.0) < 0.01
    assert abs((mask == 0).mean() - 0.3) < 0.01
    same, cache = layers.dropout_forward(x, 0.3, False, None)
    assert same is x and cache is None


def test_dropout_masks_come_from_the_generator():
    x = np.ones((4, 5))
    a, _ = layers.dropout_forward(x, 0.5, True, np.random.default_rng(7))
    b, _ = layers.dropout_forward(x, 0.5, True, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="Generator"):
        layers.dropout_forward(x, 0.5, True, None)
