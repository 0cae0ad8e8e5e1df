"""A network whose branches are summed before the output layer (a skip-connection block).

Branch b (b = 1..B) is a chain of b hidden layers (affine + activation) of width H applied
to the input; the branch outputs are summed, h = sum_b h_b, and the output is
y = h W_out + b_out. Shorter branches act as shortcuts around the deeper ones, so the sum
mixes shallow and deep features. Gradients: dh_b = dh for every branch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernelnet.nn import layers
from kernelnet.nn.layers import ACTIVATIONS
from kernelnet.nn.losses import LOSSES


@dataclass
class BranchSumNet:
    branches: int
    activation: str = "tanh"
    loss_name: str = "mse"
    params: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def create(
        cls,
        input_dim: int,
        width: int,
        branches: int,
        output_dim: int,
        rng: np.random.Generator,
        activation: str = "tanh",
    ) -> BranchSumNet:
        net = cls(branches, activation)
        for b in range(1, branches + 1):
            fan_in = input_dim
            for depth in range(1, b + 1):
                net.params[f"W{b}_{depth}"] = rng.normal(size=(fan_in, width)) * np.sqrt(1 / fan_in)
                net.params[f"b{b}_{depth}"] = np.zeros(width)
                fan_in = width
        net.params["W_out"] = rng.normal(size=(width, output_dim)) * np.sqrt(1 / width)
        net.params["b_out"] = np.zeros(output_dim)
        return net

    def forward(self, X: np.ndarray):
        act_forward, _ = ACTIVATIONS[self.activation]
        total, caches = 0.0, []
        for b in range(1, self.branches + 1):
            h, branch = X, []
            for depth in range(1, b + 1):
                h, affine_cache = layers.affine_forward(
                    h, self.params[f"W{b}_{depth}"], self.params[f"b{b}_{depth}"]
                )
                h, act_cache = act_forward(h)
                branch.append((affine_cache, act_cache))
            caches.append(branch)
            total = total + h
        out, out_cache = layers.affine_forward(total, self.params["W_out"], self.params["b_out"])
        return out, (caches, out_cache)

    def loss(self, X: np.ndarray, y: np.ndarray, train: bool = True, rng=None):
        out, (caches, out_cache) = self.forward(X)
        loss, dout = LOSSES[self.loss_name](out, y)
        grads: dict[str, np.ndarray] = {}
        dh, grads["W_out"], grads["b_out"] = layers.affine_backward(dout, out_cache)
        _, act_backward = ACTIVATIONS[self.activation]
        for b, branch in enumerate(caches, start=1):
            d = dh  # the sum passes the same gradient to every branch
            for depth in range(b, 0, -1):
                affine_cache, act_cache = branch[depth - 1]
                d = act_backward(d, act_cache)
                d, grads[f"W{b}_{depth}"], grads[f"b{b}_{depth}"] = layers.affine_backward(
                    d, affine_cache, need_dx=depth > 1
                )
        return loss, grads

    def state(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.params.items()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for name in self.params:
            self.params[name][...] = state[name]

    def scores(self, X: np.ndarray) -> np.ndarray:
        return self.forward(X)[0]
