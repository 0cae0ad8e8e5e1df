"""One training epoch of the default MNIST config against the BLAS floor, in one process.

floor = epoch FLOPs / measured float32 matrix-multiply rate, where the epoch FLOPs are the
matrix products training and evaluation cannot avoid:
  training, per example: forward X W1 (2DH) and h W2 (2HC); backward dW2 (2HC), dh (2HC),
  dW1 (2DH) -- no dX for the first layer;
  evaluation (train-accuracy sample and validation set): forward only, 2DH + 2HC each.
Reports the best of several epochs (the machine is shared and noisy) and the ratio.
"""

from __future__ import annotations

import time

import numpy as np

from kernelnet.cli.launch import configs_dir
from kernelnet.config import RawConfig, expand, read_config_file
from kernelnet.experiments import get_experiment
from kernelnet.experiments.mnist import split_of
from kernelnet.nn.models import MLP
from kernelnet.nn.optim import make_optimizer
from kernelnet.nn.trainer import TrainSettings, train_classifier
from kernelnet.runner import resolve_experiment_config


def matmul_rate(n: int = 2048, repeats: int = 7) -> float:
    """Best float32 GFLOP/s of an n x n product."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    a @ b  # warm up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main(epochs: int = 3) -> None:
    experiment = get_experiment("mnist")
    raw: RawConfig = read_config_file(configs_dir() / "mnist.yaml")
    config = expand(experiment.schema, resolve_experiment_config(experiment, raw))[0].config
    data = split_of(config)
    X_train, y_train, X_val, y_val = data.X_train, data.y_train, data.X_val, data.y_val
    m, t = config.model, config.train
    n, d = X_train.shape
    h, c = m.hidden[0], 10
    sample = t.train_accuracy_sample
    flops = n * (4 * d * h + 6 * h * c) + (sample + len(X_val)) * (2 * d * h + 2 * h * c)
    rate = matmul_rate()
    seconds = []
    for epoch in range(epochs):
        rng = np.random.default_rng(epoch)
        model = MLP.create(d, m.hidden, c, rng, weight_scale=m.weight_scale, dtype=np.float32)
        optimizer = make_optimizer(t.optimizer, lr=t.learning_rate)
        history = train_classifier(
            model,
            optimizer,
            X_train,
            y_train,
            X_val,
            y_val,
            TrainSettings(1, t.batch_size, t.lr_decay),
            rng,
            sample,
        )
        seconds.append(history.rows[0]["seconds"])
    rate_after = matmul_rate()
    floor = flops / (max(rate, rate_after) * 1e9)
    best = min(seconds)
    print(f"mnist epoch: {n} examples, batch {t.batch_size}, {flops / 1e9:.2f} GFLOP")
    print(f"float32 matmul rate: {rate:.1f} GFLOP/s (before), {rate_after:.1f} (after)")
    print(f"epoch seconds: best {best:.3f}, all {', '.join(f'{s:.3f}' for s in seconds)}")
    print(f"floor {floor:.3f} s; epoch / floor = {best / floor:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
