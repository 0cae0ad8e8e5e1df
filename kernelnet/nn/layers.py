"""Layers as pairs of plain functions: ``forward(x, ...) -> (out, cache)`` and
``backward(dout, cache) -> grads``. Inputs are never modified in place.

Shapes: ``x`` is (N, D); ``W`` is (D, M); ``b`` is (M,).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kernelnet.nn.functional import sigmoid


# -- fully connected: Y = X W + b;  dX = dY W^T,  dW = X^T dY,  db = column sums of dY --
def affine_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray | None):
    """``b=None`` for a layer without bias (e.g. one followed by batch norm)."""
    out = x @ W
    if b is not None:
        out += b
    return out, (x, W)


def affine_backward(
    dout: np.ndarray, cache, need_dx: bool = True, dW_out: np.ndarray | None = None
):
    """Returns (dx, dW, db); ``need_dx=False`` skips dX (the first layer has no use for it).

    ``dW_out``, if given, receives dW (a reused buffer: a fresh (D, M) array per call costs
    page faults once it is larger than the allocator's mmap threshold)."""
    x, W = cache
    dx = dout @ W.T if need_dx else None
    return dx, np.matmul(x.T, dout, out=dW_out), dout.sum(axis=0)


# -- ReLU: max(0, x); derivative is the Heaviside step (0 at x = 0) --
def relu_forward(x: np.ndarray):
    out = np.maximum(x, 0)
    return out, out


def relu_backward(dout: np.ndarray, cache):
    return dout * (cache > 0)


# -- leaky ReLU: x if x > 0 else slope * x --
def leaky_relu_forward(x: np.ndarray, slope: float = 0.01):
    return np.where(x > 0, x, slope * x), (x, slope)


def leaky_relu_backward(dout: np.ndarray, cache):
    x, slope = cache
    return np.where(x > 0, dout, slope * dout)


# -- sigmoid: s = 1/(1+e^-x);  ds/dx = s (1 - s) --
def sigmoid_forward(x: np.ndarray):
    out = sigmoid(x)
    return out, out


def sigmoid_backward(dout: np.ndarray, cache):
    return dout * cache * (1 - cache)


# -- tanh: t = tanh x;  dt/dx = 1 - t^2 --
def tanh_forward(x: np.ndarray):
    out = np.tanh(x)
    return out, out


def tanh_backward(dout: np.ndarray, cache):
    return dout * (1 - cache * cache)


# -- identity (a linear network) --
def identity_forward(x: np.ndarray):
    return x, None


def identity_backward(dout: np.ndarray, cache):
    return dout


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
    "identity": (identity_forward, identity_backward),
}


# -- batch normalization --
class RunningStats(NamedTuple):
    """Batch-norm statistics for evaluation: kept apart from the trainable parameters."""

    mean: np.ndarray
    var: np.ndarray


def batchnorm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running: RunningStats,
    train: bool,
    momentum: float = 0.9,
    eps: float = 1e-5,
):
    """y = gamma * (x - mu) / sqrt(var + eps) + beta, per feature.

    Train mode uses the batch statistics and returns updated running statistics
    (momentum * old + (1 - momentum) * batch); eval mode uses ``running`` unchanged.
    Returns ``(out, cache, running)``.
    """
    if train:
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        running = RunningStats(
            momentum * running.mean + (1 - momentum) * mu,
            momentum * running.var + (1 - momentum) * var,
        )
    else:
        mu, var = running.mean, running.var
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mu) * inv_std
    return gamma * x_hat + beta, (x_hat, gamma, inv_std, train), running


def batchnorm_backward(dout: np.ndarray, cache):
    """Returns (dx, dgamma, dbeta). In train mode mu and var depend on x:
    dx = inv_std / N * (N dxh - sum(dxh) - x_hat * sum(dxh * x_hat)), dxh = dout * gamma."""
    x_hat, gamma, inv_std, train = cache
    dgamma = (dout * x_hat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    dx_hat = dout * gamma
    if not train:
        return dx_hat * inv_std, dgamma, dbeta
    n = dout.shape[0]
    dx = (inv_std / n) * (n * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0))
    return dx, dgamma, dbeta


# -- inverted dropout: keep each unit with probability 1 - p and scale by 1/(1 - p) --
def dropout_forward(x: np.ndarray, p: float, train: bool, rng: np.random.Generator | None):
    if not train or p == 0:
        return x, None
    if rng is None:
        raise ValueError("dropout in train mode needs a numpy.random.Generator")
    mask = (rng.random(x.shape) >= p).astype(x.dtype) / (1 - p)
    return x * mask, mask


def dropout_backward(dout: np.ndarray, cache):
    return dout if cache is None else dout * cache
