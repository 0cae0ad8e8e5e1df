"""Sequential minimal optimization for the SVM dual, as libsvm does it.

Solves  min f(a) = 1/2 a'Qa - sum(a),  Q_ij = y_i y_j K_ij,  0 <= a_i <= C_i,  y'a = 0
two coordinates at a time, with the second-order working-set selection of Fan, Chen and
Lin (JMLR 2005). For an indefinite K (the sigmoid kernel) a non-positive curvature
a_ij = K_ii + K_jj - 2 K_ij is replaced by ``tau`` (Chen, Fan and Lin 2006), which keeps
every step a descent step, so the method converges where an interior-point QP cannot.

Stopping rule: the maximal KKT violation m(a) - M(a) <= ``tol``, where
m(a) = max_{t in I_up} -y_t grad_t and M(a) = min_{t in I_low} -y_t grad_t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TAU = 1e-12


@dataclass(frozen=True)
class SMOResult:
    alpha: np.ndarray  # (n,)
    converged: bool
    iterations: int
    kkt_violation: float  # m(a) - M(a) at the end


def _violation_sets(alpha, y, costs):
    below_upper, above_lower = alpha < costs, alpha > 0
    up = (below_upper & (y > 0)) | (above_lower & (y < 0))
    low = (below_upper & (y < 0)) | (above_lower & (y > 0))
    return up, low


def smo(
    K: np.ndarray,
    y: np.ndarray,
    C: float | np.ndarray,
    tol: float = 1e-8,
    max_iter: int | None = None,
) -> SMOResult:
    """Minimize the SVM dual for Gram matrix ``K`` (n, n) and labels ``y`` in {-1, +1}."""
    n = y.shape[0]
    costs = np.broadcast_to(np.asarray(C, dtype=np.float64), (n,))
    Q = np.outer(y, y) * K
    diag = np.diag(Q).copy()
    alpha = np.zeros(n)
    grad = -np.ones(n)  # Q alpha - 1
    max_iter = max_iter or max(100_000, 100 * n)
    violation = np.inf
    for iteration in range(max_iter):
        up, low = _violation_sets(alpha, y, costs)
        score = -y * grad
        if not up.any() or not low.any():
            return SMOResult(alpha, True, iteration, 0.0)
        i = int(np.flatnonzero(up)[np.argmax(score[up])])
        m_value = score[i]
        violation = m_value - score[low].min()
        if violation <= tol:
            return SMOResult(alpha, True, iteration, float(violation))
        # second-order choice of j among I_low members that violate with i
        candidates = np.flatnonzero(low & (score < m_value))
        b = m_value - score[candidates]
        curvature = diag[i] + diag[candidates] - 2.0 * y[i] * y[candidates] * Q[i, candidates]
        curvature = np.where(curvature > 0, curvature, TAU)
        j = int(candidates[np.argmin(-(b * b) / curvature)])
        old_i, old_j = alpha[i], alpha[j]
        _update_pair(alpha, grad, Q, diag, y, costs, i, j)
        grad += Q[:, i] * (alpha[i] - old_i) + Q[:, j] * (alpha[j] - old_j)
    return SMOResult(alpha, False, max_iter, float(violation))


def _update_pair(alpha, grad, Q, diag, y, costs, i: int, j: int) -> None:
    """Minimize over (alpha_i, alpha_j) with y'alpha fixed, clipped to the box (libsvm)."""
    Ci, Cj = costs[i], costs[j]
    if y[i] != y[j]:
        curvature = diag[i] + diag[j] + 2.0 * Q[i, j]
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
        curvature = diag[i] + diag[j] - 2.0 * Q[i, j]
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
