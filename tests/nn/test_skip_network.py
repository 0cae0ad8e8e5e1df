"""The fitting assignment's skip network, y = (a1 + a2 + a3) W4 + b4: its forward pass
against the equations written out, dMSE/dx (MSE = 1/2 ||y - t||^2) against centred finite
differences and against the chain-rule expression derived by hand, and every parameter
gradient against finite differences, for both readings of what a2 and a3 read."""

import numpy as np
import pytest

from kernelnet.nn.branches import SkipSumNet
from kernelnet.nn.gradcheck import numeric_gradient, relative_error


def relu(x):
    return np.maximum(x, 0)


def away_from_kinks(rng, shape):
    x = rng.normal(size=shape)
    return np.where(x >= 0, x + 0.2, x - 0.2)


def net_and_data(wiring, activation, seed, D=3, H=5, O=2, N=6):
    rng = np.random.default_rng(seed)
    net = SkipSumNet.create(D, H, 3, O, rng, activation=activation, wiring=wiring)
    for value in net.params.values():  # non-zero biases: they must be used correctly too
        value += 0.1 * rng.normal(size=value.shape)
    return net, away_from_kinks(rng, (N, D)), rng.normal(size=(N, O))


def written_out(net, x):
    """The equations with the activation s: a_k and the output y."""
    p, s = net.params, relu if net.activation == "relu" else np.tanh
    if net.wiring == "input":
        a1 = x @ p["W1"] + p["b1"]
        a2 = s(x) @ p["W2"] + p["b2"]
        a3 = s(s(x)) @ p["W3"] + p["b3"]
    else:
        a1 = x @ p["W1"] + p["b1"]
        a2 = s(a1) @ p["W2"] + p["b2"]
        a3 = s(a2) @ p["W3"] + p["b3"]
    return (a1, a2, a3), (a1 + a2 + a3) @ p["W_out"] + p["b_out"]


def by_hand(net, x, t):
    """dMSE/dx from the chain rule, written per path through the network."""
    p = net.params
    s = relu if net.activation == "relu" else np.tanh

    def ds(z):  # the activation's derivative
        return (z > 0).astype(float) if net.activation == "relu" else 1 - np.tanh(z) ** 2

    (a1, a2, _), y = written_out(net, x)
    da = (y - t) @ p["W_out"].T  # the same for a1, a2 and a3
    if net.wiring == "input":
        return da @ p["W1"].T + (da @ p["W2"].T) * ds(x) + (da @ p["W3"].T) * ds(s(x)) * ds(x)
    # a3 -> a2 -> a1 -> x, each a_k adding the gradient it gets from the sum
    d_a2 = da + (da @ p["W3"].T) * ds(a2)
    d_a1 = da + (d_a2 @ p["W2"].T) * ds(a1)
    return d_a1 @ p["W1"].T


CASES = [(w, a, seed) for w in ("input", "chain") for a in ("relu", "tanh") for seed in (0, 1)]


@pytest.mark.parametrize("wiring, activation, seed", CASES)
def test_forward_is_the_written_equations(wiring, activation, seed):
    net, x, _ = net_and_data(wiring, activation, seed)
    np.testing.assert_allclose(net.scores(x), written_out(net, x)[1], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("wiring, activation, seed", CASES)
def test_dmse_dx_against_finite_differences_and_the_hand_derivation(wiring, activation, seed):
    net, x, t = net_and_data(wiring, activation, seed)
    mse, dx = net.input_gradient(x, t)
    assert mse == pytest.approx(0.5 * ((written_out(net, x)[1] - t) ** 2).sum(), rel=1e-13)
    numeric = numeric_gradient(lambda: net.input_gradient(x, t)[0], x)
    assert relative_error(dx, numeric) < (1e-5 if activation == "relu" else 1e-7)
    np.testing.assert_allclose(dx, by_hand(net, x, t), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("wiring, activation, seed", CASES)
def test_parameter_gradients_against_finite_differences(wiring, activation, seed):
    net, x, t = net_and_data(wiring, activation, seed)
    grads = net.loss(x, t)[1]
    assert set(grads) == set(net.params)
    for name, value in net.params.items():
        numeric = numeric_gradient(lambda: net.loss(x, t)[0], value)
        error = relative_error(grads[name], numeric)
        assert error < (1e-5 if activation == "relu" else 1e-7), f"{name}: {error:.3g}"


def test_a_wrong_input_gradient_is_caught():
    """The same check rejects dMSE/dx without the a3 path: it can fail."""
    net, x, t = net_and_data("input", "tanh", 0)
    p = net.params
    (_, _, _), y = written_out(net, x)
    da = (y - t) @ p["W_out"].T
    missing_a3 = da @ p["W1"].T + (da @ p["W2"].T) * (1 - np.tanh(x) ** 2)
    numeric = numeric_gradient(lambda: net.input_gradient(x, t)[0], x)
    assert relative_error(missing_a3, numeric) > 1e-3


def test_as_written_the_relu_network_is_linear_in_x_and_relu_x():
    """relu(relu(x)) = relu(x), so with one input the network is c0 + c1 x + c2 relu(x)
    whatever its width: least squares on those three features reproduces it exactly."""
    rng = np.random.default_rng(3)
    net = SkipSumNet.create(1, 16, 3, 1, rng, activation="relu", wiring="input")
    for value in net.params.values():
        value += rng.normal(size=value.shape)
    x = np.linspace(-3, 3, 61)[:, None]
    features = np.column_stack([np.ones(61), x[:, 0], relu(x[:, 0])])
    y = net.scores(x)[:, 0]
    coefficients = np.linalg.lstsq(features, y, rcond=None)[0]
    np.testing.assert_allclose(features @ coefficients, y, atol=1e-10)
    chained = SkipSumNet.create(1, 16, 3, 1, rng, activation="relu", wiring="chain")
    for value in chained.params.values():
        value += rng.normal(size=value.shape)
    y = chained.scores(x)[:, 0]
    residual = y - features @ np.linalg.lstsq(features, y, rcond=None)[0]
    assert np.abs(residual).max() > 1e-3  # the chained reading has more kinks than one


def test_shapes_and_bad_settings():
    rng = np.random.default_rng(0)
    net = SkipSumNet.create(4, 7, 3, 2, rng, wiring="chain")
    assert net.params["W1"].shape == (4, 7) and net.params["W2"].shape == (7, 7)
    assert net.params["W_out"].shape == (7, 2)
    literal = SkipSumNet.create(4, 7, 3, 2, rng)
    assert literal.params["W3"].shape == (4, 7) and literal.wiring == "input"
    with pytest.raises(ValueError, match="wiring"):
        SkipSumNet.create(1, 2, 3, 1, rng, wiring="dense")
    with pytest.raises(ValueError, match="activation"):
        SkipSumNet.create(1, 2, 3, 1, rng, activation="swish")
