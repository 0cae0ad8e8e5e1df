"""Kernel SVMs at MNIST scale: one-vs-one over shared float32 Gram blocks, each pair solved
by working-set decomposition.

**Gram blocks.** One-vs-one needs, for the pair of classes (a, b), the Gram matrix of the
samples of a and b: the blocks K[a, a], K[a, b] and K[b, b]. :class:`ClassBlocks` computes
each block once as a float32 matrix product (BLAS) and keeps it in a cache bounded by
``cache_mb``, shared by every pair: K[a, a] serves the nine pairs that contain class a.
float32 halves memory and doubles the product rate; its rounding (about 1e-7 relative)
is far below the solver's stopping tolerance.

**Decomposition.** Each pair's dual, min 1/2 a'Qa - sum(a) subject to 0 <= a <= C and
y'a = 0, is solved as the GPU-era solvers (ThunderSVM) do: an outer loop picks a working
set of up to ``working_set`` variables, the most violating ones on each side of the KKT
condition (half from the top of I_up, half from the bottom of I_low, so the maximal
violating pair is always in it); an inner solve optimizes those variables alone with SMO
on their small Q sub-matrix (second-order pair selection, libsvm's update) until their
own violation drops to a tenth of the global one; then one matrix-vector product brings
the change into the gradient of all n variables. Rows of Q are read from the pair's
Gram matrix, which is symmetric, so a working set's columns are contiguous rows.

**Stopping.** libsvm's rule: the maximal KKT violation m(a) - M(a) <= ``tol`` (1e-3 by
default), so solutions (and predictions) compare one to one with libsvm's.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from kernelnet.footprint import check_memory
from kernelnet.kernels import Kernel
from kernelnet.svm.dual import fit_bias
from kernelnet.svm.smo import smo

log = logging.getLogger(__name__)

WORKING_SET = 256
INNER_FACTOR = 0.1  # the inner solve stops at this fraction of the outer violation
# A pair of N samples holds its float32 Gram matrix (4 N^2 bytes) whole, besides the blocks
# it is assembled from and the kernel's temporaries: tracemalloc's peak in fit_pair was 2.0
# times 4 N^2 for N = 3,000 (1.75 with the block cache at 1 MB).
PAIR_MATRICES = 2.0


def pair_bytes(n: int) -> float:
    """Estimated peak memory of one pair of ``n`` samples in the blocked solver."""
    return PAIR_MATRICES * 4.0 * n * n


class ClassBlocks:
    """float32 Gram blocks between the samples of two classes, computed on first use and
    kept (least recently used first out) within ``cache_mb`` megabytes."""

    def __init__(self, X: np.ndarray, groups: list[np.ndarray], kernel: Kernel, cache_mb: float):
        self.X = np.ascontiguousarray(X, dtype=np.float32)
        self.groups = groups  # the sample indices of each class
        self.kernel = kernel
        self.capacity = int(cache_mb * 2**20)
        self._blocks: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self.computed = 0  # blocks computed (cache misses)

    def block(self, a: int, b: int) -> np.ndarray:
        """K[class a, class b] (a view of the cached K[b, a] transposed when that exists)."""
        for key, transpose in (((a, b), False), ((b, a), True)):
            found = self._blocks.get(key)
            if found is not None:
                self._blocks.move_to_end(key)
                return found.T if transpose else found
        Xa = self.X[self.groups[a]]
        values = self.kernel(Xa) if a == b else self.kernel(Xa, self.X[self.groups[b]])
        values = np.asarray(values, dtype=np.float32)
        self.computed += 1
        self._blocks[(a, b)] = values
        used = sum(v.nbytes for v in self._blocks.values())
        while used > self.capacity and len(self._blocks) > 1:
            _, dropped = self._blocks.popitem(last=False)
            used -= dropped.nbytes
        return values

    def pair(self, a: int, b: int) -> np.ndarray:
        """The Gram matrix of class a's samples followed by class b's, (n_a + n_b) square."""
        na, nb = len(self.groups[a]), len(self.groups[b])
        gram = np.empty((na + nb, na + nb), dtype=np.float32)
        gram[:na, :na] = self.block(a, a)
        gram[:na, na:] = self.block(a, b)
        gram[na:, :na] = gram[:na, na:].T
        gram[na:, na:] = self.block(b, b)
        return gram


@dataclass(frozen=True)
class BlockedResult:
    alpha: np.ndarray  # (n,)
    grad: np.ndarray  # (n,) Q alpha - 1 at the end
    converged: bool
    outer_iterations: int
    inner_iterations: int
    kkt_violation: float


def select_working_set(score: np.ndarray, up: np.ndarray, low: np.ndarray, size: int) -> np.ndarray:
    """Up to ``size`` indices: the largest scores -y*grad in I_up and the smallest in
    I_low, half each (a free variable can be both; it is taken once)."""
    half = max(1, size // 2)
    chosen = []
    for members, sign in ((np.flatnonzero(up), -1.0), (np.flatnonzero(low), 1.0)):
        if members.size > half:
            members = members[np.argpartition(sign * score[members], half - 1)[:half]]
        chosen.append(members)
    return np.unique(np.concatenate(chosen))


def solve_blocked(
    gram: np.ndarray,
    y: np.ndarray,
    costs: np.ndarray,
    tol: float = 1e-3,
    working_set: int = WORKING_SET,
    max_outer: int | None = None,
) -> BlockedResult:
    """Minimize the SVM dual for a symmetric Gram matrix ``gram`` (n, n; float32 is fine),
    labels ``y`` in {-1, +1} and per-sample bounds ``costs``."""
    n = y.shape[0]
    y = y.astype(np.float64)
    costs = np.asarray(costs, dtype=np.float64)
    alpha, grad = np.zeros(n), -np.ones(n)
    positive = y > 0
    max_outer = max_outer or max(1000, 10 * n)
    inner_total, violation = 0, np.inf
    for outer in range(max_outer):
        below_upper, above_lower = alpha < costs, alpha > 0
        up = np.where(positive, below_upper, above_lower)
        low = np.where(positive, above_lower, below_upper)
        score = -y * grad
        top = score[up].max(initial=-np.inf)
        bottom = score[low].min(initial=np.inf)
        violation = top - bottom
        if not np.isfinite(violation) or violation <= tol:
            return BlockedResult(alpha, grad, True, outer, inner_total, float(max(violation, 0)))
        ws = select_working_set(score, up, low, working_set)
        rows = gram[ws]  # (q, n) = columns too: the Gram matrix is symmetric
        sub_alpha = alpha[ws].copy()
        inner = smo(
            rows[:, ws],
            y[ws],
            costs[ws],
            tol=max(tol, INNER_FACTOR * violation),
            max_iter=50 * len(ws),
            alpha=sub_alpha,
            grad=grad[ws].copy(),
        )
        inner_total += inner.iterations
        change = (sub_alpha - alpha[ws]) * y[ws]
        alpha[ws] = sub_alpha
        grad += y * (change.astype(np.float32) @ rows).astype(np.float64)
        # the variables at a bound are exactly there (no drift from rounding)
        np.clip(alpha, 0.0, costs, out=alpha)
    return BlockedResult(alpha, grad, False, max_outer, inner_total, float(violation))


@dataclass(frozen=True)
class PairSolution:
    """One pair's binary SVM in libsvm's form: support vector indices (into the training
    set), their coefficients alpha_i y_i and the bias, with y = +1 for the pair's second
    class (the orientation of :class:`~kernelnet.svm.dual.BinaryKernelSVM`)."""

    support: np.ndarray
    dual_coef: np.ndarray
    bias: float
    result: BlockedResult


def fit_pair(
    blocks: ClassBlocks,
    a: int,
    b: int,
    cost_a: float,
    cost_b: float,
    tol: float,
    working_set: int,
    support_tol: float,
) -> PairSolution:
    index = np.concatenate([blocks.groups[a], blocks.groups[b]])
    check_memory(
        f"the blocked solver on a pair of {len(index):,} samples",
        pair_bytes(len(index)),
        "use solver='smo' (kernel rows on demand) or fewer samples",
    )
    na = len(blocks.groups[a])
    y = np.where(np.arange(len(index)) < na, -1.0, 1.0)
    costs = np.where(y < 0, cost_a, cost_b)
    result = solve_blocked(blocks.pair(a, b), y, costs, tol, working_set)
    if not result.converged:
        log.warning(
            "pair (%d, %d): stopped after %d outer iterations, KKT violation %.3g",
            a, b, result.outer_iterations, result.kkt_violation,
        )  # fmt: skip
    alpha = result.alpha
    f_without_bias = y * (result.grad + 1.0)  # (Q alpha)_i = y_i sum_j alpha_j y_j K_ij
    bias, _ = fit_bias(alpha, y, f_without_bias, costs, support_tol)
    support = np.flatnonzero(alpha > support_tol * costs)
    return PairSolution(index[support], alpha[support] * y[support], bias, result)
