"""k-nearest-neighbour classification, vectorized over queries and k.

Distances: Euclidean (via ||x||^2 - 2 x.z + ||z||^2, clipped at 0) or cosine
(1 - x.z / (||x|| ||z||); a zero vector is at distance 1 from everything).

Tie-breaking, documented and deterministic:
- equal distances: the training point with the lower index is nearer (a stable sort);
- a tied vote: the class whose nearest member among the k neighbours is nearest wins —
  i.e. the tie goes to the class of the closest neighbour among the tied classes.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from kernelnet.estimator_base import (
    BaseEstimator,
    ClassifierMixin,
    Interval,
    StrOptions,
    check_fitted,
    require_y,
    validate,
)

METRICS = ("euclidean", "cosine")


def distances(X_query: np.ndarray, X_train: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """(n_query, n_train) distance matrix."""
    if metric == "euclidean":
        sq = (
            np.einsum("ij,ij->i", X_query, X_query)[:, None]
            - 2.0 * X_query @ X_train.T
            + np.einsum("ij,ij->i", X_train, X_train)[None, :]
        )
        return np.sqrt(np.maximum(sq, 0.0))
    if metric == "cosine":
        norm_q = np.linalg.norm(X_query, axis=1)
        norm_t = np.linalg.norm(X_train, axis=1)
        denominator = np.outer(norm_q, norm_t)
        similarity = np.divide(
            X_query @ X_train.T,
            denominator,
            out=np.zeros((len(X_query), len(X_train))),
            where=denominator > 0,
        )
        return 1.0 - similarity
    raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")


def neighbour_order(D: np.ndarray, k_max: int) -> np.ndarray:
    """Indices of the k_max nearest training points per query, nearest first; equal
    distances keep training order (what a stable sort of each row gives).

    The k_max smallest are found by partition (linear time), then ordered by (distance,
    index); a row where the k_max-th distance is shared by points beyond the first k_max
    (a tie across the cut, where partition picks arbitrarily) is stably sorted whole."""
    n_train = D.shape[1]
    if k_max >= n_train:
        return np.argsort(D, axis=1, kind="stable")[:, :k_max]
    nearest = np.argpartition(D, k_max - 1, axis=1)[:, :k_max]
    near_distances = np.take_along_axis(D, nearest, axis=1)
    cut = near_distances.max(axis=1, keepdims=True)
    order = np.lexsort((nearest, near_distances), axis=1)  # by distance, then index
    result = np.take_along_axis(nearest, order, axis=1)
    crossing = np.flatnonzero((D <= cut).sum(axis=1) > k_max)
    if crossing.size:
        result[crossing] = np.argsort(D[crossing], axis=1, kind="stable")[:, :k_max]
    return result


def vote(neighbour_labels: np.ndarray, k: int, n_classes: int) -> np.ndarray:
    """Majority label among the first k neighbours (rows nearest first); ties go to the
    tied class whose nearest member comes first."""
    first_k = neighbour_labels[:, :k]
    counts = np.zeros((len(first_k), n_classes), dtype=np.int64)
    np.add.at(counts, (np.arange(len(first_k))[:, None], first_k), 1)
    best = counts.max(axis=1, keepdims=True)
    tied = counts == best  # (n, classes)
    # rank of each neighbour position whose label is among the tied classes
    is_candidate = np.take_along_axis(tied, first_k, axis=1)
    position = np.argmax(is_candidate, axis=1)  # first (nearest) candidate neighbour
    return first_k[np.arange(len(first_k)), position]


def knn_predict_all_k(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_query: np.ndarray,
    ks: list[int],
    metric: str = "euclidean",
) -> dict[int, np.ndarray]:
    """Predictions for every k in ``ks`` from one distance computation. Labels must be
    integers 0..C-1. Queries go in chunks so the distance matrix stays near 100 MB."""
    chunk = max(1, 12_500_000 // max(1, len(X_train)))
    order = np.concatenate(
        [
            neighbour_order(distances(X_query[s : s + chunk], X_train, metric), max(ks))
            for s in range(0, len(X_query), chunk)
        ]
    )
    labels = y_train[order]
    n_classes = int(y_train.max()) + 1
    return {k: vote(labels, k, n_classes) for k in ks}


class KNeighborsClassifier(ClassifierMixin, BaseEstimator):
    """k-nearest-neighbour classifier (scikit-learn's estimator API) on the functions above:
    Euclidean or cosine distance, equal distances in training order, a tied vote to the
    class of the nearest tied neighbour."""

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(METRICS)],
    }

    def __init__(self, n_neighbors: int = 5, metric: str = "euclidean"):
        self.n_neighbors = n_neighbors
        self.metric = metric

    def fit(self, X, y=None):
        self._validate_params()
        require_y(self, y)
        X, y = validate(self, X, y, reset=True)
        self.classes_, self._codes = np.unique(y, return_inverse=True)
        self._X = X
        return self

    def _state(self) -> dict:
        return {
            "X": self._X,
            "codes": self._codes,
            "classes": self.classes_,
            "n_features_in": self.n_features_in_,
        }

    def _check_state(self, state) -> dict:
        """A saved :meth:`_state` checked as a whole (``state`` is a
        :class:`kernelnet.model_io.StateView`): finite training points (n, n_features_in)
        with at least ``n_neighbors`` of them, one integer code per point, the codes
        exactly 0..n_classes-1 (each class has a point), sorted distinct classes."""
        state.keys("X", "codes", "classes", "n_features_in")
        n_features = state.integer("n_features_in", low=1)
        X = state.array("X", "f", (None, n_features))
        state.require(
            len(X) >= self.n_neighbors,
            f"{len(X)} training points, fewer than n_neighbors={self.n_neighbors}",
            "X",
        )
        codes = state.array("codes", "iu", (len(X),))
        classes = state.labels("classes", at_least=1)
        state.require(
            np.array_equal(np.unique(codes), np.arange(classes.size)),
            f"expected the codes 0..{classes.size - 1} of the {classes.size} classes",
            "codes",
        )
        return {
            "X": X,
            "codes": codes.astype(np.intp),
            "classes": classes,
            "n_features_in": n_features,
        }

    def _set_state(self, state: dict) -> None:
        self._X, self._codes = np.asarray(state["X"]), np.asarray(state["codes"])
        self.classes_ = np.asarray(state["classes"])
        self.n_features_in_ = int(state["n_features_in"])

    def predict(self, X):
        check_fitted(self)
        X = validate(self, X, reset=False)
        k = int(self.n_neighbors)
        if k > len(self._X):
            raise ValueError(
                f"Expected n_neighbors <= n_samples_fit, but n_neighbors = {k}, "
                f"n_samples_fit = {len(self._X)}"
            )
        codes = knn_predict_all_k(self._X, self._codes, X, [k], self.metric)[k]
        return self.classes_[codes]
