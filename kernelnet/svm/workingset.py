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
            # libsvm's be_shrunk, the rule the batched solver applies (every variable here is
            # on a side: costs > 0; a free one, on both, always stays)
            leave = ~_kept(np.where(up, score, -np.inf), np.where(low, -score, -np.inf))
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


# solve_batch's shrinking (libsvm's, within the batch): every BATCH_SHRINK_EVERY steps each
# problem sets aside the variables that cannot be in a violating pair, when that leaves at
# most BATCH_SHRINK_BELOW of its variables active (a variable set aside costs as much as an
# active one until the batch is re-packed, and a shrunk problem's convergence is verified
# over all of its variables: with MNIST's ~60% support vectors shrinking only cost). The
# batch is re-packed onto the active variables when the widest problem's set has fallen to
# BATCH_REPACK_BELOW of the packed width or less (a re-pack copies each problem's active
# kernel block). Measured on digits' 45 pairs: 10-20 steps and 0.5-0.7 within 5% of each
# other; checks every 5 steps, or re-packing at 0.8 and above, slower. Shrinking on against
# off: digits ~10% faster, MNIST 2,500 (no re-pack: the widest pair keeps > 60%) ~4% slower.
BATCH_SHRINK_EVERY = 10
BATCH_SHRINK_BELOW = 0.6
BATCH_REPACK_BELOW = 0.6
_PENALTY = np.array([-np.inf, 0.0])  # a side's penalty, indexed by membership of that side
# A step raises beta_i and lowers beta_j by delta; room[side, (i, j)] changes by delta times:
_ROOM_CHANGE = np.array([[-1.0, 1.0], [1.0, -1.0]])
_SIDES = np.arange(2)


