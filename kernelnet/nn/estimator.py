"""``kernelnet.MLPClassifier``: the nn library's multilayer perceptron, trained by the one
trainer (:mod:`kernelnet.nn.trainer`), with scikit-learn's estimator API."""

from __future__ import annotations

import numpy as np

from kernelnet.estimator_base import (
    BaseEstimator,
    ClassifierMixin,
    at_least_two_classes,
    check_fitted,
    require_y,
    validate,
)
from kernelnet.nn.functional import softmax
from kernelnet.nn.models import MLP
from kernelnet.nn.optim import OPTIMIZERS, make_optimizer
from kernelnet.nn.trainer import TrainSettings, train_classifier
from kernelnet.seeding import estimator_rng


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Softmax classifier with hidden layers ``hidden_layer_sizes`` (He initialization),
    trained for ``epochs`` epochs of minibatches of ``batch_size`` with ``optimizer``;
    ``validation_fraction`` of the data is held out to keep the best epoch (0: keep the
    last); ``standardize`` scales each feature by the training mean and standard deviation
    (kept with the model, so predict takes raw data). Divergence raises
    :class:`~kernelnet.errors.Diverged`."""

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

    def fit(self, X, y=None):
        require_y(self, y)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
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
            list(self.hidden_layer_sizes),
            self.classes_.size,
            rng,
            init="he",
            dtype=np.float64,
            activation=self.activation,
            weight_decay=float(self.weight_decay),
        )
        order = rng.permutation(len(X))
        n_val = int(round(self.validation_fraction * len(X)))
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
