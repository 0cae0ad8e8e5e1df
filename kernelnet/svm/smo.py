"""Sequential minimal optimization for the SVM dual, as libsvm does it.

Solves  min f(a) = 1/2 a'Qa - sum(a),  Q_ij = y_i y_j K_ij,  0 <= a_i <= C_i,  y'a = 0
two coordinates at a time, with the second-order working-set selection of Fan, Chen and
Lin (JMLR 2005). For an indefinite K (the sigmoid kernel) a non-positive curvature
a_ij = K_ii + K_jj - 2 K_ij is replaced by ``tau`` (Chen, Fan and Lin 2006), which keeps
every step a descent step, so the method converges where an interior-point QP cannot.

Stopping rule: the maximal KKT violation m(a) - M(a) <= ``tol``, where
m(a) = max_{t in I_up} -y_t grad_t and M(a) = min_{t in I_low} -y_t grad_t.

Kernel rows are computed on demand and kept in a least-recently-used cache of bounded
size (:class:`KernelRows`), so memory stays O(n * cache rows) rather than O(n^2); each
iteration needs rows i and j only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TAU = 1e-12


class KernelRows:
    """Rows K[i, :] of a Gram matrix, from a precomputed matrix or computed on demand
    from ``kernel(X[i:i+1], X)`` with an LRU cache of at most ``cache_mb`` megabytes."""

    def __init__(
        self,
        kernel: Callable | None = None,
        X: np.ndarray | None = None,
        matrix: np.ndarray | None = None,
        cache_mb: float = 500.0,
    ):
        if matrix is None and (kernel is None or X is None):
            raise ValueError("give a Gram matrix, or a kernel and the points")
        self.matrix, self.kernel, self.X = matrix, kernel, X
        self.n = len(matrix) if matrix is not None else len(X)
        self.capacity = max(2, int(cache_mb * 2**20 / (8 * self.n)))
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.computed = 0  # rows computed (cache misses)

    def diagonal(self) -> np.ndarray:
        if self.matrix is not None:
            return np.diag(self.matrix).astype(np.float64)
        parts = [
            np.diag(self.kernel(self.X[s : s + 256], self.X[s : s + 256]))
            for s in range(0, self.n, 256)
        ]
        return np.concatenate(parts).astype(np.float64)

    def row(self, i: int) -> np.ndarray:
        if self.matrix is not None:
            return self.matrix[i]
        cached = self._cache.get(i)
        if cached is not None:
            self._cache.move_to_end(i)
            return cached
        values = np.asarray(self.kernel(self.X[i : i + 1], self.X)[0], dtype=np.float64)
        self.computed += 1
        self._cache[i] = values
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return values


@dataclass(frozen=True)
class SMOResult:
    alpha: np.ndarray  # (n,)
    converged: bool
    iterations: int
    kkt_violation: float  # m(a) - M(a) at the end


def smo(
    K: np.ndarray | KernelRows,
    y: np.ndarray,
    C: float | np.ndarray,
    tol: float = 1e-8,
    max_iter: int | None = None,
    alpha: np.ndarray | None = None,
    grad: np.ndarray | None = None,
) -> SMOResult:
    """Minimize the SVM dual for Gram matrix ``K`` (n, n) or its rows, labels in {-1, +1}.

    ``alpha`` and ``grad`` (both updated in place) start the search from a feasible point
    and its gradient; by default alpha = 0 and grad = Q alpha - 1 = -1. A working set of a
    larger dual (:mod:`kernelnet.svm.blocked`) passes its own."""
    rows = K if isinstance(K, KernelRows) else KernelRows(matrix=np.asarray(K, dtype=np.float64))
    n = y.shape[0]
    costs = np.broadcast_to(np.asarray(C, dtype=np.float64), (n,))
    diag = rows.diagonal()
    alpha = np.zeros(n) if alpha is None else alpha
    grad = -np.ones(n) if grad is None else grad  # Q alpha - 1
    positive = y > 0
    max_iter = max_iter or max(100_000, 100 * n)
    violation = np.inf
    for iteration in range(max_iter):
        below_upper, above_lower = alpha < costs, alpha > 0
        up = np.where(positive, below_upper, above_lower)
        low = np.where(positive, above_lower, below_upper)
        score = -y * grad
        up_scores = np.where(up, score, -np.inf)
        i = int(up_scores.argmax())
        m_value = up_scores[i]
        low_min = np.where(low, score, np.inf).min()
        violation = m_value - low_min
        if not np.isfinite(violation) or violation <= tol:
            return SMOResult(alpha, True, iteration, float(max(violation, 0.0)))
        # second-order choice of j among I_low members that violate with i
        K_i = rows.row(i)
        b = m_value - score
        curvature = diag[i] + diag - 2.0 * K_i
        curvature = np.where(curvature > 0, curvature, TAU)
        gain = np.where(low & (b > 0), -(b * b) / curvature, np.inf)
        j = int(gain.argmin())
        K_j = rows.row(j)
        old_i, old_j = alpha[i], alpha[j]
        _update_pair(alpha, grad, K_i[j], diag, y, costs, i, j)
        # grad_t += Q_ti d_i + Q_tj d_j  with  Q_ti = y_t y_i K_ti
        grad += y * (K_i * (y[i] * (alpha[i] - old_i)) + K_j * (y[j] * (alpha[j] - old_j)))
    return SMOResult(alpha, False, max_iter, float(violation))


def _update_pair(alpha, grad, K_ij, diag, y, costs, i: int, j: int) -> None:
    """Minimize over (alpha_i, alpha_j) with y'alpha fixed, clipped to the box (libsvm)."""
    Ci, Cj = costs[i], costs[j]
    if y[i] != y[j]:
        curvature = diag[i] + diag[j] - 2.0 * K_ij  # Q_ii + Q_jj + 2 Q_ij
        delta = (-grad[i] - grad[j]) / (curvature if curvature > 0 else TAU)
        diff = alpha[i] - alpha[j]
        alpha[i] += delta
        alpha[j] += delta
        if diff > 0:
            if alpha[j] < 0:
                alpha[j], alpha[i] = 0.0, diff
        elif alpha[i] < 0:
            alpha[i], alpha[j] = 0.0, -diff
        if diff > Ci - Cj:
            if alpha[i] > Ci:
                alpha[i], alpha[j] = Ci, Ci - diff
        elif alpha[j] > Cj:
            alpha[j], alpha[i] = Cj, Cj + diff
    else:
        curvature = diag[i] + diag[j] - 2.0 * K_ij  # Q_ii + Q_jj - 2 Q_ij
        delta = (grad[i] - grad[j]) / (curvature if curvature > 0 else TAU)
        total = alpha[i] + alpha[j]
        alpha[i] -= delta
        alpha[j] += delta
        if total > Ci:
            if alpha[i] > Ci:
                alpha[i], alpha[j] = Ci, total - Ci
        elif alpha[j] < 0:
            alpha[j], alpha[i] = 0.0, total
        if total > Cj:
            if alpha[j] > Cj:
                alpha[j], alpha[i] = Cj, total - Cj
        elif alpha[i] < 0:
            alpha[i], alpha[j] = 0.0, total
