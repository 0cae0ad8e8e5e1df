"""Numerically stable elementwise and row-wise functions shared by layers and losses."""

from __future__ import annotations

import numpy as np


def exp_nonpositive(x: np.ndarray) -> np.ndarray:
    """exp(x) for x <= 0 without underflow: x is floored at log of the smallest normal
    number, which changes the result by less than that number (exp(-745) is 0 anyway)."""
    floor = np.log(np.finfo(np.result_type(x, np.float32)).tiny)
    return np.exp(np.maximum(x, floor))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), evaluated without overflow: exp is only taken of -|x|."""
    z = exp_nonpositive(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))."""
    return np.maximum(x, 0) + np.log1p(exp_nonpositive(-np.abs(x)))


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise log softmax of (N, C) scores, shifted by the row max (log-sum-exp trick)."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(exp_nonpositive(shifted).sum(axis=1, keepdims=True))


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exps = exp_nonpositive(shifted)
    return exps / exps.sum(axis=1, keepdims=True)
