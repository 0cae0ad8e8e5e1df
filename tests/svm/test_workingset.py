"""The working-set solver over kernel rows (KernelSVM's default): the optimum cvxopt finds,
libsvm's predictions one to one, the KKT conditions at tol, the row cache within its bound,
shrinking and n_jobs without effect on the answer, a cache too small refused in one line."""

import itertools

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_digits, load_iris, make_moons  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

import kernelnet.svm.estimator as estimator  # noqa: E402
from kernelnet import KernelSVM  # noqa: E402
from kernelnet.data.mnist import mnist_split  # noqa: E402
from kernelnet.estimator_base import InvalidParameterError  # noqa: E402
from kernelnet.kernels import make_kernel  # noqa: E402
from kernelnet.svm.dual import solve_dual  # noqa: E402
from kernelnet.svm.row_cache import RowCache, RowKernel  # noqa: E402
from kernelnet.svm.workingset import fit_batch, fit_binary, solve_rows  # noqa: E402

KERNELS = {
    "linear": {},
    "rbf": {"gamma": 0.5},
    "poly": {"gamma": 0.5, "degree": 3, "coef0": 1.0},
}


def moons(n=160, seed=0):
    X, y = make_moons(n, noise=0.3, random_state=seed)
    return X, np.where(y == 1, 1.0, -1.0)


def objective(K, y, alpha):
    Q = np.outer(y, y) * K
    return 0.5 * alpha @ Q @ alpha - alpha.sum()


def kkt_gap(K, y, alpha, costs):
    """libsvm's m(a) - M(a) from the exact float64 gradient."""
    grad = (np.outer(y, y) * K) @ alpha - 1.0
    score = -y * grad
    up = np.where(y > 0, alpha < costs, alpha > 0)
    low = np.where(y > 0, alpha > 0, alpha < costs)
    return score[up].max() - score[low].min()


def decision(kernel, X, fit, Z):
    return kernel(Z, X[fit.support]) @ fit.dual_coef + fit.bias


@pytest.mark.parametrize("kernel_name", list(KERNELS))
@pytest.mark.parametrize("path", ["rows", "batch"])
def test_objective_and_decision_values_equal_cvxopts(kernel_name, path):
    X, y = moons()
    kernel = make_kernel(kernel_name, **KERNELS[kernel_name])
    costs = np.where(y > 0, 1.0, 3.0)  # unequal bounds: both clipping branches
    K = kernel(X)
    reference = solve_dual(K, y, costs, solver="cvxopt").alpha
    tol = 1e-7  # tight: float64 rows, so the two optima must coincide
    if path == "rows":  # a working set of 16 of 160: many outer iterations
        fit = fit_binary(kernel, X, y, costs, tol, 16, 1.0, True)
    else:
        fit = fit_batch(kernel, X, [(np.arange(len(y)), y, costs)], tol)[0]
    ours = fit.result.alpha
    assert fit.result.converged
    np.testing.assert_allclose(objective(K, y, ours), objective(K, y, reference), rtol=1e-7)
    assert fit.result.objective == pytest.approx(objective(K, y, ours), rel=1e-9)
    grid = np.random.default_rng(1).uniform(-1.5, 2.5, (200, 2))
    ref_support = np.flatnonzero(reference > 1e-8 * costs)
    ref_coef = reference[ref_support] * y[ref_support]
    f_ref = kernel(X, X[ref_support]) @ ref_coef
    free = (reference > 1e-5 * costs) & (reference < costs * (1 - 1e-5))
    bias_ref = np.mean(y[free] - f_ref[free])
    ref_values = kernel(grid, X[ref_support]) @ ref_coef + bias_ref
    np.testing.assert_allclose(decision(kernel, X, fit, grid), ref_values, atol=1e-4)


