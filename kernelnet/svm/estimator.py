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
GridSearchCV work, and ``check_estimator`` passes). ``solver="auto"`` takes cvxopt for pairs
of up to 1,000 samples, the blocked solver (shared float32 Gram blocks, working-set
decomposition) while the largest pair's Gram matrix fits in ``cache_size``, SMO beyond.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np

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
from kernelnet.svm.blocked import WORKING_SET, ClassBlocks, fit_pair
from kernelnet.svm.dual import AUTO_CVXOPT_MAX_N, FALLBACKS, BinaryKernelSVM, check_cvxopt

SOLVERS = ("auto", "cvxopt", "smo", "blocked")
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
    ``class_weight`` a dict {label: weight} or "balanced"; ``solver`` auto, cvxopt, smo or
    blocked; ``tol`` the SMO and blocked stopping tolerance (libsvm's 1e-3 by default);
    ``cache_size`` the MB of kernel values kept (SMO's rows, the blocked solver's Gram
    blocks); ``working_set`` the blocked solver's variables per outer step; ``fallback``,
    ``qp_options`` and ``support_tol`` as for :class:`~kernelnet.svm.dual.BinaryKernelSVM`
    (what to do when cvxopt fails, its options, the alpha above which a sample is a support
    vector, relative to C)."""

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
        cache_size: float = 500.0,
        fallback: str = "smo",
        qp_options: dict | None = None,
        support_tol: float = 1e-5,
        working_set: int = WORKING_SET,
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
        if self._solver(groups) == "blocked":
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
        """auto: cvxopt up to 1,000 samples per pair (the reference method), the blocked
        solver while the largest pair's float32 Gram matrix fits in ``cache_size`` MB, SMO
        with kernel rows on demand beyond."""
        if self.solver != "auto":
            return self.solver
        sizes = sorted(len(g) for g in groups)
        largest = sizes[-1] + sizes[-2]
        if largest <= AUTO_CVXOPT_MAX_N:
            return "cvxopt"
        return "blocked" if 4 * largest**2 <= self.cache_size * 2**20 else "smo"

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
        support vector (as libsvm does) and every pair in one matrix product."""
        position: dict[bytes, int] = {}  # a support vector's bytes -> its row in the union
        rows = []
        for m in self.estimators_:
            for vector in m.support_vectors_:
                key = vector.tobytes()
                if key not in position:
                    position[key] = len(rows)
                    rows.append(vector)
        union = np.array(rows).reshape(len(rows), self.n_features_in_)
        coef = np.zeros((len(union), len(self.estimators_)))
        for column, m in enumerate(self.estimators_):
            where = [position[vector.tobytes()] for vector in m.support_vectors_]
            np.add.at(coef[:, column], where, -m.dual_coef_)
        self._union = (union, coef, -np.array([m.bias_ for m in self.estimators_]))
        self.support_vectors_ = union  # as SVC: every pair's support vectors, once each

    def _pair_values(self, X: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """(n, n_pairs) decision values, positive for each pair's first class."""
        union, coef, intercept = self._union
        kernel = make_kernel(self.kernel, gamma=self.gamma_, degree=self.degree, coef0=self.coef0)
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
