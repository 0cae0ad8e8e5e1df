"""The gradcheck lab checks the input gradient of every layer, loss and network beside its
parameters' (and the check fails when only the input gradient is wrong); the primal SVM's
hinge subgradient is in the table and is a true subgradient at the kink."""

import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.nn import conv, gradcheck, pooling
from kernelnet.nn.branches import SkipSumNet
from kernelnet.nn.gradcheck import CHECKS, run_check
from kernelnet.svm.primal import hinge_gradient, hinge_objective


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(app, ["gradcheck", "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    return result.stdout, list(csv.DictReader(open(folder / "metrics.csv")))


def test_the_shipped_config_checks_every_registered_check_and_each_input(lab):
    out, rows = lab
    assert sorted(r["check"] for r in rows) == sorted(CHECKS)
    for row in rows:
        assert row["inputs"], row["check"]  # something the check is given is differentiated
        assert float(row["input_error"]) < float(row["threshold"]), row["check"]
        assert row["passed"] == "True"
    networks = {r["check"]: r for r in rows if r["inputs"] == "X"}
    assert {"mlp_relu", "mlp_tanh_batchnorm", "branch_sum_net", "skip_net", "svm_hinge"} <= set(
        networks
    )
    assert all(float(r["parameter_error"]) < float(r["threshold"]) for r in networks.values())
    for column in ("input error", "parameter error", "svm_hinge", "maxpool2d", "skip_net"):
        assert column in out


def test_a_wrong_input_gradient_fails_although_the_parameters_are_right(monkeypatch):
    right = conv.conv2d_backward

    def doubled_dx(dout, cache):
        dx, dw, db = right(dout, cache)
        return 2 * dx, dw, db

    monkeypatch.setattr(conv, "conv2d_backward", doubled_dx)
    result = run_check("conv2d", np.random.default_rng(0))
    assert result.parameter_error < 1e-7 and result.input_error > 0.1 and not result.passed


def test_a_network_check_sees_a_wrong_input_gradient(monkeypatch):
    right = SkipSumNet.backward

    def without_the_skip_of_a1(self, dout, cache):
        dX, grads = right(self, dout, cache)
        return 0.5 * dX, grads

    monkeypatch.setattr(SkipSumNet, "backward", without_the_skip_of_a1)
    result = run_check("skip_net", np.random.default_rng(0))
    assert result.input_error > 0.1 and not result.passed


def test_a_wrong_pooling_backward_is_caught(monkeypatch):
    monkeypatch.setattr(
        pooling,
        "maxpool2d_backward",
        lambda dout, cache: pooling.avgpool2d_backward(dout, cache[:4]),
    )
    assert not run_check("maxpool2d", np.random.default_rng(0)).passed


def test_the_svm_hinge_subgradient_at_the_kink_lies_between_the_one_sided_slopes():
    """At y (w.x + b) = 1 exactly the hinge has no derivative; the indicator 1[margin < 1]
    takes the slope from the side where the sample is not a violator, which is one of the
    two one-sided derivatives, hence a subgradient of the convex objective."""
    X, y = np.array([[1.0, 2.0], [-1.0, 0.5]]), np.array([1.0, -1.0])
    w = np.array([0.5, 0.25])  # sample 0: 0.5 + 0.5 + b = 1 at b = 0 (the kink)
    b, C, step = 0.0, 2.0, 1e-6
    right = (hinge_objective(w, b + step, X, y, C) - hinge_objective(w, b, X, y, C)) / step
    left = (hinge_objective(w, b, X, y, C) - hinge_objective(w, b - step, X, y, C)) / step
    _, grad_b = hinge_gradient(w, b, X, y, C)
    assert min(left, right) - 1e-6 <= grad_b <= max(left, right) + 1e-6
    assert abs(left - right) == pytest.approx(C, rel=1e-6)  # the kink is real: slopes differ


def test_the_svm_hinge_check_uses_violators_and_non_violators(monkeypatch):
    """Away from the kink, both branches of the indicator are exercised (else the check
    could not tell 1[margin < 1] from 1[margin > 1])."""
    assert run_check("svm_hinge", np.random.default_rng(0)).passed

    def flipped(w, b, X, y, C, weight_scale=1.0):
        violating = y * (X @ w + b) > 1.0  # the wrong side of the kink
        coef = np.broadcast_to(C, y.shape) * violating * y
        return weight_scale * w - X.T @ coef, -float(coef.sum())

    monkeypatch.setattr(gradcheck, "hinge_gradient", flipped)
    assert not run_check("svm_hinge", np.random.default_rng(0)).passed
