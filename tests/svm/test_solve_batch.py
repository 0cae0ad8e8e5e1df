"""solve_batch, the batched SMO of small one-vs-one pairs, with shrinking: cvxopt's optimum
and the unshrunk solver's, libsvm's stopping rule from the exact float64 gradient, SVC's
predictions on digits and iris, answers that do not depend on the batch, and a variable
that shrinking set aside wrongly brought back by the verification over all variables."""

import itertools

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_digits, load_iris, make_classification, make_moons  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

import kernelnet.svm.estimator as estimator  # noqa: E402
import kernelnet.svm.workingset as workingset  # noqa: E402
from kernelnet import KernelSVM  # noqa: E402
from kernelnet.kernels import make_kernel  # noqa: E402
from kernelnet.svm.dual import solve_dual  # noqa: E402
from kernelnet.svm.workingset import solve_batch  # noqa: E402


def padded(problems, dtype):
    """(K, y, costs) of solve_batch: problems of n_p variables padded to the largest."""
    w = max(len(y) for _, y, _ in problems)
    K = np.zeros((len(problems), w, w), dtype=dtype)
    Y, costs = np.ones((len(problems), w)), np.zeros((len(problems), w))
    for p, (Kp, y, c) in enumerate(problems):
        n = len(y)
        K[p, :n, :n], Y[p, :n], costs[p, :n] = Kp, y, c
    return K, Y, costs


def exact_gradient(K, y, alpha):
    """G = Q alpha - 1 in float64 from the whole matrix (no support-vector shortcut)."""
    K = K.astype(np.float64)
    return (np.outer(y, y) * K) @ alpha - 1.0


def kkt_gap(K, y, alpha, costs):
    """libsvm's m - M from the exact gradient."""
    score = -y * exact_gradient(K, y, alpha)
    up = np.where(y > 0, alpha < costs, alpha > 0)
    low = np.where(y > 0, alpha > 0, alpha < costs)
    return score[up].max() - score[low].min()


def objective(K, y, alpha):
    """1/2 a'Qa - sum(a) = 1/2 a'(G - 1)."""
    return 0.5 * alpha @ (exact_gradient(K, y, alpha) - 1.0)


def moons_problems(kernel):
    """Three two-class problems of different sizes (so padded differently) and unequal
    bounds (both clipping branches): float64 kernel matrices."""
    problems = []
    for n, seed in ((60, 0), (110, 1), (160, 2)):
        X, y = make_moons(n, noise=0.3, random_state=seed)
        y = np.where(y == 1, 1.0, -1.0)
        problems.append((kernel(X), y, np.where(y > 0, 1.0, 3.0)))
    return problems


def digits_pairs(classes=range(10)):
    """digits (X/16) one-vs-one pairs at C=10, gamma=0.05: float32 kernel matrices."""
    X, y = load_digits(return_X_y=True)
    X = X / 16
    kernel = make_kernel("rbf", gamma=0.05)
    problems = []
    for a, b in itertools.combinations(classes, 2):
        index = np.flatnonzero((y == a) | (y == b))
        labels = np.where(y[index] == a, -1.0, 1.0)
        problems.append((kernel(X[index]).astype(np.float32), labels, np.full(len(index), 10.0)))
    return problems


def noisy_problems():
    """Two-class sets with 20% of the labels flipped: hundreds of bounded support vectors,
    ~1,000-2,400 SMO steps, and scores that move long after the first shrinking checks."""
    kernel = make_kernel("rbf", gamma=0.5)
    problems = []
    for seed in (1, 3, 5):
        X, y = make_classification(300, 5, n_informative=3, flip_y=0.2, random_state=seed)
        problems.append((kernel(X).astype(np.float32), np.where(y == 1, 1.0, -1.0), 10.0))
    return [(K, y, np.full(len(y), c)) for K, y, c in problems]


