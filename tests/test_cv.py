"""kernelnet.cv: stratified folds that partition the data, dealt by a Generator from the run
seed and the data alone; fold scores equal scikit-learn's cross_val_score on the same folds."""

import numpy as np
import pytest

from kernelnet.cv import (
    best_by_cv,
    check_folds,
    cross_val_scores,
    cv_columns,
    fold_rng,
    score_folds,
    stratified_folds,
)
from kernelnet.errors import DataError

LABEL_SETS = [
    np.array([0] * 50 + [1] * 50),
    np.array([0] * 7 + [1] * 31 + [2] * 12),  # unbalanced, three classes
    np.array(["b", "a", "c"] * 9 + ["a"] * 4),  # text labels, interleaved
    np.repeat([-1.0, 1.0], [5, 96]),  # the smallest class has exactly k (5) members
]


@pytest.mark.parametrize("y", LABEL_SETS)
@pytest.mark.parametrize("k", [2, 3, 5])
def test_folds_are_a_stratified_partition(y, k):
    folds = stratified_folds(y, k, np.random.default_rng(3))
    assert len(folds) == k
    tests = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tests), np.arange(len(y)))  # every index in one test fold
    for train, test in folds:
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(y)))
        assert not set(train.tolist()) & set(test.tolist())
        assert np.all(np.diff(test) > 0) and np.all(np.diff(train) > 0)  # sorted
    sizes = [len(test) for _, test in folds]
    assert max(sizes) - min(sizes) <= 1
    for label in np.unique(y):
        counts = [int(np.sum(y[test] == label)) for _, test in folds]
        assert max(counts) - min(counts) <= 1, (label, counts)


def test_folds_follow_the_seed_and_the_data_only():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), np.repeat([0, 1, 2], 20)

    def folds(seed, X, y):
        return [test.tolist() for _, test in stratified_folds(y, 4, fold_rng(seed, X, y))]

    assert folds(0, X, y) == folds(0, X.copy(), y.copy())  # the same bytes: the same folds
    assert folds(0, X, y) != folds(1, X, y)
    changed = X.copy()
    changed[5, 1] += 1e-9  # one value of the data differs: other data, other folds
    assert folds(0, X, y) != folds(0, changed, y)


def test_too_few_members_of_a_class_is_one_clear_line():
    y = np.array([0] * 10 + [1] * 3)
    with pytest.raises(DataError, match=r"cv.folds=4: class 1 has only 3 training sample"):
        check_folds(y, 4)
    with pytest.raises(DataError, match="at least 2"):
        stratified_folds(y, 1, np.random.default_rng(0))
    check_folds(y, 3)  # exactly enough


def test_kernel_svm_5_fold_scores_equal_scikit_learn_fold_by_fold():
    """Ten digit classes (one-vs-one, as SVC): the same folds given to cross_val_score as a
    list of (train, test) pairs give the same accuracy in every fold."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC

    from kernelnet.svm.estimator import KernelSVM

    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    folds = stratified_folds(y, 5, fold_rng(0, X, y))
    for C, gamma in [(1.0, 0.001), (10.0, 0.0005)]:
        ours = cross_val_scores(KernelSVM(C=C, gamma=gamma), X, y, folds)
        theirs = cross_val_score(SVC(kernel="rbf", C=C, gamma=gamma, tol=1e-6), X, y, cv=folds)
        assert ours.shape == (5,)
        np.testing.assert_array_equal(ours, theirs)
        assert len(set(ours.tolist())) > 1  # folds that differ: the comparison is not 1 == 1


class MajorityByPredict:
    """An estimator with fit/predict and no score: the most frequent training label."""

    def fit(self, X, y):
        labels, counts = np.unique(y, return_counts=True)
        self.label_ = labels[np.argmax(counts)]
        return self

    def predict(self, X):
        return np.full(len(X), self.label_)


def test_an_estimator_without_score_is_scored_by_the_accuracy_of_predict():
    y = np.array([0] * 6 + [1] * 4)
    X = np.zeros((10, 1))
    folds = stratified_folds(y, 2, np.random.default_rng(0))
    # each training half holds three 0s and two 1s: 0 predicted, right on 3 of 5
    np.testing.assert_array_equal(cross_val_scores(MajorityByPredict, X, y, folds), [0.6, 0.6])
    seen = []

    def fit(model, X_fold, y_fold, index):
        seen.append((index, len(y_fold)))
        return model.fit(X_fold, y_fold)

    cross_val_scores(MajorityByPredict, X, y, folds, fit=fit)
    assert seen == [(0, 5), (1, 5)]
    assert score_folds(folds, lambda train, test: len(test) / 10).tolist() == [0.5, 0.5]


def test_the_spread_is_the_population_standard_deviation():
    assert cv_columns(np.array([0.5, 1.0])) == {"cv_mean": 0.75, "cv_std": 0.25}


class Result:
    def __init__(self, name, mean, std, ok=True):
        self.cell = type("Cell", (), {"id": name, "params": {}})()
        self.rows = [{"epoch": 1}, {"epoch": 2, "cv_mean": mean, "cv_std": std}]
        self.ok, self.artifacts = ok, {}


def test_the_best_cell_is_the_highest_mean_then_the_smaller_spread_then_the_first():
    a, b, c = Result("a", 0.8, 0.1), Result("b", 0.9, 0.2), Result("c", 0.9, 0.1)
    assert best_by_cv([a, b, c]).cell.id == "c"
    d = Result("d", 0.9, 0.1)
    assert best_by_cv([a, c, d]).cell.id == "c"
    assert best_by_cv([Result("x", 1.0, 0.0, ok=False), a]).cell.id == "a"
    assert best_by_cv([]) is None
