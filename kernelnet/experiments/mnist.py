"""``mnist``: a multilayer perceptron trained on MNIST with minibatch gradient descent.

The epoch table starts at epoch 0, the untrained model (the course's log shows it: about
10% accuracy, chance for ten classes), and records test accuracy after every epoch for the
course's figure of training loss with train/test accuracy; the test set is only shown,
never used to choose (keep-best and early stopping watch validation accuracy). The early
stopping figure and table replay the trainer's rule on the validation curve for several
patiences: where training stops, the best epoch it keeps, and why."""

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
    epoch_zero: bool = param(
        True, help="evaluate the untrained model first: the table's epoch 0 (no loss yet)"
    )
    test_curve: bool = param(
        True, help="test accuracy after every epoch, for the figure (shown, never monitored)"
    )


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
    settings = TrainSettings(
        t.epochs, t.batch_size, t.lr_decay, t.patience, t.keep_best, evaluate_first=t.epoch_zero
    )

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
        also_evaluate={"test_accuracy": (X_test, y_test)} if t.test_curve else None,
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
        "steps_per_epoch": -(-len(y_train) // t.batch_size),
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


PATIENCES_SHOWN = (1, 2, 3)  # replayed on every run, with the run's own patience


@dataclass(frozen=True)
class StoppingPoint:
    """Where the trainer's early-stopping rule stops on a validation curve."""

    patience: int
    best_epoch: int  # the epoch whose parameters keep-best restores
    best_value: float
    stop_epoch: int | None  # the last epoch trained; None: the rule never fired
    last_epoch: int  # the last epoch of the curve

    @property
    def why(self) -> str:
        best = f"{percent(self.best_value, 2)}% (epoch {self.best_epoch})"
        if self.stop_epoch is None:
            span = "an epoch" if self.patience == 1 else f"{self.patience} epochs"
            return f"never {span} without a new best up to epoch {self.last_epoch}; best {best}"
        first = self.best_epoch + 1
        epochs = (
            f"epoch {first}" if first == self.stop_epoch else f"epochs {first}-{self.stop_epoch}"
        )
        return f"{epochs} not above {best}"


def stopping_point(epochs: Sequence[int], values: Sequence[float], patience: int) -> StoppingPoint:
    """Replay :class:`~kernelnet.nn.trainer.Trainer`'s rule on a monitored curve (larger is
    better; epoch 0, the untrained baseline, is not a candidate): an epoch better than the
    best so far becomes the best; otherwise training stops once ``patience`` epochs have
    passed since the best."""
    best_epoch, best_value, stop = 0, -np.inf, None
    trained = [(e, v) for e, v in zip(epochs, values) if e >= 1]
    for epoch, value in trained:
        if value > best_value:
            best_epoch, best_value = epoch, value
        elif patience and epoch - best_epoch >= patience:
            stop = epoch
            break
    return StoppingPoint(patience, best_epoch, float(best_value), stop, trained[-1][0])


def patiences_of(config: MnistConfig) -> list[int]:
    return sorted({*PATIENCES_SHOWN, *([config.train.patience] if config.train.patience else [])})


def report(ctx: ReportContext) -> Report:
    tables, summary = [], {}
    for result in ctx.completed:
        a, rows = result.artifacts, result.rows
        trained = [r for r in rows if r["epoch"] >= 1]
        label = f" — {result.cell.id}" if ctx.many else ""
        test_curve = "test_accuracy" in rows[0]
        tables.append(
            Table(
                f"MNIST training{label}",
                ["epoch", "loss", "train acc %", "val acc %"]
                + (["test acc %"] if test_curve else [])
                + ["lr", "seconds"],
                [
                    [
                        str(r["epoch"]),
                        "—" if r["loss"] is None else f"{r['loss']:.4f}",
                        percent(r["train_accuracy"], 2),
                        percent(r["val_accuracy"], 2),
                    ]
                    + ([percent(r["test_accuracy"], 2)] if test_curve else [])
                    + [number(r["lr"], 4), f"{r['seconds']:.2f}"]
                    for r in rows
                ],
                note=(
                    f"Test accuracy {percent(a['test_accuracy'], 2)}% with the "
                    f"parameters of epoch {a['best_epoch']} (best validation accuracy "
                    f"{percent(a['best_val_accuracy'], 2)}%)"
                    + (", stopped early." if a["stopped_early"] else ".")
                    + (
                        " Epoch 0 is the untrained model (no loss: no step taken yet)."
                        if rows[0]["epoch"] == 0
                        else ""
                    )
                    + (
                        " Test accuracy per epoch is shown only; epochs are chosen on validation."
                        if test_curve
                        else ""
                    )
                ),
            )
        )
        points = [
            stopping_point([r["epoch"] for r in rows], [r["val_accuracy"] for r in rows], patience)
            for patience in patiences_of(result.cell.config)
        ]
        tables.append(stopping_table(points, result, label))
        cell_summary = {
            "test_accuracy": a["test_accuracy"],
            "best_val_accuracy": a["best_val_accuracy"],
            "best_epoch": a["best_epoch"],
            "epochs": len(trained),
            "stopped_early": a["stopped_early"],
            "seconds_per_epoch": float(np.mean([r["seconds"] for r in trained])),
            "final_loss": trained[-1]["loss"],
            "early_stopping": {
                str(p.patience): {"stop_epoch": p.stop_epoch, "best_epoch": p.best_epoch}
                for p in points
            },
        }
        if rows[0]["epoch"] == 0:
            cell_summary["untrained_val_accuracy"] = rows[0]["val_accuracy"]
        if ctx.many:
            summary.setdefault("by_cell", {})[result.cell.id] = cell_summary
        else:
            summary.update(cell_summary)
        _plots(ctx, result, points)
    return Report(tables, summary)


def stopping_table(points: list[StoppingPoint], result: CellResult, label: str) -> Table:
    t = result.cell.config.train
    last = result.rows[-1]["epoch"]
    if not t.patience:
        own = "This run trained without early stopping (patience 0): the rows replay the rule."
    elif result.artifacts["stopped_early"]:
        own = f"This run trained with patience {t.patience} and stopped after epoch {last}."
    else:
        own = f"This run trained with patience {t.patience} and did not stop early."
    return Table(
        f"Early stopping on validation accuracy{label}",
        ["patience", "stops after epoch", "best epoch (kept)", "best val acc %", "why"],
        [
            [
                str(p.patience),
                "—" if p.stop_epoch is None else str(p.stop_epoch),
                str(p.best_epoch),
                percent(p.best_value, 2),
                p.why,
            ]
            for p in points
        ],
        align=["right", "right", "right", "right", "left"],
        note=(
            "Training stops once patience epochs pass without a validation accuracy above "
            f"the best so far; keep-best then restores the best epoch. {own}"
        ),
    )


def _plots(ctx: ReportContext, result: CellResult, points: list[StoppingPoint]) -> None:
    a, rows = result.artifacts, result.rows
    curves = {
        name: [r[key] for r in rows]
        for name, key in (
            ("train (sample)", "train_accuracy"),
            ("validation", "val_accuracy"),
            ("test", "test_accuracy"),
        )
        if key in rows[0]
    }
    epochs = [r["epoch"] for r in rows]
    title = f"MNIST MLP {result.cell.config.model.hidden}"
    ctx.save_cell_figure(
        result,
        "loss_and_accuracy",
        loss_and_accuracy,
        a["iteration_loss"],
        a["steps_per_epoch"],
        epochs,
        curves,
        title,
    )
    ctx.save_cell_figure(
        result, "early_stopping", early_stopping_curve, epochs, curves, points, title
    )
    ctx.save_cell_figure(
        result,
        "training",
        training_curves,
        a["iteration_loss"],
        epochs,
        [r["train_accuracy"] for r in rows],
        [r["val_accuracy"] for r in rows],
        title,
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


def loss_and_accuracy(
    iteration_loss: Sequence[float],
    steps_per_epoch: int,
    epochs: Sequence[int],
    accuracy: dict[str, Sequence[float]],
    title: str,
) -> Figure:
    """The course's figure: training loss (left axis, per iteration, placed at its fraction
    of an epoch) with train, validation and test accuracy per epoch (right axis), epoch 0
    the untrained model, in one axes."""
    figure = plotting.figure((8, 4.6))
    left = figure.subplots()
    right = left.twinx()
    loss = np.asarray(iteration_loss)
    where = np.arange(1, loss.size + 1) / steps_per_epoch
    left.plot(where, loss, color="#9ecae1", lw=0.6, label="training loss (per iteration)")
    window = max(1, loss.size // 50)
    if window > 1:
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        left.plot(where[window - 1 :], smooth, color="#08519c", lw=1.6, label="loss, moving mean")
    left.set(xlabel="epoch", ylabel="training loss", yscale="log", title=title)
    styles = {
        "train (sample)": ("o-", "#756bb1"),
        "validation": ("s-", "#31a354"),
        "test": ("^-", "#e6550d"),
    }
    for name, values in accuracy.items():
        marker, colour = styles.get(name, ("o-", "black"))
        right.plot(epochs, 100 * np.asarray(values), marker, color=colour, label=f"{name} acc")
    right.set(ylabel="accuracy (%)", ylim=(0, 100))
    left.set_xticks(list(epochs))
    lines = left.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    right.legend(
        lines[0] + more[0], lines[1] + more[1], frameon=False, loc="center right", fontsize="small"
    )
    left.grid(alpha=0.3)
    return figure


def early_stopping_curve(
    epochs: Sequence[int],
    accuracy: dict[str, Sequence[float]],
    points: list[StoppingPoint],
    title: str,
) -> Figure:
    """Validation (and train) accuracy per epoch; the best epoch of each patience marked, a
    dashed line where training stops with that patience, the epochs without improvement
    that make it stop shaded."""
    figure = plotting.figure((8, 4.6))
    axes = figure.subplots()
    for name, values in accuracy.items():
        if name == "test":
            continue  # early stopping never looks at the test set
        axes.plot(
            epochs,
            100 * np.asarray(values),
            "o-" if name != "validation" else "s-",
            color="#31a354" if name == "validation" else "#bcbddc",
            label=f"{name} acc",
        )
    shades = plotting.colormap("plasma")(np.linspace(0.15, 0.75, max(1, len(points))))
    for colour, p in zip(shades, points):
        axes.plot(p.best_epoch, 100 * p.best_value, "*", ms=14, color=colour, zorder=3)
        if p.stop_epoch is None:
            axes.plot(
                [],
                [],
                color=colour,
                label=f"patience {p.patience}: no stop (best epoch {p.best_epoch})",
            )
            continue
        axes.axvspan(p.best_epoch, p.stop_epoch, color=colour, alpha=0.08)
        axes.axvline(
            p.stop_epoch,
            color=colour,
            ls="--",
            lw=1.3,
            label=f"patience {p.patience}: stop after {p.stop_epoch}, keep {p.best_epoch}",
        )
    shown = [
        100 * v
        for name, values in accuracy.items()
        if name != "test"
        for e, v in zip(epochs, values)
        if e >= 1
    ]  # the untrained epoch 0 (about 10%) would flatten the curve: left below the axes
    pad = 0.15 * (max(shown) - min(shown)) + 0.1
    axes.set(
        xlabel="epoch",
        ylabel="accuracy (%)",
        xticks=list(epochs),
        ylim=(max(0.0, min(shown) - pad), min(100.0, max(shown)) + pad),
        title=f"{title}: early stopping (star: best epoch kept)",
    )
    axes.legend(frameon=False, fontsize="small", loc="best")
    plotting.tidy(axes)
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
