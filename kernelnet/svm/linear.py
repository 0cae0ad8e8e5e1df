"""``kernelnet.LinearSVM``: the primal soft-margin SVM trained by gradient descent on the
hinge loss (:func:`kernelnet.svm.primal.fit_gradient_descent`), with scikit-learn's
estimator API. Two classes; the smaller label is -1. ``update`` picks the step rule:
``simultaneous`` (both gradients at (w, b), the assignment's Algorithm 1) or
``coordinate`` (b's gradient at the already updated w; see :mod:`kernelnet.svm.primal`)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from kernelnet.data.validation import binary_labels
from kernelnet.errors import Diverged
from kernelnet.estimator_base import (
    MAX_EPOCHS,
    BaseEstimator,
    ClassifierMixin,
    Interval,
    StrOptions,
    check_fitted,
    require_y,
    validate,
)
from kernelnet.seeding import estimator_rng
from kernelnet.svm.primal import SCHEDULES, UPDATES, fit_gradient_descent


class LinearSVM(ClassifierMixin, BaseEstimator):
    """min 1/2 ||w||^2 + C sum_i max(0, 1 - y_i (w.x_i + b)), from w = 0, b = 0, for
    ``epochs`` full-batch steps (``batch_size=None``) or minibatch epochs. Weights that
    stop being finite (a learning rate far too large) raise
    :class:`~kernelnet.errors.Diverged`."""

    _parameter_constraints = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "epochs": [Interval(Integral, 1, MAX_EPOCHS, closed="both")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "schedule": [StrOptions(SCHEDULES)],
        "decay": [Interval(Real, 0, None, closed="left")],
        "update": [StrOptions(UPDATES)],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        C: float = 1.0,
        learning_rate: float = 1e-3,
        epochs: int = 100,
        batch_size: int | None = None,
        schedule: str = "constant",
        decay: float = 0.0,
        random_state=None,
        update: str = "simultaneous",
    ):
        self.C = C
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.schedule = schedule
        self.decay = decay
        self.random_state = random_state
        self.update = update

    def fit(self, X, y=None):
        self._validate_params()
        require_y(self, y)
        X, y = validate(self, X, y, reset=True)
        self.classes_ = np.unique(y)
        if self.classes_.size > 2:
            raise ValueError(
                f"Only binary classification is supported. Got {self.classes_.size} classes; "
                "use KernelSVM(kernel='linear') for more"
            )
        y_pm, self.label_mapping_ = binary_labels(y)  # ValueError-compatible for 1 or 3+ classes
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is said once, below
            fit = fit_gradient_descent(
                X,
                y_pm,
                float(self.C),
                float(self.learning_rate),
                int(self.epochs),
                batch_size=self.batch_size,
                schedule=self.schedule,
                decay=float(self.decay),
                rng=estimator_rng(self.random_state),
                history=False,  # only the final weights are used
                update=self.update,
            )
        if not (np.isfinite(fit.w).all() and np.isfinite(fit.b)):
            raise Diverged(
                f"{type(self).__name__} diverged: the weights are not finite after "
                f"{self.epochs} epochs at learning_rate={self.learning_rate!r}; "
                "try a lower learning rate",
                {"epochs": int(self.epochs), "learning_rate": float(self.learning_rate)},
            )
        self.coef_, self.intercept_ = fit.w, float(fit.b)
        return self

    def _state(self) -> dict:
        return {
            "coef": self.coef_,
            "intercept": self.intercept_,
            "classes": self.classes_,
            "n_features_in": self.n_features_in_,
        }

    def _check_state(self, state) -> dict:
        """A saved :meth:`_state` checked as a whole (``state`` is a
        :class:`kernelnet.model_io.StateView`): two distinct classes (the -1 class first:
        svm-primal orders them by its recorded label mapping), a finite coef of shape
        (n_features_in,), a finite intercept."""
        state.keys("coef", "intercept", "classes", "n_features_in")
        n_features = state.integer("n_features_in", low=1)
        return {
            "coef": state.array("coef", "f", (n_features,)),
            "intercept": state.number("intercept"),
            "classes": state.labels("classes", at_least=2, at_most=2, ordered=False),
            "n_features_in": n_features,
        }

    def _set_state(self, state: dict) -> None:
        self.coef_, self.intercept_ = np.asarray(state["coef"]), float(state["intercept"])
        self.classes_ = np.asarray(state["classes"])
        self.n_features_in_ = int(state["n_features_in"])

    def decision_function(self, X):
        check_fitted(self)
        X = validate(self, X, reset=False)
        return X @ self.coef_ + self.intercept_

    def predict(self, X):
        positive = self.decision_function(X) > 0  # checks that the model is fitted first
        return self.classes_[positive.astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags
