"""Every hyperparameter of every estimator is checked when fit starts, against constraints
declared per class the way scikit-learn declares them, with scikit-learn's message — with
scikit-learn imported and without it. The command line refuses the same values in a
config with one line (the experiment schemas)."""

import re
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import kernelnet
from kernelnet.cli import app
from kernelnet.errors import Diverged
from kernelnet.estimator_base import InvalidParameterError

ESTIMATORS = ["KernelSVM", "LinearSVM", "MLPClassifier", "KNeighborsClassifier"]
INF, NAN = float("inf"), float("nan")
FLOAT_GT0 = "a float in the range (0.0, inf)"
FLOAT_GE0 = "a float in the range [0.0, inf)"
INT_GE1 = "an int in the range [1, inf)"
EPOCHS = "an int in the range [1, 1000000000]"
SEED = "an int in the range [0, inf), an instance of 'numpy.random.Generator' or None"

# (estimator, parameter, bad value, what the message says it must be)
BAD = [
    ("KernelSVM", "C", -1, FLOAT_GT0),
    ("KernelSVM", "C", 0, FLOAT_GT0),
    ("KernelSVM", "C", INF, FLOAT_GT0),
    ("KernelSVM", "C", NAN, FLOAT_GT0),
    ("KernelSVM", "C", "1", FLOAT_GT0),
    ("KernelSVM", "C", True, FLOAT_GT0),
    ("KernelSVM", "kernel", "precomputed", "a str among {'linear', 'poly', 'sigmoid', 'rbf'}"),
    ("KernelSVM", "gamma", -0.5, "a str among {'scale', 'auto'} or " + FLOAT_GE0),
    ("KernelSVM", "gamma", "sacle", "a str among {'scale', 'auto'} or " + FLOAT_GE0),
    ("KernelSVM", "gamma", INF, "a str among {'scale', 'auto'} or " + FLOAT_GE0),
    ("KernelSVM", "degree", 2.5, "an int in the range [0, inf)"),
    ("KernelSVM", "degree", -1, "an int in the range [0, inf)"),
    ("KernelSVM", "degree", True, "an int in the range [0, inf)"),
    ("KernelSVM", "coef0", INF, "a float in the range (-inf, inf)"),
    ("KernelSVM", "coef0", NAN, "a float in the range (-inf, inf)"),
    (
        "KernelSVM",
        "class_weight",
        "auto",
        f"a str among {{'balanced'}}, a dict whose values are each {FLOAT_GT0} or None",
    ),
    (
        "KernelSVM",
        "class_weight",
        {0: -1.0},
        f"a str among {{'balanced'}}, a dict whose values are each {FLOAT_GT0} or None",
    ),
    (
        "KernelSVM",
        "class_weight",
        {0: NAN},
        f"a str among {{'balanced'}}, a dict whose values are each {FLOAT_GT0} or None",
    ),
    ("KernelSVM", "solver", "fast", "a str among {'auto', 'cvxopt', 'smo', 'blocked'}"),
    ("KernelSVM", "tol", -1e-3, FLOAT_GT0),
    ("KernelSVM", "tol", 0.0, FLOAT_GT0),
    ("KernelSVM", "cache_size", 0, FLOAT_GT0),
    ("KernelSVM", "cache_size", -200.0, FLOAT_GT0),
    ("KernelSVM", "fallback", "cvxopt", "a str among {'smo', 'none'}"),
    ("KernelSVM", "qp_options", {"abstol": -1}, f"a dict whose 'abstol' is {FLOAT_GT0} or None"),
    ("KernelSVM", "qp_options", {"maxiters": 0}, f"a dict whose 'maxiters' is {INT_GE1} or None"),
    (
        "KernelSVM",
        "qp_options",
        {"bogus": 1},
        "a dict with keys among {'abstol', 'reltol', 'feastol', 'maxiters', 'refinement', "
        "'show_progress'} or None",
    ),
    ("KernelSVM", "support_tol", 0.0, "a float in the range (0.0, 0.5)"),
    ("KernelSVM", "support_tol", 0.5, "a float in the range (0.0, 0.5)"),
    ("KernelSVM", "working_set", 0, "an int in the range [2, inf)"),
    ("KernelSVM", "working_set", 1, "an int in the range [2, inf)"),
    ("KernelSVM", "working_set", -4, "an int in the range [2, inf)"),
    ("KernelSVM", "working_set", 64.0, "an int in the range [2, inf)"),
    ("LinearSVM", "C", -1, FLOAT_GT0),
    ("LinearSVM", "learning_rate", INF, FLOAT_GT0),
    ("LinearSVM", "learning_rate", 0, FLOAT_GT0),
    ("LinearSVM", "epochs", 0, EPOCHS),
    ("LinearSVM", "epochs", 1.5, EPOCHS),
    ("LinearSVM", "batch_size", 0, INT_GE1 + " or None"),
    ("LinearSVM", "schedule", "cosine", "a str among {'constant', 'inverse', 'exponential'}"),
    ("LinearSVM", "decay", -0.1, FLOAT_GE0),
    ("LinearSVM", "update", "both", "a str among {'simultaneous', 'coordinate'}"),
    ("LinearSVM", "update", "Coordinate", "a str among {'simultaneous', 'coordinate'}"),
    ("LinearSVM", "random_state", -1, SEED),
    ("LinearSVM", "random_state", "seed", SEED),
    ("MLPClassifier", "hidden_layer_sizes", (0,), f"{INT_GE1} or a list or tuple whose items"),
    ("MLPClassifier", "hidden_layer_sizes", (10, -1), f"{INT_GE1} or a list or tuple whose"),
    ("MLPClassifier", "hidden_layer_sizes", 0, f"{INT_GE1} or a list or tuple whose items"),
    ("MLPClassifier", "hidden_layer_sizes", "100", f"{INT_GE1} or a list or tuple whose items"),
    ("MLPClassifier", "activation", "softplus", "a str among {'relu', 'leaky_relu', 'sigmoid'"),
    ("MLPClassifier", "optimizer", "lbfgs", "a str among {'sgd', 'momentum', 'nesterov'"),
    ("MLPClassifier", "learning_rate", INF, FLOAT_GT0),
    ("MLPClassifier", "epochs", 0, EPOCHS),
    ("MLPClassifier", "batch_size", 0, INT_GE1),
    ("MLPClassifier", "weight_decay", -1e-4, FLOAT_GE0),
    ("MLPClassifier", "validation_fraction", 1, "a float in the range [0.0, 1.0)"),
    ("MLPClassifier", "validation_fraction", -0.1, "a float in the range [0.0, 1.0)"),
    ("MLPClassifier", "standardize", 1, "an instance of 'bool'"),
    ("MLPClassifier", "random_state", 1.5, SEED),
    ("KNeighborsClassifier", "n_neighbors", 0, INT_GE1),
    ("KNeighborsClassifier", "n_neighbors", 2.0, INT_GE1),
    ("KNeighborsClassifier", "n_neighbors", True, INT_GE1),
    ("KNeighborsClassifier", "metric", "manhattan", "a str among {'euclidean', 'cosine'}"),
]


