import numpy as np
import pytest
from sklearn.datasets import make_moons
from sklearn.svm import SVC

from kernelnet.kernels import make_kernel
from kernelnet.svm.dual import AUTO_CVXOPT_MAX_N, BinaryKernelSVM
from kernelnet.svm.smo import KernelRows, smo


def test_kernel_rows_match_the_gram_matrix_and_respect_the_cache_bound():
    X = np.random.default_rng(0).normal(size=(50, 3))
    kernel = make_kernel("rbf", gamma=0.3)
    rows = KernelRows(kernel, X, cache_mb=8 * 50 * 5 / 2**20)  # room for 5 rows
    K = kernel(X)
    for i in [3, 7, 3, 9, 11, 13, 15, 17, 3]:
        np.testing.assert_allclose(rows.row(i), K[i], rtol=1e-12)
    assert rows.capacity == 5 and len(rows._cache) <= 5
    # the second 3 is a hit (and refreshes it); 15 evicts 7, 17 evicts 3, so the last 3 misses
    assert rows.computed == 8
    np.testing.assert_allclose(rows.diagonal(), np.diag(K))


@pytest.fixture(scope="module")
def larger():
    X, y = make_moons(1200, noise=0.3, random_state=3)
    return X[:900], y[:900], X[900:], y[900:]


def test_solvers_agree_with_each_other_and_libsvm_on_a_larger_set(larger):
    X, y, X_test, _ = larger
    reference = SVC(C=1.0, kernel="rbf", gamma=0.5, tol=1e-6).fit(X, y).decision_function(X_test)
    values = {}
    for solver in ("cvxopt", "smo"):
        model = BinaryKernelSVM(make_kernel("rbf", gamma=0.5), C=1.0, solver=solver).fit(X, y)
        values[solver] = model.decision_function(X_test)
        np.testing.assert_allclose(values[solver], reference, atol=1e-4)
    np.testing.assert_allclose(values["cvxopt"], values["smo"], atol=1e-5)


def test_auto_uses_cvxopt_for_small_problems_and_smo_for_large(larger):
    X, y, _, _ = larger
    small = BinaryKernelSVM(make_kernel("rbf", gamma=0.5), solver="auto").fit(X[:200], y[:200])
    assert small.solver_.solver == "cvxopt"
    big_X, big_y = make_moons(AUTO_CVXOPT_MAX_N + 1, noise=0.3, random_state=0)
    big = BinaryKernelSVM(make_kernel("rbf", gamma=0.5), solver="auto").fit(big_X, big_y)
    assert big.solver_.solver == "smo"


def test_smo_handles_an_indefinite_kernel_like_libsvm():
    X, y = make_moons(300, noise=0.3, random_state=1)
    kernel = make_kernel("sigmoid", gamma=0.5, coef0=-1.0)
    model = BinaryKernelSVM(kernel, C=1.0, solver="smo").fit(X, y)
    reference = SVC(C=1.0, kernel="sigmoid", gamma=0.5, coef0=-1.0, tol=1e-6).fit(X, y)
    np.testing.assert_allclose(
        model.decision_function(X), reference.decision_function(X), atol=1e-4
    )


def test_smo_reports_non_convergence():
    X, y = make_moons(200, noise=0.3, random_state=0)
    result = smo(
        make_kernel("rbf", gamma=0.5)(X), np.where(y > 0, 1.0, -1.0), 1.0, tol=1e-12, max_iter=5
    )
    assert not result.converged and result.iterations == 5 and result.kkt_violation > 1e-12
