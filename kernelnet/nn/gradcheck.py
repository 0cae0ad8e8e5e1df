"""Gradient checks: every layer and loss against centred finite differences in float64.

For each gradient array, relative error = ||analytic - numeric|| / (||analytic|| + ||numeric||)
(2-norms over the array); a check reports the largest over its arrays. The norm form is
used rather than a per-entry ratio because single entries near zero carry only the
finite-difference noise (about eps * |f| / h = 1e-11 here), which a per-entry ratio turns
into spurious failures. Smooth functions must stay below 1e-7, kinked ones (ReLU, leaky
ReLU, hinge, networks built from them) below 1e-5, with inputs drawn away from the kinks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kernelnet.nn import conv, layers, losses, similarity
from kernelnet.nn.branches import BranchSumNet
from kernelnet.nn.layers import RunningStats
from kernelnet.nn.models import MLP

SMOOTH, KINKED = 1e-7, 1e-5


def numeric_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Centred differences (f(x + h e_i) - f(x - h e_i)) / 2h, perturbing ``x`` in place
    and restoring it; ``f`` reads ``x``."""
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        saved = x[index]
        x[index] = saved + h
        plus = f()
        x[index] = saved - h
        minus = f()
        x[index] = saved
        grad[index] = (plus - minus) / (2 * h)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / max(scale, 1e-300))


@dataclass(frozen=True)
class CheckResult:
    name: str
    max_relative_error: float
    threshold: float

    @property
    def passed(self) -> bool:
        return self.max_relative_error < self.threshold


def _away_from_zero(rng: np.random.Generator, shape, gap: float = 0.1) -> np.ndarray:
    x = rng.normal(size=shape)
    return np.where(x >= 0, x + gap, x - gap)


def _check_layer(forward, backward, inputs: dict[str, np.ndarray], rng, h) -> float:
    """Check d(sum(out * dout))/d(input) for each named input; ``forward(**inputs)`` returns
    (out, cache); ``backward(dout, cache)`` returns one gradient or a tuple in input order."""
    out, cache = forward(**inputs)
    dout = rng.normal(size=out.shape)
    analytic = backward(dout, cache)
    analytic = analytic if isinstance(analytic, tuple) else (analytic,)
    errors = []
    for value, grad in zip(inputs.values(), analytic):
        numeric = numeric_gradient(lambda: float((forward(**inputs)[0] * dout).sum()), value, h)
        errors.append(relative_error(grad, numeric))
    return max(errors)


def _check_loss(loss_fn, scores: np.ndarray, target, h) -> float:
    _, analytic = loss_fn(scores, target)
    numeric = numeric_gradient(lambda: loss_fn(scores, target)[0], scores, h)
    return relative_error(analytic, numeric)


def check_affine(rng, h):
    inputs = {"x": rng.normal(size=(4, 5)), "W": rng.normal(size=(5, 3)), "b": rng.normal(size=3)}
    return _check_layer(layers.affine_forward, layers.affine_backward, inputs, rng, h)


def check_conv2d(rng, h):
    def forward(x, w, b):  # stride 2, padding 1, dilation 2: every option at once
        return conv.conv2d_forward(x, w, b, stride=2, padding=1, dilation=2)

    inputs = {
        "x": rng.normal(size=(2, 3, 7, 6)),
        "w": rng.normal(size=(4, 3, 3, 2)),
        "b": rng.normal(size=4),
    }
    return _check_layer(forward, conv.conv2d_backward, inputs, rng, h)


def check_conv1d(rng, h):
    def forward(x, w, b):  # true convolution (flipped kernel), stride 2, padding 2
        return conv.conv1d_forward(x, w, b, stride=2, padding=2, flip=True)

    inputs = {
        "x": rng.normal(size=(2, 3, 9)),
        "w": rng.normal(size=(2, 3, 4)),
        "b": rng.normal(size=2),
    }
    return _check_layer(forward, conv.conv1d_backward, inputs, rng, h)


def _activation(forward, backward, kinked: bool):
    def check(rng, h):
        x = _away_from_zero(rng, (4, 6)) if kinked else rng.normal(size=(4, 6))
        return _check_layer(forward, backward, {"x": x}, rng, h)

    return check


def _batchnorm(train: bool):
    def check(rng, h):
        running = RunningStats(rng.normal(size=5), rng.uniform(0.5, 2.0, 5))

        def forward(x, gamma, beta):
            out, cache, _ = layers.batchnorm_forward(x, gamma, beta, running, train)
            return out, cache

        inputs = {
            "x": rng.normal(size=(6, 5)),
            "gamma": rng.normal(size=5),
            "beta": rng.normal(size=5),
        }
        return _check_layer(forward, layers.batchnorm_backward, inputs, rng, h)

    return check


def check_dropout(rng, h):
    seed = int(rng.integers(2**32))

    def forward(x):  # the same mask on every evaluation
        return layers.dropout_forward(x, 0.3, True, np.random.default_rng(seed))

    return _check_layer(forward, layers.dropout_backward, {"x": rng.normal(size=(4, 6))}, rng, h)