def blobs(classes=(0, 1, 2), n=20):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(4 * i, 1.0, (n, 2)) for i in range(len(classes))])
    return X, np.repeat(np.array(classes), n)


def data_for(name):
    return blobs((0, 1)) if name == "LinearSVM" else blobs()


@pytest.mark.parametrize(
    "name, param, value, must_be", BAD, ids=[f"{n}-{p}-{v!r}" for n, p, v, _ in BAD]
)
def test_a_bad_hyperparameter_is_refused_when_fit_starts(name, param, value, must_be):
    estimator = getattr(kernelnet, name)(**{param: value})  # accepted until fit (sklearn's rule)
    assert estimator.get_params()[param] is value
    with pytest.raises(ValueError) as refused:
        estimator.fit(*data_for(name))
    assert isinstance(refused.value, InvalidParameterError)
    message = str(refused.value)
    assert message.startswith(f"The {param!r} parameter of {name} must be {must_be}"), message
    assert message.endswith(f"Got {value!r} instead."), message
    assert "\n" not in message


def test_the_message_is_scikit_learns():
    with pytest.raises(ValueError) as refused:
        kernelnet.KernelSVM(C=-1).fit(*blobs())
    assert str(refused.value) == (
        "The 'C' parameter of KernelSVM must be a float in the range (0.0, inf). Got -1 instead."
    )


@pytest.mark.parametrize("name", ESTIMATORS)
def test_every_parameter_has_a_constraint_and_refuses_a_value_of_no_type(name):
    """scikit-learn's check_param_validation, which check_estimator does not run for
    estimators outside scikit-learn: every parameter declared, an object of no valid type
    refused for each, in its words."""
    cls = getattr(kernelnet, name)
    assert set(cls._parameter_constraints) == set(cls().get_params())
    bad_type = type("BadType", (), {})()
    for param in cls().get_params():
        with pytest.raises(ValueError, match=rf"The '{param}' parameter of {name} must be .* Got "):
            cls(**{param: bad_type}).fit(*data_for(name))


