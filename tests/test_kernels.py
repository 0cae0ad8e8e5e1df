import numpy as np
import pytest
from sklearn.metrics.pairwise import pairwise_kernels

from kernelnet.kernels import KERNELS, make_kernel, squared_distances
from kernelnet.mercer import check_psd

PARAMS = {"gamma": 0.3, "degree": 3, "coef0": 0.7}


@pytest.mark.parametrize("name", list(KERNELS))
def test_kernels_match_scikit_learn(name):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    kernel = make_kernel(name, **PARAMS)
    accepted = {k: v for k, v in PARAMS.items() if k in kernel_params_of(name)}
    np.testing.assert_allclose(
        kernel(X, Y), pairwise_kernels(X, Y, metric=name, **accepted), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(kernel(X), kernel(X, X))


def kernel_params_of(name):
    return {
        "linear": set(),
        "poly": {"gamma", "degree", "coef0"},
        "sigmoid": {"gamma", "coef0"},
        "rbf": {"gamma"},
    }[name]


def test_squared_distances_clip_rounding_at_zero():
    X = np.array([[1e8, 1.0], [1e8, 1.0]])
    assert (squared_distances(X, X) >= 0).all()


@pytest.mark.parametrize("bad", [{"gamma": -0.1}, {"degree": 2.5}, {"degree": -1}])
def test_invalid_kernel_parameters_are_rejected(bad):
    with pytest.raises(ValueError):
        make_kernel("poly", **{**PARAMS, **bad})


def test_psd_check_accepts_rbf_and_flags_sigmoid():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    assert check_psd(make_kernel("rbf", gamma=0.5)(X)).psd
    sigmoid = check_psd(make_kernel("sigmoid", gamma=1.0, coef0=-1.0)(X))
    assert not sigmoid.psd and sigmoid.min_eigenvalue < 0


def test_psd_threshold_is_relative_to_the_largest_eigenvalue():
    # exactly PSD but rank-deficient: eigenvalues round to about -1e-16 * scale
    X = np.random.default_rng(2).normal(size=(30, 2))
    K = X @ X.T * 1e6
    assert np.linalg.eigvalsh(K).min() < 0
    assert check_psd(K).psd
