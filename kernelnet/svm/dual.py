"""Kernel SVM through the dual quadratic program, solved with cvxopt.

Dual (per-sample costs C_i; C_i = C for the standard SVM):

    maximize   sum_i alpha_i - 1/2 sum_ij alpha_i alpha_j y_i y_j K_ij
    subject to 0 <= alpha_i <= C_i,   sum_i alpha_i y_i = 0

In cvxopt's form ``min 1/2 a'Pa + q'a  s.t.  Ga <= h, Aa = b``: P = (y y') * K, q = -1,
G = [-I; I] (sparse), h = [0; C], A = y', b = 0.

The decision function is f(x) = sum_{i in SV} alpha_i y_i k(x_i, x) + bias. The bias is
the mean of y_i - sum_j alpha_j y_j K_ij over the free support vectors
(tol*C_i < alpha_i < C_i - tol*C_i); with none free, libsvm's midpoint rule.

Footprint. cvxopt's interior point is dense: it holds n x n matrices and factors one each
iteration, O(n^3) time. A cvxopt solve is estimated before the Gram matrix is formed and
refused, with one line, when it needs more memory than the limit
(:mod:`kernelnet.footprint`) or more than ``CVXOPT_MAX_N`` samples (minutes of work;
``KERNELNET_CVXOPT_MAX_N`` raises the bound). An explicit ``solver="cvxopt"`` is never
swapped for another solver behind the user's back (scikit-learn and libsvm do what their
parameters say or raise); ``solver="auto"`` is the choice that reroutes: to SMO beyond
``AUTO_CVXOPT_MAX_N`` samples or beyond cvxopt's bounds (:func:`auto_solver`). The kernel
values against the support vectors (fit's bias, ``decision_function``) are computed in row
blocks of bounded size, never as one (n, n_support) matrix.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import cvxopt
import cvxopt.solvers
import numpy as np

from kernelnet.data.validation import binary_labels, check_n_features, check_X_y
from kernelnet.errors import CellFailed, ConfigError, ResourceError
from kernelnet.footprint import check_memory, human, memory_limit
from kernelnet.kernels import Kernel
from kernelnet.svm.smo import KernelRows, smo

log = logging.getLogger(__name__)

DEFAULT_QP_OPTIONS = {"abstol": 1e-10, "reltol": 1e-10, "feastol": 1e-10, "maxiters": 200}


class SolverError(CellFailed):
    """The QP solver did not produce a usable optimum; ``fields`` record why."""


SOLVERS = ("cvxopt", "smo", "auto")
AUTO_CVXOPT_MAX_N = 1000  # auto: cvxopt (the reference method) up to here, SMO beyond
CVXOPT_INSTEAD = (
    "use solver='smo' (libsvm's method, kernel rows on demand; solver='auto' takes it "
    "beyond 1,000 samples) or fewer samples"
)
FALLBACKS = ("smo", "none")

# What a cvxopt solve of n samples costs, measured on the development machine (cvxopt 1.3.3,
# one BLAS thread, RBF on 2-D points, BinaryKernelSVM.fit in a child process; peak RSS over
# the process before the fit): for n = 1,000 / 2,000 / 3,000 / 4,000 / 6,000, 38 / 132 /
# 219 / 382 / 845 MB, i.e. 4.95 / 4.31 / 3.19 / 3.13 / 3.08 times the 8 n^2 bytes of one
# n x n float64 matrix (the Gram matrix K, cvxopt's copy of P = (y y') * K and the KKT
# matrix it factors; the fixed part counts for more at small n), in 0.38 / 1.9 / 6.0 /
# 13.6 / 77 s for 13-16 iterations: about 2.2e-11 n^3 s per iteration at the larger n.
CVXOPT_MATRICES = 3.2  # n x n float64 matrices alive at the peak
CVXOPT_FIXED_BYTES = 8 * 2**20
CVXOPT_SECONDS_PER_N3 = 2.2e-11  # per iteration
CVXOPT_ITERATIONS = 15  # typical for these problems (the cap, maxiters, is 200)
CVXOPT_MAX_N = 5000  # about 40 s on one core; beyond it a fit takes minutes
CVXOPT_MAX_N_ENV = "KERNELNET_CVXOPT_MAX_N"
# Kernel values against the support vectors are evaluated this many bytes at a time (the
# kernel's own temporaries are about three times the block).
KERNEL_BLOCK_BYTES = 64 * 2**20
KERNEL_TEMPORARIES = 3


def cvxopt_bytes(n: int) -> float:
    """Estimated peak memory of a cvxopt fit on ``n`` samples (the Gram matrix included)."""
    return CVXOPT_MATRICES * 8.0 * n * n + CVXOPT_FIXED_BYTES


def cvxopt_seconds(n: int) -> float:
    """Rough duration of a cvxopt fit on ``n`` samples on one core."""
    return CVXOPT_ITERATIONS * CVXOPT_SECONDS_PER_N3 * float(n) ** 3


def cvxopt_max_n() -> int:
    """The most samples a cvxopt fit takes: ``KERNELNET_CVXOPT_MAX_N`` if set, else
    CVXOPT_MAX_N. Read where it is used, never stored."""
    text = os.environ.get(CVXOPT_MAX_N_ENV, "").strip()
    if not text:
        return CVXOPT_MAX_N
    if not text.isdigit() or not 0 < int(text) < 10**9:
        raise ConfigError(f"{CVXOPT_MAX_N_ENV}={text!r}: expected a number of samples")
    return int(text)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.0f} hours"


def check_cvxopt(n: int, instead: str, where: str = "") -> None:
    """Refuse a cvxopt solve of ``n`` samples that needs more memory than the limit or
    more samples than :func:`cvxopt_max_n` (ResourceError, one line); ``instead`` says
    what to do ("use solver='smo'"), ``where`` prefixes the line ("kernel-table cell x: ")."""
    check_memory(f"{where}solver cvxopt on {n:,} samples", cvxopt_bytes(n), instead)
    bound = cvxopt_max_n()
    if n > bound:
        raise ResourceError(
            f"{where}solver cvxopt on {n:,} samples would take roughly "
            f"{_duration(cvxopt_seconds(n))} and {human(cvxopt_bytes(n))} (a dense interior "
            f"point, O(n^3) per iteration; the bound is {bound:,} samples); {instead}, or "
            f"raise the bound ({CVXOPT_MAX_N_ENV}=...)"
        )


def auto_solver(n: int) -> str:
    """``solver="auto"``: cvxopt (the reference method) up to AUTO_CVXOPT_MAX_N samples
    while within its bounds (samples, memory), SMO otherwise: never a refusal."""
    fits = n <= min(AUTO_CVXOPT_MAX_N, cvxopt_max_n()) and cvxopt_bytes(n) <= memory_limit()
    return "cvxopt" if fits else "smo"


def kernel_block_rows(m: int) -> int:
    """Rows of a kernel block against ``m`` points evaluated at once."""
    return max(1, KERNEL_BLOCK_BYTES // (8 * max(1, m)))


def kernel_dot_bytes(n: int, m: int) -> float:
    """Estimated peak memory of :func:`kernel_dot` for (n, d) against (m, d) points."""
    return 8.0 * (KERNEL_TEMPORARIES * min(n, kernel_block_rows(m)) * m + 2 * n)


def kernel_dot(kernel: Kernel, X: np.ndarray, Y: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """``kernel(X, Y) @ coef`` (n,) for ``X`` (n, d), ``Y`` (m, d), ``coef`` (m,), evaluated
    in row blocks of at most KERNEL_BLOCK_BYTES (one block, the plain product, when the
    whole matrix fits in one)."""
    rows = kernel_block_rows(len(Y))
    if rows >= len(X):
        return kernel(X, Y) @ coef
    return np.concatenate([kernel(X[s : s + rows], Y) @ coef for s in range(0, len(X), rows)])


@dataclass(frozen=True)
class QPResult:
    alpha: np.ndarray  # (n,)
    status: str  # "optimal", or what went wrong
    iterations: int
    primal_infeasibility: float  # cvxopt's; for SMO |y.alpha|
    dual_infeasibility: float  # cvxopt's; for SMO the final KKT violation
    gap: float
    ridge: float = 0.0  # multiple of I added to P (0 unless the first attempt failed)
    solver: str = "cvxopt"


def _qp_matrices(K: np.ndarray, y: np.ndarray, costs: np.ndarray, ridge: float):
    n = y.shape[0]
    P = np.outer(y, y) * K
    if ridge:
        P[np.diag_indices(n)] += ridge
    rows = np.arange(2 * n)
    cols = np.concatenate([np.arange(n), np.arange(n)])
    signs = np.concatenate([-np.ones(n), np.ones(n)])
    G = cvxopt.spmatrix(signs.tolist(), rows.tolist(), cols.tolist(), (2 * n, n))
    h = np.concatenate([np.zeros(n), costs])
    return (
        cvxopt.matrix(P),
        cvxopt.matrix(-np.ones(n)),
        G,
        cvxopt.matrix(h),
        cvxopt.matrix(y.reshape(1, -1)),
        cvxopt.matrix(0.0),
    )


def _cvxopt_once(K, y, costs, ridge: float, options: dict[str, Any]) -> QPResult:
    try:
        solution = cvxopt.solvers.qp(*_qp_matrices(K, y, costs, ridge), options=options)
    except (ArithmeticError, ValueError) as exc:
        return QPResult(np.full(y.shape, np.nan), f"error: {exc}", 0, np.inf, np.inf, np.inf, ridge)

    def number(key: str) -> float:
        return np.inf if solution[key] is None else float(solution[key])

    return QPResult(
        alpha=np.asarray(solution["x"]).ravel(),
        status=solution["status"],
        iterations=int(solution["iterations"]),
        primal_infeasibility=number("primal infeasibility"),
        dual_infeasibility=number("dual infeasibility"),
        gap=number("gap"),
        ridge=ridge,
    )


def _smo(K, y, costs, tol: float) -> QPResult:
    result = smo(K, y, costs, tol=tol)
    status = "optimal" if result.converged else "max iterations reached"
    return QPResult(
        result.alpha,
        status,
        result.iterations,
        abs(float(y @ result.alpha)),
        result.kkt_violation,
        np.nan,
        solver="smo",
    )


def _feasibility_problem(alpha: np.ndarray, y: np.ndarray, costs: np.ndarray, tol: float) -> str:
    """Empty if alpha satisfies the box and the equality constraint within ``tol``."""
    if not np.all(np.isfinite(alpha)):
        return "non-finite alpha"
    scale = max(1.0, float(costs.max()))
    low = float((alpha + tol * scale).min())
    high = float((costs + tol * scale - alpha).min())
    if low < 0 or high < 0:
        return f"alpha outside [0, C] by {max(-low, -high):.3g}"
    balance = abs(float(y @ alpha))
    if balance > tol * scale:
        return f"|y.alpha| = {balance:.3g} exceeds {tol * scale:.3g}"
    return ""


def _problem(result: QPResult, y, costs, tol: float) -> str:
    if result.status != "optimal":
        return f"status {result.status!r}"
    return _feasibility_problem(result.alpha, y, costs, tol)


def solve_dual(
    K: np.ndarray | KernelRows,
    y: np.ndarray,
    C: float | np.ndarray,
    *,
    solver: str = "cvxopt",
    fallback: str = "smo",
    options: dict[str, Any] | None = None,
    smo_tol: float = 1e-9,
    retry_ridge: float = 1e-8,
    feasibility_tol: float = 1e-6,
) -> QPResult:
    """Solve the SVM dual for Gram matrix ``K`` (n, n), labels ``y`` (n,) in {-1, +1}.

    With cvxopt, a status other than 'optimal' (it returns 'unknown' after e.g. a
    singular KKT matrix, typical of an indefinite K) is retried once with
    ``retry_ridge * I`` added to P; if that fails too, ``fallback="smo"`` solves with SMO,
    which handles indefinite kernels as libsvm does. Any answer that is not optimal or
    violates the constraints beyond ``feasibility_tol`` raises :class:`SolverError`;
    alphas from a failed solve are never returned.
    """
    y = np.asarray(y, dtype=np.float64)
    costs = np.broadcast_to(np.asarray(C, dtype=np.float64), y.shape).copy()
    if solver not in SOLVERS[:2]:
        raise ValueError(f"unknown solver {solver!r}; valid: {', '.join(SOLVERS)}")
    attempts: list[tuple[QPResult, str]] = []
    if solver == "cvxopt":
        check_cvxopt(len(y), CVXOPT_INSTEAD)
        K = np.asarray(K, dtype=np.float64)
        opts = {"show_progress": False, **DEFAULT_QP_OPTIONS, **(options or {})}
        for ridge in (0.0, retry_ridge):
            result = _cvxopt_once(K, y, costs, ridge, opts)
            problem = _problem(result, y, costs, feasibility_tol)
            if not problem:
                if ridge:
                    log.warning("QP solved only after adding %.1e * I to P", ridge)
                return result
            attempts.append((result, problem))
            log.info("cvxopt attempt with ridge %.1e failed: %s", ridge, problem)
    if solver == "smo" or fallback == "smo":
        result = _smo(K, y, costs, smo_tol)
        problem = _problem(result, y, costs, feasibility_tol)
        if not problem:
            if attempts:
                log.warning("cvxopt failed (%s); solved with SMO instead", attempts[-1][1])
                return dataclasses.replace(
                    result, status="optimal (smo fallback)", iterations=result.iterations
                )
            return result
        attempts.append((result, problem))
    last, problem = attempts[-1]
    raise SolverError(
        f"{last.solver} failed: {problem} after {last.iterations} iterations "
        f"(primal infeasibility {last.primal_infeasibility:.3g}, "
        f"dual infeasibility {last.dual_infeasibility:.3g})"
        + (f"; retried with ridge {retry_ridge:g}" if solver == "cvxopt" else ""),
        fields={
            "solver_status": last.status if last.status != "optimal" else f"infeasible: {problem}",
            "iterations": sum(a.iterations for a, _ in attempts),
        },
    )


def fit_bias(
    alpha: np.ndarray,
    y: np.ndarray,
    f_without_bias: np.ndarray,
    C: float | np.ndarray,
    tol: float = 1e-5,
) -> tuple[float, int]:
    """Bias from the free support vectors, else libsvm's midpoint rule.

    ``f_without_bias`` is s_i = sum_j alpha_j y_j K_ij (n,). Returns ``(bias, n_free)``.
    ``tol`` is relative to each C_i: cvxopt's interior-point alphas never sit exactly on a
    bound, so an absolute 1e-8 test would count bounded vectors as free and give a wrong
    bias.
    """
    costs = np.broadcast_to(np.asarray(C, dtype=np.float64), y.shape)
    margin_gap = y - f_without_bias  # y_i - sum_j alpha_j y_j K_ij
    at_lower = alpha <= tol * costs
    at_upper = alpha >= costs - tol * costs
    free = ~(at_lower | at_upper)
    if free.any():
        return float(margin_gap[free].mean()), int(free.sum())
    # libsvm: the bias must keep every bounded alpha optimal; take the middle of the range.
    # alpha_i = C_i means y_i f(x_i) <= 1, alpha_i = 0 means y_i f(x_i) >= 1; either way a
    # one-sided bound on the bias at margin_gap_i, whose side depends on y_i.
    bias_at_least = (at_upper & (y < 0)) | (at_lower & (y > 0))
    low = margin_gap[bias_at_least].max() if bias_at_least.any() else -np.inf
    high = margin_gap[~bias_at_least].min() if (~bias_at_least).any() else np.inf
    if not np.isfinite(low):
        return float(high), 0
    if not np.isfinite(high):
        return float(low), 0
    return float((low + high) / 2), 0


@dataclass
class BinaryKernelSVM:
    """Soft-margin kernel SVM fitted through the dual QP.

    Constructor stores hyperparameters only; learned attributes end in ``_``.
    ``class_weight`` multiplies C per class (keys are the original labels).
    """

    kernel: Kernel
    C: float = 1.0
    class_weight: dict[Any, float] | None = None
    solver: str = "cvxopt"
    fallback: str = "smo"
    qp_options: dict[str, Any] = field(default_factory=dict)
    smo_tol: float = 1e-9
    support_tol: float = 1e-5
    cache_mb: float = 500.0  # SMO kernel-row cache

    def __post_init__(self) -> None:
        if not (np.isfinite(self.C) and self.C > 0):
            raise ValueError(f"C must be > 0 and finite (got {self.C})")
        for label, weight in (self.class_weight or {}).items():
            if not (np.isfinite(weight) and weight > 0):
                raise ValueError(f"class_weight[{label!r}] must be > 0 and finite (got {weight})")

    def sample_costs(self, y_original: np.ndarray) -> np.ndarray:
        weights = self.class_weight or {}
        factor = np.array([weights.get(v, 1.0) for v in y_original.tolist()], dtype=np.float64)
        return self.C * factor

    def fit(self, X: Any, y: Any) -> BinaryKernelSVM:
        X, y_original = check_X_y(X, y)
        y_pm, self.label_mapping_ = binary_labels(y_original)
        self.classes_ = np.unique(y_original)
        costs = self.sample_costs(y_original)
        started = time.perf_counter()
        solver = auto_solver(len(X)) if self.solver == "auto" else self.solver
        if self.solver == "auto" and solver == "smo" and len(X) <= AUTO_CVXOPT_MAX_N:
            log.info("solver auto: SMO for %d samples (over cvxopt's bounds)", len(X))
        if solver == "smo":
            # rows on demand: never form the n x n Gram matrix
            gram: np.ndarray | KernelRows = KernelRows(self.kernel, X, cache_mb=self.cache_mb)
        else:
            check_cvxopt(len(X), CVXOPT_INSTEAD)  # before the n x n Gram matrix is formed
            gram = self.kernel(X)
        result = solve_dual(
            gram,
            y_pm,
            costs,
            solver=solver,
            fallback=self.fallback,
            options=self.qp_options,
            smo_tol=self.smo_tol,
        )
        alpha = result.alpha
        support = np.flatnonzero(alpha > self.support_tol * costs)
        coef = alpha[support] * y_pm[support]
        if isinstance(gram, np.ndarray):
            f_without_bias = gram[:, support] @ coef
        else:
            f_without_bias = kernel_dot(self.kernel, X, X[support], coef)
        self.bias_, self.n_free_ = fit_bias(alpha, y_pm, f_without_bias, costs, self.support_tol)
        self.fit_seconds_ = time.perf_counter() - started
        self.support_ = support
        self.alpha_ = alpha
        self.dual_coef_ = alpha[self.support_] * y_pm[self.support_]
        self.support_vectors_ = X[self.support_]
        self.solver_ = result
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        X = check_n_features(X, self.n_features_in_)
        return kernel_dot(self.kernel, X, self.support_vectors_, self.dual_coef_) + self.bias_

    def predict(self, X: Any) -> np.ndarray:
        """Original labels: the +1 class where f(x) > 0."""
        return np.where(self.decision_function(X) > 0, self.classes_[1], self.classes_[0])
