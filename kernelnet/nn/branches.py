"""Networks whose branches are summed before the output layer (skip connections).

``BranchSumNet``: branch b (b = 1..B) is a chain of b hidden layers (affine + activation)
of width H applied to the input, each branch with weights of its own; the branch outputs are
summed, h = sum_b h_b, and the output is y = h W_out + b_out. Shorter branches act as
shortcuts around the deeper ones. Gradients: dh_b = dh for every branch.

``SkipSumNet``: the skip network of the fitting assignment, which sums affine outputs
a_1 + a_2 + a_3 (no activation after them) and feeds the sum to a linear output layer,
y = (a_1 + ... + a_K) W_out + b_out. What each a_k reads is given two ways:

- ``wiring="input"``, the assignment's equations as written: a_1 = x W_1 + b_1,
  a_2 = s(x) W_2 + b_2, a_3 = s(s(x)) W_3 + b_3, i.e. a_k = s^(k-1)(x) W_k + b_k with the
  activation s applied elementwise to the input. y is then linear in the fixed features
  x, s(x), s(s(x)): the width adds nothing (for ReLU, s(s(x)) = s(x)).
- ``wiring="chain"``, a deep network with a skip connection from every layer to the sum:
  a_1 = x W_1 + b_1, a_{k+1} = s(a_k) W_{k+1} + b_{k+1}. The assignment's own derivative
  of a_3 (through the ReLU of a_2) follows this reading.

Row-vector convention, x (N, D). dMSE/dx for MSE = 1/2 ||y - t||^2, with g = y - t and
da = g W_out^T (every a_k gets the same da):
input: dx = da W_1^T + (da W_2^T) * s'(x) + (da W_3^T) * s'(s(x)) * s'(x);
chain: the chain rule back along a_3 -> a_2 -> a_1, each a_k adding its own da.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernelnet.nn import layers
from kernelnet.nn.layers import ACTIVATIONS
from kernelnet.nn.losses import LOSSES


class _SummedNet:
    """What the trainer asks of both networks, from their ``params``, ``loss_name``,
    ``forward`` and ``backward`` (whose result is ``(dX, grads)``)."""

    params: dict[str, np.ndarray]
    loss_name: str

    def loss(self, X: np.ndarray, y: np.ndarray, train: bool = True, rng=None):
        out, cache = self.forward(X)
        loss, dout = LOSSES[self.loss_name](out, y)
        return loss, self.backward(dout, cache)[1]

    def state(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.params.items()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for name in self.params:
            self.params[name][...] = state[name]

    def scores(self, X: np.ndarray) -> np.ndarray:
        return self.forward(X)[0]


@dataclass
class BranchSumNet(_SummedNet):
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

    def backward(self, dout: np.ndarray, cache):
        """(dX, grads): the gradient for the input and for every parameter, given
        ``dout`` = dL/d(output)."""
        caches, out_cache = cache
        grads: dict[str, np.ndarray] = {}
        dh, grads["W_out"], grads["b_out"] = layers.affine_backward(dout, out_cache)
        _, act_backward = ACTIVATIONS[self.activation]
        dX = 0.0
        for b, branch in enumerate(caches, start=1):
            d = dh  # the sum passes the same gradient to every branch
            for depth in range(b, 0, -1):
                affine_cache, act_cache = branch[depth - 1]
                d = act_backward(d, act_cache)
                d, grads[f"W{b}_{depth}"], grads[f"b{b}_{depth}"] = layers.affine_backward(
                    d, affine_cache
                )
            dX = dX + d  # every branch reads the input
        return dX, grads


WIRINGS = ("input", "chain")


@dataclass
class SkipSumNet(_SummedNet):
    depth: int  # K: the number of summed affine outputs a_1..a_K
    wiring: str = "input"
    activation: str = "relu"
    loss_name: str = "mse"
    params: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def create(
        cls,
        input_dim: int,
        width: int,
        depth: int,
        output_dim: int,
        rng: np.random.Generator,
        activation: str = "relu",
        wiring: str = "input",
    ) -> SkipSumNet:
        """Weights N(0, 1/fan_in) (Xavier), biases 0. ``wiring`` "input": W_k (D, H);
        "chain": W_1 (D, H), W_k (H, H) for k > 1; W_out (H, output_dim)."""
        if wiring not in WIRINGS:
            raise ValueError(f"unknown wiring {wiring!r}; valid: {', '.join(WIRINGS)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
        net = cls(depth, wiring, activation)
        for k in range(1, depth + 1):
            fan_in = input_dim if wiring == "input" or k == 1 else width
            net.params[f"W{k}"] = rng.normal(size=(fan_in, width)) * np.sqrt(1 / fan_in)
            net.params[f"b{k}"] = np.zeros(width)
        net.params["W_out"] = rng.normal(size=(width, output_dim)) * np.sqrt(1 / width)
        net.params["b_out"] = np.zeros(output_dim)
        return net

    def forward(self, X: np.ndarray):
        """Output (N, output_dim) and the cache for :meth:`backward`."""
        act_forward, _ = ACTIVATIONS[self.activation]
        total, steps = 0.0, []
        u, act_cache = X, None  # what a_k reads, and the activation that made it
        for k in range(1, self.depth + 1):
            a, affine_cache = layers.affine_forward(u, self.params[f"W{k}"], self.params[f"b{k}"])
            steps.append((affine_cache, act_cache))
            total = total + a
            # the next a reads s(input so far) ("input") or s(a_k) ("chain")
            u, act_cache = act_forward(u if self.wiring == "input" else a)
        out, out_cache = layers.affine_forward(total, self.params["W_out"], self.params["b_out"])
        return out, (steps, out_cache)

    def backward(self, dout: np.ndarray, cache):
        """(dX, grads) given ``dout`` = dL/d(output): every a_k receives da = dout W_out^T
        from the sum; the gradient of what a_k read flows back through its activation."""
        steps, out_cache = cache
        _, act_backward = ACTIVATIONS[self.activation]
        grads: dict[str, np.ndarray] = {}
        da, grads["W_out"], grads["b_out"] = layers.affine_backward(dout, out_cache)
        carried = 0.0  # dL/d(what a_{k+1} read), on its way back
        for k in range(self.depth, 0, -1):
            affine_cache, act_cache = steps[k - 1]
            if self.wiring == "chain":
                # a_k feeds the sum and, through s, a_{k+1}
                du, grads[f"W{k}"], grads[f"b{k}"] = layers.affine_backward(
                    da + carried, affine_cache
                )
            else:
                # u_k = s(u_{k-1}) feeds a_k and, through s, u_{k+1}
                du, grads[f"W{k}"], grads[f"b{k}"] = layers.affine_backward(da, affine_cache)
                du = du + carried
            carried = du if act_cache is None else act_backward(du, act_cache)
        return carried, grads

    def input_gradient(self, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """The assignment's error and its input gradient: MSE = 1/2 sum ||y_pred - y||^2
        over the rows, and dMSE/dX (N, D)."""
        out, cache = self.forward(X)
        diff = out - y
        return 0.5 * float((diff * diff).sum()), self.backward(diff, cache)[0]
