"""Vanishing gradients under the standard initializations, asserted with margins from
theory (mean field and an exact operator-norm bound), never fitted to one run.

Fluctuation margin. Backpropagating one (affine, ReLU) layer multiplies the squared
gradient norm by r^2 = ||(D g) W^T||^2 / ||g||^2. Under He's Var(w) = 2/n, E[r^2] = 1, and
its relative variance is at most KAPPA / n for one input row: 2/n from the chi-square of
W^T v (n degrees of freedom) plus 3/n from the Bernoulli(1/2) ReLU mask acting on a
Gaussian-like gradient (sum g_i^4 / (sum g_i^2)^2 = 3/n). A batch of rows only averages
these away. Over L layers ln ||g|| is then a sum of L terms with mean -KAPPA/(4n) and
variance KAPPA/(4n) each: drift -L KAPPA/(4n), standard deviation sqrt(L KAPPA/n)/2.
"""

import numpy as np
import pytest

from kernelnet.experiments.activations import (
    INITIALIZATIONS,
    STANDARD_INIT,
    ActivationSection,
    backprop_norms,
    chain_weights,
    gaussian_mean,
    gradient_through_depth,
    mean_field_chi,
    predicted_norms,
)

KAPPA = 5.0  # relative variance of one layer's r^2, times n (see the module docstring)
SIGMAS = 4.0  # margins are four standard deviations
LAYERS, WIDTH = 30, 64
CONFIG = ActivationSection(depth=LAYERS, width=WIDTH)


def log_norm_band(depth: int, width: int, seeds: int = 1) -> tuple[float, float]:
    """The interval ln ||g_depth|| falls in under He with ReLU: drift +- SIGMAS standard
    deviations (of the mean of ``seeds`` independent chains)."""
    drift = -depth * KAPPA / (4 * width)
    spread = SIGMAS * 0.5 * np.sqrt(depth * KAPPA / width) / np.sqrt(seeds)
    return drift - spread, drift + spread


def relu_he_log_norm(seed: int) -> float:
    return float(
        np.log(
            gradient_through_depth(CONFIG, np.random.default_rng(seed), ["he"])["he"]["relu"][-1]
        )
    )


def test_mean_field_chi_of_relu_is_half_the_gain_exactly():
    for gain in (1.0, 2.0, 0.5):
        np.testing.assert_allclose(mean_field_chi("relu", gain, 5), gain / 2, rtol=1e-13)


def test_gaussian_quadrature_is_exact_on_moments():
    rule = np.polynomial.hermite_e.hermegauss(200)
    assert gaussian_mean(lambda a: a**2, 3.0, rule) == pytest.approx(3.0, rel=1e-13)
    assert gaussian_mean(lambda a: a**4, 3.0, rule) == pytest.approx(27.0, rel=1e-13)


def test_under_he_relu_gradient_stays_within_a_bounded_factor_of_one():
    low, high = log_norm_band(LAYERS, WIDTH)
    assert np.exp(low) > 0.02 and np.exp(high) < 13  # the band: a bounded factor of 1
    values = [relu_he_log_norm(seed) for seed in range(8)]
    for value in values:
        assert low < value < high
    mean_low, mean_high = log_norm_band(LAYERS, WIDTH, seeds=len(values))
    assert mean_low < np.mean(values) < mean_high
    # the prediction itself is exactly 1: chi = 1 in every layer
    np.testing.assert_allclose(predicted_norms("relu", "he", CONFIG), 1.0, rtol=1e-13)


def test_xavier_relu_falls_out_of_that_band_by_exactly_two_to_the_minus_l_over_two():
    # ReLU is positively homogeneous and He's weights are sqrt(2) times Xavier's (one
    # draw, square layers): the norms differ by exactly 2^(k/2) after k layers
    norms = gradient_through_depth(CONFIG, np.random.default_rng(0), ["he", "xavier"])
    ratio = norms["he"]["relu"] / norms["xavier"]["relu"]
    np.testing.assert_allclose(ratio, 2.0 ** (np.arange(1, LAYERS + 1) / 2), rtol=1e-10)
    low, _ = log_norm_band(LAYERS, WIDTH)
    assert np.log(norms["xavier"]["relu"][-1]) < low - 5


@pytest.mark.parametrize("init", ["he", "xavier"])
def test_sigmoid_gradient_vanishes_below_an_exact_bound(init):
    # ||g W^T|| <= ||W||_2 ||g|| and sigma' <= 1/4: after L layers the norm is at most
    # prod ||W_l||_2 / 4^L, whatever the inputs (the output gradient has norm 1)
    x, Z, grad = chain_weights(CONFIG, np.random.default_rng(1))
    std = np.sqrt(INITIALIZATIONS[init].variance(WIDTH, WIDTH))
    weights = [std * z for z in Z]
    norms = backprop_norms("sigmoid", x, weights, grad)
    bound = np.cumprod([np.linalg.norm(W, 2) / 4 for W in reversed(weights)])
    assert np.all(norms <= bound * (1 + 1e-12))
    # the bound alone puts sigmoid far below ReLU's He band: it vanishes
    low, _ = log_norm_band(LAYERS, WIDTH)
    assert np.log(bound[-1]) < low - 5


@pytest.mark.parametrize(
    "activation, init", [("relu", "he"), ("sigmoid", "xavier"), ("tanh", "xavier"),
                         ("sigmoid", "he"), ("relu", "xavier")]
)  # fmt: skip
def test_the_mean_field_prediction_explains_the_measured_norms(activation, init):
    measured = gradient_through_depth(CONFIG, np.random.default_rng(2), [init])[init][activation]
    predicted = predicted_norms(activation, init, CONFIG)
    depth = np.arange(1, LAYERS + 1)
    spread = SIGMAS * 0.5 * np.sqrt(depth * KAPPA / WIDTH) + depth * KAPPA / (4 * WIDTH)
    assert np.all(np.abs(np.log(measured) - np.log(predicted)) < spread)


def test_tanh_under_xavier_decays_like_a_power_not_exponentially():
    # q_l ~ 1/(2l) makes chi_l ~ 1 - 1/l: the predicted norm through a chain of L layers
    # falls like L^(-1/2), so doubling the depth divides it by about sqrt(2) (an
    # exponential decay would square it, as sigmoid's does)
    def through(depth: int) -> float:
        return predicted_norms("tanh", "xavier", ActivationSection(depth=depth))[-1]

    for depth in (25, 50, 100):
        assert through(2 * depth) / through(depth) == pytest.approx(2**-0.5, rel=0.02)
    sigmoid = [
        predicted_norms("sigmoid", "xavier", ActivationSection(depth=d))[-1] for d in (25, 50)
    ]
    assert sigmoid[1] / sigmoid[0] == pytest.approx(sigmoid[0], rel=0.5)


def test_every_activation_has_a_standard_initialization():
    from kernelnet.nn.layers import ACTIVATIONS

    assert set(STANDARD_INIT) == set(ACTIVATIONS)
    assert set(STANDARD_INIT.values()) <= set(INITIALIZATIONS)
