"""The estimators of the Python API follow scikit-learn's API (check_estimator), agree with
their references, and work without scikit-learn installed."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.datasets import load_digits, load_iris  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier as SklearnKNN  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import kernelnet  # noqa: E402
from kernelnet.data.registry import load_binary  # noqa: E402
from kernelnet.errors import Diverged  # noqa: E402
from kernelnet.svm.primal import fit_gradient_descent  # noqa: E402

ESTIMATORS = ["KernelSVM", "LinearSVM", "MLPClassifier", "KNeighborsClassifier"]


@pytest.mark.parametrize("name", ESTIMATORS[1:])  # KernelSVM: tests/svm/test_estimator.py
def test_passes_check_estimator(name):
    check_estimator(getattr(kernelnet, name)())


def test_knn_agrees_with_scikit_learn():
    digits = load_digits()
    X, y = digits.data / 16, digits.target
    for k in (1, 3, 7):
        ours = kernelnet.KNeighborsClassifier(n_neighbors=k).fit(X[:1200], y[:1200])
        ref = SklearnKNN(n_neighbors=k).fit(X[:1200], y[:1200])
        agree = (ours.predict(X[1200:]) == ref.predict(X[1200:])).mean()
        assert agree == 1.0 if k == 1 else agree > 0.995  # vote ties are broken differently


def test_linear_svm_is_the_primal_gradient_descent():
    split = load_binary("iris_binary")
    model = kernelnet.LinearSVM(C=5, learning_rate=1e-3, epochs=30).fit(
        split.X_train, split.y_train
    )
    fit = fit_gradient_descent(split.X_train, split.y_train, 5.0, 1e-3, 30)
    np.testing.assert_array_equal(model.coef_, fit.w)
    assert model.intercept_ == fit.b
    assert model.score(split.X_test, split.y_test) > 0.9


@pytest.mark.parametrize("batch_size", [None, 8])
def test_a_coordinate_linear_svm_is_primals_coordinate_descent(batch_size):
    """update="coordinate" reaches the descent: the coef is primal's coordinate path (full
    batch, and minibatches in the order random_state=4 draws), not its simultaneous one."""
    split = load_binary("iris_binary")
    model = kernelnet.LinearSVM(
        C=5, learning_rate=1e-3, epochs=30, batch_size=batch_size, update="coordinate",
        random_state=4,
    ).fit(split.X_train, split.y_train)  # fmt: skip
    rule = {"batch_size": batch_size, "rng": np.random.default_rng(4)}
    fit = fit_gradient_descent(
        split.X_train, split.y_train, 5.0, 1e-3, 30, update="coordinate", **rule
    )
    np.testing.assert_array_equal(model.coef_, fit.w)
    assert model.intercept_ == fit.b
    rule["rng"] = np.random.default_rng(4)
    simultaneous = fit_gradient_descent(split.X_train, split.y_train, 5.0, 1e-3, 30, **rule)
    assert not np.allclose(model.coef_, simultaneous.w, rtol=1e-6, atol=0)  # it can fail
    assert model.get_params()["update"] == "coordinate"
    assert kernelnet.LinearSVM().update == "simultaneous"


def test_mlp_learns_digits_reproducibly_and_reports_divergence():
    digits = load_digits()
    X, y = digits.data / 16, digits.target
    scores = cross_val_score(kernelnet.MLPClassifier(epochs=30, random_state=0), X, y, cv=3)
    assert scores.mean() > 0.9
    a = kernelnet.MLPClassifier(epochs=3, random_state=1).fit(X, y).predict_proba(X)
    b = kernelnet.MLPClassifier(epochs=3, random_state=1).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(Diverged, match="try a lower learning rate"):
        kernelnet.MLPClassifier(optimizer="sgd", learning_rate=1e6, epochs=3).fit(X * 100, y)


@pytest.mark.parametrize("hidden", [True, False], ids=["not installed", "installed unused"])
def test_the_estimators_work_without_scikit_learn(hidden):
    """Without scikit-learn, and without importing it when it is installed but unused (it
    takes about a second to import; the command line never needs it)."""
    code = f"""
import sys
if {hidden}:
    sys.modules["sklearn"] = None  # as if it were not installed
import numpy as np
import kernelnet
rng = np.random.default_rng(0)
X = np.vstack([rng.normal(0, 1, (40, 2)), rng.normal(4, 1, (40, 2))])
y = np.repeat(["a", "b"], 40)
for name in ("KernelSVM", "LinearSVM", "MLPClassifier", "KNeighborsClassifier"):
    model = getattr(kernelnet, name)()
    assert model.set_params(**model.get_params()) is model
    if name == "MLPClassifier":
        model.set_params(epochs=300)  # one minibatch per epoch on 80 samples
    assert model.fit(X, y).score(X, y) > 0.9, name
    try:
        getattr(kernelnet, name)().predict(X)
    except ValueError:
        pass
    else:
        raise AssertionError(name + " predicted before fit")
assert not [m for m in sys.modules if m.startswith("sklearn") and sys.modules[m]]
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_iris_multiclass_by_every_classifier():
    X, y = load_iris(return_X_y=True)
    for name in ("KernelSVM", "MLPClassifier", "KNeighborsClassifier"):
        model = getattr(kernelnet, name)()
        assert cross_val_score(model, X, y, cv=3).mean() > 0.85, name


@pytest.mark.parametrize("routing", [False, True])
def test_grid_search_in_a_pipeline_with_and_without_metadata_routing(routing):
    """The estimators do not derive from scikit-learn's classes (so kernelnet never imports
    it); they still take part in its metadata routing and model selection like SVC."""
    import sklearn
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    X, y = load_iris(return_X_y=True)
    with sklearn.config_context(enable_metadata_routing=routing):
        ours = GridSearchCV(
            make_pipeline(StandardScaler(), kernelnet.KernelSVM()), {"kernelsvm__C": [0.1, 1, 10]}
        ).fit(X, y)
        theirs = GridSearchCV(make_pipeline(StandardScaler(), SVC()), {"svc__C": [0.1, 1, 10]}).fit(
            X, y
        )
    np.testing.assert_array_equal(ours.cv_results_["mean_test_score"],
                                  theirs.cv_results_["mean_test_score"])  # fmt: skip
    assert ours.best_params_["kernelsvm__C"] == theirs.best_params_["svc__C"]
