"""Working-set decomposition over kernel rows: the SVM dual at any size, with memory bounded
by the row cache (the method of ThunderSVM, with libsvm's stopping rule and shrinking).

Dual (labels y_i in {-1, +1}, per-sample bounds C_i):

    min f(a) = 1/2 a'Qa - sum(a),   Q_ij = y_i y_j K_ij,   0 <= a_i <= C_i,   y'a = 0

with gradient G = Qa - 1. Scores s_t = -y_t G_t; I_up = {t: a_t < C_t, y_t = +1 or a_t > 0,
y_t = -1}, I_low the mirror image. The KKT gap is m - M, m = max_{I_up} s, M = min_{I_low} s.

**Outer loop.** Each iteration selects a working set B of q variables (q = ``working_set``,
at most the rows the cache holds): the most violating ones, alternately from the top of
I_up and the bottom of I_low, half of B kept from the last iteration (ThunderSVM's rule:
the maximal violating pair is always in it, and rows already in the cache are reused). The
kernel rows K[B, :] missing from the cache are computed (:mod:`kernelnet.svm.row_cache`: one
BLAS product per block of rows, float32); the q x q subproblem on B is solved by SMO
(:func:`solve_subproblem`) to a tenth of the global gap (to ``tol`` itself when B holds
every active variable: a small problem is then one outer iteration); the change
d = a_B(new) - a_B(old) enters the gradient of every variable, G += y * ((d y_B)' K[B, :]).
No n x n matrix is formed.

**Shrinking** (libsvm's): every min(n, 1000) inner steps, a variable at a bound whose score
says it will stay there (bounded, in I_low only with s > m, or in I_up only with s < M) leaves
the active set; new kernel rows are then computed against the active columns only. When the
gap first falls below 10 tol, and again when it falls below tol, the gradient of the shrunk
variables is rebuilt from the support vectors (G_t = y_t sum_j a_j y_j K_tj - 1) and every
variable is active again; the solver stops only when the gap over all variables is <= tol.

**Stopping and bias** as libsvm: m - M <= ``tol`` (1e-3 by default); rho is the mean of
y_t G_t over the free variables (0 < a_t < C_t), else the midpoint of the bounds the bounded
ones set, and the decision function is sum_j a_j y_j K(x_j, x) - rho. Support vectors are
the samples with a_t > 0 (SMO leaves every other alpha exactly 0).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from kernelnet.kernels import Kernel
from kernelnet.svm.row_cache import ROWS_PER_PRODUCT, RowCache, RowKernel, rows_that_fit

log = logging.getLogger(__name__)

TAU = 1e-12  # curvature used where K_ii + K_jj - 2 K_ij <= 0 (libsvm's)
WORKING_SET = 512
INNER_FACTOR = 0.1  # a partial working set is solved to this fraction of the global gap
INNER_STEPS_PER_VARIABLE = 10  # a partial working set's SMO steps at most, per variable
SHRINK_EVERY = 1000  # inner SMO steps between shrinking checks (libsvm: min(n, 1000))
FLOAT64_BELOW_TOL = 1e-5  # a tolerance this tight gets float64 kernel rows
MIN_CACHE_ROWS = 2  # a working set is at least a pair
# Pairs of up to this many samples are solved whole, many at once (solve_batch): measured
# faster than one at a time up to here (digits, MNIST 2,500 and 5,000).
BATCH_MAX_N = 1024
# ... when there are at least this many: a batched step costs about three single steps
# (solve_subproblem) in Python overhead, so two pairs (or one) are solved one at a time.
BATCH_MIN_PAIRS = 4


def row_dtype(tol: float) -> type:
    """float32 rows unless ``tol`` asks for more than float32 rounding can give."""
    return np.float64 if tol < FLOAT64_BELOW_TOL else np.float32


def check_cache(cache_mb: float, n: int, tol: float) -> int:
    """The rows of ``n`` values a cache of ``cache_mb`` MB holds; ValueError (one line) when
    that is fewer than MIN_CACHE_ROWS."""
    itemsize = np.dtype(row_dtype(tol)).itemsize
    rows = rows_that_fit(cache_mb * 2**20, n, itemsize)
    if rows < MIN_CACHE_ROWS:
        need = MIN_CACHE_ROWS * n * itemsize / 2**20
        raise ValueError(
            f"cache_size={cache_mb:g} MB holds {rows} kernel rows of {n:,} samples; the "
            f"working-set solver needs at least {MIN_CACHE_ROWS} ({need:.3g} MB): raise "
            f"cache_size"
        )
    return rows


def solve_subproblem(
    K: np.ndarray,
    y: np.ndarray,
    costs: np.ndarray,
    alpha: np.ndarray,
    score: np.ndarray,
    eps: float,
    max_iter: int,
) -> int:
    """SMO on a working set: ``K`` (q, q) float64 kernel values, ``y`` (q,) in {-1, +1},
    ``costs`` (q,), ``alpha`` (q,) (updated in place) and ``score`` (q,) = -y G, the full
    problem's scores restricted to the set. libsvm's second-order pair selection (i the
    maximal score in I_up, j in I_low maximizing b^2 / a with b = s_i - s_j > 0 and
    a = K_ii + K_jj - 2 K_ij, TAU where that is <= 0) and its clipped two-variable update,
    until the gap on the set is <= ``eps`` or after ``max_iter`` steps; returns the steps.

    The scores are kept as two arrays, ``top`` (s on I_up, -inf elsewhere) and ``bottom``
    (s on I_low, +inf elsewhere): the update s -= y_i d_i K_i + y_j d_j K_j leaves the
    infinities alone, so a step is a dozen vector operations of length q and two scalar
    fix-ups where i and j change sides; the scalars are Python floats.
    """
    q = len(y)
    diag = np.diag(K).copy()
    curvature = diag[:, None] + diag[None, :] - 2.0 * K  # a_it, row i
    np.maximum(curvature, TAU, out=curvature)
    ys, cs, al, dl = y.tolist(), costs.tolist(), alpha.tolist(), diag.tolist()
    positive = y > 0
    up = np.where(positive, alpha < costs, alpha > 0)
    low = np.where(positive, alpha > 0, alpha < costs)
    top = np.where(up, score, -np.inf)
    bottom = np.where(low, score, np.inf)
    gain = np.empty(q)
    change = np.empty(q)
    steps = 0
    while steps < max_iter:
        i = int(top.argmax())
        m_value = float(top[i])
        if m_value - float(bottom.min()) <= eps:
            break
        np.subtract(m_value, bottom, out=gain)  # b_t on I_low, -inf elsewhere
        np.maximum(gain, 0.0, out=gain)
        gain *= gain
        gain /= curvature[i]
        j = int(gain.argmax())
        s_i, s_j = m_value, float(bottom[j])
        yi, yj, Ci, Cj = ys[i], ys[j], cs[i], cs[j]
        old_i, old_j = al[i], al[j]
        Gi, Gj = -yi * s_i, -yj * s_j
        quad = dl[i] + dl[j] - 2.0 * float(K[i, j])
        if quad <= 0:
            quad = TAU
        ai, aj = old_i, old_j
        if yi != yj:
            delta = (-Gi - Gj) / quad
            diff = ai - aj
            ai += delta
            aj += delta
            if diff > 0:
                if aj < 0:
                    aj, ai = 0.0, diff
            elif ai < 0:
                ai, aj = 0.0, -diff
            if diff > Ci - Cj:
                if ai > Ci:
                    ai, aj = Ci, Ci - diff
            elif aj > Cj:
                aj, ai = Cj, Cj + diff
        else:
            delta = (Gi - Gj) / quad
            total = ai + aj
            ai -= delta
            aj += delta
            if total > Ci:
                if ai > Ci:
                    ai, aj = Ci, total - Ci
            elif aj < 0:
                aj, ai = 0.0, total
            if total > Cj:
                if aj > Cj:
                    aj, ai = Cj, total - Cj
            elif ai < 0:
                ai, aj = 0.0, total
        al[i], al[j] = ai, aj
        # s_t -= y_i K_ti d_i + y_j K_tj d_j  (G_t += Q_ti d_i + Q_tj d_j)
        ci, cj = yi * (ai - old_i), yj * (aj - old_j)
        np.multiply(K[i], ci, out=change)
        change += cj * K[j]
        top -= change
        bottom -= change
        s_i -= ci * dl[i] + cj * float(K[i, j])
        s_j -= ci * float(K[i, j]) + cj * dl[j]
        for t, a, yt, Ct, st in ((i, ai, yi, Ci, s_i), (j, aj, yj, Cj, s_j)):
            below, above = a < Ct, a > 0
            in_up, in_low = (below, above) if yt > 0 else (above, below)
            top[t] = st if in_up else -np.inf
            bottom[t] = st if in_low else np.inf
        steps += 1
    alpha[:] = al
    return steps


@dataclass(frozen=True)
class WorkingSetResult:
    """A solved dual: ``alpha`` and ``grad`` = Qa - 1 (n,), libsvm's ``rho`` (the decision
    function is sum_j a_j y_j K(x_j, x) - rho), the final gap, and what it took."""

    alpha: np.ndarray
    grad: np.ndarray
    rho: float
    converged: bool
    iterations: int  # inner SMO steps, all working sets together
    outer_iterations: int
    kkt_violation: float
    objective: float  # 1/2 a'Qa - sum(a)
    rows_computed: int  # cache misses
    cache_hits: int
    cache_peak_bytes: int
    cache_capacity_rows: int
    most_shrunk: int = 0  # the most variables shrunk out at one time
    solver: str = "workingset"

    @property
    def status(self) -> str:
        return "optimal" if self.converged else "max iterations reached"


def _scores(y, grad, alpha, costs):
    score = -y * grad
    positive = y > 0
    below, above = alpha < costs, alpha > 0
    up = np.where(positive, below, above)
    low = np.where(positive, above, below)
    return score, up, low


def _select(score, up, low, keep_mask, need: int) -> np.ndarray:
    """Up to ``need`` positions not in ``keep_mask``: the largest scores in I_up and the
    smallest in I_low, alternately (a free variable, in both, is taken once)."""
    picks = []
    for side, sign in ((up, -1.0), (low, 1.0)):
        members = np.flatnonzero(side & ~keep_mask)
        if members.size > need:
            members = members[np.argpartition(sign * score[members], need - 1)[:need]]
        picks.append(members[np.argsort(sign * score[members], kind="stable")])
    ranks = np.concatenate([2 * np.arange(len(picks[0])), 2 * np.arange(len(picks[1])) + 1])
    merged = np.concatenate(picks)[np.argsort(ranks, kind="stable")]
    _, first = np.unique(merged, return_index=True)
    return merged[np.sort(first)][:need]


def _rebuild_gradient(rk: RowKernel, y, alpha, grad, targets: np.ndarray, cache=None) -> None:
    """grad[targets] = y_t sum_j a_j y_j K_tj - 1 from the support vectors (a_j > 0), in
    products of ROWS_PER_PRODUCT rows. The values K[targets, support] are also the columns
    that the support vectors' cached rows computed on a shrunk problem lack (``targets``
    holds every column shrunk since): they are filled in and those rows kept; the other
    partial rows are dropped."""
    support = np.flatnonzero(alpha > 0)
    coef = (alpha[support] * y[support]).astype(rk.dtype)
    fill = slots = np.empty(0, dtype=np.intp)
    if cache is not None and support.size:
        slots = cache.slot_of[support]
        present = slots >= 0
        partial = np.zeros(len(support), dtype=bool)
        partial[present] = cache.partial[slots[present]]
        fill = np.flatnonzero(partial)
    for s in range(0, len(targets), ROWS_PER_PRODUCT):
        part = targets[s : s + ROWS_PER_PRODUCT]
        if support.size:
            block = rk.block(part, support)
            values = block @ coef
            if fill.size:
                cache.slab[np.ix_(slots[fill], part)] = block[:, fill].T
        else:
            values = np.zeros(len(part))
        grad[part] = y[part] * values - 1.0
    if cache is not None:
        cache.partial[slots[fill]] = False
        cache.drop_partial()


def libsvm_rho(y, grad, alpha, costs) -> float:
    """libsvm's rho: the mean of y_t G_t over free variables, else the midpoint of
    [max lower bound, min upper bound] the bounded variables give."""
    yg = y * grad
    at_upper, at_lower = alpha >= costs, alpha <= 0
    free = ~(at_upper | at_lower)
    if free.any():
        return float(yg[free].mean())
    upper_side = (at_upper & (y < 0)) | (at_lower & (y > 0))  # rho <= y_t G_t
    ub = float(yg[upper_side].min()) if upper_side.any() else np.inf
    lb = float(yg[~upper_side].max()) if (~upper_side).any() else -np.inf
    return (ub + lb) / 2


def solve_rows(
    rk: RowKernel,
    y: np.ndarray,
    costs: np.ndarray,
    tol: float = 1e-3,
    working_set: int = WORKING_SET,
    cache_mb: float = 200.0,
    shrinking: bool = True,
    max_outer: int | None = None,
) -> WorkingSetResult:
    """Minimize the SVM dual for the points of ``rk`` with labels ``y`` (n,) in {-1, +1}
    and bounds ``costs`` (n,), kernel rows cached within ``cache_mb`` MB."""
    n = len(y)
    y = np.asarray(y, dtype=np.float64)
    costs = np.asarray(costs, dtype=np.float64)
    capacity = check_cache(cache_mb, n, tol)
    q = int(min(working_set, capacity, n))
    cache = RowCache(n, capacity, rk.dtype)
    alpha, grad = np.zeros(n), -np.ones(n)
    active = np.arange(n)  # sorted: the variables the solver works on
    is_active = np.ones(n, dtype=bool)
    rebuilt_near_end = False  # libsvm's "unshrink": once, when the gap first nears tol
    last_new = np.empty(0, dtype=np.intp)  # the variables the last working set added
    inner_total, since_shrink, most_shrunk = 0, 0, 0
    max_outer = max_outer or max(10_000, 10 * n)
    gap = np.inf
    settled = False  # the gap above tol is the float32 rounding of the updates

    def reactivate() -> None:
        nonlocal active
        shrunk = np.flatnonzero(~is_active)
        _rebuild_gradient(rk, y, alpha, grad, shrunk, cache)
        active = np.arange(n)
        is_active[:] = True

    outer = 0
    for outer in range(max_outer):  # noqa: B007 (reported after the loop)
        score, up, low = _scores(y[active], grad[active], alpha[active], costs[active])
        m_value = score[up].max(initial=-np.inf)
        M_value = score[low].min(initial=np.inf)
        gap = m_value - M_value
        if not np.isfinite(gap) or gap <= tol:
            if len(active) < n:  # converged on the shrunk problem: check them all
                reactivate()
                rebuilt_near_end = True
                continue
            break
        if shrinking and not rebuilt_near_end and gap <= 10 * tol and len(active) < n:
            rebuilt_near_end = True
            reactivate()
            continue
        if shrinking and since_shrink >= min(n, SHRINK_EVERY):
            since_shrink = 0
            at_bound = (alpha[active] >= costs[active]) | (alpha[active] <= 0)
            leave = at_bound & ((low & ~up & (score > m_value)) | (up & ~low & (score < M_value)))
            if leave.any():
                is_active[active[leave]] = False
                active = active[~leave]
                most_shrunk = max(most_shrunk, n - len(active))
                continue
        if len(active) <= q:  # the whole (active) problem is the working set
            ws = active
            eps, max_inner = tol, max(10_000_000, 100 * len(active))
        else:
            kept = last_new[is_active[last_new]][: q // 2]
            keep_mask = np.zeros(len(active), dtype=bool)
            kept_positions = np.searchsorted(active, kept)
            keep_mask[kept_positions] = True
            new = active[_select(score, up, low, keep_mask, q - len(kept))]
            ws = np.concatenate([kept, new])
            last_new = new
            eps = max(tol, INNER_FACTOR * gap)
            max_inner = INNER_STEPS_PER_VARIABLE * len(ws)
        full = len(active) == n
        columns = None if full else active
        slots = cache.slots(ws, lambda rows, columns=columns: rk.block(rows, columns), columns)
        K_ws = cache.slab[np.ix_(slots, ws)].astype(np.float64)
        y_ws = y[ws]
        alpha_ws = alpha[ws].copy()
        score_ws = -y_ws * grad[ws]
        steps = solve_subproblem(K_ws, y_ws, costs[ws], alpha_ws, score_ws, eps, max_inner)
        inner_total += steps
        since_shrink += steps
        change = (alpha_ws - alpha[ws]) * y_ws
        alpha[ws] = alpha_ws
        moved = np.flatnonzero(change)
        for s in range(0, len(moved), ROWS_PER_PRODUCT):
            part = moved[s : s + ROWS_PER_PRODUCT]
            grad += y * (change[part].astype(rk.dtype) @ cache.slab[slots[part]])
        if steps == 0 and eps == tol:  # the set is optimal to tol: rounding left a gap
            if len(active) < n:
                reactivate()
                continue
            settled = True
            break
    if len(active) < n:  # stopped by max_outer on a shrunk problem
        reactivate()
    score, up, low = _scores(y, grad, alpha, costs)
    final_gap = float(score[up].max(initial=-np.inf) - score[low].min(initial=np.inf))
    converged = final_gap <= tol or settled
    if not converged:
        log.warning(
            "working-set solver stopped after %d outer iterations, KKT gap %.3g > tol %.3g",
            outer + 1, final_gap, tol,
        )  # fmt: skip
    return WorkingSetResult(
        alpha=alpha,
        grad=grad,
        rho=libsvm_rho(y, grad, alpha, costs),
        converged=converged,
        iterations=inner_total,
        outer_iterations=outer + 1,
        kkt_violation=max(final_gap, 0.0),
        objective=float(0.5 * alpha @ (grad - 1.0)),
        rows_computed=cache.misses,
        cache_hits=cache.hits,
        cache_peak_bytes=cache.peak_bytes,
        cache_capacity_rows=cache.capacity,
        most_shrunk=most_shrunk,
    )


@dataclass(frozen=True)
class PairFit:
    """One binary problem's model in BinaryKernelSVM's orientation (y = +1 for the second
    class): support vector indices into the points given, alpha_i y_i, and the bias."""

    support: np.ndarray
    dual_coef: np.ndarray
    bias: float
    result: WorkingSetResult


def fit_binary(
    kernel: Kernel,
    X: np.ndarray,
    y: np.ndarray,
    costs: np.ndarray,
    tol: float,
    working_set: int,
    cache_mb: float,
    shrinking: bool,
    threads: int = 1,
) -> PairFit:
    """Solve one binary SVM on ``X`` (n, d), ``y`` (n,) in {-1, +1}, bounds ``costs``,
    its kernel rows computed on ``threads`` threads (the same values for any number)."""
    with RowKernel(kernel, X, row_dtype(tol), threads) as rk:
        result = solve_rows(rk, y, costs, tol, working_set, cache_mb, shrinking)
    support = np.flatnonzero(result.alpha > 0)
    return PairFit(support, result.alpha[support] * y[support], -result.rho, result)


def solve_batch(
    K: np.ndarray,
    y: np.ndarray,
    costs: np.ndarray,
    eps: float,
    max_iter: int = 10_000_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SMO on P small problems at once, each whole in one working set: ``K`` (P, w, w)
    kernel values (float32 or float64; a row K[p, i] is read per step, a contiguous copy),
    ``y`` (P, w) in {-1, +1} and ``costs`` (P, w), a
    problem of fewer than w variables padded with cost 0 (a padded variable is in neither
    I_up nor I_low, so it is never chosen). Each problem takes the steps
    :func:`solve_subproblem` takes on it, its own pair (i, j) per step, in one set of
    (P, w) vector operations, and stops at its own gap <= ``eps``; a problem's answer does
    not depend on the others in the batch (every operation is per problem). Returns
    (alpha, score = -y G, steps), (P, w), (P, w), (P,).

    This is what makes small problems fast: the Python cost of a step is paid once for P
    problems (the 45 pairs of a 10-class set)."""
    P, w = y.shape
    y = np.asarray(y, dtype=np.float64)
    costs = np.asarray(costs, dtype=np.float64)
    diag = np.einsum("pii->pi", K).astype(np.float64)
    alpha = np.zeros((P, w))
    score_out = np.empty((P, w))
    steps_out = np.zeros(P, dtype=np.int64)
    # at alpha = 0: G = -1, s = y; I_up = {y = +1}, I_low = {y = -1} (padded: neither)
    valid = costs > 0
    top = np.where(valid & (y > 0), y, -np.inf)
    bottom = np.where(valid & (y < 0), y, np.inf)
    live = np.arange(P)  # problems still stepping (rows of K)
    a, ys, cs, dg = alpha, y, costs, diag  # compacted alongside ``live``
    steps = 0
    while len(live) and steps < max_iter:
        rows = np.arange(len(live))
        i = top.argmax(axis=1)
        m_value = top[rows, i]
        done = m_value - bottom.min(axis=1) <= eps
        if done.any():
            finished = np.flatnonzero(done)
            alpha[live[finished]] = a[finished]
            last_top, last_bottom = top[finished], bottom[finished]
            score_out[live[finished]] = np.where(np.isfinite(last_top), last_top, last_bottom)
            steps_out[live[finished]] = steps
            keep = ~done
            live, rows, i, m_value = live[keep], rows[: keep.sum()], i[keep], m_value[keep]
            a, ys, cs, dg = a[keep], ys[keep], cs[keep], dg[keep]
            top, bottom = top[keep], bottom[keep]
            if not len(live):
                break
        K_i = K[live, i].astype(np.float64)  # (p, w)
        curvature = dg + dg[rows, i][:, None] - 2.0 * K_i
        np.maximum(curvature, TAU, out=curvature)
        gain = m_value[:, None] - bottom
        np.maximum(gain, 0.0, out=gain)
        gain *= gain
        gain /= curvature
        j = gain.argmax(axis=1)
        K_j = K[live, j].astype(np.float64)
        yi, yj, Ci, Cj = ys[rows, i], ys[rows, j], cs[rows, i], cs[rows, j]
        old_i, old_j = a[rows, i], a[rows, j]
        s_i, s_j = m_value, bottom[rows, j]
        K_ij = K_i[rows, j]
        quad = dg[rows, i] + dg[rows, j] - 2.0 * K_ij
        quad = np.where(quad > 0, quad, TAU)
        # libsvm's update, as one projection: along the line y_i a_i + y_j a_j = const,
        # a_i moves to old_i + y_i (s_i - s_j) / quad, clipped to the segment inside the
        # box (libsvm's corner checks give that same point), and a_j = old_j - y_i y_j d_i
        opposite = yi != yj
        total = old_i + old_j
        diff = old_i - old_j
        low = np.where(opposite, np.maximum(diff, 0.0), np.maximum(total - Cj, 0.0))
        high = np.where(opposite, np.minimum(Cj + diff, Ci), np.minimum(total, Ci))
        ai = np.clip(old_i + yi * (s_i - s_j) / quad, low, high)
        aj = np.where(opposite, ai - diff, total - ai)
        a[rows, i], a[rows, j] = ai, aj
        ci, cj = yi * (ai - old_i), yj * (aj - old_j)
        change = K_i * ci[:, None]
        change += K_j * cj[:, None]
        top -= change
        bottom -= change
        new_i = s_i - (ci * dg[rows, i] + cj * K_ij)
        new_j = s_j - (ci * K_ij + cj * dg[rows, j])
        for t, at, yt, Ct, st in ((i, ai, yi, Ci, new_i), (j, aj, yj, Cj, new_j)):
            below, above = at < Ct, at > 0
            in_up = np.where(yt > 0, below, above)
            in_low = np.where(yt > 0, above, below)
            top[rows, t] = np.where(in_up, st, -np.inf)
            bottom[rows, t] = np.where(in_low, st, np.inf)
        steps += 1
    if len(live):  # max_iter reached
        alpha[live] = a
        score_out[live] = np.where(np.isfinite(top), top, bottom)
        steps_out[live] = steps
    return alpha, score_out, steps_out