@pytest.mark.parametrize("kernel_name", ["rbf", "poly"])
def test_the_objective_equals_cvxopts_and_the_unshrunk_solvers(kernel_name):
    params = {"rbf": {"gamma": 0.5}, "poly": {"gamma": 0.5, "degree": 3, "coef0": 1.0}}
    problems = moons_problems(make_kernel(kernel_name, **params[kernel_name]))
    K, Y, costs = padded(problems, np.float64)
    eps = 1e-7  # tight, on float64 values: the optima must coincide
    alpha, _, _ = solve_batch(K, Y, costs, eps)
    unshrunk, _, _ = solve_batch(K, Y, costs, eps, shrinking=False)
    for p, (Kp, y, c) in enumerate(problems):
        n = len(y)
        reference = solve_dual(Kp, y, c, solver="cvxopt").alpha
        best = objective(Kp, y, reference)
        np.testing.assert_allclose(objective(Kp, y, alpha[p, :n]), best, rtol=1e-7)
        np.testing.assert_allclose(objective(Kp, y, unshrunk[p, :n]), best, rtol=1e-7)
        assert np.all(alpha[p, n:] == 0)  # padding never moves


def test_the_kkt_gap_from_the_exact_gradient_is_at_most_eps():
    """digits' pairs (float32 values) and noisy sets (whose shrinking is undone at times):
    every variable's scores recomputed here, in float64 from the whole matrix; alpha in
    its box, exactly 0 or C where it is at a bound, y'alpha = 0, and the scores returned
    the exact ones."""
    problems = digits_pairs(range(5)) + noisy_problems()
    K, Y, costs = padded(problems, np.float32)
    eps = 1e-3
    alpha, score, steps = solve_batch(K, Y, costs, eps)
    for p, (Kp, y, c) in enumerate(problems):
        n, a = len(y), alpha[p, : len(y)]
        assert kkt_gap(Kp, y, a, c) <= eps + 1e-9
        assert np.all(a >= 0) and np.all(a <= c) and abs(y @ a) < 1e-9 * c.sum()
        bounded = (a < 1e-9 * c) | (a > c * (1 - 1e-9))
        assert np.all((a[bounded] == 0) | (a[bounded] == c[bounded]))
        np.testing.assert_allclose(score[p, :n], -y * exact_gradient(Kp, y, a), atol=1e-9)
        assert 0 < steps[p] < 10_000


def test_predictions_equal_svcs_on_digits(monkeypatch):
    """All of digits (45 pairs of ~360) by the batched solver, as the issue measures it."""
    calls = []
    real = workingset.solve_batch
    monkeypatch.setattr(workingset, "solve_batch", lambda *a, **k: calls.append(1) or real(*a, **k))
    X, y = load_digits(return_X_y=True)
    X = X / 16
    ours = KernelSVM(C=10, gamma=0.05, tol=1e-3).fit(X, y)
    ref = SVC(C=10, gamma=0.05, tol=1e-3).fit(X, y)
    assert calls  # the batched path
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    grid = np.random.default_rng(0).uniform(0, 1, (500, X.shape[1]))
    np.testing.assert_array_equal(ours.predict(grid), ref.predict(grid))


@pytest.mark.parametrize("kernel", ["linear", "rbf", "poly", "sigmoid"])
def test_predictions_equal_svcs_on_iris(kernel, monkeypatch):
    """Iris' three pairs, batched (below BATCH_MIN_PAIRS they would be solved one at a
    time); the sigmoid kernel is indefinite, so curvatures <= 0 take libsvm's TAU."""
    monkeypatch.setattr(estimator, "BATCH_MIN_PAIRS", 1)
    calls = []
    real = workingset.solve_batch
    monkeypatch.setattr(workingset, "solve_batch", lambda *a, **k: calls.append(1) or real(*a, **k))
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    params = dict(kernel=kernel, C=1.0, gamma=0.2, coef0=0.0 if kernel != "sigmoid" else -1.0)
    ours = KernelSVM(**params).fit(X, y)
    ref = SVC(**params).fit(X, y)
    assert calls
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=2e-2)


