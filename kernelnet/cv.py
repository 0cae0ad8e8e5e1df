"""k-fold cross-validation on a training set: stratified folds and fold-by-fold scores.

Folds are dealt, not split: each class's indices are shuffled, the classes are laid end to
end (in sorted label order) and position ``i`` of that sequence goes to fold ``i % k``. So
every class is spread over the folds as evenly as it can be (its counts in two folds differ
by at most 1) and so are the fold sizes (the deal goes on where the previous class
stopped). This is not scikit-learn's ``StratifiedKFold`` split (which allocates each class's
count per fold and keeps the given order unless shuffled); the tests hand these folds to
scikit-learn as ``cv=[(train, test), ...]``, so the two are compared on the same folds.

The Generator that shuffles comes from the run seed and the training data's identity
(:func:`fold_rng`: the bytes of X and y), never from a cell's swept values: every cell of a
grid over C or gamma is scored on the same folds, so their scores compare, and a cell's
score is the same alone, in any grid, on any executor.

A fold score is the estimator's ``score(X, y)`` (accuracy for classifiers), or the accuracy
of ``predict`` when it has no ``score``; the spread is the population standard deviation
(``numpy.std``, ddof 0), as scikit-learn's ``GridSearchCV`` reports ``std_test_score``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kernelnet.config import param
from kernelnet.errors import DataError
from kernelnet.seeding import named_rng

Fold = tuple[np.ndarray, np.ndarray]  # (train indices, test indices), each sorted int64
MAX_FOLDS = 100


@dataclass
class CVSection:
    """The ``cv`` section of an experiment that fits on data."""

    folds: int = param(
        0,
        ge=0,
        le=MAX_FOLDS,
        sweepable=False,
        help="k-fold stratified cross-validation on the training set (0: off); rows gain "
        "cv_mean and cv_std, the test set is still scored once by the model fitted on all "
        "training data",
    )


def data_identity(X: np.ndarray, y: np.ndarray) -> str:
    """sha256 of the training data's shapes, dtypes and bytes: what the folds follow."""
    digest = hashlib.sha256()
    for array in (np.ascontiguousarray(X), np.ascontiguousarray(y)):
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def fold_rng(seed: int, X: np.ndarray, y: np.ndarray) -> np.random.Generator:
    """The Generator that deals the folds of this training data under this run seed."""
    return named_rng(seed, f"cv folds {data_identity(X, y)}")


def check_folds(y: Any, k: int, where: str = "") -> None:
    """DataError (one line) unless every class of ``y`` has at least ``k`` samples: a fold
    without a class would score it on nothing, a training part without it could not learn
    it."""
    if k < 2:
        raise DataError(f"{where}cv.folds must be at least 2 (got {k}; 0 turns it off)")
    labels, counts = np.unique(np.asarray(y), return_counts=True)
    smallest = int(np.argmin(counts))
    if counts[smallest] < k:
        raise DataError(
            f"{where}cv.folds={k}: class {labels[smallest].item()} has only {counts[smallest]} "
            f"training sample(s); use at most {counts[smallest]} folds"
        )


def stratified_folds(y: Any, k: int, rng: np.random.Generator) -> list[Fold]:
    """``k`` (train, test) index pairs partitioning ``range(len(y))``; see the module
    docstring for how samples are dealt. Test folds are sorted; fold ``f``'s training part
    is every other index, sorted."""
    y = np.asarray(y)
    check_folds(y, k)
    order = np.concatenate([rng.permutation(np.flatnonzero(y == label)) for label in np.unique(y)])
    fold_of = np.empty(len(y), dtype=np.int64)
    fold_of[order] = np.arange(len(y)) % k
    every = np.arange(len(y))
    return [(every[fold_of != f], every[fold_of == f]) for f in range(k)]


def _fresh(estimator: Any) -> Any:
    """An unfitted copy of ``estimator`` (scikit-learn's clone, for estimators with
    get_params), or a new one from a factory."""
    if hasattr(estimator, "get_params"):
        return type(estimator)(**estimator.get_params(deep=False))
    return estimator()


