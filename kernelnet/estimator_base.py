"""What kernelnet's estimators share with scikit-learn's API, without importing it.

The base classes give scikit-learn's ``get_params``/``set_params``/``repr``/``score`` and
describe themselves to it through ``__sklearn_tags__`` (which imports scikit-learn only
when scikit-learn asks), so clone, Pipeline, GridSearchCV and ``check_estimator`` see a
native classifier while ``kernelnet svm-primal`` never pays the second scikit-learn takes
to import.

Input is validated by scikit-learn's own ``validate_data`` when scikit-learn is in use in
the process (it is loaded: you are calling it, or it is calling the estimator), so errors
and feature names are exactly scikit-learn's; otherwise by the same checks in
:mod:`kernelnet.data.validation`. The numbers are the same either way.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import numpy as np


def sklearn_in_use() -> bool:
    return "sklearn.utils.validation" in sys.modules


class BaseEstimator:
    """get_params/set_params from the constructor's signature (scikit-learn's rule)."""

    @classmethod
    def _param_names(cls) -> list[str]:
        parameters = inspect.signature(cls.__init__).parameters.values()
        return sorted(p.name for p in parameters if p.name != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any):
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {self}. "
                    f"Valid parameters are: {valid!r}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({shown})"

    def __sklearn_tags__(self):
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False))

    def get_metadata_routing(self):
        """scikit-learn's metadata routing: each method's arguments other than X and y
        (``score``'s sample_weight) are known and not requested, scikit-learn's default."""
        from sklearn.utils.metadata_routing import MetadataRequest

        requests = MetadataRequest(owner=type(self).__name__)
        for method in ("fit", "predict", "predict_proba", "decision_function", "score"):
            if callable(getattr(self, method, None)):
                for name in inspect.signature(getattr(self, method)).parameters:
                    if name not in ("X", "y"):
                        getattr(requests, method).add_request(param=name, alias=None)
        return requests


class ClassifierMixin:
    _estimator_type = "classifier"

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy of ``predict(X)`` against ``y`` (weighted by ``sample_weight``)."""
        correct = self.predict(X) == np.asarray(y)
        return float(np.average(correct, weights=sample_weight))

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        return tags


class NotFitted(ValueError, AttributeError):
    """Raised by predict-like methods before fit (scikit-learn's NotFittedError shape)."""


def require_y(estimator: Any, y: Any) -> None:
    """fit(X) without y is a ValueError in scikit-learn's words."""
    if y is None:
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target y is None"
        )


def at_least_two_classes(classes: np.ndarray) -> None:
    if classes.size < 2:
        raise ValueError(
            f"The number of classes has to be greater than one; got {classes.size} class"
        )


def check_fitted(estimator: Any) -> None:
    if sklearn_in_use():
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(estimator)
    elif not any(name.endswith("_") and not name.startswith("_") for name in vars(estimator)):
        raise NotFitted(f"this {type(estimator).__name__} is not fitted yet; call fit first")


def validate(estimator: Any, X: Any, y: Any = None, reset: bool = True):
    """Checked X (and y): finite float64 2-D arrays, labels of any type, feature count
    recorded by fit (``n_features_in_``) and checked afterwards."""
    if sklearn_in_use():
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data

        if y is None:
            return validate_data(estimator, X, reset=reset, dtype=np.float64)
        X, y = validate_data(estimator, X, y, reset=reset, dtype=np.float64)
        check_classification_targets(y)
        return X, y
    from kernelnet.data.validation import check_features, check_n_features, check_X_y

    if y is None:
        return check_n_features(X, estimator.n_features_in_) if not reset else check_features(X)
    X, y = check_X_y(X, y)
    estimator.n_features_in_ = X.shape[1]
    return X, y
