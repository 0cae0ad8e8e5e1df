import functools

import numpy as np
import pytest
from sklearn.svm import SVC

import kernelnet.svm.dual as dual
from kernelnet.data.registry import TOY2D, load_binary
from kernelnet.errors import DataError
from kernelnet.kernels import make_kernel
from kernelnet.mercer import check_psd
from kernelnet.svm.dual import BinaryKernelSVM, SolverError, fit_bias, solve_dual
from kernelnet.svm.smo import smo

KERNELS = ["linear", "poly", "sigmoid", "rbf"]
PARAMS = {"gamma": 0.2, "degree": 3, "coef0": 0.0}


@functools.cache
def libsvm(kernel, dataset):
    # tol 1e-6 puts libsvm within ~2e-6 of the optimum on these sets (measured); tighter
    # tolerances make it crawl on the degenerate circles/linear and circles/poly problems.
    split = load_binary(dataset)
    return SVC(C=1.0, kernel=kernel, tol=1e-6, **PARAMS).fit(split.X_train, split.y_train)


@pytest.mark.parametrize("dataset", TOY2D)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("solver", ["cvxopt", "smo"])
def test_agrees_with_libsvm_on_every_cell(dataset, kernel, solver):
    split = load_binary(dataset)
    ours = BinaryKernelSVM(make_kernel(kernel, **PARAMS), C=1.0, solver=solver).fit(
        split.X_train, split.y_train
    )
    reference = libsvm(kernel, dataset)
    np.testing.assert_allclose(
        ours.decision_function(split.X_test), reference.decision_function(split.X_test), atol=1e-4
    )
    np.testing.assert_array_equal(ours.predict(split.X_test), reference.predict(split.X_test))
    assert ours.solver_.status.startswith("optimal")


def test_six_point_problem_exact_answer():
    # scikit-learn's classic test problem: SVs (-1,-1) and (1,1), alpha = 1/4, b = 0.
    X = np.array([[-2, -1], [-1, -1], [-1, -2], [1, 1], [1, 2], [2, 1]], dtype=float)
    y = np.array([1, 1, 1, 2, 2, 2])
    for solver in ("cvxopt", "smo"):
        model = BinaryKernelSVM(make_kernel("linear"), C=1.0, solver=solver).fit(X, y)
        np.testing.assert_array_equal(model.support_, [1, 3])
        np.testing.assert_allclose(model.alpha_[[1, 3]], [0.25, 0.25], atol=1e-7)
        np.testing.assert_allclose(model.alpha_[[0, 2, 4, 5]], 0, atol=1e-7)
        assert model.bias_ == pytest.approx(0.0, abs=1e-7)
        np.testing.assert_array_equal(model.predict([[-1, -1], [2, 2], [3, 2]]), [1, 2, 2])


def test_bias_without_free_vectors_uses_libsvm_midpoint():
    # balanced, overlapping classes and a tiny C: every alpha sits at C, none is free
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 2))
    y = rng.permutation(np.repeat([-1.0, 1.0], 20))
    K = X @ X.T
    result = smo(K, y, 1e-3, tol=1e-12)
    at_bound = (result.alpha == 0) | (result.alpha == 1e-3)
    assert at_bound.all()
    bias, n_free = fit_bias(result.alpha, y, K @ (result.alpha * y), 1e-3)
    assert n_free == 0
    reference = SVC(C=1e-3, kernel="linear", tol=1e-6).fit(X, y)
    assert bias == pytest.approx(reference.intercept_[0], abs=1e-9)


def test_bias_tolerance_is_relative_to_C():
    # cvxopt's alphas sit near, never on, the bounds; they still count as bounded
    alpha = np.array([1 - 1e-9, 1e-10, 0.5, 0.5])
    y = np.array([1.0, -1.0, 1.0, -1.0])
    bias, n_free = fit_bias(alpha, y, alpha * y, 1.0)  # K = I
    assert n_free == 2


def test_per_sample_costs_match_libsvm_class_weights():
    split = load_binary("moons")
    ours = BinaryKernelSVM(make_kernel("rbf", gamma=0.2), C=1.0, class_weight={0.0: 1.0, 1.0: 5.0})
    ours.fit(split.X_train, np.where(split.y_train > 0, 1.0, 0.0))
    reference = SVC(C=1.0, kernel="rbf", gamma=0.2, tol=1e-6, class_weight={0: 1.0, 1: 5.0})
    reference.fit(split.X_train, np.where(split.y_train > 0, 1, 0))
    np.testing.assert_allclose(
        ours.decision_function(split.X_test), reference.decision_function(split.X_test), atol=1e-4
    )


def test_non_psd_gram_is_detected_for_sigmoid():
    split = load_binary("circles")
    spectrum = check_psd(make_kernel("sigmoid", **PARAMS)(split.X_train))
    assert not spectrum.psd
    assert spectrum.min_eigenvalue < -1e-10 * spectrum.max_abs_eigenvalue


class FakeQP:
    """Stands in for cvxopt.solvers.qp, returning the given statuses in turn."""

    def __init__(self, *answers):
        self.answers, self.calls = list(answers), []

    def __call__(self, P, q, G, h, A, b, options=None):
        self.calls.append({"options": options, "P_diag": np.array(P)[0, 0]})
        status, x = self.answers.pop(0)
        return {
            "x": np.asarray(x, float).reshape(-1, 1),
            "status": status,
            "iterations": 7,
            "primal infeasibility": 1e-3,
            "dual infeasibility": 2e-3,
            "gap": 0.1,
        }


def _problem():
    K = np.eye(2)
    y = np.array([1.0, -1.0])
    return K, y


def test_unknown_status_is_retried_with_a_recorded_ridge(monkeypatch):
    fake = FakeQP(("unknown", [9, 9]), ("optimal", [0.5, 0.5]))
    monkeypatch.setattr(dual.cvxopt.solvers, "qp", fake)
    result = solve_dual(*_problem(), 1.0, fallback="none")
    assert result.ridge == 1e-8 and result.status == "optimal"
    assert fake.calls[1]["P_diag"] == pytest.approx(1 + 1e-8)
    assert all(call["options"]["show_progress"] is False for call in fake.calls)


def test_two_failures_fail_with_status_and_iterations(monkeypatch):
    monkeypatch.setattr(dual.cvxopt.solvers, "qp", FakeQP(("unknown", [9, 9]), ("unknown", [9, 9])))
    with pytest.raises(
        SolverError, match=r"status 'unknown' after 7 iterations \(primal infeasibility 0.001"
    ) as info:
        solve_dual(*_problem(), 1.0, fallback="none")
    assert info.value.fields == {"solver_status": "unknown", "iterations": 14}


def test_optimal_but_outside_the_box_is_not_accepted(monkeypatch):
    monkeypatch.setattr(
        dual.cvxopt.solvers, "qp", FakeQP(("optimal", [2.0, 2.0]), ("optimal", [2.0, 2.0]))
    )
    with pytest.raises(SolverError, match="alpha outside"):
        solve_dual(*_problem(), 1.0, fallback="none")


def test_optimal_but_unbalanced_is_not_accepted(monkeypatch):
    monkeypatch.setattr(
        dual.cvxopt.solvers, "qp", FakeQP(("optimal", [0.5, 0.1]), ("optimal", [0.5, 0.1]))
    )
    with pytest.raises(SolverError, match=r"\|y.alpha\|"):
        solve_dual(*_problem(), 1.0, fallback="none")


def test_failure_falls_back_to_smo_and_says_so(monkeypatch):
    monkeypatch.setattr(dual.cvxopt.solvers, "qp", FakeQP(("unknown", [9, 9]), ("unknown", [9, 9])))
    result = solve_dual(*_problem(), 1.0)
    assert result.status == "optimal (smo fallback)" and result.solver == "smo"
    np.testing.assert_allclose(result.alpha, [1.0, 1.0])  # min 1/2 a'a - sum(a), a1 = a2


def test_solver_options_are_passed_per_call_and_globals_untouched():
    before = dict(dual.cvxopt.solvers.options)
    K, y = _problem()
    solve_dual(K, y, 1.0, options={"maxiters": 50})
    assert dict(dual.cvxopt.solvers.options) == before


@pytest.mark.parametrize("C", [0.0, -1.0, np.inf, np.nan])
def test_invalid_C_rejected(C):
    with pytest.raises(ValueError, match="C must be > 0"):
        BinaryKernelSVM(make_kernel("linear"), C=C)


def test_bad_input_rejected_before_solving(monkeypatch):
    def explode(*args, **kwargs):
        raise AssertionError("solver must not run")

    monkeypatch.setattr(dual.cvxopt.solvers, "qp", explode)
    model = BinaryKernelSVM(make_kernel("linear"))
    with pytest.raises(DataError, match=r"inconsistent numbers of samples: \[3, 2\]"):
        model.fit(np.zeros((3, 2)), [1, -1])
    with pytest.raises(DataError, match="got 1 class"):
        model.fit(np.zeros((3, 2)), [1, 1, 1])
    with pytest.raises(DataError, match="contains NaN"):
        model.fit(np.array([[np.nan, 1.0], [0, 1]]), [1, -1])


def test_wrong_feature_count_at_predict():
    split = load_binary("moons")
    model = BinaryKernelSVM(make_kernel("rbf", gamma=0.2)).fit(split.X_train, split.y_train)
    with pytest.raises(DataError, match="X has 3 features"):
        model.predict(np.zeros((2, 3)))
