"""The identities the course derives, each against exact values or finite differences
independent of the lab's own check, and the lab's check shown able to fail."""

import numpy as np
import pytest

from kernelnet.experiments.activations import (
    ActivationSection,
    identities,
    numeric_jacobian,
    parameter_counts,
    softmax_identities,
)
from kernelnet.nn.functional import log_softmax, sigmoid, softmax
from kernelnet.nn.models import MLP, parameter_count

NEW = [
    "2 classes: softmax(z) = [sigma(z1 - z2), sigma(z2 - z1)]",
    "softmax(z) > 0 and sum_k softmax(z)_k = 1 (|z| up to ~1e4)",
    "d log softmax(z)_j / dz_i = delta_ij - softmax(z)_i",
    "grad_u log softmax(x(u))_i = grad_u x_i - E_{k~softmax}[grad_u x_k]",
    "sigma(k x) = 1/2 at x = 0 for every k (k = 1 .. 1e300)",
    "n_theta = d_h d + d_h + d_o d_h + d_o (MLP's parameters counted)",
]


def test_the_new_identities_are_in_the_table_and_hold():
    checks = {name: (error, tolerance) for name, error, tolerance in identities(
        ActivationSection(), np.random.default_rng(0))}  # fmt: skip
    for name in NEW:
        error, tolerance = checks[name]
        assert error <= tolerance, name


def test_two_class_softmax_is_a_sigmoid_of_the_logit_difference_exactly():
    # softmax([0, ln 3]) = [1/4, 3/4]; sigma(-ln 3) = 1/4
    z = np.array([[0.0, np.log(3.0)]])
    np.testing.assert_allclose(softmax(z)[0], [0.25, 0.75], rtol=1e-15)
    np.testing.assert_allclose(sigmoid(z[0, 0] - z[0, 1]), 0.25, rtol=1e-15)
    # the course solution's z = x2 - x1 in sigma(z) gives the other class: it fails
    assert abs(softmax(z)[0, 0] - sigmoid(z[0, 1] - z[0, 0])) == pytest.approx(0.5)


def test_softmax_stays_positive_and_normalized_for_huge_logits():
    z = np.array([[0.0, -5000.0, 8000.0, -1e4]])
    s = softmax(z)
    assert s.min() > 0 and abs(s.sum() - 1) <= 2e-16
    assert s[0, 2] == 1.0


def test_log_softmax_gradient_matches_the_exact_jacobian_at_equal_logits():
    # at z = (c, c, c) softmax is 1/3 everywhere: d log s_j / dz_i = delta_ij - 1/3
    z = np.full(3, 2.5)
    numeric = numeric_jacobian(lambda v: log_softmax(v[None])[0], z)
    np.testing.assert_allclose(numeric, np.eye(3) - 1 / 3, atol=1e-9)


def test_the_expectation_form_through_a_linear_map():
    # x(u) = A u: grad_u log softmax(x)_i = A_i - sum_k softmax(x)_k A_k, exactly
    rng = np.random.default_rng(4)
    A, u = rng.normal(size=(5, 3)), rng.normal(size=3)
    s = softmax((A @ u)[None])[0]
    numeric = numeric_jacobian(lambda v: log_softmax((A @ v)[None])[0], u)
    np.testing.assert_allclose(numeric, A - s @ A, atol=1e-8)
    # with x(u) = u (A = I) it is the other identity: delta_ij - softmax_i
    eye = np.eye(3)
    s3 = softmax(u[None])[0]
    np.testing.assert_allclose(eye - s3 @ eye, eye - s3[None, :], rtol=0, atol=0)


def test_sigmoid_of_k_times_zero_is_one_half_for_every_k():
    for k in (1.0, 1e3, 1e150, 1e300, np.finfo(float).max):
        assert sigmoid(np.array([k * 0.0, -k * 0.0]))[0] == 0.5
        assert sigmoid(np.array([-k * 0.0]))[0] == 0.5
    # while for x != 0 it goes to the step: 1 / (1 + e^-1000) rounds to 1
    assert sigmoid(np.array([1e3 * 1.0]))[0] == 1.0


@pytest.mark.parametrize("d, d_h, d_o", [(784, 100, 10), (2, 3, 4), (1, 1, 1)])
def test_parameter_count_from_the_model_matches_the_formula(d, d_h, d_o):
    model = MLP.create(d, [d_h], d_o, np.random.default_rng(0))
    counted = sum(p.size for p in model.params.values())
    assert counted == d_h * d + d_h + d_o * d_h + d_o == parameter_count(d, [d_h], d_o)
    rows = parameter_counts(
        ActivationSection(mlp_input=d, mlp_hidden=d_h, mlp_classes=d_o), np.random.default_rng(0)
    )
    assert rows[0]["counted"] == rows[0]["formula"] == counted
    # with batch norm the hidden bias is replaced by gamma and beta: d_h more
    assert rows[1]["counted"] == rows[1]["formula"] == counted + d_h


def test_softmax_identity_errors_are_at_rounding_level():
    config = ActivationSection()
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(config.vectors, config.classes)) * 3
    errors = {name: error for name, error, _ in softmax_identities(config, rng, Z)}
    assert errors[NEW[0]] < 1e-15 and errors[NEW[1]] < 1e-15 and errors[NEW[4]] == 0
