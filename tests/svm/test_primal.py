import numpy as np
import pytest

from kernelnet.data.registry import load_binary
from kernelnet.svm.primal import (
    fit_gradient_descent,
    hinge_gradient,
    hinge_objective,
    learning_rate_at,
    predict,
)


def loop_reference(X, y, C, lr, epochs):
    """The update rule written with plain loops, one sample at a time."""
    n, d = X.shape
    w, b = [0.0] * d, 0.0
    for _ in range(epochs):
        grad_w, grad_b = list(w), 0.0
        for i in range(n):
            margin = y[i] * (sum(w[k] * X[i, k] for k in range(d)) + b)
            if margin < 1:
                for k in range(d):
                    grad_w[k] -= C * y[i] * X[i, k]
                grad_b -= C * y[i]
        w = [w[k] - lr * grad_w[k] for k in range(d)]
        b = b - lr * grad_b
    return np.array(w), b


@pytest.fixture(scope="module")
def iris():
    return load_binary("iris_binary")


def test_first_epoch_has_the_closed_form(iris):
    # from w = 0, b = 0 every sample violates the margin: w = lr C sum y x, b = lr C sum y
    fit = fit_gradient_descent(iris.X_train, iris.y_train, 5.0, 1e-3, 1)
    np.testing.assert_allclose(fit.w, 1e-3 * 5 * iris.y_train @ iris.X_train, rtol=0, atol=1e-15)
    assert fit.b == pytest.approx(1e-3 * 5 * iris.y_train.sum(), abs=1e-15)


@pytest.mark.parametrize("epochs", [1, 3, 10, 30, 100])
def test_vectorized_training_matches_the_loop_reference(iris, epochs):
    fit = fit_gradient_descent(iris.X_train, iris.y_train, 5.0, 1e-3, epochs)
    w, b = loop_reference(iris.X_train, iris.y_train, 5.0, 1e-3, epochs)
    np.testing.assert_allclose(fit.w, w, rtol=1e-9, atol=1e-12)
    assert fit.b == pytest.approx(b, abs=1e-12)


def test_history_rows_are_the_separate_trainings(iris):
    long = fit_gradient_descent(iris.X_train, iris.y_train, 5.0, 1e-3, 30)
    short = fit_gradient_descent(iris.X_train, iris.y_train, 5.0, 1e-3, 10)
    np.testing.assert_array_equal(long.w_history[10], short.w)
    np.testing.assert_array_equal(long.w_history[0], 0)


def test_subgradient_matches_finite_differences_away_from_kinks():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), np.where(rng.random(20) < 0.5, -1.0, 1.0)
    costs = rng.uniform(0.5, 2.0, 20)
    w, b = rng.normal(size=3), 0.3
    margins = y * (X @ w + b)
    assert np.abs(margins - 1).min() > 1e-3  # no sample sits on the kink
    grad_w, grad_b = hinge_gradient(w, b, X, y, costs)
    h = 1e-6
    numeric_w = [
        (hinge_objective(w + h * e, b, X, y, costs) - hinge_objective(w - h * e, b, X, y, costs))
        / (2 * h)
        for e in np.eye(3)
    ]
    numeric_b = (
        hinge_objective(w, b + h, X, y, costs) - hinge_objective(w, b - h, X, y, costs)
    ) / (2 * h)
    np.testing.assert_allclose(grad_w, numeric_w, rtol=1e-7, atol=1e-7)
    assert grad_b == pytest.approx(numeric_b, rel=1e-7, abs=1e-7)


def test_objective_by_hand():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([1.0, -1.0])
    w = np.array([0.5, 0.5])
    # margins: 1*(0.5+0.1)=0.6 -> slack 0.4; -1*(0.5+0.1)=-0.6 -> slack 1.6
    assert hinge_objective(w, 0.1, X, y, 2.0) == pytest.approx(0.25 + 2 * (0.4 + 1.6))


def test_prediction_rule_is_strictly_positive_for_plus_one():
    w, X = np.array([1.0]), np.array([[-1.0], [0.0], [1.0]])
    np.testing.assert_array_equal(predict(w, 0.0, X), [-1.0, -1.0, 1.0])


def test_full_size_minibatch_equals_batch_descent(iris):
    rng = np.random.default_rng(0)
    batch = fit_gradient_descent(iris.X_train, iris.y_train, 5.0, 1e-3, 20)
    n = iris.X_train.shape[0]
    mini = fit_gradient_descent(iris.X_train, iris.y_train, 5.0, 1e-3, 20, batch_size=n, rng=rng)
    np.testing.assert_allclose(mini.w, batch.w, rtol=1e-10, atol=1e-12)


def test_stochastic_training_is_reproducible_from_the_generator(iris):
    def run(seed):
        return fit_gradient_descent(
            iris.X_train, iris.y_train, 5.0, 1e-3, 5, batch_size=8, rng=np.random.default_rng(seed)
        )

    np.testing.assert_array_equal(run(1).w, run(1).w)
    assert not np.array_equal(run(1).w, run(2).w)


def test_stochastic_training_learns(iris):
    fit = fit_gradient_descent(
        iris.X_train,
        iris.y_train,
        5.0,
        1e-3,
        30,
        batch_size=4,
        schedule="inverse",
        decay=0.1,
        rng=np.random.default_rng(0),
    )
    assert (predict(fit.w, fit.b, iris.X_test) == iris.y_test).mean() >= 0.9


def test_schedules():
    assert learning_rate_at(0.1, "constant", 0.5, 3) == 0.1
    assert learning_rate_at(0.1, "inverse", 0.5, 2) == pytest.approx(0.05)
    assert learning_rate_at(0.1, "exponential", 0.5, 2) == pytest.approx(0.025)


def test_class_weights_scale_the_cost_per_sample():
    X = np.array([[1.0], [-1.0]])
    y = np.array([1.0, -1.0])
    _, grad_b = hinge_gradient(np.zeros(1), 0.0, X, y, np.array([3.0, 1.0]))
    assert grad_b == -2.0  # -(3*1 + 1*(-1))


def test_invalid_cost_is_rejected():
    with pytest.raises(ValueError, match="C must be > 0"):
        hinge_objective(np.zeros(1), 0.0, np.ones((1, 1)), np.ones(1), 0.0)
