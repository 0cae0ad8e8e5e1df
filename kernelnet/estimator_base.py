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

Hyperparameters are declared per class as scikit-learn declares them
(``_parameter_constraints``: a list of acceptable forms per parameter, built from
:class:`Interval`, :class:`StrOptions`, types, None, "boolean", "random_state") and checked at
the start of ``fit`` (never in ``__init__`` or ``set_params``, scikit-learn's rule), with
scikit-learn's message: "The 'C' parameter of KernelSVM must be a float in the range
(0.0, inf). Got -1 instead." A loaded model's parameters go through the same check.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

import numpy as np


def sklearn_in_use() -> bool:
    return "sklearn.utils.validation" in sys.modules


class InvalidParameterError(ValueError, TypeError):
    """A hyperparameter outside its declared constraints: a ValueError (and a TypeError), as
    scikit-learn's InvalidParameterError is, so code written for either catches it."""


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


class Constraint:
    """One acceptable form of a parameter; ``str()`` names it in scikit-learn's words."""

    def satisfied_by(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self, value: Any) -> str:
        """What ``value`` should have been (for most constraints, whatever the value was)."""
        return str(self)


# The largest epoch count an estimator takes, as the command line bounds integer settings:
# beyond it a fit would run for days, and 2**70 would never end.
MAX_EPOCHS = 10**9


class Interval(Constraint):
    """Numbers of ``kind`` (``numbers.Integral`` or ``numbers.Real``) from ``left`` to
    ``right`` (None: unbounded), ``closed`` on the "left", "right", "both" or "neither"
    side. An unbounded side is open, so infinity is outside unless that side is closed;
    NaN is never inside. A bool is not a number here: scikit-learn lets True pass as 1,
    but a flag given where a count or a rate belongs is a mistake worth a message."""

    def __init__(self, kind: type, left: float | None, right: float | None, *, closed: str):
        if kind not in (Integral, Real) or closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"Interval({kind}, closed={closed!r}) is not a valid constraint")
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def satisfied_by(self, value: Any) -> bool:
        if _is_bool(value) or not isinstance(value, self.kind):
            return False
        if not isinstance(value, Integral) and math.isnan(value):
            return False
        left = -math.inf if self.left is None else self.left
        right = math.inf if self.right is None else self.right
        left_in = value > left or (value == left and self.closed in ("left", "both"))
        right_in = value < right or (value == right and self.closed in ("right", "both"))
        return bool(left_in and right_in)

    def __str__(self) -> str:
        def bound(value: float | None, unbounded: str) -> str:
            if value is None:
                return unbounded
            return str(int(value) if self.kind is Integral else float(value))

        left = "[" if self.closed in ("left", "both") else "("
        right = "]" if self.closed in ("right", "both") else ")"
        kind = "an int" if self.kind is Integral else "a float"
        low, high = bound(self.left, "-inf"), bound(self.right, "inf")
        return f"{kind} in the range {left}{low}, {high}{right}"


class Options(Constraint):
    """One of a fixed set of values of type ``kind``."""

    def __init__(self, kind: type, options: Iterable[Any]):
        self.kind, self.options = kind, tuple(options)

    def satisfied_by(self, value: Any) -> bool:
        return isinstance(value, self.kind) and value in self.options

    def __str__(self) -> str:
        shown = ", ".join(repr(option) for option in self.options)
        return f"a {self.kind.__name__} among {{{shown}}}"


class StrOptions(Options):
    """One of a fixed set of strings."""

    def __init__(self, options: Iterable[str]):
        super().__init__(str, options)


class InstanceOf(Constraint):
    def __init__(self, kind: type):
        self.kind = kind

    def satisfied_by(self, value: Any) -> bool:
        return isinstance(value, self.kind)

    def __str__(self) -> str:
        name = self.kind.__qualname__
        if self.kind.__module__ != "builtins":
            name = f"{self.kind.__module__}.{name}"
        return f"an instance of {name!r}"


class _IsNone(Constraint):
    def satisfied_by(self, value: Any) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"


class _Boolean(Constraint):
    """True or False (Python's or NumPy's); 0 and 1 are numbers, not flags."""

    def satisfied_by(self, value: Any) -> bool:
        return _is_bool(value)

    def __str__(self) -> str:
        return "an instance of 'bool'"


