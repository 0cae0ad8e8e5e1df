import numpy as np
import pytest

from kernelnet.nn.optim import SGD, Adagrad, Adam, Momentum, Nesterov, RMSProp, make_optimizer


def test_sgd_step():
    params = {"w": np.array([1.0, 2.0])}
    SGD(lr=0.1).step(params, {"w": np.array([1.0, -1.0])})
    np.testing.assert_allclose(params["w"], [0.9, 2.1])


def test_momentum_accumulates_velocity():
    params, opt = {"w": np.array([0.0])}, Momentum(lr=0.1, momentum=0.9)
    for _ in range(2):
        opt.step(params, {"w": np.array([1.0])})
    np.testing.assert_allclose(params["w"], [-0.1 - 0.19])


def quadratic_grad(w):
    return np.array([4.0, 0.5]) * w  # gradient of 2 w0^2 + 0.25 w1^2


def test_nesterov_matches_the_lookahead_formulation():
    opt, params = Nesterov(lr=0.05, momentum=0.8), {"w": np.array([1.0, -2.0])}
    w, v = np.array([1.0, -2.0]), np.zeros(2)
    for _ in range(25):
        opt.step(params, {"w": quadratic_grad(params["w"])})
        # Sutskever et al.: v <- mu v - lr grad(w + mu v); w <- w + v. This form tracks the
        # look-ahead point; ours tracks the look-ahead point too (Bengio et al.'s change of
        # variables), so compare the look-ahead iterates w + mu v.
        v = 0.8 * v - 0.05 * quadratic_grad(w + 0.8 * v)
        w = w + v
        np.testing.assert_allclose(params["w"], w + 0.8 * v, rtol=1e-12, atol=1e-14)


def test_adagrad_and_rmsprop_first_steps():
    g = {"w": np.array([2.0])}
    params = {"w": np.array([0.0])}
    Adagrad(lr=0.1, eps=0.0).step(params, g)
    np.testing.assert_allclose(params["w"], [-0.1])
    params = {"w": np.array([0.0])}
    RMSProp(lr=0.1, decay=0.9, eps=0.0).step(params, g)
    np.testing.assert_allclose(params["w"], [-0.1 * 2 / np.sqrt(0.1 * 4)])


def test_adam_first_step_is_lr_times_sign_thanks_to_bias_correction():
    params = {"w": np.array([0.0, 0.0])}
    Adam(lr=0.01, eps=0.0).step(params, {"w": np.array([3.0, -1e-3])})
    np.testing.assert_allclose(params["w"], [-0.01, 0.01])


def test_adam_bias_corrected_moments_are_unbiased_for_stationary_gradients():
    # g ~ N(mu, sigma^2): E[m^_t] = mu and E[v^_t] = mu^2 + sigma^2 at every t, including t=1,
    # where the uncorrected m_t would be (1 - beta1^t) mu.
    rng = np.random.default_rng(0)
    mu, sigma, runs = 0.5, 2.0, 20000
    for steps in (1, 5, 50):
        opt = Adam(lr=0.0)
        params = {"w": np.zeros(runs)}
        for _ in range(steps):
            opt.step(params, {"w": rng.normal(mu, sigma, runs)})
        m_hat, v_hat = opt.moments("w")
        assert m_hat.mean() == pytest.approx(mu, abs=5 * sigma / np.sqrt(runs))
        assert v_hat.mean() == pytest.approx(mu**2 + sigma**2, rel=0.03)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_every_optimizer_minimizes_a_quadratic(name):
    lr = {"adagrad": 0.5, "rmsprop": 0.01, "adam": 0.05}.get(name, 0.05)
    opt = make_optimizer(name, lr=lr, momentum=0.5)
    params = {"w": np.array([1.0, -2.0])}
    for _ in range(500):
        opt.step(params, {"w": quadratic_grad(params["w"])})
    assert np.abs(params["w"]).max() < 0.05


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="valid: sgd"):
        make_optimizer("lbfgs")
