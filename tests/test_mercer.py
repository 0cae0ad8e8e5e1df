import numpy as np
import pytest

from kernelnet.kernel_expr import ExpressionError, parse
from kernelnet.kernels import make_kernel
from kernelnet.mercer import (
    check_mercer,
    gaussian_feature_map,
    multi_indices,
    poly2_feature_map,
)

ENV = {
    "k1": "rbf(gamma=0.5)",
    "k2": "poly(gamma=1, degree=2, coef0=1)",
    "k3": "linear",
    "a": 3.0,
    "f": "sin_sum",
    "phi": "square",
    "p": [1.0, 2.0, 0.5],
}


def verdict(text, trials=150, seed=0):
    return check_mercer(
        parse(text, ENV), np.random.default_rng(seed), trials, [1, 2, 3, 5], [2, 3, 5, 10, 25]
    )


@pytest.mark.parametrize(
    "text",
    [
        "k1 + k2",
        "a * k1",
        "f(x) f(z)",
        "k3(phi(x), phi(z))",
        "p(k1)",
        "k1 * k2",
        "exp(k1)",
        "k1 - 0.5 * k1",
        "rbf(gamma=2) + 0.5 * linear",
    ],
)
def test_valid_constructions_are_valid(text):
    result = verdict(text)
    assert result.psd and result.verdict.startswith("no counterexample in 150 trials")
    assert result.counterexample is None


@pytest.mark.parametrize("text", ["k1 - k2", "-a * k1", "sigmoid(gamma=0.5, coef0=-1)", "k2 - k1"])
def test_invalid_constructions_come_with_a_checked_counterexample(text):
    result = verdict(text)
    assert result.verdict == "not PSD"
    example = result.counterexample
    kernel = parse(text, ENV)
    K = kernel(example.points)  # recomputed independently of what the checker stored
    a = example.vector
    assert a @ K @ a < 0 and example.eigenvalue < 0
    assert np.linalg.norm(a) == pytest.approx(1.0)
    # minimal: removing any single point makes the Gram matrix PSD (or leaves nothing)
    for i in range(len(example.points)):
        rest = np.delete(example.points, i, axis=0)
        if len(rest):
            assert (
                np.linalg.eigvalsh(kernel(rest)).min()
                >= -1e-10 * np.abs(np.linalg.eigvalsh(kernel(rest))).max()
            )


def test_difference_of_kernels_can_be_valid_so_no_rule_of_thumb_is_used():
    assert verdict("2 * k1 - k1").psd
    assert verdict("k1 - 2 * k1").verdict == "not PSD"


def test_poly2_feature_map_reproduces_the_kernel_to_machine_precision():
    X = np.random.default_rng(0).normal(size=(30, 2))
    features = poly2_feature_map(X)
    np.testing.assert_allclose(features @ features.T, (X @ X.T + 1) ** 2, rtol=0, atol=1e-12)


def test_gaussian_truncated_feature_map_converges():
    X = np.random.default_rng(1).normal(size=(20, 2))
    K = make_kernel("rbf", gamma=0.5)(X)
    errors = [
        np.abs(gaussian_feature_map(X, 0.5, P) @ gaussian_feature_map(X, 0.5, P).T - K).max()
        for P in (2, 8, 14, 20, 26, 32)
    ]
    assert all(b < a or b < 1e-12 for a, b in zip(errors, errors[1:]))
    assert errors[-1] < 1e-6


def test_multi_indices_count_is_a_binomial():
    from math import comb

    assert len(multi_indices(3, 4)) == comb(4 + 2, 2)
    assert all(sum(alpha) == 4 for alpha in multi_indices(3, 4))


@pytest.mark.parametrize(
    "text",
    ["__import__('os')", "k1 +", "k9", "k1 ** 2", "rbf(gamma=-1)", "os.system('true')", "k1; k2"],
)
def test_bad_or_unsafe_expressions_are_refused(text):
    with pytest.raises(ExpressionError):
        parse(text, ENV)


# Edge cases: rounding scales, exact self-similarity, and points far from the origin.
def test_a_sum_that_cancels_to_the_zero_kernel_is_valid_and_symmetric():
    result = verdict("0.1 * k1 + 0.2 * k1 - 0.3 * k1")
    assert result.symmetric and result.psd and result.counterexample is None


def test_rbf_of_a_point_with_itself_is_exactly_one():
    X = np.random.default_rng(0).normal(size=(30, 4)) * 1e3
    for gamma in (0.5, 1e12):
        assert np.all(np.diag(make_kernel("rbf", gamma=gamma)(X)) == 1.0)


def test_k1_minus_one_gets_a_real_counterexample_not_rounding_noise():
    result = verdict("k1 - 1")
    example = result.counterexample
    assert not result.psd and example is not None
    assert len(example.points) >= 2  # one point gives K = [[0]] exactly: no counterexample
    assert example.eigenvalue < -1e-3 and example.quadratic_form < -1e-3


@pytest.mark.parametrize(
    "text", ["k1 - 0.001 * k3", "k1 - 1e-6 * poly(gamma=1, degree=4, coef0=0)"]
)
def test_constructions_invalid_only_far_from_the_origin_are_caught(text):
    result = verdict(text)
    assert not result.psd
    example = result.counterexample
    K = parse(text, ENV)(example.points)
    a = example.vector
    assert a @ K @ a == pytest.approx(example.quadratic_form) and example.quadratic_form < 0
    assert np.abs(example.points).max() > 5  # found by the wider scales, not N(0, 1)


def test_counterexamples_are_far_below_the_rounding_bound():
    from kernelnet.mercer import MARGIN, check_psd

    for text in ("k1 - k2", "-a * k1", "k1 - 1"):
        example = verdict(text).counterexample
        node = parse(text, ENV)
        bound = check_psd(example.gram, magnitude=node.magnitude(example.points)).bound
        assert example.eigenvalue < -MARGIN * bound
