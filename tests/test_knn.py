import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from kernelnet.config import expand, resolve
from kernelnet.experiments.knn import KnnConfig, choose_k, splits
from kernelnet.knn import distances, knn_predict_all_k, vote


@pytest.mark.parametrize("dataset", ["moons", "circles", "linear", "xor"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_predictions_match_scikit_learn(dataset, metric):
    config = expand(KnnConfig, resolve(KnnConfig, {"data": {"dataset": dataset}}, {}))[0].config
    X_train, y_train, X_val, _, X_test, _ = splits(config, np.random.default_rng(0))
    queries = np.vstack([X_val, X_test])
    ks = [1, 3, 5, 7, 9, 15, 21]  # odd k and two classes: no vote ties
    ours = knn_predict_all_k(X_train, y_train, queries, ks, metric)
    for k in ks:
        reference = KNeighborsClassifier(k, algorithm="brute", metric=metric).fit(X_train, y_train)
        np.testing.assert_array_equal(ours[k], reference.predict(queries), err_msg=f"k={k}")


def test_mnist_subset_matches_scikit_learn_and_k1_fits_training():
    config = expand(
        KnnConfig,
        resolve(
            KnnConfig, {"data": {"dataset": "mnist", "mnist_train": 1500, "mnist_val": 300}}, {}
        ),
    )[0].config
    X_train, y_train, X_val, _, _, _ = splits(config, np.random.default_rng(0))
    ours = knn_predict_all_k(X_train, y_train, X_val, [1], "euclidean")[1]
    reference = KNeighborsClassifier(1, algorithm="brute").fit(X_train, y_train).predict(X_val)
    np.testing.assert_array_equal(ours, reference)
    assert (knn_predict_all_k(X_train, y_train, X_train, [1])[1] == y_train).all()


def test_equal_distances_keep_training_order():
    X_train = np.array([[1.0], [-1.0]])  # both at distance 1 from the query
    assert knn_predict_all_k(X_train, np.array([1, 0]), np.array([[0.0]]), [1])[1][0] == 1
    assert knn_predict_all_k(X_train, np.array([0, 1]), np.array([[0.0]]), [1])[1][0] == 0


def test_tied_vote_goes_to_the_class_of_the_nearest_tied_neighbour():
    labels = np.array([[2, 0, 0, 2, 1]])  # nearest first; k=4: classes 0 and 2 tie 2-2
    assert vote(labels, 4, 3)[0] == 2
    assert vote(labels, 3, 3)[0] == 0  # 0 has two of three


def test_cosine_distance_of_a_zero_vector_is_one():
    D = distances(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[1.0, 1.0], [2.0, 0.0]]), "cosine")
    np.testing.assert_allclose(D[0], [1.0, 1.0])
    np.testing.assert_allclose(D[1], [1 - 1 / np.sqrt(2), 0.0], atol=1e-15)


def test_k_is_chosen_on_validation_with_the_smallest_k_among_equals():
    assert choose_k({1: 0.9, 3: 0.95, 5: 0.95, 7: 0.8}) == 3


def test_partial_ordering_equals_a_stable_sort_even_with_ties_across_the_cut():
    from kernelnet.knn import neighbour_order

    rng = np.random.default_rng(0)
    for _ in range(300):
        D = rng.integers(0, 5, size=(7, 30)).astype(float)  # many equal distances
        k = int(rng.integers(1, 31))
        expected = np.argsort(D, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(neighbour_order(D, k), expected)
