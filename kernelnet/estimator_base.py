"""What kernelnet's estimators share with scikit-learn's API, with scikit-learn optional.

With scikit-learn installed, estimators derive from its ``BaseEstimator`` and
``ClassifierMixin`` and validate input with its ``validate_data`` (so clone, Pipeline,
GridSearchCV and ``check_estimator`` see a native estimator). Without it, small stand-ins
give the same ``get_params``/``set_params``/``score`` and the checks of
:mod:`kernelnet.data.validation`.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data

    HAVE_SKLEARN = True
except ImportError:  # the command line never needs scikit-learn
    HAVE_SKLEARN = False

    class BaseEstimator:  # type: ignore[no-redef]
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
                    raise ValueError(f"invalid parameter {name!r}; valid: {', '.join(valid)}")
                setattr(self, name, value)
            return self

        def __repr__(self) -> str:
            shown = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
            return f"{type(self).__name__}({shown})"

    class ClassifierMixin:  # type: ignore[no-redef]
        def score(self, X: Any, y: Any) -> float:
            return float(np.mean(self.predict(X) == np.asarray(y)))


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
    if HAVE_SKLEARN:
        check_is_fitted(estimator)
    elif not any(name.endswith("_") and not name.startswith("_") for name in vars(estimator)):
        raise NotFitted(f"this {type(estimator).__name__} is not fitted yet; call fit first")


def validate(estimator: Any, X: Any, y: Any = None, reset: bool = True):
    """Checked X (and y): finite float64 2-D arrays, labels of any type, feature count
    recorded by fit (``n_features_in_``) and checked afterwards."""
    if HAVE_SKLEARN:
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
