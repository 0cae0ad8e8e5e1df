"""A partial hw3 submission, as a student who finished one function hands it in: the
primal SVM's gradients written with an explicit loop (correct), svm_train not written, and
the other two files missing. The experiment contract test (tests/experiments/test_contract.py)
grades it beside the reference, so a grading run has two distinct submissions."""

import numpy as np


def svm_gradients(X, y, w, b, C):
    grad_w = np.array(w, dtype=np.float64)
    grad_b = 0.0
    for x_i, y_i in zip(X, y):
        if y_i * (np.dot(w, x_i) + b) < 1:
            grad_w -= C * y_i * x_i
            grad_b -= C * y_i
    return grad_w, float(grad_b)


def svm_train(X, y, C, learning_rate, num_epochs):
    raise NotImplementedError("svm_train: not done yet")
