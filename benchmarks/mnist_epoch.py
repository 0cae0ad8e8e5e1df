"""One training epoch of the default MNIST config against its own matrix products, in one
process, with one BLAS thread (what every cell uses by default).

floor = the epoch's unavoidable matrix products timed alone at their real shapes with
preallocated outputs: per batch of 100, forward X W1 and H W2, the weight gradients
H' dS and X' dH, and dH = dS W2' (no dX for the first layer); then the evaluation's forward
products on the 1,000-image training sample and the 5,000 validation images. The epoch is
kernelnet's trainer on the same data (float32, plain SGD, batch 100). Reported beside it:
a large square product's rate (for reference) and scikit-learn's MLPClassifier doing the
same epoch (the peer a user would otherwise pick). Every figure is the best of several
repeats (the machine is shared and noisy) and every ratio is measured in this one run.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from kernelnet import blas
from kernelnet.config import RawConfig, expand, read_config_file
from kernelnet.experiments import get_experiment
from kernelnet.experiments.mnist import split_of
from kernelnet.nn.models import MLP
from kernelnet.nn.optim import make_optimizer
from kernelnet.nn.trainer import TrainSettings, train_classifier
from kernelnet.runner import resolve_experiment_config
from kernelnet.shipped import shipped

GOAL = 1.25  # epoch / floor


def best_of(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def square_rate(n: int = 2048) -> float:
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    out = np.empty_like(a)
    return 2 * n**3 / best_of(lambda: np.matmul(a, b, out=out), 5) / 1e9


def floor_epoch(X: np.ndarray, hidden: int, classes: int, batch: int, evaluated: int):
    """The epoch's products alone (random weights: the values do not change the time)."""
    rng = np.random.default_rng(0)
    n, d = X.shape
    W1 = rng.standard_normal((d, hidden), dtype=np.float32)
    W2 = rng.standard_normal((hidden, classes), dtype=np.float32)
    H = np.empty((batch, hidden), np.float32)
    S = np.empty((batch, classes), np.float32)
    dW1, dW2, dH = np.empty_like(W1), np.empty_like(W2), np.empty_like(H)
    evaluation = X[:evaluated]
    H_eval = np.empty((evaluated, hidden), np.float32)
    S_eval = np.empty((evaluated, classes), np.float32)
    batches = [X[i : i + batch] for i in range(0, n - batch + 1, batch)]

    def epoch() -> None:
        for Xb in batches:
            np.matmul(Xb, W1, out=H)
            np.matmul(H, W2, out=S)
            np.matmul(H.T, S, out=dW2)
            np.matmul(S, W2.T, out=dH)
            np.matmul(Xb.T, dH, out=dW1)
        np.matmul(evaluation, W1, out=H_eval)
        np.matmul(H_eval, W2, out=S_eval)

    flops = len(batches) * batch * (4 * d * hidden + 6 * hidden * classes) + evaluated * (
        2 * d * hidden + 2 * hidden * classes
    )
    return epoch, flops


def sklearn_epoch(X, y, hidden: int, batch: int, lr: float):
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None

    def epoch() -> None:
        model = MLPClassifier(
            (hidden,), solver="sgd", batch_size=batch, learning_rate_init=lr, momentum=0.0,
            max_iter=1, shuffle=True, random_state=0, alpha=0.0,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one epoch does not converge, by design
            model.fit(X, y)

    return epoch


def main(repeats: int = 5) -> None:
    experiment = get_experiment("mnist")
    raw: RawConfig = read_config_file(shipped("configs") / "mnist.yaml")
    config = expand(experiment.schema, resolve_experiment_config(experiment, raw))[0].config
    data = split_of(config)
    m, t = config.model, config.train
    X, y = data.X_train.astype(np.float32), data.y_train
    hidden, classes = m.hidden[0], 10
    evaluated = t.train_accuracy_sample + len(data.X_val)

    def kernelnet_epoch() -> None:
        rng = np.random.default_rng(0)
        model = MLP.create(X.shape[1], m.hidden, classes, rng, weight_scale=m.weight_scale,
                           dtype=np.float32)  # fmt: skip
        optimizer = make_optimizer(t.optimizer, lr=t.learning_rate)
        settings = TrainSettings(1, t.batch_size, t.lr_decay, log_epochs=False)
        train_classifier(model, optimizer, X, y, data.X_val, data.y_val, settings, rng,
                         t.train_accuracy_sample)  # fmt: skip

    floor, flops = floor_epoch(X, hidden, classes, t.batch_size, evaluated)
    peer = sklearn_epoch(X, y, hidden, t.batch_size, t.learning_rate)
    with blas.blas_threads(1):
        rate = square_rate()
        floor_s = best_of(floor, repeats)
        epoch_s = best_of(kernelnet_epoch, repeats)
        floor_s = min(floor_s, best_of(floor, repeats))  # measured on both sides of the epochs
        peer_s = best_of(peer, 2) if peer else None
    print(f"MNIST epoch ({len(X)} images, batch {t.batch_size}, {flops / 1e9:.2f} GFLOP, "
          "float32, 1 BLAS thread)")  # fmt: skip
    print(f"  square 2048 product:  {rate:6.1f} GFLOP/s (reference)")
    print(f"  floor (same shapes):  {floor_s:6.3f} s  ({flops / floor_s / 1e9:.1f} GFLOP/s)")
    print(f"  kernelnet epoch:      {epoch_s:6.3f} s")
    if peer_s:
        print(f"  scikit-learn epoch:   {peer_s:6.3f} s  (MLPClassifier, sgd, same shapes)")
    ratio = epoch_s / floor_s
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(f"  epoch / floor = {ratio:.2f}x (goal <= {GOAL}x: {verdict})")
    if peer_s:
        print(f"  scikit-learn / kernelnet = {peer_s / epoch_s:.1f}x")


if __name__ == "__main__":
    main()
