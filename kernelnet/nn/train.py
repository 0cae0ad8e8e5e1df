"""Minibatch training with per-epoch history, keep-best-on-validation, early stopping,
learning-rate decay and divergence detection."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kernelnet.errors import Diverged
from kernelnet.nn.models import MLP


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 5
    batch_size: int = 100
    lr_decay: float = 1.0  # lr <- lr * lr_decay after every epoch
    train_accuracy_sample: int = 1000  # train accuracy is measured on this many examples
    patience: int = 0  # stop after this many epochs without a better val accuracy; 0 = never
    keep_best: bool = True  # restore the parameters of the best validation epoch at the end


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    loss: float  # mean training loss over the epoch's minibatches
    train_accuracy: float
    val_accuracy: float
    lr: float  # the learning rate used during this epoch
    seconds: float


@dataclass
class History:
    epochs: list[EpochRecord] = field(default_factory=list)
    iteration_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_val_accuracy: float = -1.0
    stopped_early: bool = False


def accuracy(model: MLP, X: np.ndarray, y: np.ndarray) -> float:
    return float((model.predict(X) == y).mean())


def train(
    model: MLP,
    optimizer,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    settings: TrainSettings,
    rng: np.random.Generator,
    on_step: Callable[[int, int, int], None] | None = None,
) -> History:
    """Train ``model`` in place. Each epoch visits every training example once, in an order
    drawn from ``rng``. Raises :class:`Diverged` on a non-finite loss."""
    n = X_train.shape[0]
    steps = math.ceil(n / settings.batch_size)
    history = History()
    best_params = None
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        order = rng.permutation(n)
        losses = np.empty(steps)
        for step in range(steps):
            batch = order[step * settings.batch_size : (step + 1) * settings.batch_size]
            # overflow on the way to divergence is expected; the check below reports it
            with np.errstate(over="ignore", invalid="ignore"):
                loss, grads = model.loss(X_train[batch], y_train[batch], train=True, rng=rng)
            if not math.isfinite(loss):
                raise Diverged(
                    f"loss became {loss} at epoch {epoch}, step {step + 1} with learning rate "
                    f"{optimizer.lr:g}; try a lower learning rate",
                    details={"epoch": epoch, "step": step + 1, "lr": optimizer.lr, "loss": loss},
                )
            optimizer.step(model.params, grads)
            losses[step] = loss
            if on_step is not None:
                on_step(epoch, step + 1, steps)
        history.iteration_loss.extend(losses.tolist())
        sample = rng.choice(n, size=min(settings.train_accuracy_sample, n), replace=False)
        record = EpochRecord(
            epoch,
            float(losses.mean()),
            accuracy(model, X_train[sample], y_train[sample]),
            accuracy(model, X_val, y_val),
            optimizer.lr,
            time.perf_counter() - started,
        )
        history.epochs.append(record)
        if record.val_accuracy > history.best_val_accuracy:
            history.best_val_accuracy, history.best_epoch = record.val_accuracy, epoch
            if settings.keep_best:
                best_params = {k: v.copy() for k, v in model.params.items()}
                best_running = dict(model.running)
        elif settings.patience and epoch - history.best_epoch >= settings.patience:
            history.stopped_early = True
            break
        optimizer.lr *= settings.lr_decay
    if settings.keep_best and best_params is not None:
        model.params.update(best_params)
        model.running.update(best_running)
    return history
