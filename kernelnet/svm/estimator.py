"""``kernelnet.KernelSVM``: a scikit-learn-style kernel SVM (the parameters of SVC), with
multiclass one-vs-one as libsvm does it, built on the dual solvers: cvxopt or SMO
(:class:`~kernelnet.svm.dual.BinaryKernelSVM`) and, at MNIST scale, the blocked solver of
:mod:`kernelnet.svm.blocked`.

One-vs-one: for every pair of classes (i < j) a binary SVM is fitted on the samples of
those two classes; a sample gets one vote per pair, for class i when the pair's decision
value (libsvm's orientation: positive for i) is > 0, else for j; the class with most votes
wins, ties going to the lower class index — libsvm's rule, so predictions compare one to
one with scikit-learn's SVC. ``decision_function`` follows SVC's default shapes: (n,) for
two classes (positive for ``classes_[1]``), (n, n_classes) "ovr" scores otherwise (votes
plus a confidence squashed into (-1/3, 1/3), as SVC computes them).

kernelnet never imports scikit-learn here: the base classes of
:mod:`kernelnet.estimator_base` speak its API (clone, Pipeline, cross_val_score and
GridSearchCV work, and ``check_estimator`` passes).

``solver="auto"`` (the default) is working-set decomposition over kernel rows
(:mod:`kernelnet.svm.workingset`) at every size: kernel rows for the working set only, in an
LRU cache of ``cache_size`` MB, shrinking, libsvm's stopping rule and bias. It takes one of
two forms, chosen by measured cost: pairs of up to BATCH_MAX_N (1,024) samples, when there
are at least BATCH_MIN_PAIRS (4) of them, are each one whole working set and are solved
together (:func:`~kernelnet.svm.workingset.fit_batch`: one SMO step of every pair in one
set of vector operations; the kernel rows of every sample computed once and shared by the
pairs when they fit in half the cache); larger pairs, or fewer of them, are solved one at a
time by the outer loop over kernel rows (:func:`~kernelnet.svm.workingset.fit_binary`). No
size sends a problem to cvxopt: measured per fit, cvxopt was slower at every size tried
(60 two-class points: 11.4 ms against 1.6 ms; iris: 32 ms against 11.5 ms; digits: 3.7 s
against 0.1 s). Peak memory: the data (and, for the batched form, a float32 copy of it; for
the other, one pair's float32 copy and one block of ROWS_PER_PRODUCT kernel rows being
computed), the model (every support vector once; one more copy while it is put together),
about 150 bytes per sample and ``cache_size``, per process (tests/svm/test_memory_bound.py).
``solver="cvxopt"``, ``"smo"`` and ``"blocked"`` are the
earlier solvers, kept by their names.

``n_jobs`` spreads the one-vs-one pairs over that many worker processes (1: this process;
-1: every CPU this process may run on). The default, None, chooses for the machine: one
worker per CPU this process may run on (``os.sched_getaffinity``) when at least two pairs
are solved one at a time and the largest has more than BATCH_MAX_N samples (a smaller pair
takes a few ms, less than starting a worker; batched small pairs always run here); this
process alone inside a daemonic process (a Dask worker), which may not fork. Each process
computes kernel rows on one BLAS thread, in chunks of rows spread over its share of the CPUs
by threads of its own (:mod:`kernelnet.svm.row_cache`): a row's values then depend only on
its chunk, so the model is the same for every ``n_jobs`` and every machine load (tested),
and beside other busy processes the fit keeps its share of the machine, where OpenBLAS's own
threads, waiting on each other, lose it (benchmarks/svm_load.py). Each pair is solved alone,
the same way in any process, and the pairs are gathered in their order, so the model is
identical for any ``n_jobs`` (tested); each worker holds its pair's data and its own
``cache_size``, so peak memory grows with the workers.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from numbers import Integral, Real
from typing import Any

import numpy as np

from kernelnet.blas import blas_threads, set_threads
from kernelnet.estimator_base import (
    BaseEstimator,
    ClassifierMixin,
    Interval,
    InvalidParameterError,
    Mapping,
    StrOptions,
    at_least_two_classes,
    check_fitted,
    require_y,
    validate,
)
from kernelnet.kernels import KERNELS, make_kernel
from kernelnet.svm.blocked import ClassBlocks, fit_pair
from kernelnet.svm.dual import FALLBACKS, BinaryKernelSVM, check_cvxopt
from kernelnet.svm.row_cache import ROWS_PER_PRODUCT
from kernelnet.svm.workingset import (
    BATCH_MAX_N,
    BATCH_MIN_PAIRS,
    RowKernel,
    batch_bytes,
    check_cache,
    fit_batch,
    fit_binary,
    row_dtype,
)
from kernelnet.svm.workingset import WORKING_SET as ROWS_WORKING_SET

SOLVERS = ("auto", "cvxopt", "smo", "blocked")
PREDICT_BLOCK_BYTES = 16 * 2**20  # float64 kernel values against the support vectors
_POSITIVE = Interval(Real, 0, None, closed="neither")  # finite and > 0
# cvxopt.solvers.qp's options (kernelnet turns show_progress off unless asked)
QP_OPTIONS = {
    "abstol": [_POSITIVE],
    "reltol": [_POSITIVE],
    "feastol": [_POSITIVE],
    "maxiters": [Interval(Integral, 1, None, closed="left")],
    "refinement": [Interval(Integral, 0, None, closed="left")],
    "show_progress": ["boolean"],
}


class KernelSVM(ClassifierMixin, BaseEstimator):
    """Soft-margin kernel SVM. ``kernel`` is linear, poly, sigmoid or rbf; ``gamma`` a
    number, "scale" (1 / (n_features * X.var())) or "auto" (1 / n_features);
    ``class_weight`` a dict {label: weight} or "balanced"; ``solver`` auto (working-set
    decomposition over kernel rows), cvxopt, smo or blocked; ``tol`` the stopping tolerance
    of every solver but cvxopt (libsvm's KKT gap, 1e-3 by default); ``cache_size`` the MB
    of kernel values kept (kernel rows; the blocked solver's Gram blocks); ``working_set``
    the variables per outer step (auto and blocked); ``shrinking`` libsvm's shrinking (auto);
    ``n_jobs`` worker processes for the pairs (auto; None chooses for the machine, 1 is
    this process, -1 every CPU);
    ``fallback``, ``qp_options`` and ``support_tol`` as for
    :class:`~kernelnet.svm.dual.BinaryKernelSVM` (what to do when cvxopt fails, its
    options, the alpha above which a sample is a support vector, relative to C; auto keeps
    libsvm's rule, alpha > 0)."""

    _parameter_constraints = {
        "kernel": [StrOptions(KERNELS)],
        "C": [_POSITIVE],
        "gamma": [StrOptions(("scale", "auto")), Interval(Real, 0, None, closed="left")],
        "degree": [Interval(Integral, 0, None, closed="left")],
        "coef0": [Interval(Real, None, None, closed="neither")],
        "class_weight": [StrOptions(("balanced",)), Mapping(values=[_POSITIVE]), None],
        "solver": [StrOptions(SOLVERS)],
        "tol": [_POSITIVE],
        "cache_size": [_POSITIVE],
        "fallback": [StrOptions(FALLBACKS)],
        "qp_options": [Mapping(fields=QP_OPTIONS), None],
        "support_tol": [Interval(Real, 0, 0.5, closed="neither")],
        # the blocked solver takes half its variables from each side of the KKT gap
        "working_set": [Interval(Integral, 2, None, closed="left")],
        "shrinking": ["boolean"],
        "n_jobs": [
            Interval(Integral, -1, -1, closed="both"),  # every CPU, as scikit-learn
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
    }

    def __init__(
        self,
        kernel: str = "rbf",
        C: float = 1.0,
        gamma: float | str = "scale",
        degree: int = 3,
        coef0: float = 0.0,
        class_weight: dict | str | None = None,
        solver: str = "auto",
        tol: float = 1e-3,
        cache_size: float = 200.0,
        fallback: str = "smo",
        qp_options: dict | None = None,
        support_tol: float = 1e-5,
        working_set: int = ROWS_WORKING_SET,
        shrinking: bool = True,
        n_jobs: int | None = None,
    ):
        self.kernel = kernel
        self.C = C
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.class_weight = class_weight
        self.solver = solver
        self.tol = tol
        self.cache_size = cache_size
        self.fallback = fallback
        self.qp_options = qp_options
        self.support_tol = support_tol
        self.working_set = working_set
        self.shrinking = shrinking
        self.n_jobs = n_jobs

    def _gamma(self, X: np.ndarray) -> float:
        if self.gamma == "scale":
            variance = float(X.var())
            return 1.0 / (X.shape[1] * variance) if variance > 0 else 1.0
        if self.gamma == "auto":
            return 1.0 / X.shape[1]
        return float(self.gamma)  # a number >= 0: _parameter_constraints

    def _weights(self, y: np.ndarray) -> dict[Any, float]:
        """The C multiplier of each class that has one. A dict naming a label that is not
        in y is refused (a misspelt or mistyped label would otherwise weigh nothing)."""
        if self.class_weight is None:
            return {}
        if isinstance(self.class_weight, str):  # "balanced"
            counts = {c: int((y == c).sum()) for c in self.classes_}
            return {c: len(y) / (len(self.classes_) * n) for c, n in counts.items()}
        known = set(self.classes_.tolist())
        unknown = [label for label in self.class_weight if label not in known]
        if unknown:
            raise InvalidParameterError(
                f"The 'class_weight' parameter of {type(self).__name__} names classes that "
                f"are not in y: {unknown!r}. The classes in y are {self.classes_.tolist()!r}."
            )
        return {label: float(weight) for label, weight in self.class_weight.items()}

    def fit(
        self, X: Any, y: Any = None, progress: Callable[[int, int], None] | None = None
    ) -> KernelSVM:
        """Fit every pair of classes; ``progress(done, pairs)`` is called after each."""
        self._validate_params()
        require_y(self, y)
        X, y = validate(self, X, y, reset=True)
        self.classes_ = np.unique(y)
        at_least_two_classes(self.classes_)
        self.gamma_ = self._gamma(X)
        kernel = make_kernel(self.kernel, gamma=self.gamma_, degree=self.degree, coef0=self.coef0)
        weights = self._weights(y)
        self.pairs_ = list(itertools.combinations(range(self.classes_.size), 2))
        self.estimators_ = []
        groups = [np.flatnonzero(y == c) for c in self.classes_]
        if self.solver == "cvxopt":  # refused before any pair is fitted, not at a big one
            sizes = sorted(len(g) for g in groups)
            check_cvxopt(sizes[-1] + sizes[-2], "use solver='smo' or solver='auto'")
        solver = self._solver(groups)
        if solver == "workingset":
            self._fit_rows(X, groups, kernel, weights, progress)
            return self
        if solver == "blocked":
            self._fit_blocked(X, groups, kernel, weights, progress)
            self._join_support_vectors()
            return self
        for i, j in self.pairs_:
            ci, cj = self.classes_[i], self.classes_[j]
            mask = (y == ci) | (y == cj)
            binary = BinaryKernelSVM(
                kernel,
                C=float(self.C),
                class_weight={ci: weights.get(ci, 1.0), cj: weights.get(cj, 1.0)}
                if weights
                else None,
                solver=self.solver,
                smo_tol=self.tol,
                cache_mb=self.cache_size,
                fallback=self.fallback,
                qp_options=dict(self.qp_options or {}),
                support_tol=self.support_tol,
            )
            self.estimators_.append(binary.fit(X[mask], y[mask]))
            if progress is not None:
                progress(len(self.estimators_), len(self.pairs_))
        self._join_support_vectors()
        return self

    def _solver(self, groups: list[np.ndarray]) -> str:
        """auto: working-set decomposition over kernel rows at every size (measured faster
        than cvxopt per pair down to the toy sets; see the module docstring)."""
        del groups  # the choice does not depend on the sizes
        return "workingset" if self.solver == "auto" else self.solver

    def _workers(self, pairs: int, largest: int) -> int:
        """Worker processes for ``pairs`` pairs solved one at a time, the largest of
        ``largest`` samples (see the module docstring for None)."""
        if self.n_jobs is None:
            small = largest <= BATCH_MAX_N  # a few ms per pair: less than starting a worker
            if pairs < 2 or small or multiprocessing.current_process().daemon:
                return 1
            wanted = usable_cpus()
        else:
            wanted = usable_cpus() if self.n_jobs == -1 else int(self.n_jobs)
        return max(1, min(wanted, pairs))

    def _fit_rows(
        self,
        X: np.ndarray,
        groups: list[np.ndarray],
        kernel,
        weights: dict[Any, float],
        progress: Callable[[int, int], None] | None,
    ) -> None:
        """Every pair by working-set decomposition over kernel rows
        (:mod:`kernelnet.svm.workingset`), in this process or spread over ``n_jobs``."""
        sizes = sorted(len(g) for g in groups)
        try:  # refused before any pair is fitted, not at the largest one
            check_cache(self.cache_size, sizes[-1] + sizes[-2], self.tol)
        except ValueError as exc:
            raise InvalidParameterError(
                f"The 'cache_size' parameter of {type(self).__name__} is too small: {exc}"
            ) from None
        tasks = []
        for i, j in self.pairs_:
            index = np.concatenate([groups[i], groups[j]])
            y = np.where(np.arange(len(index)) < len(groups[i]), -1.0, 1.0)
            ci, cj = self.classes_[i], self.classes_[j]
            costs = np.where(
                y < 0, float(self.C) * weights.get(ci, 1.0), float(self.C) * weights.get(cj, 1.0)
            )
            tasks.append((index, y, costs))
        cache_bytes = self.cache_size * 2**20
        itemsize = np.dtype(row_dtype(self.tol)).itemsize
        largest = sizes[-1] + sizes[-2]
        batched = len(tasks) >= BATCH_MIN_PAIRS and largest <= BATCH_MAX_N
        if batched and batch_bytes([largest], itemsize) <= cache_bytes / 2:
            points = np.ascontiguousarray(X, dtype=row_dtype(self.tol))
            with blas_threads(1):  # as every fit's rows (below): the same on any machine
                self._fit_small(X, points, groups, tasks, kernel, cache_bytes, progress)
            return
        workers = self._workers(len(tasks), largest)
        # Every process computes kernel rows on one BLAS thread, in chunks spread over its
        # share of the CPUs by threads of its own (kernelnet.svm.row_cache.CHUNK_ROWS): a
        # row's values depend on the rows computed with it, never on the thread count, so
        # the model is the same for any n_jobs and any machine load.
        threads = max(1, usable_cpus() // workers)
        settings = (self.tol, self.working_set, self.cache_size, self.shrinking, threads)

        def arguments(task):
            index, y, costs = task
            # the pair's points alone (no float32 copy of the whole set is kept)
            return (kernel, _rows_as(X, index, row_dtype(self.tol)), y, costs, *settings)

        if workers == 1:
            with blas_threads(1):
                results = (_fit_pair_rows(arguments(task)) for task in tasks)
                self._gather(X, tasks, kernel, results, progress)
            return
        # Forked, as the run's worker processes are: a spawned one would import the caller's
        # __main__ again (a script without an `if __name__ == "__main__"` guard would fit
        # itself recursively); OpenBLAS shuts its threads down across a fork.
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=set_threads, initargs=(1,)
        ) as pool:
            results = _in_order(pool, (arguments(task) for task in tasks), 2 * workers)
            self._gather(X, tasks, kernel, results, progress)

    def _fit_small(self, X, points, groups, tasks, kernel, cache_bytes: float, progress) -> None:
        """Pairs small enough to be one working set each, solved in batches of as many as
        the cache holds (:func:`~kernelnet.svm.workingset.fit_batch`), in this process:
        the Python cost of an SMO step is then paid once per batch, not once per pair.
        When the rows of every sample fit in half the cache, they are computed once (the
        samples sorted by class) and shared by the pairs (a class's rows serve all of its
        pairs)."""
        dtype = row_dtype(self.tol)
        itemsize = np.dtype(dtype).itemsize
        shared, problems = None, tasks
        if len(points) ** 2 * itemsize <= cache_bytes / 2:
            order = np.concatenate(groups)  # every sample, class by class
            position = np.empty(len(points), dtype=np.intp)
            position[order] = np.arange(len(points))
            sorted_points = points[order]
            shared = np.empty((len(points), len(points)), dtype=dtype)
            with RowKernel(kernel, sorted_points, dtype, usable_cpus()) as rows:
                for s in range(0, len(points), ROWS_PER_PRODUCT):
                    part = np.arange(s, min(s + ROWS_PER_PRODUCT, len(points)))
                    shared[part] = rows.block(part)
            del rows, sorted_points  # the sorted copy of the points is no longer needed
            cache_bytes -= shared.nbytes
            problems = [(position[index], y, costs) for index, y, costs in tasks]
        batches, current = [], []
        for problem in problems:
            sizes = [len(t[1]) for t in [*current, problem]]
            if current and batch_bytes(sizes, itemsize) > cache_bytes:
                batches.append(current)
                current = []
            current.append(problem)
        batches.append(current)
        results = []
        for batch in batches:
            started = time.perf_counter()
            fits = fit_batch(kernel, points, batch, self.tol, shared, self.shrinking)
            seconds = (time.perf_counter() - started) / len(batch)
            results.extend((fit, seconds) for fit in fits)
        self._gather(X, tasks, kernel, results, progress)

    def _gather(self, X, tasks, kernel, results, progress) -> None:
        """The pairs' models, their support vectors held once: the union of every pair's
        support vectors (training indices), each pair's rows of it read on demand
        (:class:`_PairOfUnion`), never 45 copies of the vectors."""
        solutions = []
        for (index, _, _), (solution, seconds) in zip(tasks, results):
            solutions.append((index[solution.support], solution, seconds))
            if progress is not None:
                progress(len(solutions), len(self.pairs_))
        union_index = np.unique(np.concatenate([support for support, _, _ in solutions]))
        union = X[union_index]  # ordered by _join_support_vectors below, as a loaded model's
        for (i, j), (index, _, _), (support, solution, seconds) in zip(
            self.pairs_, tasks, solutions
        ):
            binary = _PairOfUnion(kernel, C=float(self.C), solver="auto")
            binary.classes_ = np.array([self.classes_[i], self.classes_[j]])
            binary.support_ = support
            binary.union_ = union
            binary.union_rows_ = np.searchsorted(union_index, support)
            binary.dual_coef_ = solution.dual_coef
            binary.bias_ = solution.bias
            # the pair's samples in training order, as BinaryKernelSVM.fit on them gives it
            binary.alpha_ = solution.result.alpha[np.argsort(index, kind="stable")]
            binary.solver_ = solution.result
            binary.n_features_in_ = X.shape[1]
            binary.fit_seconds_ = seconds
            self.estimators_.append(binary)
        self._join_support_vectors()

    def _fit_blocked(
        self,
        X: np.ndarray,
        groups: list[np.ndarray],
        kernel,
        weights: dict[Any, float],
        progress: Callable[[int, int], None] | None,
    ) -> None:
        """Every pair on shared float32 Gram blocks (:mod:`kernelnet.svm.blocked`)."""
        blocks = ClassBlocks(X, groups, kernel, self.cache_size)
        for i, j in self.pairs_:
            ci, cj = self.classes_[i], self.classes_[j]
            started = time.perf_counter()
            solution = fit_pair(
                blocks,
                i,
                j,
                float(self.C) * weights.get(ci, 1.0),
                float(self.C) * weights.get(cj, 1.0),
                self.tol,
                self.working_set,
                self.support_tol,
            )
            binary = BinaryKernelSVM(kernel, C=float(self.C), solver="blocked")
            binary.classes_ = np.array([ci, cj])
            binary.support_ = solution.support
            binary.support_vectors_ = X[solution.support]
            binary.dual_coef_ = solution.dual_coef
            binary.bias_ = solution.bias
            binary.solver_ = solution.result
            binary.n_features_in_ = X.shape[1]
            binary.fit_seconds_ = time.perf_counter() - started
            self.estimators_.append(binary)
            if progress is not None:
                progress(len(self.estimators_), len(self.pairs_))
        self.kernel_blocks_computed_ = blocks.computed

    def _state(self) -> dict:
        return {
            "classes": self.classes_,
            "gamma": self.gamma_,
            "n_features_in": self.n_features_in_,
            "pairs": [
                {
                    "classes": m.classes_,
                    "support_vectors": m.support_vectors_,
                    "dual_coef": m.dual_coef_,
                    "bias": m.bias_,
                }
                for m in self.estimators_
            ],
        }

    def _check_state(self, state) -> dict:
        """A saved :meth:`_state` checked as a whole (``state`` is a
        :class:`kernelnet.model_io.StateView`): sorted distinct classes, one binary SVM per
        pair of them in ``itertools.combinations`` order, each naming its two classes,
        with support vectors (n_support, n_features_in), n_support finite dual
        coefficients and a finite bias; gamma as the ``gamma`` parameter gives it."""
        state.keys("classes", "gamma", "n_features_in", "pairs")
        classes = state.labels("classes", at_least=2)
        n_features = state.integer("n_features_in", low=1)
        gamma = state.number("gamma", low=0)
        if not isinstance(self.gamma, str):
            state.require(
                gamma == float(self.gamma), f"{gamma!r}, not gamma={self.gamma!r}", "gamma"
            )
        elif self.gamma == "auto":
            state.require(gamma == 1.0 / n_features, f"{gamma!r}, not 1 / n_features_in", "gamma")
        # counted before enumerated: a tampered classes array of 10^5 labels is not 5e9 pairs
        saved = state.objects("pairs", classes.size * (classes.size - 1) // 2)
        checked = []
        for (i, j), pair in zip(itertools.combinations(range(classes.size), 2), saved):
            pair.keys("classes", "support_vectors", "dual_coef", "bias")
            two = pair.array("classes", "biufU", (2,))
            expected = classes[[i, j]]
            pair.require(
                np.array_equal(two, expected), f"{two.tolist()}, not {expected.tolist()}", "classes"
            )
            vectors = pair.array("support_vectors", "f", (None, n_features))
            checked.append(
                {
                    "classes": expected,
                    "support_vectors": vectors,
                    "dual_coef": pair.array("dual_coef", "f", (len(vectors),)),
                    "bias": pair.number("bias"),
                }
            )
        return {"classes": classes, "gamma": gamma, "n_features_in": n_features, "pairs": checked}

    def _set_state(self, state: dict) -> None:
        self.classes_ = np.asarray(state["classes"])
        self.gamma_ = float(state["gamma"])
        self.n_features_in_ = int(state["n_features_in"])
        self.pairs_ = list(itertools.combinations(range(self.classes_.size), 2))
        kernel = make_kernel(self.kernel, gamma=self.gamma_, degree=self.degree, coef0=self.coef0)
        self.estimators_ = []
        for pair in state["pairs"]:
            binary = BinaryKernelSVM(kernel, C=float(self.C))
            binary.classes_ = np.asarray(pair["classes"])
            binary.support_vectors_ = np.asarray(pair["support_vectors"])
            binary.dual_coef_ = np.asarray(pair["dual_coef"])
            binary.bias_ = float(pair["bias"])
            binary.n_features_in_ = self.n_features_in_
            self.estimators_.append(binary)
        self._join_support_vectors()

    def _join_support_vectors(self) -> None:
        """The pairs share support vectors: keep their union once, with a (union, n_pairs)
        matrix of coefficients in libsvm's orientation (positive for the pair's first
        class) and the pairs' intercepts, so prediction evaluates the kernel once per
        support vector (as libsvm does) and every pair in one matrix product.

        The union is in order of first appearance through the pairs, a vector equal to an
        earlier one (by its bytes) merged into it, so a fitted model and the same model
        saved and loaded hold the same union. Memory: the rows of a fitted model's pairs
        are read from the union they already share (never a copy per pair), and the bytes
        that identify the vectors are dropped before the union is copied out, so building
        it holds one copy of the support vectors besides the model's."""
        sources = [_pair_source(m) for m in self.estimators_]
        if len({id(vectors) for vectors, _ in sources}) == 1:  # a fitted model's shared union
            union, wheres = _union_of_shared(sources[0][0], [rows for _, rows in sources])
        else:
            union, wheres = _union_of_copies(sources, self.n_features_in_)
        del sources
        coef = np.zeros((len(union), len(self.estimators_)))
        for column, (m, where) in enumerate(zip(self.estimators_, wheres)):
            np.add.at(coef[:, column], where, -m.dual_coef_)
            if isinstance(m, _PairOfUnion):  # re-pointed at the union in this order
                m.union_, m.union_rows_ = union, where
        self._union = (union, coef, -np.array([m.bias_ for m in self.estimators_]))
        self.support_vectors_ = union  # as SVC: every pair's support vectors, once each

    def _pair_values(self, X: np.ndarray) -> np.ndarray:
        """(n, n_pairs) decision values, positive for each pair's first class; the kernel
        values against the support vectors are evaluated PREDICT_BLOCK_BYTES at a time
        (the kernel's temporaries are a few times that), whatever the number of them."""
        union, coef, intercept = self._union
        kernel = make_kernel(self.kernel, gamma=self.gamma_, degree=self.degree, coef0=self.coef0)
        chunk = max(1, PREDICT_BLOCK_BYTES // (8 * max(1, len(union))))
        parts = [kernel(X[s : s + chunk], union) @ coef for s in range(0, len(X), chunk)]
        return np.concatenate(parts) + intercept

    def _votes(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(votes, summed confidence), each (n, n_classes), from the pairs' decision values
        in libsvm's orientation (positive for the pair's first class)."""
        values = self._pair_values(X)
        votes = np.zeros((len(X), self.classes_.size), dtype=np.int64)
        confidence = np.zeros(votes.shape)
        for column, (i, j) in enumerate(self.pairs_):
            positive = values[:, column] > 0
            votes[:, i] += positive
            votes[:, j] += ~positive
            confidence[:, i] += values[:, column]
            confidence[:, j] -= values[:, column]
        return votes, confidence

    def decision_function(self, X: Any) -> np.ndarray:
        check_fitted(self)
        X = validate(self, X, reset=False)
        if self.classes_.size == 2:
            return self.estimators_[0].decision_function(X)
        votes, confidence = self._votes(X)
        return votes + confidence / (3 * (np.abs(confidence) + 1))

    def predict(self, X: Any) -> np.ndarray:
        check_fitted(self)
        X = validate(self, X, reset=False)
        if self.classes_.size == 2:
            return self.classes_[(self.estimators_[0].decision_function(X) > 0).astype(int)]
        votes, _ = self._votes(X)
        return self.classes_[np.argmax(votes, axis=1)]  # first maximum: the lower index


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, as a container or taskset
    limits it), not every CPU of the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _fit_pair_rows(arguments: tuple) -> tuple[Any, float]:
    """One pair by :func:`~kernelnet.svm.workingset.fit_binary` (a module-level function: a
    worker process runs it) and its seconds."""
    started = time.perf_counter()
    solution = fit_binary(*arguments)
    return solution, time.perf_counter() - started


def _in_order(pool: ProcessPoolExecutor, arguments, window: int):
    """``_fit_pair_rows`` over ``arguments`` in ``pool``, results in order, with at most
    ``window`` pairs submitted and not yet taken back: Executor.map would pickle every
    pair's points at once."""
    pending = deque()
    for item in arguments:
        pending.append(pool.submit(_fit_pair_rows, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _pair_source(m: BinaryKernelSVM) -> tuple[np.ndarray, np.ndarray]:
    """(array, rows) holding a pair's support vectors: a fitted pair's shared union and its
    rows of it, or a loaded pair's own vectors."""
    if isinstance(m, _PairOfUnion):
        return m.union_, m.union_rows_
    return m.support_vectors_, np.arange(len(m.support_vectors_))


def _union_of_shared(vectors: np.ndarray, pair_rows: list[np.ndarray]):
    """(union, each pair's rows of it) for pairs whose support vectors are ``pair_rows`` of
    one array: its rows in order of first appearance through the pairs, a row equal to an
    earlier one (by its bytes) merged into it. A row is hashed once however many pairs it
    serves (a fitted 10-class model's rows serve up to nine)."""
    every = np.concatenate(pair_rows) if pair_rows else np.empty(0, dtype=np.intp)
    distinct, first_at = np.unique(every, return_index=True)
    slot_of_row = np.empty(len(vectors), dtype=np.intp)
    position: dict[bytes, int] = {}  # a support vector's bytes -> its row in the union
    keep = []
    for row in distinct[np.argsort(first_at, kind="stable")]:
        slot = position.setdefault(vectors[row].tobytes(), len(position))
        if slot == len(keep):
            keep.append(row)
        slot_of_row[row] = slot
    del position  # before the union is copied out: one copy besides the model's at a time
    union = np.empty((len(keep), vectors.shape[1]), dtype=vectors.dtype)
    # mode="clip" (every row is valid): with mode="raise" take buffers out, a copy
    np.take(vectors, np.asarray(keep, dtype=np.intp), axis=0, out=union, mode="clip")
    return union, [slot_of_row[rows] for rows in pair_rows]


def _union_of_copies(sources: list[tuple[np.ndarray, np.ndarray]], n_features: int):
    """(union, each pair's rows of it) for pairs that hold their own support vectors (a
    loaded model): in order of first appearance, equal vectors (by their bytes) merged."""
    position: dict[bytes, int] = {}
    firsts: list[tuple[int, int]] = []  # (pair, row in its source) of each union row
    wheres = []
    for k, (vectors, rows) in enumerate(sources):
        where = np.empty(len(rows), dtype=np.intp)
        for t, row in enumerate(rows):
            slot = position.setdefault(vectors[row].tobytes(), len(position))
            if slot == len(firsts):
                firsts.append((k, int(row)))
            where[t] = slot
        wheres.append(where)
    del position
    first_pair, first_row = np.array(firsts, dtype=np.intp).reshape(-1, 2).T
    dtype = np.result_type(*[vectors.dtype for vectors, _ in sources]) if sources else float
    union = np.empty((len(firsts), n_features), dtype=dtype)
    for k, (vectors, _) in enumerate(sources):
        at = np.flatnonzero(first_pair == k)
        union[at] = vectors[first_row[at]]
    return union, wheres


class _PairOfUnion(BinaryKernelSVM):
    """A pair's binary SVM whose support vectors are rows ``union_rows_`` of the union the
    estimator holds once (``union_``): ``support_vectors_`` is read on demand (a copy of
    those rows), so a 10-class model holds each support vector once, as libsvm's does,
    not once per pair it serves."""

    @property
    def support_vectors_(self) -> np.ndarray:
        return self.union_[self.union_rows_]


def _rows_as(X: np.ndarray, index: np.ndarray, dtype: type, block: int = 4096) -> np.ndarray:
    """X[index] in ``dtype``, converted a block of rows at a time: never a whole float64
    copy of the pair's points on the way to its float32 one."""
    out = np.empty((len(index), X.shape[1]), dtype=dtype)
    for s in range(0, len(index), block):
        out[s : s + block] = X[index[s : s + block]]
    return out
