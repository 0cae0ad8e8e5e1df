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

``update="coordinate"`` is the other algorithm the assignment warns against mistaking for
this one: w steps first, then b's gradient is taken at the *new* w (block coordinate
descent, one w block and one b block per step):

    w' = w - lr grad_w(w, b);   b' = b - lr grad_b(w', b)

Both start from the same point and take the same first w step; they part from the first b
step on, because grad_b counts the violators of the margin under w' instead of w.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from kernelnet.footprint import check_memory

SCHEDULES = ("constant", "inverse", "exponential")
UPDATES = ("simultaneous", "coordinate")


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
    """The trained parameters and their trajectory (row e = after e epochs, row 0 = start),
    or None for the trajectory when it was not kept (``history=False``)."""

    w: np.ndarray  # (d,)
    b: float
    w_history: np.ndarray | None  # (epochs + 1, d)
    b_history: np.ndarray | None  # (epochs + 1,)


def learning_rate_at(lr0: float, schedule: str, decay: float, epoch: int) -> float:
    """Learning rate for 0-based ``epoch``: constant, lr0/(1 + decay*epoch) or lr0*decay**epoch."""
    if schedule == "constant":
        return lr0
    if schedule == "inverse":
        return lr0 / (1.0 + decay * epoch)
    if schedule == "exponential":
        return lr0 * decay**epoch
    raise ValueError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")


def descent_step(
    w: np.ndarray,
    b: float,
    X: np.ndarray,
    y: np.ndarray,
    costs: np.ndarray,
    lr: float,
    update: str = "simultaneous",
    weight_scale: float = 1.0,
) -> tuple[np.ndarray, float]:
    """One step on ``weight_scale/2 ||w||^2 + sum C_i hinge_i`` over ``X`` (m, d): both
    gradients at (w, b) (``simultaneous``), or b's at the updated w (``coordinate``)."""
    grad_w, grad_b = hinge_gradient(w, b, X, y, costs, weight_scale)
    w = w - lr * grad_w
    if update == "coordinate":
        grad_b = hinge_gradient(w, b, X, y, costs, weight_scale)[1]
    elif update != "simultaneous":
        raise ValueError(f"unknown update {update!r}; valid: {', '.join(UPDATES)}")
    return w, b - lr * grad_b


def descent_path(
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
    update: str = "simultaneous",
) -> Iterator[tuple[np.ndarray, float]]:
    """``(w, b)`` at the start (w = 0, b = 0) and after each epoch: ``epochs + 1`` pairs,
    each ``w`` (d,) a new array. ``batch_size=None`` is full-batch (the exact rule above);
    otherwise minibatches of that size in an order drawn from ``rng`` each epoch.
    ``update`` is ``simultaneous`` (Algorithm 1) or ``coordinate`` (see the module
    docstring), for every step of either.

    A generator, so that whoever follows the trajectory (the objective after every epoch)
    keeps only what it needs: memory O(d), whatever the number of epochs."""
    n, d = X.shape
    costs = _costs(C, n)
    if update not in UPDATES:
        raise ValueError(f"unknown update {update!r}; valid: {', '.join(UPDATES)}")
    if batch_size is not None and rng is None:
        raise ValueError("stochastic training needs a numpy.random.Generator")
    w, b = np.zeros(d), 0.0
    yield w, b
    for epoch in range(epochs):
        lr = learning_rate_at(learning_rate, schedule, decay, epoch)
        if batch_size is None:
            w, b = descent_step(w, b, X, y, costs, lr, update)
        else:
            order = rng.permutation(n)
            for start in range(0, n, batch_size):
                batch = order[start : start + batch_size]
                w, b = descent_step(
                    w, b, X[batch], y[batch], costs[batch], lr, update, batch.size / n
                )
        yield w, b


def history_bytes(epochs: int, d: int) -> int:
    """What ``fit_gradient_descent(history=True)`` keeps: (epochs + 1) x (d + 1) float64."""
    return 8 * (epochs + 1) * (d + 1)


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
    history: bool = True,
    update: str = "simultaneous",
) -> PrimalFit:
    """Train from w = 0, b = 0 (see :func:`descent_path`). ``history`` keeps every epoch's
    (w, b), an (epochs + 1, d) matrix whose size is checked against the memory limit
    first; without it only the final parameters are kept."""
    d = X.shape[1]
    path = descent_path(
        X,
        y,
        C,
        learning_rate,
        epochs,
        batch_size=batch_size,
        schedule=schedule,
        decay=decay,
        rng=rng,
        update=update,
    )
    if not history:
        w, b = deque(path, maxlen=1)[0]  # the last pair: nothing else is kept
        return PrimalFit(w, b, None, None)
    check_memory(
        f"the weight history of {epochs:,} epochs x {d:,} features",
        history_bytes(epochs, d),
        "train with history=False (only the final weights), or fewer epochs",
    )
    w_history, b_history = np.zeros((epochs + 1, d)), np.zeros(epochs + 1)
    for epoch, (w, b) in enumerate(path):
        w_history[epoch], b_history[epoch] = w, b
    return PrimalFit(w, b, w_history, b_history)
