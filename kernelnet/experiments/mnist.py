"""``mnist``: a multilayer perceptron trained on MNIST with minibatch gradient descent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kernelnet import plotting
from kernelnet.config import Cell, param
from kernelnet.data.mnist import N_TRAIN, NORMALIZATIONS, MnistSplit, load_mnist, mnist_split
from kernelnet.errors import ConfigError
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    CellResult,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
)
from kernelnet.nn.layers import ACTIVATIONS
from kernelnet.nn.models import INITS, MLP
from kernelnet.nn.optim import OPTIMIZERS, make_optimizer
from kernelnet.nn.trainer import TrainSettings, discard_checkpoint, train_classifier
from kernelnet.tables import Table, number, percent

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class MnistData:
    train_size: int = param(55_000, ge=1, le=N_TRAIN, help="first N training images")
    val_size: int = param(5_000, ge=1, le=N_TRAIN, help="the last N training images")
    test_size: int = param(10_000, ge=1, le=10_000)
    normalize: str = param(
        "none",
        choices=NORMALIZATIONS,
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


def split_of(config: MnistConfig) -> MnistSplit:
    d = config.data
    dtype = np.dtype(config.model.dtype).type
    return mnist_split(d.train_size, d.val_size, d.test_size, d.normalize, dtype)


def run_cell(config: MnistConfig, ctx: CellContext) -> CellOutput:
    data = split_of(config)
    X_train, y_train, X_val, y_val = data.X_train, data.y_train, data.X_val, data.y_val
    X_test, y_test = data.X_test, data.y_test
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
    settings = TrainSettings(t.epochs, t.batch_size, t.lr_decay, t.patience, t.keep_best)

    def on_step(epoch: int, step: int, steps: int) -> None:
        if step % 50 == 0 or step == steps:
            ctx.progress(step, steps, f"epoch {epoch}/{t.epochs}")

    history = train_classifier(
        model,
        optimizer,
        X_train,
        y_train,
        X_val,
        y_val,
        settings,
        ctx.rng,
        t.train_accuracy_sample,
        on_step=on_step,
        checkpoints=ctx.files,
        fingerprint=ctx.cell.digest,
    )
    predictions = model.predict(X_test)
    running = {f"running_mean{i}": s.mean for i, s in model.running.items()}
    running |= {f"running_var{i}": s.var for i, s in model.running.items()}
    ctx.files.save_params("model", json_too=False, **model.params, **running)
    rows = history.rows
    wrong = np.flatnonzero(predictions != y_test)[:40]  # only these images are plotted
    artifacts = {
        "iteration_loss": np.asarray(history.iteration_loss),
        "best_epoch": history.best_epoch,
        "best_val_accuracy": history.best_value,
        "stopped_early": history.stopped_early,
        "confusion": confusion_counts(y_test, predictions, 10),
        "misclassified_images": X_test[wrong],
        "misclassified_truth": y_test[wrong],
        "misclassified_predicted": predictions[wrong],
        "W1": model.params["W1"],
        "test_accuracy": float((predictions == y_test).mean()),
    }
    discard_checkpoint(ctx.files)
    return CellOutput(rows, artifacts)


def confusion_counts(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts; row = true class, column = predicted."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def report(ctx: ReportContext) -> Report:
    tables, summary = [], {}
    for result in ctx.completed:
        a, rows = result.artifacts, result.rows
        label = f" — {result.cell.id}" if ctx.many else ""
        tables.append(
            Table(
                f"MNIST training{label}",
                ["epoch", "loss", "train acc %", "val acc %", "lr", "seconds"],
                [
                    [
                        str(r["epoch"]),
                        f"{r['loss']:.4f}",
                        percent(r["train_accuracy"], 2),
                        percent(r["val_accuracy"], 2),
                        number(r["lr"], 4),
                        f"{r['seconds']:.2f}",
                    ]
                    for r in rows
                ],
                note=(
                    f"Test accuracy {percent(a['test_accuracy'], 2)}% with the "
                    f"parameters of epoch {a['best_epoch']} (best validation accuracy "
                    f"{percent(a['best_val_accuracy'], 2)}%)"
                    + (", stopped early." if a["stopped_early"] else ".")
                ),
            )
        )
        cell_summary = {
            "test_accuracy": a["test_accuracy"],
            "best_val_accuracy": a["best_val_accuracy"],
            "best_epoch": a["best_epoch"],
            "epochs": len(rows),
            "stopped_early": a["stopped_early"],
            "seconds_per_epoch": float(np.mean([r["seconds"] for r in rows])),
            "final_loss": rows[-1]["loss"],
        }
        if ctx.many:
            summary.setdefault("by_cell", {})[result.cell.id] = cell_summary
        else:
            summary.update(cell_summary)
        _plots(ctx, result)
    return Report(tables, summary)


def _plots(ctx: ReportContext, result: CellResult) -> None:
    a, rows = result.artifacts, result.rows
    ctx.save_cell_figure(
        result,
        "training",
        training_curves,
        a["iteration_loss"],
        [r["epoch"] for r in rows],
        [r["train_accuracy"] for r in rows],
        [r["val_accuracy"] for r in rows],
        f"MNIST MLP {result.cell.config.model.hidden}",
    )
    ctx.save_cell_figure(
        result,
        "confusion",
        confusion_matrix,
        a["confusion"],
        f"Test confusion matrix (accuracy {percent(a['test_accuracy'], 2)}%)",
    )
    ctx.save_cell_figure(
        result,
        "misclassified",
        image_grid,
        a["misclassified_images"].reshape(-1, 28, 28),
        [f"{t} → {p}" for t, p in zip(a["misclassified_truth"], a["misclassified_predicted"])],
        "Misclassified test digits (true → predicted)",
    )
    weights = a["W1"].T[:100].reshape(-1, 28, 28)
    ctx.save_cell_figure(
        result,
        "first_layer_weights",
        image_grid,
        weights,
        [],
        "First-layer weights",
        cmap="RdBu",
        symmetric=True,
    )


def preflight(cells: list[Cell]) -> None:
    for cell in cells:
        d = cell.config.data
        if d.train_size + d.val_size > N_TRAIN:
            raise ConfigError(
                f"data.train_size + data.val_size must be <= {N_TRAIN} "
                f"(got {d.train_size} + {d.val_size}); validation images would overlap training"
            )
    load_mnist()


def training_curves(
    iteration_loss: Sequence[float],
    epochs: Sequence[int],
    train_accuracy: Sequence[float],
    val_accuracy: Sequence[float],
    title: str,
) -> Figure:
    """The classic two panels: loss per iteration (raw and smoothed) and accuracy per epoch."""
    figure = plotting.figure((11, 4.2))
    left, right = figure.subplots(1, 2)
    loss = np.asarray(iteration_loss)
    left.plot(np.arange(1, loss.size + 1), loss, color="#9ecae1", lw=0.6, label="per iteration")
    window = max(1, loss.size // 50)
    if window > 1:
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        left.plot(
            np.arange(window, loss.size + 1),
            smooth,
            color="#08519c",
            lw=1.6,
            label=f"moving mean ({window})",
        )
    left.set(xlabel="iteration", ylabel="training loss", title="Training loss", yscale="log")
    left.legend(frameon=False)
    right.plot(
        epochs, 100 * np.asarray(train_accuracy), "o-", color="#756bb1", label="train (sample)"
    )
    right.plot(epochs, 100 * np.asarray(val_accuracy), "s-", color="#31a354", label="validation")
    right.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy", xticks=list(epochs))
    right.legend(frameon=False, loc="lower right")
    plotting.tidy(left, right)
    figure.suptitle(title)
    return figure


def confusion_matrix(matrix: np.ndarray, title: str) -> Figure:
    """Counts in each cell, colour by the row-normalized rate (true class = row)."""
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure = plotting.figure((6.4, 5.6))
    axes = figure.subplots()
    image = axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    k = matrix.shape[0]
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                axes.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize="x-small",
                    color="white" if rates[i, j] > 0.5 else "black",
                )
    axes.set(xticks=range(k), yticks=range(k), xlabel="predicted", ylabel="true", title=title)
    figure.colorbar(image, ax=axes, label="fraction of the true class")
    return figure


def tile(images: np.ndarray, columns: int, gap: int, top: int) -> np.ndarray:
    """Images (n, h, w) laid out in one array, ``columns`` per row, ``gap`` pixels apart and
    ``top`` pixels above each (for its caption); the space between is NaN."""
    n, h, w = images.shape
    rows = max(1, -(-n // columns))
    cell_h, cell_w = h + gap + top, w + gap
    canvas = np.full((rows * cell_h, columns * cell_w), np.nan)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        y, x = row * cell_h + top, column * cell_w
        canvas[y : y + h, x : x + w] = image
    return canvas


def image_grid(
    images: np.ndarray,
    captions: Sequence[str],
    title: str,
    columns: int = 10,
    cmap: str = "gray_r",
    symmetric: bool = False,
) -> Figure:
    """Small images (n, 28, 28) in a grid, each with a caption, drawn as one image (one
    axes, not one per digit: a fraction of a second to save). ``symmetric`` scales each
    image to [-1, 1] around 0 for a diverging colour map (for weights)."""
    images = np.asarray(images, dtype=np.float64)
    if symmetric:
        reach = np.abs(images).reshape(len(images), -1).max(axis=1)
        images = images / np.where(reach > 0, reach, 1.0)[:, None, None]
        low, high = -1.0, 1.0
    else:
        low, high = float(images.min(initial=0.0)), float(images.max(initial=1.0))
    gap, top = 2, 9 if any(captions) else 0
    canvas = tile(images, columns, gap, top)
    rows = canvas.shape[0] // (images.shape[1] + gap + top)
    height = 1.1 * rows + 0.4
    figure = plotting.figure((1.0 * columns, height), layout=None)
    axes = figure.add_axes((0.01, 0.01, 0.98, 1 - 0.5 / height))  # room for the title
    colours = plotting.colormap(cmap).with_extremes(bad="white")
    axes.imshow(canvas, cmap=colours, vmin=low, vmax=high, interpolation="nearest")
    axes.set_axis_off()
    cell_h, cell_w = images.shape[1] + gap + top, images.shape[2] + gap
    for index, caption in enumerate(captions):
        row, column = divmod(index, columns)
        axes.text(
            column * cell_w + images.shape[2] / 2,
            row * cell_h + top - 1.5,
            caption,
            ha="center",
            va="bottom",
            fontsize="x-small",
        )
    figure.suptitle(title)
    return figure


EXPERIMENT = Experiment(
    name="mnist",
    schema=MnistConfig,
    run_cell=run_cell,
    report=report,
    preflight=preflight,
    row_key=("epoch",),
)
