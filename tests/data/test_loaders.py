import shutil

import numpy as np
import pytest

from kernelnet.data.registry import BINARY_DATASETS, TOY2D, data_root, load_binary
from kernelnet.data.validation import binary_labels, check_features, check_n_features, check_X_y
from kernelnet.errors import DataError


@pytest.mark.parametrize("name", BINARY_DATASETS)
def test_shipped_datasets_load_verified(name):
    split = load_binary(name)
    assert split.X_train.dtype == np.float64
    assert set(np.unique(split.y_train)) == {-1.0, 1.0}
    assert set(np.unique(split.y_test)) <= {-1.0, 1.0}
    assert split.X_train.shape[1] == split.X_test.shape[1]


@pytest.mark.parametrize("name", TOY2D)
def test_toy_sets_match_their_documented_shapes_and_standardization(name):
    split = load_binary(name)
    assert split.X_train.shape == (60, 2) and split.X_test.shape == (40, 2)
    both = np.vstack([split.X_train, split.X_test])
    np.testing.assert_allclose(both.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(both.std(axis=0), 1, atol=1e-12)
    assert split.label_mapping == {"0": -1, "1": 1}


def test_iris_keeps_its_labels():
    split = load_binary("iris_binary")
    assert split.X_train.shape == (76, 4) and split.X_test.shape == (24, 4)
    assert split.label_mapping == {"-1": -1, "1": 1}


def test_missing_file_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNELNET_DATA", str(tmp_path))
    with pytest.raises(DataError, match=f"dataset file not found: {tmp_path}/toy2d/moons.npz"):
        load_binary("moons")


def test_corrupt_file_fails_its_checksum(tmp_path, monkeypatch):
    target = tmp_path / "toy2d"
    target.mkdir()
    shutil.copy(data_root() / "toy2d" / "moons.npz", target / "moons.npz")
    with open(target / "moons.npz", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02")
    monkeypatch.setenv("KERNELNET_DATA", str(tmp_path))
    with pytest.raises(DataError, match="sha256 mismatch"):
        load_binary("moons")


def test_unknown_dataset_lists_valid_ones():
    with pytest.raises(DataError, match="unknown dataset 'moon'; valid: iris_binary, moons"):
        load_binary("moon")


def test_nan_and_infinity_are_rejected():
    X = np.ones((3, 2))
    X[1, 1] = np.nan
    with pytest.raises(DataError, match="contains NaN"):
        check_features(X)
    X[1, 1] = np.inf
    with pytest.raises(DataError, match="contains infinity"):
        check_features(X)


def test_zero_samples_rejected():
    with pytest.raises(DataError, match="0 sample"):
        check_features(np.empty((0, 2)))


def test_inconsistent_lengths_quote_both_sizes():
    with pytest.raises(DataError, match=r"inconsistent numbers of samples: \[80, 79\]"):
        check_X_y(np.zeros((80, 2)), np.zeros(79))


def test_wrong_feature_count_at_predict_time():
    with pytest.raises(DataError, match="X has 3 features, but the model was fitted with 2"):
        check_n_features(np.zeros((4, 3)), 2)


def test_one_class_is_rejected():
    with pytest.raises(DataError, match="has to be greater than one; got 1 class"):
        binary_labels(np.array([1, 1, 1]))


def test_three_classes_are_rejected():
    with pytest.raises(DataError, match="exactly two classes; got 3"):
        binary_labels(np.array([0, 1, 2]))


def test_zero_one_labels_map_to_minus_plus_one_and_mapping_is_recorded():
    y_pm, mapping = binary_labels(np.array([1, 0, 0, 1]))
    np.testing.assert_array_equal(y_pm, [1.0, -1.0, -1.0, 1.0])
    assert mapping == {"0": -1, "1": 1}