class _Seed(Constraint):
    """What :func:`kernelnet.seeding.estimator_rng` takes: a seed, a Generator, or None."""

    _seed = Interval(Integral, 0, None, closed="left")

    def satisfied_by(self, value: Any) -> bool:
        if value is None or isinstance(value, np.random.Generator):
            return True
        return self._seed.satisfied_by(value)

    def __str__(self) -> str:
        return f"{self._seed}, an instance of 'numpy.random.Generator' or None"


class SequenceOf(Constraint):
    """A list, tuple or 1-D array whose every item satisfies ``item``."""

    def __init__(self, item: Constraint):
        self.item = item

    def satisfied_by(self, value: Any) -> bool:
        if isinstance(value, np.ndarray):
            if value.ndim != 1:
                return False
        elif not isinstance(value, (list, tuple)):
            return False
        return all(self.item.satisfied_by(v) for v in value)

    def __str__(self) -> str:
        return f"a list or tuple whose items are each {self.item}"


class Mapping(Constraint):
    """A dict: either with known ``fields`` (a key's constraints each; keys are optional,
    unknown keys refused) or with any keys and ``values`` each satisfying one of a list."""

    def __init__(self, *, fields: dict[str, list] | None = None, values: list | None = None):
        self.fields = {k: [make_constraint(c) for c in v] for k, v in (fields or {}).items()}
        self.values = None if values is None else [make_constraint(c) for c in values]

    def _rules(self, key: Any) -> list[Constraint] | None:
        return self.values if self.values is not None else self.fields.get(key)

    def _first_problem(self, value: dict) -> Any:
        """The first key whose value (or, with fields, whose name) is refused; None if none."""
        for key, item in value.items():
            rules = self._rules(key)
            if rules is None or not any(rule.satisfied_by(item) for rule in rules):
                return (key,)
        return None

    def satisfied_by(self, value: Any) -> bool:
        return isinstance(value, dict) and self._first_problem(value) is None

    def _keys_text(self) -> str:
        return "a dict with keys among {" + ", ".join(repr(k) for k in self.fields) + "}"

    def describe(self, value: Any) -> str:
        problem = self._first_problem(value) if isinstance(value, dict) else None
        if problem is None:
            return str(self)
        (key,) = problem
        rules = self._rules(key)
        if rules is None:
            return self._keys_text()
        which = "values are each" if self.values is not None else f"{key!r} is"
        return f"a dict whose {which} {_either(rules, value[key])}"

    def __str__(self) -> str:
        if self.values is not None:
            return f"a dict whose values are each {_either(self.values)}"
        return self._keys_text()


def make_constraint(constraint: Any) -> Constraint:
    """A declared constraint as an object: Constraint instances as they are, a type as
    "an instance of", None, "boolean" and "random_state" as scikit-learn spells them."""
    if isinstance(constraint, Constraint):
        return constraint
    if constraint is None:
        return _IsNone()
    if constraint == "boolean":
        return _Boolean()
    if constraint == "random_state":
        return _Seed()
    if isinstance(constraint, type):
        return InstanceOf(constraint)
    raise TypeError(f"not a parameter constraint: {constraint!r}")


def _either(constraints: list[Constraint], value: Any = None) -> str:
    described = [c.describe(value) for c in constraints]
    if len(described) == 1:
        return described[0]
    return f"{', '.join(described[:-1])} or {described[-1]}"


def _shown(value: Any, limit: int = 120) -> str:
    """``repr(value)`` on one line (an array's repr spans several), shortened if long."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_parameter_constraints(
    constraints: dict[str, list], params: dict[str, Any], caller: str
) -> None:
    """InvalidParameterError for the first parameter that satisfies none of its constraints,
    in scikit-learn's words; parameters declared "no_validation" (or not declared) pass."""
    for name, value in params.items():
        declared = constraints.get(name, "no_validation")
        if declared == "no_validation":
            continue
        made = [make_constraint(c) for c in declared]
        if any(c.satisfied_by(value) for c in made):
            continue
        raise InvalidParameterError(
            f"The {name!r} parameter of {caller} must be {_either(made, value)}. "
            f"Got {_shown(value)} instead."
        )


class BaseEstimator:
    """get_params/set_params from the constructor's signature (scikit-learn's rule), and
    the parameters checked against ``_parameter_constraints`` by ``_validate_params``
    (called first thing in ``fit``)."""

    _parameter_constraints: dict[str, list] = {}

    def _validate_params(self) -> None:
        validate_parameter_constraints(
            self._parameter_constraints, self.get_params(deep=False), type(self).__name__
        )

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
