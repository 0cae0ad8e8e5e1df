"""kernelnet.KernelSVM against scikit-learn's SVC (libsvm): the same predictions on
multiclass sets (one-vs-one with libsvm's voting), the estimator API, check_estimator."""

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, load_iris  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import kernelnet  # noqa: E402
from kernelnet.data.mnist import mnist_split  # noqa: E402


def test_passes_scikit_learns_check_estimator():
    check_estimator(kernelnet.KernelSVM())


@pytest.mark.parametrize("kernel", ["linear", "rbf", "poly", "sigmoid"])
def test_multiclass_predictions_equal_svc_on_iris(kernel):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    params = dict(kernel=kernel, C=1.0, gamma=0.2, coef0=0.0 if kernel != "sigmoid" else -1.0)
    ours = kernelnet.KernelSVM(**params).fit(X, y)
    ref = SVC(**params).fit(X, y)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=2e-2)
    assert (np.argmax(ours.decision_function(X), axis=1) == ours.predict(X)).all()


def test_cross_validated_on_digits_like_svc():
    digits = load_digits()
    X, y = digits.data[:900] / 16, digits.target[:900]
    ours = cross_val_score(kernelnet.KernelSVM(C=10, gamma=0.05), X, y, cv=3)
    ref = cross_val_score(SVC(C=10, gamma=0.05), X, y, cv=3)
    np.testing.assert_array_equal(ours, ref)
    model = kernelnet.KernelSVM(C=10, gamma=0.05).fit(X[:600], y[:600])
    reference = SVC(C=10, gamma=0.05).fit(X[:600], y[:600])
    np.testing.assert_array_equal(model.predict(X[600:]), reference.predict(X[600:]))


def test_predictions_equal_svc_on_an_mnist_subset():
    data = mnist_split(600, 0, 300)
    ours = kernelnet.KernelSVM(C=10, gamma=0.05, solver="smo").fit(data.X_train, data.y_train)
    ref = SVC(C=10, gamma=0.05).fit(data.X_train, data.y_train)
    agree = (ours.predict(data.X_test) == ref.predict(data.X_test)).mean()
    assert agree == 1.0


def test_string_labels_class_weight_and_the_estimator_api():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    ours = kernelnet.KernelSVM(gamma=0.3, class_weight="balanced").fit(X[20:], names[20:])
    ref = SVC(gamma=0.3, class_weight="balanced").fit(X[20:], names[20:])
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    assert list(ours.classes_) == list(
        names[20:][np.sort(np.unique(names[20:], return_index=True)[1])]
    )
    assert ours.n_features_in_ == 4 and ours.score(X, names) == ref.score(X, names)
    assert clone(ours).get_params() == ours.get_params()
    search = GridSearchCV(
        make_pipeline(StandardScaler(), kernelnet.KernelSVM()),
        {"kernelsvm__C": [0.1, 10]},
        cv=3,
    ).fit(X, y)
    assert search.best_params_["kernelsvm__C"] == 10
    with pytest.raises(ValueError, match="features"):
        ours.predict(X[:, :3])