def check_softmax(rng, h):
    return _check_loss(
        losses.softmax_cross_entropy, rng.normal(size=(5, 4)), rng.integers(0, 4, 5), h
    )


def check_mse(rng, h):
    return _check_loss(
        losses.mean_squared_error, rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), h
    )


def check_bce(rng, h):
    return _check_loss(
        losses.binary_cross_entropy_with_logits,
        rng.normal(size=(6, 2)),
        rng.integers(0, 2, (6, 2)).astype(float),
        h,
    )


def check_hinge(rng, h):
    y = rng.integers(0, 4, 5)
    scores = rng.normal(size=(5, 4))
    # redraw until every margin s_j - s_y + 1 is at least 0.1 away from its kink at 0
    while True:
        margins = scores - scores[np.arange(5), y][:, None] + 1
        margins[np.arange(5), y] = 1.0
        if np.abs(margins).min() >= 0.1:
            return _check_loss(losses.multiclass_hinge, scores, y, h)
        scores = rng.normal(size=(5, 4))


def _min_abs_preactivation(model: MLP, X: np.ndarray) -> float:
    """Smallest |z| over the hidden pre-activations of a plain (no batch norm) MLP."""
    h, smallest = X, np.inf
    for index in range(1, model.n_layers):
        z = h @ model.params[f"W{index}"] + model.params[f"b{index}"]
        smallest = min(smallest, float(np.abs(z).min()))
        h = np.maximum(z, 0)
    return smallest


def _mlp(activation: str, batchnorm: bool):
    def check(rng, h):
        model = MLP.create(
            6,
            [5, 4],
            3,
            rng,
            init="he",
            dtype=np.float64,
            activation=activation,
            batchnorm=batchnorm,
            weight_decay=0.1,
        )
        X, y = rng.normal(size=(8, 6)), rng.integers(0, 3, 8)
        if activation == "relu":  # redraw inputs until no unit sits within 0.01 of its kink
            while _min_abs_preactivation(model, X) < 0.01:
                X = rng.normal(size=(8, 6))
        running = dict(model.running)

        def loss() -> float:
            model.running.update(running)  # train-mode forward updates the running stats
            return model.loss(X, y, train=True)[0]

        # copy: the model reuses its weight-gradient buffers on every backward pass
        grads = {k: v.copy() for k, v in model.loss(X, y, train=True)[1].items()}
        return max(
            relative_error(grads[name], numeric_gradient(loss, value, h))
            for name, value in model.params.items()
        )

    return check


def check_branch_sum(rng, h):
    net = BranchSumNet.create(2, 5, 3, 2, rng)
    X, y = rng.normal(size=(7, 2)), rng.normal(size=(7, 2))
    grads = {k: v.copy() for k, v in net.loss(X, y)[1].items()}
    return max(
        relative_error(grads[name], numeric_gradient(lambda: net.loss(X, y)[0], value, h))
        for name, value in net.params.items()
    )


def check_cosine(rng, h):
    inputs = {"z": rng.normal(size=(5, 4)), "w": rng.normal(size=(5, 4))}
    return _check_layer(similarity.cosine_forward, similarity.cosine_backward, inputs, rng, h)


CHECKS: dict[str, tuple[Callable[[np.random.Generator, float], float], float]] = {
    "affine": (check_affine, SMOOTH),
    "conv2d": (check_conv2d, SMOOTH),
    "conv1d": (check_conv1d, SMOOTH),
    "relu": (_activation(layers.relu_forward, layers.relu_backward, True), KINKED),
    "leaky_relu": (
        _activation(layers.leaky_relu_forward, layers.leaky_relu_backward, True),
        KINKED,
    ),
    "sigmoid": (_activation(layers.sigmoid_forward, layers.sigmoid_backward, False), SMOOTH),
    "tanh": (_activation(layers.tanh_forward, layers.tanh_backward, False), SMOOTH),
    "batchnorm_train": (_batchnorm(True), SMOOTH),
    "batchnorm_eval": (_batchnorm(False), SMOOTH),
    "dropout": (check_dropout, SMOOTH),
    "softmax_cross_entropy": (check_softmax, SMOOTH),
    "mean_squared_error": (check_mse, SMOOTH),
    "binary_cross_entropy": (check_bce, SMOOTH),
    "multiclass_hinge": (check_hinge, KINKED),
    "mlp_tanh_batchnorm": (_mlp("tanh", True), SMOOTH),
    "mlp_relu": (_mlp("relu", False), KINKED),
    "branch_sum_net": (check_branch_sum, SMOOTH),
    "cosine_similarity": (check_cosine, SMOOTH),
}


def run_check(name: str, rng: np.random.Generator, h: float = 1e-5) -> CheckResult:
    check, threshold = CHECKS[name]
    return CheckResult(name, check(rng, h), threshold)
