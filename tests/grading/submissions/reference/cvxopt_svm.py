"""cvxopt_svm.py: the SVM dual solved with cvxopt's QP solver.

A correct hw3 submission, written as a student would. The solver's options are passed per
call (options=...): cvxopt.solvers.options is global state shared by every caller.
"""

import numpy as np
from cvxopt import matrix, solvers

FREE_TOL = 1e-5  # relative to C: interior-point alphas never sit exactly on a bound


def qp_matrices(K, y, C):
    """P (N, N), q (N,), G (2N, N), h (2N,), A (1, N), b (a float) of the dual as
    min 1/2 v'Pv + q'v s.t. Gv <= h, Av = b."""
    n = y.shape[0]
    P = np.outer(y, y) * K
    q = -np.ones(n)
    G = np.vstack([-np.eye(n), np.eye(n)])
    h = np.concatenate([np.zeros(n), C * np.ones(n)])
    A = y.reshape(1, n).astype(np.float64)
    b = 0.0
    return P, q, G, h, A, b


def solve_dual(K, y, C):
    """alpha (N,) float64: the dual's solution from cvxopt.solvers.qp."""
    P, q, G, h, A, b = qp_matrices(K, y, C)
    solution = solvers.qp(
        matrix(P),
        matrix(q),
        matrix(G),
        matrix(h),
        matrix(A),
        matrix(b),
        options={"show_progress": False},
    )
    return np.array(solution["x"]).ravel()


def svm_bias_predict(K, y, C, K_test):
    """The bias (a float: the mean over the free support vectors of
    y_n - sum_m alpha_m y_m K_nm) and the labels (M,) of K_test (M, N)."""
    alpha = solve_dual(K, y, C)
    coef = alpha * y
    free = (alpha > FREE_TOL * C) & (alpha < C - FREE_TOL * C)
    bias = np.mean(y[free] - K[free] @ coef)
    labels = np.where(K_test @ coef + bias > 0, 1.0, -1.0)
    return float(bias), labels
