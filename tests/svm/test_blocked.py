"""The blocked one-vs-one solver for MNIST-sized data: predictions equal libsvm's (through
scikit-learn's SVC) on scikit-learn's digits and on an MNIST subset; each pair's dual meets
libsvm's stopping rule and reaches the optimum a second solver finds; the shared Gram
blocks are the kernel's values and stay within their memory bound."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from kernelnet import KernelSVM  # noqa: E402
from kernelnet.data.mnist import mnist_split  # noqa: E402
from kernelnet.kernels import make_kernel  # noqa: E402
from kernelnet.svm.blocked import ClassBlocks, select_working_set, solve_blocked  # noqa: E402
from kernelnet.svm.smo import smo  # noqa: E402


def test_digits_predictions_equal_svc():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    train, test = slice(0, 1200), slice(1200, None)
    ours = KernelSVM(C=10, gamma=0.05, solver="blocked", working_set=32).fit(X[train], y[train])
    theirs = SVC(C=10, gamma=0.05).fit(X[train], y[train])
    np.testing.assert_array_equal(ours.predict(X[test]), theirs.predict(X[test]))
    # the same support vectors, as a set (libsvm's tolerance leaves tiny alphas aside)
    ours_sv = {v.tobytes() for m in ours.estimators_ for v in m.support_vectors_}
    theirs_sv = {v.tobytes() for v in theirs.support_vectors_}
    assert len(ours_sv ^ theirs_sv) <= 0.02 * len(theirs_sv)


def test_mnist_subset_predictions_equal_svc():
    data = mnist_split(1500, 0, 1000, normalize="scale")
    ours = KernelSVM(C=10, gamma=0.05, solver="blocked").fit(data.X_train, data.y_train)
    theirs = SVC(C=10, gamma=0.05).fit(data.X_train, data.y_train)
    np.testing.assert_array_equal(ours.predict(data.X_test), theirs.predict(data.X_test))
    np.testing.assert_allclose(
        ours.decision_function(data.X_test[:50]),
        theirs.decision_function(data.X_test[:50]),
        atol=2e-2,  # two solvers stopped at the same 1e-3 KKT gap, not at the same point
    )


def _random_problem(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0)
    return make_kernel("rbf", gamma=0.3)(X), y


def dual_objective(K, y, alpha):
    v = alpha * y
    return 0.5 * v @ K @ v - alpha.sum()


@pytest.mark.parametrize("working_set", [2, 16, 64, 1000])
def test_each_pair_meets_the_stopping_rule_and_reaches_the_optimum(working_set):
    K, y = _random_problem()
    costs = np.full(len(y), 2.0)
    result = solve_blocked(K.astype(np.float32), y, costs, tol=1e-6, working_set=working_set)
    assert result.converged and result.kkt_violation <= 1e-6
    alpha = result.alpha
    assert np.all(alpha >= 0) and np.all(alpha <= costs) and abs(alpha @ y) < 1e-9
    # the gradient it kept is the gradient of its alphas
    np.testing.assert_allclose(result.grad, y * (K @ (alpha * y)) - 1, atol=1e-4)
    reference = smo(K, y, 2.0, tol=1e-9)
    assert dual_objective(K, y, alpha) == pytest.approx(
        dual_objective(K, y, reference.alpha), rel=1e-6
    )


def test_the_working_set_holds_the_maximal_violating_pair():
    rng = np.random.default_rng(1)
    score = rng.normal(size=500)
    up, low = rng.random(500) < 0.6, rng.random(500) < 0.6
    chosen = select_working_set(score, up, low, 16)
    assert len(chosen) <= 16 and len(set(chosen)) == len(chosen)
    assert np.flatnonzero(up)[score[up].argmax()] in chosen
    assert np.flatnonzero(low)[score[low].argmin()] in chosen


def test_class_blocks_are_the_kernel_and_stay_within_their_bound():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(90, 4))
    groups = [np.arange(0, 30), np.arange(30, 60), np.arange(60, 90)]
    kernel = make_kernel("rbf", gamma=0.5)
    block_bytes = 30 * 30 * 4
    blocks = ClassBlocks(X, groups, kernel, cache_mb=2.5 * block_bytes / 2**20)
    pair = blocks.pair(0, 2)
    index = np.concatenate([groups[0], groups[2]])
    np.testing.assert_allclose(pair, kernel(X[index]), atol=1e-6)
    assert pair.dtype == np.float32 and np.all(np.diagonal(pair) == 1.0)
    assert blocks.computed == 3  # K[0,0], K[0,2], K[2,2]
    assert sum(b.nbytes for b in blocks._blocks.values()) <= 2.5 * block_bytes
    blocks.pair(0, 2)
    assert blocks.computed > 3  # the bound evicted a block, which is computed again


def test_auto_is_the_working_set_solver_at_every_size_and_blocked_keeps_its_name():
    for n in (50, 400, 700, 20_000):
        groups = [np.arange(n), np.arange(n, 2 * n)]
        assert KernelSVM(solver="auto")._solver(groups) == "workingset"
        assert KernelSVM(solver="auto", cache_size=1)._solver(groups) == "workingset"
        assert KernelSVM(solver="blocked")._solver(groups) == "blocked"
    with pytest.raises(ValueError, match="The 'solver' parameter of KernelSVM must be a str among"):
        KernelSVM(solver="fast").fit(np.zeros((4, 2)), [0, 0, 1, 1])


@pytest.mark.parametrize(
    "kernel, params",
    [
        ("linear", {}),
        ("poly", {"gamma": 0.02, "degree": 3, "coef0": 1.0}),
        ("sigmoid", {"gamma": 0.001, "coef0": 0.0}),  # indefinite: tau keeps steps descending
    ],
)
def test_every_kernel_predicts_as_svc(kernel, params):
    data = mnist_split(1200, 0, 500, normalize="scale")
    ours = KernelSVM(kernel=kernel, C=1.0, solver="blocked", **params)
    theirs = SVC(kernel=kernel, C=1.0, **params)
    np.testing.assert_array_equal(
        ours.fit(data.X_train, data.y_train).predict(data.X_test),
        theirs.fit(data.X_train, data.y_train).predict(data.X_test),
    )


def test_class_weights_and_two_classes_as_svc():
    data = mnist_split(2000, 0, 500, normalize="scale")
    keep = (data.y_train != 3) | (np.arange(2000) % 5 == 0)  # class 3 made rare
    X, y = data.X_train[keep], data.y_train[keep]
    ours = KernelSVM(C=5, gamma=0.05, class_weight="balanced", solver="blocked").fit(X, y)
    theirs = SVC(C=5, gamma=0.05, class_weight="balanced").fit(X, y)
    np.testing.assert_array_equal(ours.predict(data.X_test), theirs.predict(data.X_test))
    odd = data.y_train % 2
    ours = KernelSVM(C=5, gamma=0.05, solver="blocked").fit(data.X_train, odd)
    theirs = SVC(C=5, gamma=0.05).fit(data.X_train, odd)
    np.testing.assert_allclose(
        ours.decision_function(data.X_test), theirs.decision_function(data.X_test), atol=5e-3
    )


@pytest.mark.parametrize("solver", ["blocked", "cvxopt"])
def test_fit_reports_progress_pair_by_pair(solver):
    X, y = load_digits(return_X_y=True)
    calls = []
    model = KernelSVM(gamma=0.02, solver=solver)
    model.fit(X[:300] / 16, y[:300], progress=lambda *a: calls.append(a))
    assert calls == [(done, 45) for done in range(1, 46)]