GOOD = [
    ("KernelSVM", {"C": 1, "degree": np.int64(2), "kernel": "poly", "gamma": 0}),
    ("KernelSVM", {"C": np.float64(2.0), "class_weight": {0: 2, 1: np.float32(0.5)}}),
    ("KernelSVM", {"qp_options": {"abstol": 1e-9, "maxiters": 50, "show_progress": False}}),
    ("KernelSVM", {"solver": "blocked", "working_set": 2, "tol": 1e-2, "cache_size": 0.5}),
    ("LinearSVM", {"batch_size": 8, "schedule": "exponential", "decay": 0.9, "random_state": 3}),
    ("LinearSVM", {"update": "coordinate", "batch_size": 5, "random_state": 1}),
    ("MLPClassifier", {"hidden_layer_sizes": 8, "epochs": 20, "standardize": np.True_}),
    ("MLPClassifier", {"hidden_layer_sizes": [], "epochs": 20, "validation_fraction": 0.25}),
    ("MLPClassifier", {"hidden_layer_sizes": np.array([6, 4]), "epochs": 20}),
    ("MLPClassifier", {"epochs": 5, "random_state": np.random.default_rng(1)}),
    ("KNeighborsClassifier", {"n_neighbors": np.int32(3), "metric": "cosine"}),
]


@pytest.mark.parametrize("name, params", GOOD, ids=[f"{n}-{sorted(p)}" for n, p in GOOD])
def test_values_scikit_learn_accepts_still_fit(name, params):
    X, y = data_for(name)
    assert getattr(kernelnet, name)(**params).fit(X, y).predict(X).shape == y.shape


def test_class_weight_naming_a_class_not_in_y_is_refused():
    X, y = blobs()
    with pytest.raises(ValueError, match=re.escape("names classes that are not in y: [5]")):
        kernelnet.KernelSVM(class_weight={0: 2.0, 5: 1.0}).fit(X, y)
    with pytest.raises(ValueError, match=re.escape("not in y: ['1']. The classes in y are [0")):
        kernelnet.KernelSVM(class_weight={"1": 2.0}).fit(X, y)  # text, not the label 1
    names = np.array(["a", "b", "c"])[y]
    with pytest.raises(ValueError, match=re.escape("not in y: ['d']")):
        kernelnet.KernelSVM(class_weight={"a": 2.0, "d": 1.0}, solver="blocked").fit(X, names)
    weighted = kernelnet.KernelSVM(class_weight={"a": 2.0}).fit(X, names)
    assert list(weighted.classes_) == ["a", "b", "c"]


def test_a_validation_fraction_that_leaves_nothing_to_train_on_is_refused():
    X, y = blobs(n=4)  # 12 samples: 0.99 holds out all of them
    with pytest.raises(ValueError, match="holds out all 12 samples"):
        kernelnet.MLPClassifier(validation_fraction=0.99, epochs=2).fit(X, y)


def test_linear_svm_weights_that_stop_being_finite_are_divergence_not_constant_predictions():
    X, y = blobs((0, 1))
    with pytest.raises(Diverged, match="try a lower learning rate"):
        kernelnet.LinearSVM(learning_rate=1e306, epochs=50).fit(X * 1e3, y)


def test_complex_data_is_refused_with_scikit_learn_in_use():
    pytest.importorskip("sklearn")
    import sklearn.utils.validation  # noqa: F401 - puts the estimators on scikit-learn's path

    for name in ESTIMATORS:
        X, y = data_for(name)
        with pytest.raises(ValueError, match="(?i)complex data not supported"):
            getattr(kernelnet, name)().fit(X + 1j, y)


# The same refusals in a process that never imports scikit-learn (kernelnet's own input
# checks are used there): the parameter messages are identical, complex X is refused too.
WITHOUT_SKLEARN = """
import sys
sys.modules["sklearn"] = None  # as if it were not installed
import numpy as np
import kernelnet

rng = np.random.default_rng(0)
X = np.vstack([rng.normal(0, 1, (20, 2)), rng.normal(4, 1, (20, 2))])
y = np.repeat([0, 1], 20)
cases = [
    ("KernelSVM", {"cache_size": 0}), ("KernelSVM", {"working_set": 1}),
    ("KernelSVM", {"tol": -1.0}), ("KernelSVM", {"class_weight": {7: 1.0}}),
    ("LinearSVM", {"epochs": 0}), ("LinearSVM", {"learning_rate": float("inf")}),
    ("MLPClassifier", {"hidden_layer_sizes": (0,)}), ("MLPClassifier", {"batch_size": 0}),
    ("MLPClassifier", {"validation_fraction": 1}), ("KNeighborsClassifier", {"n_neighbors": 0}),
]
for name, params in cases:
    try:
        getattr(kernelnet, name)(**params).fit(X, y)
    except ValueError as exc:
        print(str(exc).splitlines()[0])
    else:
        print("accepted", name, params)
for name in ("KernelSVM", "LinearSVM", "MLPClassifier", "KNeighborsClassifier"):
    try:
        getattr(kernelnet, name)().fit(X + 1j, y)
    except ValueError as exc:
        print(name, str(exc).splitlines()[0])
    else:
        print("accepted complex", name)
assert not [m for m in sys.modules if m.startswith("sklearn") and sys.modules[m]]
"""


