"""``mnist``: a multilayer perceptron trained on MNIST with minibatch gradient descent."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernelnet import plotting
from kernelnet.config import Cell, param
from kernelnet.data.mnist import load_mnist
from kernelnet.errors import ConfigError
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
)
from kernelnet.nn.layers import ACTIVATIONS
from kernelnet.nn.models import INITS, MLP
from kernelnet.nn.optim import OPTIMIZERS, make_optimizer
from kernelnet.nn.train import TrainSettings, train
from kernelnet.tables import Table, number, percent

N_TRAIN_FILE = 60_000
PIXEL_MEAN, PIXEL_STD = 0.1307 * 255, 0.3081 * 255  # of the raw 0..255 training pixels


@dataclass
class MnistData:
    train_size: int = param(55_000, ge=1, le=N_TRAIN_FILE, help="first N training images")
    val_size: int = param(5_000, ge=1, le=N_TRAIN_FILE, help="the last N training images")
    test_size: int = param(10_000, ge=1, le=10_000)
    normalize: str = param(
        "none",
        choices=("none", "scale", "standardize"),
        help="none: raw 0..255; scale: /255; standardize: (x - mean) / std",
    )


@dataclass
class MnistModel:
    hidden: list[int] = param(default_factory=lambda: [100], ge=1)
    activation: str = param("relu", choices=tuple(ACTIVATIONS))
    init: str = param("normal", choices=INITS, help="normal uses weight_scale")
    weight_scale: float = param(1e-3, gt=0)
    batchnorm: bool = param(False)
    dropout: float = param(0.0, ge=0, lt=1)
    weight_decay: float = param(0.0, ge=0)
    dtype: str = param("float32", choices=("float32", "float64"))


@dataclass
class MnistTrain:
    optimizer: str = param("sgd", choices=tuple(OPTIMIZERS))
    learning_rate: float = param(1e-3, gt=0)
    momentum: float = param(0.9, ge=0, lt=1)
    beta1: float = param(0.9, ge=0, lt=1)
    beta2: float = param(0.999, ge=0, lt=1)
    lr_decay: float = param(0.95, gt=0, le=1, help="multiplies the learning rate after each epoch")
    batch_size: int = param(100, ge=1)
    epochs: int = param(5, ge=1)
    train_accuracy_sample: int = param(1000, ge=1)
    patience: int = param(
        0, ge=0, help="early stopping after N epochs without improvement; 0 = off"
    )
    keep_best: bool = param(True, help="restore the best validation epoch's parameters")


@dataclass
class MnistConfig(ExperimentConfig):
    data: MnistData = field(default_factory=MnistData)
    model: MnistModel = field(default_factory=MnistModel)
    train: MnistTrain = field(default_factory=MnistTrain)


def _features(images: np.ndarray, normalize: str, dtype) -> np.ndarray:
    """uint8 (n, 28, 28) -> float (n, 784), converted before any arithmetic."""
    x = images.reshape(len(images), -1).astype(dtype)
    if normalize == "scale":
        x /= 255
    elif normalize == "standardize":
        x -= PIXEL_MEAN
        x /= PIXEL_STD
    return x


def _split(config: MnistConfig):
    data = load_mnist()
    dtype = np.dtype(config.model.dtype)
    d = config.data
    images, labels = data.train_images, data.train_labels.astype(np.int64)
    features = _features(images, d.normalize, dtype)
    return (
        features[: d.train_size],
        labels[: d.train_size],
        features[N_TRAIN_FILE - d.val_size :],
        labels[N_TRAIN_FILE - d.val_size :],
        _features(data.test_images[: d.test_size], d.normalize, dtype),
        data.test_labels[: d.test_size].astype(np.int64),
    )


def run_cell(config: MnistConfig, ctx: CellContext) -> CellOutput:
    X_train, y_train, X_val, y_val, X_test, y_test = _split(config)
    m, t = config.model, config.train
    model = MLP.create(
        X_train.shape[1],
        m.hidden,
        10,
        ctx.rng,
        init=m.init,
        weight_scale=m.weight_scale,
        dtype=np.dtype(m.dtype).type,
        activation=m.activation,
        batchnorm=m.batchnorm,
        dropout=m.dropout,
        weight_decay=m.weight_decay,
    )
    optimizer = make_optimizer(
        t.optimizer, lr=t.learning_rate, momentum=t.momentum, beta1=t.beta1, beta2=t.beta2
    )
    settings = TrainSettings(
        t.epochs, t.batch_size, t.lr_decay, t.train_accuracy_sample, t.patience, t.keep_best
    )

    def on_step(epoch: int, step: int, steps: int) -> None:
        if step % 50 == 0 or step == steps:
            ctx.progress(step, steps, f"epoch {epoch}/{t.epochs}")

    history = train(model, optimizer, X_train, y_train, X_val, y_val, settings, ctx.rng, on_step)
    for record in history.epochs:
        ctx.log.info(
            "epoch %d: loss %.4f, train %.4f, val %.4f, lr %.3g, %.2f s",
            record.epoch,
            record.loss,
            record.train_accuracy,
            record.val_accuracy,
            record.lr,
            record.seconds,
        )
    predictions = model.predict(X_test)
    running = {f"running_mean{i}": s.mean for i, s in model.running.items()}
    running |= {f"running_var{i}": s.var for i, s in model.running.items()}
    ctx.run.save_params("model", json_too=False, **model.params, **running)
    rows = [
        {
            **ctx.cell.params,
            "epoch": r.epoch,
            "loss": r.loss,
            "train_accuracy": r.train_accuracy,
            "val_accuracy": r.val_accuracy,
            "lr": r.lr,
            "seconds": r.seconds,
        }
        for r in history.epochs
    ]
    wrong = np.flatnonzero(predictions != y_test)[:40]  # only these images are plotted
    artifacts = {
        "history": history,
        "test_predictions": predictions,
        "test_labels": y_test,
        "misclassified": (X_test[wrong], y_test[wrong], predictions[wrong]),
        "W1": model.params["W1"],
        "test_accuracy": float((predictions == y_test).mean()),
    }
    return CellOutput(rows, artifacts)


def report(ctx: ReportContext) -> Report:
    tables, summary = [], {}
    for result in ctx.completed:
        history = result.artifacts["history"]
        suffix = "" if len(ctx.results) == 1 else f"_{result.cell.id}"
        label = "" if not suffix else f" — {result.cell.id}"
        tables.append(
            Table(
                f"MNIST training{label}",
                ["epoch", "loss", "train acc %", "val acc %", "lr", "seconds"],
                [
                    [
                        str(r.epoch),
                        f"{r.loss:.4f}",
                        percent(r.train_accuracy, 2),
                        percent(r.val_accuracy, 2),
                        number(r.lr, 4),
                        f"{r.seconds:.2f}",
                    ]
                    for r in history.epochs
                ],
                note=(
                    f"Test accuracy {percent(result.artifacts['test_accuracy'], 2)}% with the "
                    f"parameters of epoch {history.best_epoch} (best validation accuracy "
                    f"{percent(history.best_val_accuracy, 2)}%)"
                    + (", stopped early." if history.stopped_early else ".")
                ),
            )
        )
        cell_summary = {
            "test_accuracy": result.artifacts["test_accuracy"],
            "best_val_accuracy": history.best_val_accuracy,
            "best_epoch": history.best_epoch,
            "epochs": len(history.epochs),
            "stopped_early": history.stopped_early,
            "seconds_per_epoch": float(np.mean([r.seconds for r in history.epochs])),
            "final_loss": history.epochs[-1].loss,
        }
        if suffix:
            summary.setdefault("cells", {})[result.cell.id] = cell_summary
        else:
            summary.update(cell_summary)
        _plots(ctx, result, suffix)
    return Report(tables, summary)


def _plots(ctx: ReportContext, result, suffix: str) -> None:
    history, a = result.artifacts["history"], result.artifacts
    records = history.epochs
    plotting.save(
        ctx.run,
        f"plots/training{suffix}.png",
        plotting.training_curves(
            history.iteration_loss,
            [r.epoch for r in records],
            [r.train_accuracy for r in records],
            [r.val_accuracy for r in records],
            f"MNIST MLP {result.cell.config.model.hidden}",
        ),
    )
    matrix = np.zeros((10, 10), dtype=np.int64)
    np.add.at(matrix, (a["test_labels"], a["test_predictions"]), 1)
    plotting.save(
        ctx.run,
        f"plots/confusion{suffix}.png",
        plotting.confusion_matrix(
            matrix, f"Test confusion matrix (accuracy {percent(a['test_accuracy'], 2)}%)"
        ),
    )
    images, truth, predicted = a["misclassified"]
    plotting.save(
        ctx.run,
        f"plots/misclassified{suffix}.png",
        plotting.image_grid(
            images.reshape(-1, 28, 28),
            [f"{t} → {p}" for t, p in zip(truth, predicted)],
            "Misclassified test digits (true → predicted)",
        ),
    )
    weights = a["W1"].T[:100].reshape(-1, 28, 28)
    plotting.save(
        ctx.run,
        f"plots/first_layer_weights{suffix}.png",
        plotting.image_grid(
            weights,
            [f"unit {i}" for i in range(len(weights))],
            "First-layer weights",
            cmap="RdBu",
            symmetric=True,
        ),
    )


def preflight(cells: list[Cell]) -> None:
    for cell in cells:
        d = cell.config.data
        if d.train_size + d.val_size > N_TRAIN_FILE:
            raise ConfigError(
                f"data.train_size + data.val_size must be <= {N_TRAIN_FILE} "
                f"(got {d.train_size} + {d.val_size}); validation images would overlap training"
            )
    load_mnist()


EXPERIMENT = Experiment(
    name="mnist",
    help="A multilayer perceptron on MNIST: minibatch training, validation, test, plots.",
    schema=MnistConfig,
    run_cell=run_cell,
    report=report,
    preflight=preflight,
)