def test_the_kkt_conditions_hold_at_tol_on_a_large_problem_with_shrinking():
    X, y = moons(3000, seed=2)
    kernel = make_kernel("rbf", gamma=0.5)
    costs = np.full(len(y), 10.0)
    fit = fit_binary(kernel, X, y, costs, 1e-3, 128, 200.0, True)
    alpha, result = fit.result.alpha, fit.result
    assert result.converged and result.outer_iterations > 10 and result.most_shrunk > 0
    assert np.all(alpha >= 0) and np.all(alpha <= costs) and abs(y @ alpha) < 1e-9
    K = kernel(X)
    # the solver's float32 rows shift the gradient by ~1e-6: the float64 gap is still tol
    assert kkt_gap(K, y, alpha, costs) <= 1e-3 + 1e-4
    assert result.kkt_violation <= 1e-3
    exact_grad = (np.outer(y, y) * K) @ alpha - 1.0
    np.testing.assert_allclose(result.grad, exact_grad, atol=1e-4)


def test_shrinking_on_and_off_give_the_same_solution():
    X, y = moons(3000, seed=3)
    kernel = make_kernel("rbf", gamma=0.5)
    costs = np.full(len(y), 10.0)
    on = fit_binary(kernel, X, y, costs, 1e-3, 64, 200.0, True)
    off = fit_binary(kernel, X, y, costs, 1e-3, 64, 200.0, False)
    assert on.result.most_shrunk > 0 and off.result.most_shrunk == 0
    K = kernel(X)
    for fit in (on, off):
        assert kkt_gap(K, y, fit.result.alpha, costs) <= 1e-3 + 1e-4
    # two points within tol of one optimum: the same objective to ~tol, the same predictions
    assert abs(on.result.objective - off.result.objective) < 1e-3 * abs(off.result.objective)
    grid = np.random.default_rng(4).uniform(-1.5, 2.5, (2000, 2))
    f_on, f_off = decision(kernel, X, on, grid), decision(kernel, X, off, grid)
    assert np.max(np.abs(f_on - f_off)) < 0.02
    assert np.mean(np.sign(f_on) == np.sign(f_off)) >= 0.999


def test_the_row_cache_never_holds_more_than_its_bound():
    X, y = moons(3000, seed=5)
    kernel = make_kernel("rbf", gamma=0.5)
    cache_mb = 0.5  # 43 rows of 3,000 float32 values
    rk = RowKernel(kernel, X)
    result = solve_rows(rk, y, np.full(len(y), 10.0), 1e-3, 512, cache_mb, True)
    assert result.converged and result.cache_capacity_rows == 43
    assert 0 < result.cache_peak_bytes <= cache_mb * 2**20
    assert result.rows_computed > 43  # rows were evicted and computed again

    cache = RowCache(100, 8, np.dtype(np.float32))
    points = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    rows = RowKernel(kernel, points)
    rng = np.random.default_rng(1)
    for _ in range(200):
        asked = rng.choice(100, size=rng.integers(1, 9), replace=False)
        slots = cache.slots(asked, rows.block, None)
        # the same rows, to float32 rounding (a product of other row counts rounds otherwise)
        np.testing.assert_allclose(cache.slab[slots], rows.block(asked), rtol=1e-6, atol=1e-7)
        assert cache.bytes_held <= 8 * 100 * 4 and len(cache) <= 8
    assert cache.peak_bytes == 8 * 100 * 4 and cache.hits > 0
    hits = cache.hits
    cache.slots(asked, rows.block, None)  # the last rows asked are the most recent: kept
    assert cache.hits == hits + len(asked)


def test_predictions_equal_svc_on_digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16
    ours = KernelSVM(C=10, gamma=0.05).fit(X, y)
    ref = SVC(C=10, gamma=0.05).fit(X, y)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_array_equal(
        np.sort(ours.support_vectors_, axis=0), np.sort(ref.support_vectors_, axis=0)
    )
    # each pair's decision value (libsvm's orientation), not the votes: a training point on
    # a pair's margin has a value near 0, whose sign tol decides
    pairs = SVC(C=10, gamma=0.05, decision_function_shape="ovo").fit(X, y)
    np.testing.assert_allclose(ours._pair_values(X), pairs.decision_function(X), atol=2e-3)


