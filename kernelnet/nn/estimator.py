"""``kernelnet.MLPClassifier``: the nn library's multilayer perceptron, trained by the one
trainer (:mod:`kernelnet.nn.trainer`), with scikit-learn's estimator API."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from kernelnet.estimator_base import (
    MAX_EPOCHS,
    BaseEstimator,
    ClassifierMixin,
    Interval,
    SequenceOf,
    StrOptions,
    at_least_two_classes,
    check_fitted,
    require_y,
    validate,
)
from kernelnet.nn.functional import softmax
from kernelnet.nn.layers import ACTIVATIONS
from kernelnet.nn.models import MLP
from kernelnet.nn.optim import OPTIMIZERS, make_optimizer
from kernelnet.nn.trainer import TrainSettings, train_classifier
from kernelnet.seeding import estimator_rng

_LAYER = Interval(Integral, 1, None, closed="left")
_POSITIVE = Interval(Real, 0, None, closed="neither")  # finite and > 0


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Softmax classifier with hidden layers ``hidden_layer_sizes`` (a sequence of widths,
    or one int for one layer, as scikit-learn takes it; He initialization),
    trained for ``epochs`` epochs of minibatches of ``batch_size`` with ``optimizer``;
    ``validation_fraction`` of the data is held out to keep the best epoch (0: keep the
    last); ``standardize`` scales each feature by the training mean and standard deviation
    (kept with the model, so predict takes raw data). Divergence raises
    :class:`~kernelnet.errors.Diverged`."""

    _parameter_constraints = {
        "hidden_layer_sizes": [_LAYER, SequenceOf(_LAYER)],
        "activation": [StrOptions(ACTIVATIONS)],
        "optimizer": [StrOptions(OPTIMIZERS)],
        "learning_rate": [_POSITIVE],
        "epochs": [Interval(Integral, 1, MAX_EPOCHS, closed="both")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "standardize": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation: str = "relu",
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        epochs: int = 50,
        batch_size: int = 100,
        weight_decay: float = 0.0,
        validation_fraction: float = 0.0,
        standardize: bool = False,
        random_state=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.standardize = standardize
        self.random_state = random_state

    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        return [int(sizes)] if isinstance(sizes, Integral) else [int(s) for s in sizes]

    def fit(self, X, y=None):
        self._validate_params()
        require_y(self, y)
        X, y = validate(self, X, y, reset=True)
        self.mean_ = X.mean(axis=0) if self.standardize else np.zeros(X.shape[1])
        scale = X.std(axis=0) if self.standardize else np.ones(X.shape[1])
        self.scale_ = np.where(scale > 0, scale, 1.0)
        X = (X - self.mean_) / self.scale_
        self.classes_, codes = np.unique(y, return_inverse=True)
        at_least_two_classes(self.classes_)
        rng = estimator_rng(self.random_state)
        self.model_ = MLP.create(
            X.shape[1],
            self._hidden_sizes(),
            self.classes_.size,
            rng,
            init="he",
            dtype=np.float64,
            activation=self.activation,
            weight_decay=float(self.weight_decay),
        )
        order = rng.permutation(len(X))
        n_val = int(round(self.validation_fraction * len(X)))
        if n_val >= len(X):
            raise ValueError(
                f"validation_fraction={self.validation_fraction!r} holds out all {len(X)} "
                "samples, leaving none to train on; lower it"
            )
        val, train = order[:n_val], order[n_val:]
        if n_val == 0:
            val = train  # nothing held out: keep the last epoch
        settings = TrainSettings(
            int(self.epochs), int(self.batch_size), keep_best=n_val > 0, log_epochs=False
        )
        self.history_ = train_classifier(
            self.model_,
            make_optimizer(self.optimizer, lr=float(self.learning_rate)),
            X[train],
            codes[train],
            X[val],
            codes[val],
            settings,
            rng,
        )
        return self

    def predict_proba(self, X):
        check_fitted(self)
        X = validate(self, X, reset=False)
        return softmax(self.model_.scores((X - self.mean_) / self.scale_))

    def _state(self) -> dict:
        return {
            "classes": self.classes_,
            "n_features_in": self.n_features_in_,
            "mean": self.mean_,
            "scale": self.scale_,
            "hidden": list(self.model_.hidden),
            "params": dict(self.model_.params),
        }

    def _check_state(self, state) -> dict:
        """A saved :meth:`_state` checked as a whole (``state`` is a
        :class:`kernelnet.model_io.StateView`): sorted distinct classes; finite mean and
        positive scale of shape (n_features_in,); the hidden widths of
        ``hidden_layer_sizes``; and exactly the network's finite weights, chained layer to
        layer: W1 (n_features_in, h1), b1 (h1,), ..., W_last (h_last, n_classes)."""
        state.keys("classes", "n_features_in", "mean", "scale", "hidden", "params")
        classes = state.labels("classes", at_least=2)
        n_features = state.integer("n_features_in", low=1)
        mean = state.array("mean", "f", (n_features,))
        scale = state.array("scale", "f", (n_features,))
        state.require((scale > 0).all(), "holds a value <= 0 (it divides)", "scale")
        hidden = state.integers("hidden", low=1)
        wanted = self._hidden_sizes()
        state.require(hidden == wanted, f"{hidden}, not hidden_layer_sizes {wanted}", "hidden")
        weights = state.view("params")
        sizes = [n_features, *hidden, classes.size]
        layers = range(1, len(sizes))
        weights.keys(*[f"{kind}{i}" for i in layers for kind in ("W", "b")])
        params = {}
        for i, fan_in, fan_out in zip(layers, sizes[:-1], sizes[1:]):
            params[f"W{i}"] = weights.array(f"W{i}", "f", (fan_in, fan_out))
            params[f"b{i}"] = weights.array(f"b{i}", "f", (fan_out,))
        return {
            "classes": classes,
            "n_features_in": n_features,
            "mean": mean,
            "scale": scale,
            "hidden": hidden,
            "params": params,
        }

    def _set_state(self, state: dict) -> None:
        self.classes_ = np.asarray(state["classes"])
        self.n_features_in_ = int(state["n_features_in"])
        self.mean_, self.scale_ = np.asarray(state["mean"]), np.asarray(state["scale"])
        params = {k: np.asarray(v) for k, v in state["params"].items()}
        self.model_ = MLP(
            list(state["hidden"]),
            activation=self.activation,
            weight_decay=float(self.weight_decay),
            params=params,
        )

    def predict(self, X):
        best = np.argmax(self.predict_proba(X), axis=1)  # checks that the model is fitted first
        return self.classes_[best]
