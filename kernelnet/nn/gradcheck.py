"""Gradient checks: every layer and loss against centred finite differences in float64.

For each gradient array, relative error = ||analytic - numeric|| / (||analytic|| + ||numeric||)
(2-norms over the array); a check reports the largest over its arrays. The norm form is
used rather than a per-entry ratio because single entries near zero carry only the
finite-difference noise (about eps * |f| / h = 1e-11 here), which a per-entry ratio turns
into spurious failures. Smooth functions must stay below 1e-7, kinked ones (ReLU, leaky
ReLU, max pooling, hinge, networks built from them) below 1e-5, with inputs drawn away
from the kinks.

Every check covers the gradient of what a layer, loss or network is given (its input: x,
the scores, the data X) as well as of its parameters, and reports the two apart: a
backward pass can be right for the weights and wrong for the input, which only shows once
a layer sits behind another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kernelnet.nn import conv, layers, losses, pooling, similarity
from kernelnet.nn.branches import BranchSumNet, SkipSumNet
from kernelnet.nn.layers import RunningStats
from kernelnet.nn.models import MLP
from kernelnet.svm.primal import hinge_gradient, hinge_objective

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


Errors = dict[str, float]  # relative error per checked array, by name


@dataclass(frozen=True)
class CheckResult:
    name: str
    errors: Errors
    inputs: tuple[str, ...]  # which of the checked arrays are inputs; the rest are parameters
    threshold: float

    @property
    def max_relative_error(self) -> float:
        return max(self.errors.values())

    @property
    def input_error(self) -> float | None:
        found = [e for name, e in self.errors.items() if name in self.inputs]
        return max(found) if found else None

    @property
    def parameter_error(self) -> float | None:
        found = [e for name, e in self.errors.items() if name not in self.inputs]
        return max(found) if found else None

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(name for name in self.errors if name not in self.inputs)

    @property
    def passed(self) -> bool:
        return self.max_relative_error < self.threshold


def _away_from_zero(rng: np.random.Generator, shape, gap: float = 0.1) -> np.ndarray:
    x = rng.normal(size=shape)
    return np.where(x >= 0, x + gap, x - gap)


def _check_layer(forward, backward, inputs: dict[str, np.ndarray], rng, h) -> Errors:
    """Check d(sum(out * dout))/d(array) for each named array (input and parameters alike);
    ``forward(**inputs)`` returns (out, cache); ``backward(dout, cache)`` returns one
    gradient or a tuple in the arrays' order."""
    out, cache = forward(**inputs)
    dout = rng.normal(size=out.shape)
    analytic = backward(dout, cache)
    analytic = analytic if isinstance(analytic, tuple) else (analytic,)
    if len(analytic) != len(inputs):
        raise ValueError(f"backward gave {len(analytic)} gradients for {len(inputs)} arrays")
    errors = {}
    for (name, value), grad in zip(inputs.items(), analytic):
        numeric = numeric_gradient(lambda: float((forward(**inputs)[0] * dout).sum()), value, h)
        errors[name] = relative_error(grad, numeric)
    return errors


def _check_loss(loss_fn, scores: np.ndarray, target, h) -> Errors:
    """A loss's input is its scores (the target is data, not differentiated)."""
    _, analytic = loss_fn(scores, target)
    numeric = numeric_gradient(lambda: loss_fn(scores, target)[0], scores, h)
    return {"scores": relative_error(analytic, numeric)}


def _check_network(
    loss: Callable[[], float], analytic: dict[str, np.ndarray], arrays: dict[str, np.ndarray], h
) -> Errors:
    """``analytic[name]`` against centred differences of ``loss()`` in ``arrays[name]``."""
    return {
        name: relative_error(analytic[name], numeric_gradient(loss, value, h))
        for name, value in arrays.items()
    }


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


