"""Primal soft-margin SVM trained by gradient descent on the hinge loss.

Objective, with per-sample costs C_i (C_i = C for the usual SVM; different per class for
asymmetric costs):

    E(w, b) = 1/2 ||w||^2 + sum_i C_i max(0, 1 - y_i (w.x_i + b))

A subgradient, using the indicator of margin violators m_i = 1[y_i (w.x_i + b) < 1]:

    grad_w = w - sum_i C_i m_i y_i x_i
    grad_b =   - sum_i C_i m_i y_i

Full-batch descent starts from w = 0, b = 0 and updates both simultaneously with a constant
learning rate, so results are reproducible digit for digit. The stochastic variant splits
each epoch into minibatches B (shuffled by a Generator) and steps on
E_B = |B|/n * 1/2 ||w||^2 + sum_{i in B} C_i hinge_i, whose sum over an epoch is E.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCHEDULES = ("constant", "inverse", "exponential")


def _costs(C: float | np.ndarray, n: int) -> np.ndarray:
    costs = np.broadcast_to(np.asarray(C, dtype=np.float64), (n,))
    if not np.all(np.isfinite(costs)) or np.any(costs <= 0):
        raise ValueError("C must be > 0 and finite for every sample")
    return costs


def hinge_objective(
    w: np.ndarray, b: float, X: np.ndarray, y: np.ndarray, C: float | np.ndarray
) -> float:
    """E(w, b) for ``X`` (n, d), ``y`` (n,) in {-1, +1}, ``C`` scalar or (n,)."""
    costs = _costs(C, X.shape[0])
    slack = np.maximum(0.0, 1.0 - y * (X @ w + b))
    return float(0.5 * (w @ w) + costs @ slack)


def hinge_gradient(
    w: np.ndarray,
    b: float,
    X: np.ndarray,
    y: np.ndarray,
    C: float | np.ndarray,
    weight_scale: float = 1.0,
) -> tuple[np.ndarray, float]:
    """Subgradient ``(grad_w, grad_b)`` of ``weight_scale/2 ||w||^2 + sum C_i hinge_i``."""
    costs = _costs(C, X.shape[0])
    violating = y * (X @ w + b) < 1.0
    coef = costs * violating * y  # C_i m_i y_i
    return weight_scale * w - X.T @ coef, -float(coef.sum())


def predict(w: np.ndarray, b: float, X: np.ndarray) -> np.ndarray:
    """+1 where w.x + b > 0, else -1."""
    return np.where(X @ w + b > 0, 1.0, -1.0)


@dataclass(frozen=True)
class PrimalFit:
    """The trained parameters and their trajectory (row e = after e epochs, row 0 = start)."""

    w: np.ndarray  # (d,)
    b: float
    w_history: np.ndarray  # (epochs + 1, d)
    b_history: np.ndarray  # (epochs + 1,)


def learning_rate_at(lr0: float, schedule: str, decay: float, epoch: int) -> float:
    """Learning rate for 0-based ``epoch``: constant, lr0/(1 + decay*epoch) or lr0*decay**epoch."""
    if schedule == "constant":
        return lr0
    if schedule == "inverse":
        return lr0 / (1.0 + decay * epoch)
    if schedule == "exponential":
        return lr0 * decay**epoch
    raise ValueError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")


def fit_gradient_descent(
    X: np.ndarray,
    y: np.ndarray,
    C: float | np.ndarray,
    learning_rate: float,
    epochs: int,
    *,
    batch_size: int | None = None,
    schedule: str = "constant",
    decay: float = 0.0,
    rng: np.random.Generator | None = None,
) -> PrimalFit:
    """Train from w = 0, b = 0. ``batch_size=None`` is full-batch (the exact rule above);
    otherwise minibatches of that size in an order drawn from ``rng`` each epoch."""
    n, d = X.shape
    costs = _costs(C, n)
    if batch_size is not None and rng is None:
        raise ValueError("stochastic training needs a numpy.random.Generator")
    w, b = np.zeros(d), 0.0
    w_history, b_history = np.zeros((epochs + 1, d)), np.zeros(epochs + 1)
    for epoch in range(epochs):
        lr = learning_rate_at(learning_rate, schedule, decay, epoch)
        if batch_size is None:
            grad_w, grad_b = hinge_gradient(w, b, X, y, costs)
            w, b = w - lr * grad_w, b - lr * grad_b
        else:
            order = rng.permutation(n)
            for start in range(0, n, batch_size):
                batch = order[start : start + batch_size]
                grad_w, grad_b = hinge_gradient(
                    w, b, X[batch], y[batch], costs[batch], weight_scale=batch.size / n
                )
                w, b = w - lr * grad_w, b - lr * grad_b
        w_history[epoch + 1], b_history[epoch + 1] = w, b
    return PrimalFit(w, b, w_history, b_history)