def _alpha_from_room(room: np.ndarray, y: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """alpha (..., w) from the rooms (2, ..., w) of beta = y alpha: up to its upper bound
    (room[0]) and down to its lower one (room[1]). For y = +1 alpha is the room down, for
    y = -1 the room up; alpha is C exactly where the other room is 0 (a step that reaches a
    bound leaves that room exactly 0, the other one to rounding)."""
    up_room, down_room = room[0], room[1]
    positive = y > 0
    alpha = np.where(positive, down_room, up_room)
    at_cost = (np.where(positive, up_room, down_room) == 0) & (costs > 0)
    return np.where(at_cost, costs, alpha)


def _exact_scores(K: np.ndarray, y: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """s = y - K (y alpha) over every variable (K (n, n) symmetric, any float dtype), in
    float64 from the support vectors' rows: what the shrunk variables' scores are. Summed
    row by row (a reduction over the first axis adds whole rows in order), not by BLAS,
    whose rounding of a column can depend on n (its vector loop and tail), so that a
    problem padded to another width gets the same scores."""
    support = np.flatnonzero(alpha)
    rows = K[support].astype(np.float64)
    rows *= (alpha[support] * y[support])[:, None]
    return y - rows.sum(axis=0)


def _kept(top: np.ndarray, neg_low: np.ndarray) -> np.ndarray:
    """The variables that stay active, from their scores on I_up (``top``, -inf elsewhere)
    and the negated scores on I_low (``neg_low``, -inf elsewhere), along the last axis:
    libsvm's be_shrunk negated. A variable in I_up only with s < M, or in I_low only with
    s > m, cannot be in a violating pair while the scores stay near; so the kept ones are
    those in I_up with s >= M or in I_low with s <= m (a free variable is both)."""
    m_value = top.max(axis=-1, keepdims=True)
    M_value = -neg_low.max(axis=-1, keepdims=True)
    return (top >= M_value) | (neg_low >= -m_value)


class _LiveBatch:
    """The problems of :func:`solve_batch` still stepping, packed: row r is problem
    ``problem[r]``, column c its variable ``slot[r, c]`` (w: padding, the zero-room column
    of the full state). A column is active while it is on a side (``pens``); a shrunk
    variable is masked in place (both penalties -inf) until a re-pack leaves it out, so a
    problem's steps do not depend on when the batch re-packs. ``K`` holds row r's kernel
    values at index ``kidx[r]`` (the caller's K itself until the first re-pack: dropping
    finished rows copies no kernel values).

    Variables are kept as beta = y alpha, so one step is the same arithmetic for every pair
    of labels: the box is lo <= beta <= hi ([0, C] for y = +1, [-C, 0] for y = -1) and
    sum(beta) = 0; ``room`` (2, p, v) is hi - beta and beta - lo, so I_up = {room[0] > 0}
    and I_low = {room[1] > 0}; the scores are s = -y G = y - K beta. (Sides first: each
    side's (p, v) is contiguous; a strided (p, 2, v) side took 6.2 us against 2.7 us for
    one addition at (45, 365).)"""

    def __init__(self, problem, slot, K, kidx, half_diag, score, room, steps):
        self.problem, self.slot, self.steps = problem, slot, steps
        self.K, self.kidx = K, kidx
        self.half_diag = np.ascontiguousarray(half_diag)
        self.score = np.ascontiguousarray(score)
        self.room = np.ascontiguousarray(room)
        # 0 where the variable is in I_up (pens[0]) or in I_low (pens[1]), -inf elsewhere
        self.pens = _PENALTY.take(self.room > 0)
        p, v = self.score.shape
        self.stopped = np.zeros(p, dtype=bool)  # converged (or out of steps): moves no more
        # flat positions: row r's column t is offsets[r] + t in a (p, v) array, K's row of
        # it kernel_offsets[r] + t, and its room (or penalty) on side s that + side_offsets[s]
        self.offsets = np.arange(p) * v
        self.kernel_offsets = self.kidx * v
        self.side_offsets = (_SIDES * p * v)[None, :, None]

    def subset(self, keep: np.ndarray) -> _LiveBatch:
        """The rows ``keep`` selects (a mask), the kernel values left where they are."""
        subset = _LiveBatch(
            self.problem[keep],
            self.slot[keep],
            self.K,
            self.kidx[keep],
            self.half_diag[keep],
            self.score[keep],
            self.room[:, keep],
            self.steps[keep],
        )
        subset.pens[...] = self.pens[:, keep]  # the masks of shrunk variables
        return subset

    def step(self, n_steps: int, eps: float, max_iter: int) -> None:
        """``n_steps`` SMO steps of every row, each on its own pair, ``steps`` counting
        them; a row stops (``stopped``) before the step at which its gap is <= ``eps`` or
        its steps would exceed ``max_iter``, and moves no more (delta 0, whatever pair it
        would take). Returns early once every row has stopped.

        Per step and row: i the largest score in I_up; j in I_low maximizing b |b| / a
        (b = s_i - s_t, a = K_ii + K_tt - 2 K_it, TAU where that is below TAU: libsvm's
        b^2 / a over b > 0, with TAU where a <= 0; the two differ only for 0 < a < 1e-12);
        beta_i rises and beta_j falls by delta = min(b_j / a_ij, room up of i, room down of
        j), the point libsvm's clipped update reaches; s -= delta (K_i - K_j), in float64.
        Every operation is a (p, v) or (p, 2, 2) vector operation or one ``take``/``put``
        at flat positions (row offset + column): about 45 NumPy calls a step whatever p is
        (measured: ~23 us a step at p = 3, v = 50, against ~110 us at p = 45, v = 365)."""
        score, half_diag, room, pens = self.score, self.half_diag, self.room, self.pens
        offsets, kernel_offsets = self.offsets, self.kernel_offsets
        side_offsets, stopped = self.side_offsets, self.stopped
        up_pen, low_pen = pens
        kernel_rows = self.K.reshape(-1, self.K.shape[-1])
        top, neg_low, gain, work, half_curvature, change = (np.empty(score.shape) for _ in range(6))
        pair = np.empty((len(score), 2), dtype=np.intp)
        # a row is done when its gap is <= its limit: eps, NaN once it has stopped (no
        # comparison with NaN is true)
        limit = np.where(stopped, np.nan, eps)
        stopped_after = np.full(len(score), n_steps)
        budget = max_iter - self.steps  # steps left to each row
        ends = set(budget[budget < n_steps].tolist())  # the steps at which some row's run out
        for taken in range(n_steps):
            np.add(score, up_pen, out=top)  # s on I_up, -inf elsewhere
            np.subtract(low_pen, score, out=neg_low)  # -s on I_low, -inf elsewhere
            i = top.argmax(1)
            at_i = i + offsets
            m_value = top.take(at_i)
            done = m_value + neg_low.take(neg_low.argmax(1) + offsets) <= limit  # m - M
            if taken in ends:
                done |= budget == taken
            if np.count_nonzero(done):
                stopped_after[done] = taken
                stopped |= done
                limit[done] = np.nan
                if stopped.all():
                    break
            # float64 rows (a float32 row cast once): the arithmetic below is float64's
            K_i = kernel_rows.take(i + kernel_offsets, axis=0).astype(np.float64, copy=False)
            np.subtract(half_diag, K_i, out=half_curvature)
            half_curvature += half_diag.take(at_i)[:, None]
            np.maximum(half_curvature, TAU / 2, out=half_curvature)  # a_it / 2
            np.add(neg_low, m_value[:, None], out=gain)  # b_t on I_low, -inf elsewhere
            np.abs(gain, out=work)
            gain *= work
            gain /= half_curvature
            j = gain.argmax(1)
            at_j = j + offsets
            K_j = kernel_rows.take(j + kernel_offsets, axis=0).astype(np.float64, copy=False)
            delta = m_value + neg_low.take(at_j)  # b_j > 0
            delta /= half_curvature.take(at_j)
            delta *= 0.5
            pair[:, 0], pair[:, 1] = at_i, at_j
            at_rooms = pair[:, None, :] + side_offsets
            rooms = room.take(at_rooms)  # (p, side, (i, j))
            np.minimum(delta, np.minimum(rooms[:, 0, 0], rooms[:, 1, 1]), out=delta)
            np.copyto(delta, 0.0, where=stopped)
            rooms += delta[:, None, None] * _ROOM_CHANGE  # a room that is delta becomes 0
            room.put(at_rooms, rooms)
            pens.put(at_rooms, _PENALTY.take(rooms > 0))
            np.subtract(K_i, K_j, out=change)
            change *= delta[:, None]
            score -= change
        self.steps += stopped_after


class _BatchSolve:
    """:func:`solve_batch`'s bookkeeping around :class:`_LiveBatch`: every problem's state
    at full width (the last known scores and rooms, one padding column at w), the shrinking
    checks, the verification of a shrunk problem that has converged on its active set,
    re-packing and the results.

    The batch steps in chunks of BATCH_SHRINK_EVERY steps; a chunk ends early only when
    every row has stopped. So a row that steps through a chunk has taken a multiple of
    BATCH_SHRINK_EVERY steps since it started or last resumed, and its shrinking checks
    fall at the same steps of its own whatever else is in the batch."""

    def __init__(self, K, y, costs, eps: float, max_iter: int, shrinking: bool):
        P, w = y.shape
        self.K = np.ascontiguousarray(K)
        self.y = np.asarray(y, dtype=np.float64)
        self.costs = np.asarray(costs, dtype=np.float64)
        self.eps, self.max_iter, self.shrinking = eps, max_iter, shrinking
        self.n_valid = (self.costs > 0).sum(axis=1)
        padding = np.zeros((P, 1))
        self.half_diag = np.hstack([np.einsum("pii->pi", self.K) / 2.0, padding])
        self.score = np.hstack([self.y, padding])  # at alpha = 0: s = y
        positive = self.y > 0
        self.room = np.zeros((2, P, w + 1))
        self.room[0, :, :w] = np.where(positive, self.costs, 0.0)
        self.room[1, :, :w] = np.where(positive, 0.0, self.costs)
        self.score_out = np.empty((P, w))
        self.steps_out = np.zeros(P, dtype=np.int64)
        self.packed = None  # the buffer re-packed kernel blocks are written to

    def run(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        P, w = self.y.shape
        problems = np.arange(P)
        live = _LiveBatch(
            problems,
            np.broadcast_to(np.arange(w), (P, w)),
            self.K,
            problems,
            self.half_diag[:, :w],
            self.y.copy(),  # stepped in place
            self.room[:, :, :w],
            np.zeros(P, dtype=np.int64),
        )
        while len(live.problem):
            live.step(BATCH_SHRINK_EVERY, self.eps, self.max_iter)
            live = self._settle(live)
        alpha = _alpha_from_room(self.room[:, :, :w], self.y, self.costs)
        return alpha, self.score_out, self.steps_out

    def _store(self, live: _LiveBatch, rows) -> None:
        """The scores and rooms of ``rows`` into their problems' full-width state (a row's
        padding into the padding column, whose rooms it leaves 0)."""
        problem, slot = live.problem[rows, None], live.slot[rows]
        self.score[problem, slot] = live.score[rows]
        self.room[_SIDES[:, None, None], problem, slot] = live.room[:, rows]

    def _verify(self, p: int) -> np.ndarray | None:
        """Problem p, converged on its active set: its exact scores over every variable
        (libsvm's unshrink); None when the gap over all of them is <= eps too, else the
        variables to continue on (shrunk again at once, as libsvm does right after
        unshrinking, if that leaves at most BATCH_SHRINK_BELOW of them)."""
        w = self.y.shape[1]
        room = self.room[:, p, :w]
        alpha = _alpha_from_room(room, self.y[p], self.costs[p])
        score = _exact_scores(self.K[p], self.y[p], alpha)
        self.score[p, :w] = score
        top = np.where(room[0] > 0, score, -np.inf)
        neg_low = np.where(room[1] > 0, -score, -np.inf)
        if top.max() + neg_low.max() <= self.eps:  # m - M
            return None
        kept = np.flatnonzero(_kept(top, neg_low))
        if len(kept) > BATCH_SHRINK_BELOW * self.n_valid[p]:
            return np.flatnonzero(self.costs[p] > 0)
        return kept

    def _settle(self, live: _LiveBatch) -> _LiveBatch:
        """After a chunk: the stopped rows finished (a shrunk one whose gap over every
        variable is > eps continued instead, on the violating set); with shrinking, the
        variables of the rows that stepped through the chunk shrunk (masked); the batch
        re-packed when its widest row's active set has narrowed enough or a row continues,
        else the finished rows dropped."""
        w = self.y.shape[1]
        active = (live.pens[0] == 0) | (live.pens[1] == 0)
        resumed = {}
        finished = np.zeros(len(live.problem), dtype=bool)
        for r in np.flatnonzero(live.stopped):
            self._store(live, [r])
            p = live.problem[r]
            if np.count_nonzero(active[r]) < self.n_valid[p]:  # some variable set aside
                positions = self._verify(p)
                if positions is not None and live.steps[r] < self.max_iter:
                    resumed[r] = positions
                    continue
            finished[r] = True
            self.score_out[p] = self.score[p, :w]
            self.steps_out[p] = live.steps[r]
        stay = ~finished
        if not stay.any():
            return live.subset(stay)
        if self.shrinking:  # the rows still stepping (a stopped one is finished or resumed)
            kept = _kept(live.score + live.pens[0], live.pens[1] - live.score)
            narrows = kept.sum(axis=1) <= BATCH_SHRINK_BELOW * self.n_valid[live.problem]
            shrinks = narrows & ~live.stopped
            np.copyto(live.pens, -np.inf, where=~kept & shrinks[:, None])
            active = np.where(shrinks[:, None], kept, active)
        widths = active.sum(axis=1)
        for r, positions in resumed.items():
            widths[r] = len(positions)
        narrow = int(widths[stay].max()) <= BATCH_REPACK_BELOW * live.score.shape[1]
        if resumed or narrow:
            return self._repack(live, stay, active, resumed)
        return live.subset(stay) if finished.any() else live

    def _repack(self, live: _LiveBatch, stay, active, resumed: dict) -> _LiveBatch:
        """The rows ``stay`` selects, each on its ``active`` columns (a continued row on its
        ``resumed`` positions), with their kernel blocks copied from K (into one buffer,
        reused while it is large enough)."""
        w = self.y.shape[1]
        rows = np.flatnonzero(stay)
        self._store(live, [r for r in rows if r not in resumed])
        positions = [resumed[r] if r in resumed else live.slot[r][active[r]] for r in rows]
        q, width = len(rows), max(len(a) for a in positions)
        if self.packed is None or self.packed.size < q * width * width:
            # zeros once: a padding row or column is never read for a live row, so it may
            # keep what an earlier re-pack wrote there (kernel values: finite) but not
            # whatever a fresh allocation holds
            self.packed = np.zeros(q * width * width, dtype=self.K.dtype)
        K = self.packed[: q * width * width].reshape(q, width, width)
        problem = live.problem[rows]
        slot = np.full((q, width), w)
        for k, (p, columns) in enumerate(zip(problem, positions)):
            n = len(columns)
            slot[k, :n] = columns
            K[k, :n, :n] = self.K[p].take(columns, axis=0).take(columns, axis=1)
        return _LiveBatch(
            problem,
            slot,
            K,
            np.arange(q),
            np.take_along_axis(self.half_diag[problem], slot, axis=1),
            np.take_along_axis(self.score[problem], slot, axis=1),
            np.take_along_axis(self.room[:, problem], slot[None], axis=2),
            live.steps[rows],
        )


def solve_batch(
    K: np.ndarray,
    y: np.ndarray,
    costs: np.ndarray,
    eps: float,
    max_iter: int = 10_000_000,
    shrinking: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SMO on P small problems at once, each whole in one working set: ``K`` (P, w, w)
    kernel values (float32 or float64), ``y`` (P, w) in {-1, +1} and ``costs`` (P, w), a
    problem of fewer than w variables padded with cost 0 (a padded variable is in neither
    I_up nor I_low, so it is never chosen). Each problem takes libsvm's steps, its own pair
    (i, j) per step (second-order selection, :meth:`_LiveBatch.step`), at most ``max_iter``
    of them, and stops at its own gap <= ``eps``; a problem's answer does not depend on the
    others in the batch (every operation is per problem, and a problem's shrinking is
    decided on its own scores). Returns (alpha, score = -y G, steps), (P, w), (P, w), (P,);
    a padded variable's score is unspecified.

    This is what makes small problems fast: the Python cost of a step is paid once for P
    problems (the 45 pairs of a 10-class set), so that cost is kept to about 45 NumPy calls
    a step (:meth:`_LiveBatch.step`) and the vectors short:

    - **Shrinking** (``shrinking``; libsvm's be_shrunk): every BATCH_SHRINK_EVERY steps of
      its own each problem sets aside the variables in I_up only with s < M or in I_low
      only with s > m (masked where they are), and the batch is re-packed onto the active
      variables once that narrows it enough (on digits' pairs, ~30 support vectors of ~360
      samples: a packed width of 178 after 30 steps, 89 after 60, 50 after ~130). The
      re-packed kernel blocks are one more buffer, BATCH_REPACK_BELOW^2 of K's bytes at
      most at the first re-pack (unless continued problems need more).
    - **Unshrinking**: a problem whose gap over its active variables is <= ``eps`` gets its
      exact scores over all of them, from its support vectors in float64
      (:func:`_exact_scores`); it stops if the gap over all is <= ``eps`` too, else it
      continues on the violating set, shrunk again at once, as libsvm does.
    - **Finished problems** stop moving at once and leave the batch at the end of the
      chunk of BATCH_SHRINK_EVERY steps; the kernel values stay where they are until the
      next re-pack.

    Without ``shrinking`` every problem steps on all of its variables to the end.
    """
    return _BatchSolve(K, y, costs, eps, max_iter, shrinking).run()


def batch_bytes(sizes: list[int], itemsize: int) -> int:
    """Bytes of kernel values :func:`fit_batch` holds for problems of these sizes (w the
    largest): the (P, w, w) matrices and, at most as large, the buffer :func:`solve_batch`
    re-packs them into (q <= P live problems on width <= w)."""
    return 2 * len(sizes) * max(sizes) ** 2 * itemsize


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
    shrinking: bool = True,
) -> list[PairFit]:
    """Small binary SVMs, each (index into ``points``, y (n,) in {-1, +1}, costs (n,)),
    solved together by :func:`solve_batch` on their whole kernel matrices: copied from
    ``shared_rows`` (the kernel rows of every point, when the caller's cache holds them:
    a row then serves every pair its class is in; an index of a few runs of consecutive
    points, as a pair of classes sorted by class is, is copied block by block), else
    computed pair by pair (one BLAS product each). The caller bounds
    :func:`batch_bytes` (and ``shared_rows``) by the cache. ``shrinking``: libsvm's, within
    the batch (:func:`solve_batch`)."""
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
    alpha, score, steps = solve_batch(K, Y, costs, tol, shrinking=shrinking)
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