def test_a_problems_answer_does_not_depend_on_the_batch():
    """Each problem alone, and in batches of other sizes, widths and orders (so re-packed
    at other steps, padded otherwise, dropped at other times): the same alpha, scores and
    steps, bit for bit. The noisy sets are among them, so problems that are verified,
    continued and shrunk again are too."""
    problems = digits_pairs(range(4)) + noisy_problems()
    eps = 1e-3

    def solve(selection):
        K, Y, costs = padded([problems[k] for k in selection], np.float32)
        alpha, score, steps = solve_batch(K, Y, costs, eps)
        n = [len(problems[k][1]) for k in selection]
        return {k: (alpha[i, : n[i]], score[i, : n[i]], steps[i]) for i, k in enumerate(selection)}

    alone = {}
    for k in range(len(problems)):
        alone.update(solve([k]))
    everything = list(range(len(problems)))
    for selection in (everything, everything[::-1], [7, 0, 3], [2, 8, 5, 1]):
        for k, (a, s, steps) in solve(selection).items():
            np.testing.assert_array_equal(a, alone[k][0])
            np.testing.assert_array_equal(s, alone[k][1])
            assert steps == alone[k][2]


def test_a_variable_shrinking_set_aside_wrongly_is_brought_back(monkeypatch):
    """On the noisy sets, a problem converges on its active variables while a variable set
    aside violates the KKT conditions: the gap over all of them, computed here from K and
    the alpha of that moment, is > eps. The solver finds it (its verification continues the
    problem) and the answer has every variable's gap <= eps and the unshrunk optimum."""
    problems = noisy_problems()
    K, Y, costs = padded(problems, np.float32)
    eps = 1e-3
    verified = []
    real = workingset._BatchSolve._verify

    def verify(self, p):
        w = self.y.shape[1]
        alpha = workingset._alpha_from_room(self.room[:, p, :w], self.y[p], self.costs[p])
        positions = real(self, p)
        verified.append((p, alpha, positions))
        return positions

    monkeypatch.setattr(workingset._BatchSolve, "_verify", verify)
    alpha, _, _ = solve_batch(K, Y, costs, eps)
    monkeypatch.setattr(workingset._BatchSolve, "_verify", real)
    unshrunk, _, _ = solve_batch(K, Y, costs, eps, shrinking=False)
    continued = [(p, a) for p, a, positions in verified if positions is not None]
    assert len(continued) >= 2
    for p, then in continued:
        Kp, y, c = problems[p]
        assert kkt_gap(Kp, y, then, c) > eps  # a variable outside the active set violated
    for p, (Kp, y, c) in enumerate(problems):
        assert kkt_gap(Kp, y, alpha[p], c) <= eps + 1e-9
        rel = abs(objective(Kp, y, alpha[p]) / objective(Kp, y, unshrunk[p]) - 1)
        assert rel < 1e-4  # two points within eps of one optimum


def test_max_iter_bounds_each_problems_steps():
    """Every problem here needs more steps than allowed: each takes exactly max_iter. On the
    noisy sets (1,407 to 2,382 steps), a continued problem has taken fewer steps than the
    others, so their steps run out at different points of one chunk (1,301: after 1, 2 and
    9 of its 10)."""
    for problems, max_iter in ((digits_pairs(range(3)), 7), (noisy_problems(), 1301)):
        K, Y, costs = padded(problems, np.float32)
        alpha, _, steps = solve_batch(K, Y, costs, 1e-3, max_iter=max_iter)
        assert np.all(steps == max_iter)
        for p, (_, y, c) in enumerate(problems):
            a = alpha[p, : len(y)]
            assert np.all(a >= 0) and np.all(a <= c) and abs(y @ a) < 1e-9 * c.sum()
