"""Fit time of kernelnet's dual solvers against scikit-learn's SVC (libsvm), one process.

Data: make_moons(n, noise=0.3, random_state=0); RBF kernel, gamma 0.2, C = 1. libsvm and
SMO both stop at a KKT violation of 1e-3 (libsvm's default); cvxopt uses its default
tolerances. Reports each solver's time as a ratio to SVC measured in the same run, whether
the predictions on the training points are identical, and (unless --quick) the largest n
each solver fits within 60 s, doubling n from 500.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import make_moons
from sklearn.svm import SVC

from kernelnet.kernels import make_kernel
from kernelnet.svm.dual import BinaryKernelSVM

SIZES = (500, 1000, 2000, 4000, 8000)
CVXOPT_MAX = 4000  # cvxopt at 8000 takes minutes; the 60 s search covers it


def fit_seconds(make, X, y):
    started = time.perf_counter()
    model = make().fit(X, y)
    return time.perf_counter() - started, model


def ours(solver: str):
    options = {"abstol": 1e-7, "reltol": 1e-6, "feastol": 1e-7}
    return lambda: BinaryKernelSVM(
        make_kernel("rbf", gamma=0.2), C=1.0, solver=solver, smo_tol=1e-3, qp_options=options
    )


def libsvm():
    return SVC(C=1.0, kernel="rbf", gamma=0.2, tol=1e-3, cache_size=500)


def largest_n_within(make, limit: float = 60.0, cap: int = 64000) -> str:
    n, best = 500, 0
    while n <= cap:
        X, y = make_moons(n, noise=0.3, random_state=0)
        seconds, _ = fit_seconds(make, X, y)
        if seconds > limit:
            break
        best, n = n, n * 2
    return f">= {best}" if n > cap else str(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the 60-second search")
    args = parser.parse_args()
    print(
        f"{'n':>6} {'SVC s':>8} {'SMO s':>8} {'SMO/SVC':>8} {'same':>5} "
        f"{'cvxopt s':>9} {'cvx/SVC':>8} {'same':>5}"
    )
    for n in SIZES:
        X, y = make_moons(n, noise=0.3, random_state=0)
        svc_s, reference = min((fit_seconds(libsvm, X, y) for _ in range(3)), key=lambda t: t[0])
        smo_s, smo_model = min(
            (fit_seconds(ours("smo"), X, y) for _ in range(2)), key=lambda t: t[0]
        )
        expected = reference.predict(X)
        line = (
            f"{n:>6} {svc_s:>8.3f} {smo_s:>8.3f} {smo_s / svc_s:>7.1f}x "
            f"{str(bool(np.array_equal(smo_model.predict(X), expected))):>5}"
        )
        if n <= CVXOPT_MAX:
            cvx_s, cvx_model = fit_seconds(ours("cvxopt"), X, y)
            same = np.array_equal(cvx_model.predict(X), expected)
            line += f" {cvx_s:>9.3f} {cvx_s / svc_s:>7.1f}x {str(bool(same)):>5}"
        print(line, flush=True)
    if not args.quick:
        print("largest n fitted within 60 s (doubling from 500):")
        for name, make in (("SVC", libsvm), ("SMO", ours("smo")), ("cvxopt", ours("cvxopt"))):
            print(f"  {name}: {largest_n_within(make)}", flush=True)


if __name__ == "__main__":
    main()