def _mlp_input_gradient(model: MLP, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/dX of an MLP's data loss, from the MLP's own backward pass (which stops at the
    first layer's weights): fed the identity matrix with first weights X W1, a copy of the
    network has the same first pre-activations Z1 = X W1 (I M = M exactly) and everything
    after them, and its first weight gradient I^T dL/dZ1 is dL/dZ1; then dL/dX =
    dL/dZ1 W1^T. (Weight decay does not depend on X.)"""
    probe = MLP(
        model.hidden,
        model.activation,
        model.batchnorm,
        model.dropout,
        model.weight_decay,
        model.loss_name,
        params={**model.params, "W1": X @ model.params["W1"]},
        running=dict(model.running),
    )
    scores, caches = probe.forward(np.eye(X.shape[0]), train=True)
    _, dscores = losses.LOSSES[model.loss_name](scores, y)
    dZ1 = probe.backward(dscores, caches)["W1"]
    return dZ1 @ model.params["W1"].T


def _mlp(activation: str, batchnorm: bool):
    def check(rng, h) -> Errors:
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
        model.running.update(running)
        grads["X"] = _mlp_input_gradient(model, X, y)
        model.running.update(running)
        return _check_network(loss, grads, {"X": X, **model.params}, h)

    return check


def check_branch_sum(rng, h) -> Errors:
    net = BranchSumNet.create(2, 5, 3, 2, rng)
    X, y = rng.normal(size=(7, 2)), rng.normal(size=(7, 2))
    out, cache = net.forward(X)
    dX, grads = net.backward(losses.mean_squared_error(out, y)[1], cache)
    return _check_network(lambda: net.loss(X, y)[0], {"X": dX, **grads}, {"X": X, **net.params}, h)


def _min_abs_skip_kink(net: SkipSumNet, X: np.ndarray) -> float:
    """Smallest |value| any ReLU of the skip network is applied to."""
    p, smallest, u = net.params, float(np.abs(X).min()), X
    for k in range(1, net.depth):
        a = u @ p[f"W{k}"] + p[f"b{k}"]
        u = np.maximum(u if net.wiring == "input" else a, 0)
        smallest = min(smallest, float(np.abs(a).min())) if net.wiring == "chain" else smallest
    return smallest


def _skip_net(wiring: str):
    """The fitting assignment's skip network with ReLU: dMSE/dX (MSE = 1/2 ||y - t||^2,
    the assignment's error) and the parameter gradients of the mean MSE."""

    def check(rng, h) -> Errors:
        net = SkipSumNet.create(3, 5, 3, 2, rng, activation="relu", wiring=wiring)
        for value in net.params.values():  # non-zero biases take part in the check
            value += 0.1 * rng.normal(size=value.shape)
        X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
        while _min_abs_skip_kink(net, X) < 0.01:
            X = rng.normal(size=(6, 3))
        errors = _check_network(
            lambda: net.input_gradient(X, y)[0], {"X": net.input_gradient(X, y)[1]}, {"X": X}, h
        )
        grads = net.loss(X, y)[1]
        return errors | _check_network(lambda: net.loss(X, y)[0], grads, net.params, h)

    return check


def check_svm_hinge(rng, h) -> Errors:
    """The primal SVM objective E(w, b) = 1/2 ||w||^2 + sum_i C_i max(0, 1 - y_i (w.x_i + b))
    and its subgradient (the svm-primal lab's hinge_gradient) for w and b; for the data,
    dE/dx_i = -C_i 1[y_i (w.x_i + b) < 1] y_i w. Every margin y_i (w.x_i + b) is drawn at
    least 0.1 away from the kink at 1, with violators and non-violators both present."""
    n, d = 12, 3
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    costs = rng.uniform(0.5, 2.0, n)  # per-sample costs, as the asymmetric SVM uses
    while True:
        X, w, b = rng.normal(size=(n, d)), rng.normal(size=d), float(rng.normal())
        margins = y * (X @ w + b)
        violating = margins < 1
        if np.abs(margins - 1).min() >= 0.1 and 0 < violating.sum() < n:
            break
    b_array = np.array([b])
    grad_w, grad_b = hinge_gradient(w, b, X, y, costs)
    grad_X = -(costs * violating * y)[:, None] * w[None, :]

    def objective() -> float:
        return hinge_objective(w, float(b_array[0]), X, y, costs)

    return _check_network(
        objective,
        {"X": grad_X, "w": grad_w, "b": np.array([grad_b])},
        {"X": X, "w": w, "b": b_array},
        h,
    )


def check_cosine(rng, h) -> Errors:
    inputs = {"z": rng.normal(size=(5, 4)), "w": rng.normal(size=(5, 4))}
    return _check_layer(similarity.cosine_forward, similarity.cosine_backward, inputs, rng, h)


def _distinct(rng, shape) -> np.ndarray:
    """No two values within 0.01: a step of h never changes which value a max pool picks."""
    values = np.arange(int(np.prod(shape))) * 0.01
    return rng.permutation(values - values.mean()).reshape(shape)


def check_maxpool(rng, h) -> Errors:
    def forward(x):  # overlapping 3x3 windows, stride 2, padding 1
        return pooling.maxpool2d_forward(x, 3, 2, 1)

    return _check_layer(
        forward, pooling.maxpool2d_backward, {"x": _distinct(rng, (2, 3, 7, 6))}, rng, h
    )


def check_avgpool(rng, h) -> Errors:
    def forward(x):
        return pooling.avgpool2d_forward(x, 3, 2, 1)

    return _check_layer(
        forward, pooling.avgpool2d_backward, {"x": rng.normal(size=(2, 3, 7, 6))}, rng, h
    )


def check_upsample_nearest(rng, h) -> Errors:
    def forward(x):
        return pooling.upsample_nearest_forward(x, 2)

    x = rng.normal(size=(2, 3, 3, 4))
    return _check_layer(forward, pooling.upsample_nearest_backward, {"x": x}, rng, h)


def check_upsample_bilinear(rng, h) -> Errors:
    def forward(x):
        return pooling.upsample_bilinear_forward(x, 3)

    x = rng.normal(size=(2, 3, 3, 4))
    return _check_layer(forward, pooling.upsample_bilinear_backward, {"x": x}, rng, h)


def check_conv_transpose2d(rng, h) -> Errors:
    def forward(x, w, b):  # stride 2, padding 1, output padding 1: doubles 4x3 to 8x6
        return pooling.conv_transpose2d_forward(x, w, b, stride=2, padding=1, output_padding=1)

    inputs = {
        "x": rng.normal(size=(2, 3, 4, 3)),
        "w": rng.normal(size=(3, 2, 3, 3)),
        "b": rng.normal(size=2),
    }
    return _check_layer(forward, pooling.conv_transpose2d_backward, inputs, rng, h)


@dataclass(frozen=True)
class Check:
    run: Callable[[np.random.Generator, float], Errors]
    threshold: float
    inputs: tuple[str, ...]  # the checked arrays that are inputs; the others are parameters


X_IN, SCORES, DATA = ("x",), ("scores",), ("X",)
CHECKS: dict[str, Check] = {
    "affine": Check(check_affine, SMOOTH, X_IN),
    "conv2d": Check(check_conv2d, SMOOTH, X_IN),
    "conv1d": Check(check_conv1d, SMOOTH, X_IN),
    "conv_transpose2d": Check(check_conv_transpose2d, SMOOTH, X_IN),
    "maxpool2d": Check(check_maxpool, KINKED, X_IN),
    "avgpool2d": Check(check_avgpool, SMOOTH, X_IN),
    "upsample_nearest": Check(check_upsample_nearest, SMOOTH, X_IN),
    "upsample_bilinear": Check(check_upsample_bilinear, SMOOTH, X_IN),
    "relu": Check(_activation(layers.relu_forward, layers.relu_backward, True), KINKED, X_IN),
    "leaky_relu": Check(
        _activation(layers.leaky_relu_forward, layers.leaky_relu_backward, True), KINKED, X_IN
    ),
    "sigmoid": Check(
        _activation(layers.sigmoid_forward, layers.sigmoid_backward, False), SMOOTH, X_IN
    ),
    "tanh": Check(_activation(layers.tanh_forward, layers.tanh_backward, False), SMOOTH, X_IN),
    "batchnorm_train": Check(_batchnorm(True), SMOOTH, X_IN),
    "batchnorm_eval": Check(_batchnorm(False), SMOOTH, X_IN),
    "dropout": Check(check_dropout, SMOOTH, X_IN),
    "softmax_cross_entropy": Check(check_softmax, SMOOTH, SCORES),
    "mean_squared_error": Check(check_mse, SMOOTH, SCORES),
    "binary_cross_entropy": Check(check_bce, SMOOTH, SCORES),
    "multiclass_hinge": Check(check_hinge, KINKED, SCORES),
    "svm_hinge": Check(check_svm_hinge, KINKED, DATA),
    "mlp_tanh_batchnorm": Check(_mlp("tanh", True), SMOOTH, DATA),
    "mlp_relu": Check(_mlp("relu", False), KINKED, DATA),
    "branch_sum_net": Check(check_branch_sum, SMOOTH, DATA),
    "skip_net": Check(_skip_net("input"), KINKED, DATA),
    "skip_net_chain": Check(_skip_net("chain"), KINKED, DATA),
    "cosine_similarity": Check(check_cosine, SMOOTH, ("z", "w")),
}


def run_check(name: str, rng: np.random.Generator, h: float = 1e-5) -> CheckResult:
    check = CHECKS[name]
    return CheckResult(name, check.run(rng, h), check.inputs, check.threshold)