def _score(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    if hasattr(model, "score"):
        return float(model.score(X, y))
    return float(np.mean(model.predict(X) == y))


def cross_val_scores(
    estimator: Any,
    X: Any,
    y: Any,
    folds: Sequence[Fold],
    *,
    fit: Callable[[Any, np.ndarray, np.ndarray, int], Any] | None = None,
) -> np.ndarray:
    """Fold scores, shape (k,): for each fold a fresh copy of ``estimator`` (an estimator
    with get_params, cloned; or a zero-argument factory) fitted on the training part and
    scored on the held-out part. ``fit(model, X, y, fold_index)`` replaces ``model.fit(X,
    y)`` where fitting needs more (a per-fold Generator)."""
    X, y = np.asarray(X), np.asarray(y)
    scores = []
    for index, (train, test) in enumerate(folds):
        model = _fresh(estimator)
        if fit is None:
            model.fit(X[train], y[train])
        else:
            fit(model, X[train], y[train], index)
        scores.append(_score(model, X[test], y[test]))
    return np.asarray(scores, dtype=np.float64)


def score_folds(folds: Sequence[Fold], fit_and_score: Callable[[np.ndarray, np.ndarray], float]):
    """Fold scores for a method that is not an estimator: ``fit_and_score(train, test)``
    fits on the indices ``train`` and returns its score on ``test``."""
    return np.asarray([float(fit_and_score(train, test)) for train, test in folds])


def score_folds_by_setting(
    folds: Sequence[Fold], fit_and_score: Callable[[np.ndarray, np.ndarray], Sequence[float]]
) -> np.ndarray:
    """Fold scores of several settings that one fit per fold serves (k-NN scores every k
    from one distance computation): ``fit_and_score(train, test)`` returns one score per
    setting, in a fixed order. Shape (settings, k): row ``s`` is setting ``s``'s folds."""
    per_fold = [np.asarray(fit_and_score(train, test), dtype=np.float64) for train, test in folds]
    return np.stack(per_fold, axis=1)


def cv_columns(scores: np.ndarray) -> dict[str, float]:
    """The metrics-row columns of a cell's fold scores."""
    return {"cv_mean": float(np.mean(scores)), "cv_std": float(np.std(scores))}


def cv_artifacts(scores: np.ndarray) -> dict[str, Any]:
    """What a cell keeps of its cross-validation (stored with the cell's results)."""
    return {"cv_scores": [float(s) for s in scores]}


def best_by_cv(results: Sequence[Any]) -> Any | None:
    """The completed cell with the highest ``cv_mean`` (ties: the smaller ``cv_std``, then
    the first in grid order), or None when no completed cell was cross-validated."""
    from kernelnet.search import ranked  # the one ranking: a search's best is this cell

    scored = [r for r in results if r.ok and _cv_row(r) is not None]
    return ranked(scored, "cv_mean", "max")[0] if scored else None


def _cv_row(result: Any) -> dict[str, Any] | None:
    """The metrics row of a cell that holds its CV columns (the last epoch's, when a cell
    has a row per epoch)."""
    for row in reversed(result.rows):
        if "cv_mean" in row:
            return row
    return None


def check_stored(results: Sequence[Any], folds: int) -> None:
    """Refuse to report a CV run with a completed cell that holds no scores for ``folds``
    folds (a cell stored by a run with other cv settings and reused by --resume)."""
    from kernelnet.errors import ConfigError

    for result in results:
        if result.ok and len(result.artifacts.get("cv_scores") or []) != folds:
            raise ConfigError(
                f"cell {result.cell.id} was stored without {folds}-fold cross-validation "
                "(a run with other cv settings, resumed?); run the config again without --resume"
            )


def _test_score(result: Any, test_key: str, test_in_row: bool) -> Any:
    """A cell's test score: its artifact ``test_key`` (else its row's), or its row's when
    ``test_in_row`` (svm-primal keeps a per-epoch test curve under the same name)."""
    if test_in_row:
        return result.row.get(test_key)
    return result.artifacts.get(test_key, result.row.get(test_key))


def cv_summary(
    results: Sequence[Any], folds: int, test_key: str, *, test_in_row: bool = False
) -> dict[str, Any]:
    """The summary entry naming the best cell by CV score, its CV and test scores."""
    best = best_by_cv(results)
    if best is None:
        return {}
    row = _cv_row(best)
    test = _test_score(best, test_key, test_in_row)
    return {
        "best_by_cv": {
            "cell": best.cell.id,
            "params": dict(best.cell.params),
            "folds": folds,
            "cv_mean": row["cv_mean"],
            "cv_std": row["cv_std"],
            test_key: test,
        }
    }


def cv_table(
    results: Sequence[Any],
    folds: int,
    test_key: str,
    test_label: str,
    show=None,
    *,
    test_in_row: bool = False,
):
    """A table of every cell's CV mean ± std and test score, the best by CV marked."""
    from kernelnet.tables import Table, percent

    show = show or (lambda value: percent(value, 2))
    best = best_by_cv(results)
    rows = []
    for result in results:
        row = _cv_row(result) if result.ok else None
        if row is None:
            rows.append([result.cell.id, result.status if not result.ok else "—", "", ""])
            continue
        test = _test_score(result, test_key, test_in_row)
        mark = " ★" if result is best else ""
        rows.append(
            [
                result.cell.id + mark,
                f"{percent(row['cv_mean'], 2)} ± {percent(row['cv_std'], 2)}",
                show(test) if test is not None else "",
                " ".join(percent(s, 1) for s in result.artifacts.get("cv_scores", [])),
            ]
        )
    return Table(
        f"{folds}-fold cross-validation on the training set",
        ["cell", "CV accuracy % (mean ± std)", test_label, "per fold %"],
        rows,
        note="★ the best cell by CV accuracy (ties: smaller spread, then grid order). Folds are "
        "stratified and the same for every cell; the test set is scored once, by the model "
        "fitted on all training data.",
        align=["left", "right", "right", "left"],
    )


def cv_report(
    results: Sequence[Any],
    config: dict[str, Any],
    test_key: str,
    test_label: str,
    show=None,
    *,
    test_in_row: bool = False,
) -> tuple[list[Any], dict[str, Any]]:
    """An experiment report's CV part: ``([table], summary entries)`` when the run's config
    turns cross-validation on, ``([], {})`` otherwise. ``test_in_row``: see
    :func:`_test_score`."""
    folds = int((config.get("cv") or {}).get("folds") or 0)
    if not folds:
        return [], {}
    check_stored(results, folds)
    table = cv_table(results, folds, test_key, test_label, show, test_in_row=test_in_row)
    return [table], cv_summary(results, folds, test_key, test_in_row=test_in_row)
