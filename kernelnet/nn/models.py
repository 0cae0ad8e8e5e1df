"""A multilayer perceptron of any depth, built from the layer functions.

Each hidden layer is affine -> [batch norm] -> activation -> [dropout]; the output layer is
affine. ``TwoLayerNet`` is the one-hidden-layer case. With batch norm the hidden affine
layers have no bias: batch norm subtracts the batch mean, so such a bias has gradient 0
and beta does its job. Parameters live in one dict
(``W1, b1, gamma1, beta1, ..., W{L}, b{L}``) that an optimizer walks; batch-norm running
statistics live apart, in ``running``.

Footprint: :func:`parameter_count` and :func:`activation_bytes` estimate a network from its
sizes; ``MLP.create`` checks the weights against the memory limit before allocating them
(a first layer of a million inputs is 64 million weights per 64 hidden units), and the
trainer checks what training adds (:func:`kernelnet.nn.trainer.training_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernelnet.footprint import check_memory
from kernelnet.nn import layers
from kernelnet.nn.layers import ACTIVATIONS, RunningStats
from kernelnet.nn.losses import LOSSES

INITS = ("normal", "he", "xavier")
EVAL_BATCH = 2000  # rows scored at once in eval mode (MLP.scores)


def parameter_count(input_dim: int, hidden: list[int], n_classes: int) -> int:
    """Weights and biases of an MLP with these sizes (with batch norm, a hidden layer has
    gamma and beta instead of a bias: one more number per hidden unit, not counted)."""
    sizes = [input_dim, *hidden, n_classes]
    return sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))


def activation_bytes(
    input_dim: int, hidden: list[int], n_classes: int, batch: int, n: int, itemsize: int = 8
) -> int:
    """Memory of one training step's data and activations for ``batch`` rows: the batch,
    and per layer the affine output, the activation and the caches and gradients kept for
    the backward pass (about four arrays of the layer's width), and of eval-mode scoring
    of ``n`` rows (EVAL_BATCH at a time)."""
    widths = 4 * sum(hidden) + 2 * n_classes
    return itemsize * (batch * (input_dim + widths) + min(n, EVAL_BATCH) * widths)


def describe(input_dim: int, hidden: list[int], n_classes: int) -> str:
    """``a network of 64,000,192 parameters (1,000,000 inputs, hidden [64])``."""
    count = parameter_count(input_dim, hidden, n_classes)
    return f"a network of {count:,} parameters ({input_dim:,} inputs, hidden {list(hidden)})"


@dataclass
class MLP:
    hidden: list[int]
    activation: str = "relu"
    batchnorm: bool = False
    dropout: float = 0.0
    weight_decay: float = 0.0  # L2: adds weight_decay/2 * sum ||W||^2 to the loss
    loss_name: str = "softmax"
    params: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    running: dict[int, RunningStats] = field(default_factory=dict, repr=False)
    _weight_grads: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def create(
        cls,
        input_dim: int,
        hidden: list[int],
        n_classes: int,
        rng: np.random.Generator,
        *,
        init: str = "normal",
        weight_scale: float = 1e-3,
        dtype: type = np.float32,
        **options,
    ) -> MLP:
        """Weights N(0, scale^2) with scale = ``weight_scale`` (normal), sqrt(2/fan_in) (he)
        or sqrt(1/fan_in) (xavier); biases and batch-norm beta 0, gamma 1."""
        model = cls(list(hidden), **options)
        if model.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {model.activation!r}; valid: {', '.join(ACTIVATIONS)}"
            )
        sizes = [input_dim, *hidden, n_classes]
        itemsize = np.dtype(dtype).itemsize
        largest = max(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        # the weights, and the float64 draw of the largest layer on its way to ``dtype``
        needed = itemsize * parameter_count(input_dim, hidden, n_classes) + 8 * largest
        check_memory(
            describe(input_dim, hidden, n_classes) + f" in {np.dtype(dtype).name}",
            needed,
            "use data with fewer features or fewer hidden units",
        )
        for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            scale = {
                "normal": weight_scale,
                "he": np.sqrt(2 / fan_in),
                "xavier": np.sqrt(1 / fan_in),
            }[init]
            # scaled in place: one float64 draw alive, not three (the same numbers)
            weights = rng.standard_normal((fan_in, fan_out))
            weights *= scale
            model.params[f"W{index}"] = weights.astype(dtype, copy=False)
            if model.batchnorm and index < len(sizes) - 1:
                model.params[f"gamma{index}"] = np.ones(fan_out, dtype=dtype)
                model.params[f"beta{index}"] = np.zeros(fan_out, dtype=dtype)
                model.running[index] = RunningStats(
                    np.zeros(fan_out, dtype), np.ones(fan_out, dtype)
                )
            else:
                model.params[f"b{index}"] = np.zeros(fan_out, dtype=dtype)
        return model

    def state(self) -> dict[str, np.ndarray]:
        """Parameters and batch-norm running statistics: what a checkpoint or keep-best holds."""
        state = {k: v.copy() for k, v in self.params.items()}
        for index, stats in self.running.items():
            state[f"running_mean{index}"] = stats.mean.copy()
            state[f"running_var{index}"] = stats.var.copy()
        return state

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for name in self.params:
            self.params[name][...] = state[name]
        for index in self.running:
            self.running[index] = RunningStats(
                state[f"running_mean{index}"].copy(), state[f"running_var{index}"].copy()
            )

    @property
    def n_layers(self) -> int:
        return len(self.hidden) + 1

    def forward(self, X: np.ndarray, train: bool, rng: np.random.Generator | None = None):
        """Scores (N, C) and the caches for ``backward``. Train mode uses batch statistics
        (and updates ``running``) and applies dropout with ``rng``."""
        act_forward, _ = ACTIVATIONS[self.activation]
        caches = []
        h = X
        for index in range(1, self.n_layers):
            h, affine_cache = layers.affine_forward(
                h, self.params[f"W{index}"], self.params.get(f"b{index}")
            )
            bn_cache = None
            if self.batchnorm:
                h, bn_cache, stats = layers.batchnorm_forward(
                    h,
                    self.params[f"gamma{index}"],
                    self.params[f"beta{index}"],
                    self.running[index],
                    train,
                )
                self.running[index] = stats
            h, act_cache = act_forward(h)
            h, drop_cache = layers.dropout_forward(h, self.dropout, train, rng)
            caches.append((affine_cache, bn_cache, act_cache, drop_cache))
        last = self.n_layers
        scores, affine_cache = layers.affine_forward(
            h, self.params[f"W{last}"], self.params[f"b{last}"]
        )
        caches.append(affine_cache)
        return scores, caches

    def _weight_grad_buffer(self, name: str) -> np.ndarray:
        buffer = self._weight_grads.get(name)
        if buffer is None:
            buffer = self._weight_grads[name] = np.empty_like(self.params[name])
        return buffer

    def backward(self, dscores: np.ndarray, caches) -> dict[str, np.ndarray]:
        """Gradients of the data loss for every parameter (weight decay not included).

        Weight gradients are written into buffers the model reuses: they stay valid until
        the next ``backward`` call."""
        _, act_backward = ACTIVATIONS[self.activation]
        grads: dict[str, np.ndarray] = {}
        last = self.n_layers
        dh, grads[f"W{last}"], grads[f"b{last}"] = layers.affine_backward(
            dscores, caches[-1], dW_out=self._weight_grad_buffer(f"W{last}")
        )
        for index in range(last - 1, 0, -1):
            affine_cache, bn_cache, act_cache, drop_cache = caches[index - 1]
            dh = layers.dropout_backward(dh, drop_cache)
            dh = act_backward(dh, act_cache)
            if self.batchnorm:
                dh, grads[f"gamma{index}"], grads[f"beta{index}"] = layers.batchnorm_backward(
                    dh, bn_cache
                )
            dh, grads[f"W{index}"], db = layers.affine_backward(
                dh, affine_cache, need_dx=index > 1, dW_out=self._weight_grad_buffer(f"W{index}")
            )
            if f"b{index}" in self.params:
                grads[f"b{index}"] = db
        return grads

    def loss(
        self,
        X: np.ndarray,
        y: np.ndarray,
        train: bool = True,
        rng: np.random.Generator | None = None,
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Mean data loss + L2 penalty, and the gradient of both."""
        scores, caches = self.forward(X, train, rng)
        loss, dscores = LOSSES[self.loss_name](scores, y)
        grads = self.backward(dscores.astype(scores.dtype, copy=False), caches)
        if self.weight_decay:
            for index in range(1, self.n_layers + 1):
                W = self.params[f"W{index}"]
                loss += 0.5 * self.weight_decay * float(np.vdot(W, W))
                grads[f"W{index}"] += self.weight_decay * W
        return loss, grads

    def scores(self, X: np.ndarray, batch_size: int = 2000) -> np.ndarray:
        """Eval-mode scores, computed in batches to bound memory."""
        parts = [
            self.forward(X[i : i + batch_size], train=False)[0]
            for i in range(0, len(X), batch_size)
        ]
        return np.concatenate(parts)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.scores(X).argmax(axis=1)


def two_layer_net(
    input_dim: int, hidden: int, n_classes: int, rng: np.random.Generator, **kw
) -> MLP:
    """The classic TwoLayerNet: affine - ReLU - affine - softmax."""
    return MLP.create(input_dim, [hidden], n_classes, rng, **kw)