def test_the_same_refusals_without_scikit_learn():
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SKLEARN], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:10] == [
        f"The 'cache_size' parameter of KernelSVM must be {FLOAT_GT0}. Got 0 instead.",
        "The 'working_set' parameter of KernelSVM must be an int in the range [2, inf). "
        "Got 1 instead.",
        f"The 'tol' parameter of KernelSVM must be {FLOAT_GT0}. Got -1.0 instead.",
        "The 'class_weight' parameter of KernelSVM names classes that are not in y: [7]. "
        "The classes in y are [0, 1].",
        f"The 'epochs' parameter of LinearSVM must be {EPOCHS}. Got 0 instead.",
        f"The 'learning_rate' parameter of LinearSVM must be {FLOAT_GT0}. Got inf instead.",
        f"The 'hidden_layer_sizes' parameter of MLPClassifier must be {INT_GE1} or a list or "
        f"tuple whose items are each {INT_GE1}. Got (0,) instead.",
        f"The 'batch_size' parameter of MLPClassifier must be {INT_GE1}. Got 0 instead.",
        "The 'validation_fraction' parameter of MLPClassifier must be a float in the range "
        "[0.0, 1.0). Got 1 instead.",
        f"The 'n_neighbors' parameter of KNeighborsClassifier must be {INT_GE1}. Got 0 instead.",
    ]
    for line, name in zip(lines[10:], ESTIMATORS):  # scikit-learn: "Complex data not supported"
        assert re.match(f"{name} (X: )?complex data not supported", line, re.I), lines[10:]
    assert len(lines) == 14 and "ComplexWarning" not in done.stderr


# What the command line refuses: the experiment schemas already bound every estimator
# parameter a config can set; each bad value is one line and exit 2, before any run.
CONFIG_VALUES = [
    ("kernel-table", "svm.C=-1", "svm.C: must be > 0"),
    ("kernel-table", "svm.C=.inf", "svm.C: must be finite"),
    ("kernel-table", "kernel.gamma=.nan", "kernel.gamma: must be finite"),
    ("kernel-table", "kernel.degree=true", "kernel.degree: must be an integer"),
    ("kernel-table", "solver.smo_tol=-1e-3", "solver.smo_tol: must be > 0"),
    ("kernel-table", "svm.support_tol=0.5", "svm.support_tol: must be < 0.5"),
    ("svm-primal", "svm.epochs=0", "svm.epochs: must be >= 1"),
    ("svm-primal", "svm.learning_rate=.inf", "svm.learning_rate: must be finite"),
    ("svm-primal", "svm.decay=-1", "svm.decay: must be >= 0"),
    ("mlp", "model.hidden=[0]", "model.hidden[0]: must be >= 1"),
    ("mlp", "train.batch_size=0", "train.batch_size: must be >= 1"),
    ("mlp", "train.epochs=0", "train.epochs: must be >= 1"),
    ("mlp", "data.val_fraction=1", "data.val_fraction: must be < 1"),
    ("mnist-table", "svm.cache_size=0", "svm.cache_size: must be > 0"),
    ("mnist-table", "svm.tol=-1", "svm.tol: must be > 0"),
    ("knn", "knn.k=[0]", "knn.k[0]: must be >= 1"),
]


@pytest.mark.parametrize("experiment, setting, said", CONFIG_VALUES)
def test_the_command_line_refuses_a_bad_estimator_value_in_one_line(
    tmp_path, experiment, setting, said
):
    result = CliRunner().invoke(
        app, [experiment, "--set", setting, "--dry-run", "--runs-dir", str(tmp_path)]
    )
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and said in lines[0], result.stderr
    assert not any(tmp_path.iterdir())


def test_the_python_api_refuses_a_bad_estimator_value_before_a_run(tmp_path):
    from kernelnet.errors import ConfigError

    with pytest.raises(ConfigError, match="svm.C: must be > 0"):
        kernelnet.run("kernel-table", overrides={"svm.C": -1}, runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())