def batch_bytes(sizes: list[int], itemsize: int) -> int:
    """Bytes of the (P, w, w) kernel values :func:`fit_batch` holds for problems of these
    sizes (w the largest)."""
    return len(sizes) * max(sizes) ** 2 * itemsize


def _runs(index: np.ndarray) -> list[tuple[int, int]]:
    """``index`` as (start, stop) runs of consecutive values."""
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(index)]])
    return [(int(index[a]), int(index[b - 1]) + 1) for a, b in zip(starts, stops)]


def fit_batch(
    kernel: Kernel,
    points: np.ndarray,
    problems: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    tol: float,
    shared_rows: np.ndarray | None = None,
) -> list[PairFit]:
    """Small binary SVMs, each (index into ``points``, y (n,) in {-1, +1}, costs (n,)),
    solved together by :func:`solve_batch` on their whole kernel matrices: copied from
    ``shared_rows`` (the kernel rows of every point, when the caller's cache holds them:
    a row then serves every pair its class is in; an index of a few runs of consecutive
    points, as a pair of classes sorted by class is, is copied block by block), else
    computed pair by pair (one BLAS product each). The caller bounds
    :func:`batch_bytes` (and ``shared_rows``) by the cache."""
    dtype = row_dtype(tol)
    w = max(len(y) for _, y, _ in problems)
    P = len(problems)
    K = np.zeros((P, w, w), dtype=dtype)
    Y = np.ones((P, w))
    costs = np.zeros((P, w))
    for p, (index, y, c) in enumerate(problems):
        n = len(y)
        if shared_rows is None:
            K[p, :n, :n] = RowKernel(kernel, points[index], dtype).block(np.arange(n))
        else:
            runs = _runs(index)
            if len(runs) > 8:
                K[p, :n, :n] = shared_rows.take(index, axis=0).take(index, axis=1)
            else:
                row = 0
                for r0, r1 in runs:
                    column = 0
                    for c0, c1 in runs:
                        K[p, row : row + r1 - r0, column : column + c1 - c0] = shared_rows[
                            r0:r1, c0:c1
                        ]
                        column += c1 - c0
                    row += r1 - r0
        Y[p, :n], costs[p, :n] = y, c
    alpha, score, steps = solve_batch(K, Y, costs, tol)
    fits = []
    for p, (_, y, c) in enumerate(problems):
        n = len(y)
        a, grad = alpha[p, :n], -y * score[p, :n]
        s, up, low = _scores(y, grad, a, c)
        gap = float(s[up].max(initial=-np.inf) - s[low].min(initial=np.inf))
        result = WorkingSetResult(
            alpha=a,
            grad=grad,
            rho=libsvm_rho(y, grad, a, c),
            converged=gap <= tol,
            iterations=int(steps[p]),
            outer_iterations=1,
            kkt_violation=max(gap, 0.0),
            objective=float(0.5 * a @ (grad - 1.0)),
            rows_computed=n,
            cache_hits=0,
            cache_peak_bytes=n * n * np.dtype(dtype).itemsize,
            cache_capacity_rows=n,
        )
        support = np.flatnonzero(a > 0)
        fits.append(PairFit(support, a[support] * y[support], -result.rho, result))
    return fits