@pytest.mark.parametrize("kernel", ["linear", "rbf", "poly", "sigmoid"])
def test_predictions_equal_svc_on_iris_with_class_weights(kernel):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    params = dict(kernel=kernel, C=2.0, gamma=0.2, coef0=-1.0 if kernel == "sigmoid" else 0.0)
    weights = {0: 1.0, 1: 3.0, 2: 0.5}
    ours = KernelSVM(class_weight=weights, **params).fit(X, y)
    ref = SVC(class_weight=weights, **params).fit(X, y)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=1e-2)


@pytest.mark.parametrize("path", ["batch", "rows"])
def test_predictions_equal_svc_on_2000_mnist_images(path, monkeypatch):
    data = mnist_split(2000, 0, 1000, normalize="scale")
    if path == "rows":  # the path of pairs too big for one working set, on small data
        monkeypatch.setattr(estimator, "BATCH_MAX_N", 0)
    ours = KernelSVM(C=10, gamma=0.05, working_set=128).fit(data.X_train, data.y_train)
    assert {m.solver_.outer_iterations > 1 for m in ours.estimators_} == {path == "rows"}
    ref = SVC(C=10, gamma=0.05).fit(data.X_train, data.y_train)
    agree = np.mean(ours.predict(data.X_test) == ref.predict(data.X_test))
    assert agree == 1.0  # measured: 1,000 of 1,000 test images (both paths)
    assert ours.score(data.X_test, data.y_test) == ref.score(data.X_test, data.y_test)


def test_predictions_equal_svc_on_a_toy_two_class_set():
    X, y = make_moons(400, noise=0.3, random_state=7)
    ours = KernelSVM(C=3.0, gamma=0.7).fit(X, y)
    ref = SVC(C=3.0, gamma=0.7).fit(X, y)
    grid = np.random.default_rng(0).uniform(-1.5, 2.5, (5000, 2))
    np.testing.assert_array_equal(ours.predict(grid), ref.predict(grid))
    assert len(ours.support_vectors_) == len(ref.support_vectors_)
    np.testing.assert_allclose(ours.estimators_[0].bias_, ref.intercept_[0], atol=1e-2)


def test_n_jobs_1_and_2_give_identical_models(monkeypatch):
    monkeypatch.setattr(estimator, "BATCH_MAX_N", 0)  # the per-pair path, spread over workers
    X, y = make_moons(600, noise=0.3, random_state=8)
    y = y + 2 * (X[:, 0] > 0.5)  # four classes, six pairs
    one = KernelSVM(C=2.0, gamma=0.5, working_set=64, n_jobs=1).fit(X, y)
    two = KernelSVM(C=2.0, gamma=0.5, working_set=64, n_jobs=2).fit(X, y)
    assert len(one.estimators_) == 6
    for a, b in zip(one.estimators_, two.estimators_):
        np.testing.assert_array_equal(a.support_, b.support_)
        np.testing.assert_array_equal(a.dual_coef_, b.dual_coef_)
        assert a.bias_ == b.bias_
    np.testing.assert_array_equal(one.decision_function(X), two.decision_function(X))


def test_the_default_workers_give_the_model_one_process_with_threaded_blas_gives(
    monkeypatch,
):
    """n_jobs=None on a 2-CPU machine: two forked workers with one BLAS thread each; the
    same fit in this process with two BLAS threads: identical models (784-feature rows, so
    the products are large enough for BLAS to split them)."""
    from kernelnet.blas import blas_threads

    monkeypatch.setattr(estimator, "BATCH_MAX_N", 0)  # every pair by the per-pair path
    monkeypatch.setattr(estimator, "usable_cpus", lambda: 2)
    data = mnist_split(1500, 0, 100, normalize="scale")
    X, y = data.X_train, data.y_train % 3  # three classes, three pairs of ~1000
    with blas_threads(2):
        here = KernelSVM(C=10, gamma=0.05, working_set=128, n_jobs=1).fit(X, y)
        spread = KernelSVM(C=10, gamma=0.05, working_set=128)
        assert spread._workers(3, 1000) == 2
        spread.fit(X, y)
    for a, b in zip(here.estimators_, spread.estimators_):
        np.testing.assert_array_equal(a.support_, b.support_)
        np.testing.assert_array_equal(a.dual_coef_, b.dual_coef_)
        assert a.bias_ == b.bias_


