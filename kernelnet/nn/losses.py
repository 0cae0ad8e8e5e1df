"""Losses return ``(loss, dscores)``: the mean loss over the batch and its gradient with
respect to the scores (so the gradient already carries the 1/N)."""

from __future__ import annotations

import numpy as np

from kernelnet.nn.functional import exp_nonpositive, log_softmax, sigmoid, softplus


def softmax_cross_entropy(scores: np.ndarray, y: np.ndarray):
    """L = -mean_i log softmax(s_i)[y_i];  dL/ds = (softmax(s) - onehot(y)) / N.

    ``scores`` (N, C), ``y`` (N,) integer class indices. Stable for any |s|: uses the
    log-sum-exp shift, never exp of a large positive number.
    """
    n = scores.shape[0]
    log_probs = log_softmax(scores)
    rows = np.arange(n)
    loss = -log_probs[rows, y].mean()
    dscores = exp_nonpositive(log_probs)
    dscores[rows, y] -= 1
    dscores /= n
    return float(loss), dscores


def mean_squared_error(pred: np.ndarray, target: np.ndarray):
    """L = mean over all entries of (pred - target)^2;  dL/dpred = 2 (pred - target) / size."""
    diff = pred - target
    return float((diff * diff).mean()), 2.0 * diff / diff.size


def binary_cross_entropy_with_logits(logits: np.ndarray, y: np.ndarray):
    """L = mean softplus(z) - y z (= -y log s(z) - (1-y) log(1 - s(z)));  dL/dz = (s(z) - y)/size.

    ``y`` in {0, 1} (or probabilities), same shape as ``logits``.
    """
    loss = (softplus(logits) - y * logits).mean()
    return float(loss), (sigmoid(logits) - y) / logits.size


def multiclass_hinge(scores: np.ndarray, y: np.ndarray, margin: float = 1.0):
    """Crammer-Singer-style sum over wrong classes of max(0, s_j - s_y + margin), mean over
    the batch (the multiclass SVM loss)."""
    n = scores.shape[0]
    rows = np.arange(n)
    correct = scores[rows, y][:, None]
    margins = np.maximum(0, scores - correct + margin)
    margins[rows, y] = 0
    loss = margins.sum() / n
    positive = (margins > 0).astype(scores.dtype)
    positive[rows, y] = -positive.sum(axis=1)
    return float(loss), positive / n


LOSSES = {
    "softmax": softmax_cross_entropy,
    "hinge": multiclass_hinge,
    "mse": mean_squared_error,
}
