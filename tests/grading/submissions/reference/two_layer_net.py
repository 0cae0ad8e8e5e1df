"""two_layer_net.py: fully-connected and ReLU layers, the softmax loss and a two-layer net
trained on MNIST by minibatch SGD.

A correct hw3 submission, written as a student would (plain numpy).
"""

import numpy as np


def fc_forward(X, W, b):
    """Y = X W + b: X (N, D_in), W (D_in, D_out), b (1, D_out) -> Y (N, D_out)."""
    return X @ W + b


def fc_backward(dY, X, W, b):
    """dX = dY W^T (N, D_in), dW = X^T dY (D_in, D_out), db (1, D_out)."""
    dX = dY @ W.T
    dW = X.T @ dY
    db = np.sum(dY, axis=0, keepdims=True)
    return dX, dW, db


def relu_forward(X):
    """max(0, X), a new array: X is left as it is."""
    return np.maximum(X, 0.0)


def relu_backward(dY, X):
    """dY where X > 0, else 0."""
    return dY * (X > 0)


def softmax_loss(scores, y):
    """Mean cross-entropy (a float) and its gradient (N, K) for scores (N, K), y (N,)."""
    n = scores.shape[0]
    shifted = scores - np.max(scores, axis=1, keepdims=True)  # exp cannot overflow
    exp = np.exp(shifted)
    total = np.sum(exp, axis=1, keepdims=True)
    probs = exp / total
    # log-probabilities from the shifted scores: log(probs) would be log(0) = -inf when a
    # true class's probability underflows
    log_probs = shifted - np.log(total)
    loss = -np.mean(log_probs[np.arange(n), y])
    dscores = probs.copy()
    dscores[np.arange(n), y] -= 1.0
    dscores /= n
    return float(loss), dscores


def train_two_layer_net(X, y, hidden_dim, learning_rate, num_epochs, batch_size, seed):
    """fc - ReLU - fc - softmax trained by minibatch SGD; W1 (D, H), b1 (1, H),
    W2 (H, 10), b2 (1, 10)."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    classes = 10
    W1 = 0.01 * rng.standard_normal((d, hidden_dim))
    b1 = np.zeros((1, hidden_dim))
    W2 = 0.01 * rng.standard_normal((hidden_dim, classes))
    b2 = np.zeros((1, classes))
    for _ in range(num_epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            xb, yb = X[batch], y[batch]
            a1 = fc_forward(xb, W1, b1)
            h1 = relu_forward(a1)
            scores = fc_forward(h1, W2, b2)
            _, dscores = softmax_loss(scores, yb)
            dh1, dW2, db2 = fc_backward(dscores, h1, W2, b2)
            da1 = relu_backward(dh1, a1)
            _, dW1, db1 = fc_backward(da1, xb, W1, b1)
            W1 = W1 - learning_rate * dW1
            b1 = b1 - learning_rate * db1
            W2 = W2 - learning_rate * dW2
            b2 = b2 - learning_rate * db2
    return W1, b1, W2, b2