def test_kernel_rows_are_the_same_on_any_number_of_threads():
    """A block's chunks computed on 1, 2 or 3 threads (BLAS on one): identical values,
    equal to each chunk computed alone, and close to the float64 kernel."""
    from kernelnet.blas import blas_threads
    from kernelnet.svm.row_cache import CHUNK_ROWS

    data = mnist_split(3000, 0, 100, normalize="scale")
    kernel = make_kernel("rbf", gamma=0.05)
    rows = np.arange(0, 3000, 7)[: 2 * CHUNK_ROWS + 5]  # two whole chunks and a remainder
    with blas_threads(1):
        blocks = []
        for threads in (1, 2, 3):
            with RowKernel(kernel, data.X_train, threads=threads) as rk:
                blocks.append(rk.block(rows))
        alone = RowKernel(kernel, data.X_train)
        chunks = [alone.block(rows[s : s + CHUNK_ROWS]) for s in range(0, len(rows), CHUNK_ROWS)]
    for block in blocks[1:]:
        np.testing.assert_array_equal(block, blocks[0])
    np.testing.assert_array_equal(np.concatenate(chunks), blocks[0])
    exact = kernel(data.X_train[rows], data.X_train)
    np.testing.assert_allclose(blocks[0], exact, atol=1e-5)


def test_a_two_class_model_does_not_depend_on_the_blas_threads_or_the_cpus(monkeypatch):
    """The caller's BLAS on 1 or 2 threads, 1 or 2 CPUs for the row chunks: one model."""
    from kernelnet.blas import blas_threads

    data = mnist_split(2500, 0, 100, normalize="scale")
    X, y = data.X_train, data.y_train % 2  # one pair of 2,500: the per-pair path
    models = []
    for threads, cpus in ((1, 1), (2, 2), (2, 1)):
        monkeypatch.setattr(estimator, "usable_cpus", lambda cpus=cpus: cpus)
        with blas_threads(threads):
            models.append(KernelSVM(C=10, gamma=0.05, working_set=256).fit(X, y))
    for other in models[1:]:
        a, b = models[0].estimators_[0], other.estimators_[0]
        np.testing.assert_array_equal(a.support_, b.support_)
        np.testing.assert_array_equal(a.dual_coef_, b.dual_coef_)
        assert a.bias_ == b.bias_


def test_a_fitted_models_union_is_the_union_its_saved_state_loads():
    """The union of support vectors built from a fitted model's shared rows equals the one a
    loaded model builds from each pair's own copies: same vectors, same order, duplicates
    (iris has equal samples; here every sample is also given twice) merged the same way."""
    X, y = load_iris(return_X_y=True)
    X, y = np.vstack([X, X[::-1]]), np.concatenate([y, y[::-1]])
    fitted = KernelSVM(C=10.0, gamma=0.5).fit(X, y)
    loaded = KernelSVM(C=10.0, gamma=0.5)
    loaded._set_state(fitted._state())
    assert len(np.unique(fitted.support_vectors_, axis=0)) == len(fitted.support_vectors_)
    np.testing.assert_array_equal(fitted.support_vectors_, loaded.support_vectors_)
    np.testing.assert_array_equal(fitted.decision_function(X), loaded.decision_function(X))


