"""soft_margin_svm.py: the primal soft-margin SVM trained by batch gradient descent.

A correct hw3 submission, written as a student would (plain numpy; it must not import
kernelnet: the grading sandbox refuses it). The planted-bug suite
(tests/grading/test_planted_bugs.py) derives every mutant from this file.
"""

import numpy as np


def svm_gradients(X, y, w, b, C):
    """Gradients of E(w, b) = 1/2 ||w||^2 + C sum_i max(0, 1 - y_i (w . x_i + b)).

    X (N, D), y (N,) of -1.0/+1.0, w (D,), b and C floats.
    Returns grad_w (D,) float64 and grad_b (a float).
    """
    margins = y * (X @ w + b)
    violating = (margins < 1).astype(np.float64)  # m_i: inside the margin or misclassified
    coef = C * violating * y
    grad_w = w - X.T @ coef
    grad_b = -np.sum(coef)
    return grad_w, float(grad_b)


def svm_train(X, y, C, learning_rate, num_epochs):
    """Batch gradient descent from w = 0, b = 0, both parameters updated at once.

    Returns w (D,) float64 and b (a float) after num_epochs epochs.
    """
    w = np.zeros(X.shape[1])
    b = 0.0
    for _ in range(num_epochs):
        grad_w, grad_b = svm_gradients(X, y, w, b, C)
        w = w - learning_rate * grad_w
        b = b - learning_rate * grad_b
    return w, float(b)


def svm_predict(X, w, b):
    """+1.0 where w . x_i + b > 0, else -1.0: float64 (N,)."""
    scores = X @ w + b
    return np.where(scores > 0, 1.0, -1.0)