def test_a_cache_smaller_than_a_row_is_refused_in_one_line():
    X = np.random.default_rng(0).normal(size=(3000, 4))
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(InvalidParameterError) as refused:
        KernelSVM(cache_size=0.01).fit(X, y)  # a row of 3,000 float32 values is 0.011 MB
    message = str(refused.value)
    assert "'cache_size' parameter of KernelSVM" in message and "\n" not in message
    assert "raise cache_size" in message


def test_auto_is_the_working_set_solver_and_the_old_ones_keep_their_names():
    X, y = load_iris(return_X_y=True)
    auto = KernelSVM(gamma=0.2).fit(X, y)
    assert {m.solver_.solver for m in auto.estimators_} == {"workingset"}
    assert {m.solver_.status for m in auto.estimators_} == {"optimal"}
    for name in ("cvxopt", "smo", "blocked"):
        other = KernelSVM(gamma=0.2, solver=name).fit(X, y)
        np.testing.assert_array_equal(other.predict(X), auto.predict(X))
        assert all(getattr(m.solver_, "solver", "blocked") == name for m in other.estimators_)


def test_pairs_in_a_batch_do_not_change_each_others_answer():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    kernel = make_kernel("rbf", gamma=0.05)
    problems = []
    for a, b in itertools.combinations(range(4), 2):
        index = np.flatnonzero((y == a) | (y == b))
        problems.append((index, np.where(y[index] == a, -1.0, 1.0), np.full(len(index), 10.0)))
    together = fit_batch(kernel, X, problems, 1e-3)
    for fit, problem in zip(together, problems):
        alone = fit_batch(kernel, X, [problem], 1e-3)[0]
        np.testing.assert_array_equal(fit.result.alpha, alone.result.alpha)
        assert fit.bias == alone.bias


def test_n_jobs_says_how_many_processes_fit_the_pairs(monkeypatch):
    """1 fits in this process; N asks for N (never more than there are pairs); -1 for every
    CPU this process may run on; None for one per such CPU when there are two or more pairs
    larger than a batch, else this process (and always this process in a daemonic one)."""
    monkeypatch.setattr(estimator, "usable_cpus", lambda: 8)
    big, small = estimator.BATCH_MAX_N + 1, estimator.BATCH_MAX_N
    assert KernelSVM(n_jobs=1)._workers(45, big) == 1
    assert KernelSVM(n_jobs=3)._workers(45, big) == 3
    assert KernelSVM(n_jobs=3)._workers(2, big) == 2
    assert KernelSVM(n_jobs=-1)._workers(45, big) == 8
    assert KernelSVM(n_jobs=-1)._workers(45, small) == 8  # asked for: obeyed
    assert KernelSVM(n_jobs=None)._workers(45, big) == 8
    assert KernelSVM(n_jobs=None)._workers(3, big) == 3
    assert KernelSVM(n_jobs=None)._workers(1, big) == 1  # two classes: one pair
    assert KernelSVM(n_jobs=None)._workers(45, small) == 1  # cheaper than a worker
    monkeypatch.setattr(estimator.multiprocessing.current_process(), "daemon", True)
    assert KernelSVM(n_jobs=None)._workers(45, big) == 1  # a daemon may not fork


def test_usable_cpus_follow_the_affinity_mask():
    """The CPUs this process may run on, which a container or taskset can make fewer than
    the machine's."""
    import os

    assert estimator.usable_cpus() == len(os.sched_getaffinity(0))


def test_n_jobs_works_from_a_script_without_a_main_guard(tmp_path):
    """A user's plain script (no `if __name__ == "__main__":`) fitting with n_jobs=2: the
    pair workers are forked, never spawned, so the script is not run again in them."""
    import subprocess
    import sys

    script = tmp_path / "fit.py"
    script.write_text(
        "import numpy as np\n"
        "from kernelnet import KernelSVM\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(240, 2)) + np.repeat([[0, 0], [3, 0], [0, 3]], 80, axis=0)\n"
        "y = np.repeat([0, 1, 2], 80)\n"
        "print('fitted', KernelSVM(n_jobs=2).fit(X, y).score(X, y) > 0.9)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("fitted True") == 1
