"""``siamese``: a shared-weight two-tower network trained with the cosine loss
L = -y cos(z, z_hat) on MNIST pairs (y = +1 same digit, -1 different digits); reports how
the loss, the pair accuracy (same when cos > 0) and the similarity of same / different
pairs change as training aligns the embeddings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kernelnet import plotting
from kernelnet.config import Cell, param
from kernelnet.data.mnist import load_mnist, mnist_split
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
)
from kernelnet.nn.models import MLP
from kernelnet.nn.optim import Adam
from kernelnet.nn.similarity import cosine_backward, cosine_forward, cosine_loss
from kernelnet.nn.trainer import Trainer, TrainSettings, discard_checkpoint
from kernelnet.tables import Table, percent

if TYPE_CHECKING:
    from matplotlib.figure import Figure


TRAIN_IMAGES = 20_000  # pairs are drawn from the first 20,000 training images


@dataclass
class SiameseSection:
    train_pairs: int = param(4000, ge=10)
    test_pairs: int = param(2000, ge=10)
    hidden: list[int] = param(default_factory=lambda: [128], ge=1)
    embedding: int = param(32, ge=2)
    epochs: int = param(5, ge=1)
    batch_size: int = param(100, ge=1)
    learning_rate: float = param(1e-3, gt=0)


@dataclass
class SiameseConfig(ExperimentConfig):
    siamese: SiameseSection = field(default_factory=SiameseSection)


def make_pairs(labels: np.ndarray, count: int, rng: np.random.Generator):
    """Balanced pairs (i, j, y): half from the same digit (y = +1), half different (-1)."""
    by_digit = [np.flatnonzero(labels == d) for d in range(10)]
    first = rng.integers(0, len(labels), size=count)
    same = np.arange(count) < count // 2
    second = np.empty(count, dtype=np.int64)
    for k, (i, is_same) in enumerate(zip(first, same)):
        digit = labels[i]
        if not is_same:
            digit = (digit + rng.integers(1, 10)) % 10
        second[k] = rng.choice(by_digit[digit])
    order = rng.permutation(count)
    return first[order], second[order], np.where(same, 1.0, -1.0)[order]


def pair_step(tower: MLP, xa, xb, y):
    """Loss and summed gradients of both towers (they share every weight)."""
    za, cache_a = tower.forward(xa, train=True)
    zb, cache_b = tower.forward(xb, train=True)
    cos, cos_cache = cosine_forward(za, zb)
    loss, dcos = cosine_loss(cos, y)
    dza, dzb = cosine_backward(dcos, cos_cache)
    grads = {k: v.copy() for k, v in tower.backward(dza, caches=cache_a).items()}  # buffers reused
    for name, grad in tower.backward(dzb, caches=cache_b).items():
        grads[name] += grad
    return loss, grads


def evaluate(tower: MLP, X, pairs) -> dict[str, float]:
    first, second, y = pairs
    cos, _ = cosine_forward(tower.scores(X[first]), tower.scores(X[second]))
    return {
        "test_loss": cosine_loss(cos, y)[0],
        "pair_accuracy": float(((cos > 0) == (y > 0)).mean()),
        "cos_same": float(cos[y > 0].mean()),
        "cos_different": float(cos[y < 0].mean()),
    }


def run_cell(config: SiameseConfig, ctx: CellContext) -> CellOutput:
    s = config.siamese
    data = mnist_split(TRAIN_IMAGES)
    X, X_test = data.X_train, data.X_test
    train_pairs = make_pairs(data.y_train, s.train_pairs, ctx.rng)
    test_pairs = make_pairs(data.y_test, s.test_pairs, ctx.rng)
    tower = MLP.create(784, s.hidden, s.embedding, ctx.rng, init="he", dtype=np.float64)
    first, second, y = train_pairs

    def loss_and_grads(batch: np.ndarray):
        return pair_step(tower, X[first[batch]], X[second[batch]], y[batch])

    trainer = Trainer(
        tower,
        Adam(lr=s.learning_rate),
        loss_and_grads,
        len(y),
        TrainSettings(epochs=s.epochs, batch_size=s.batch_size, keep_best=False),
        ctx.rng,
        lambda: evaluate(tower, X_test, test_pairs),
        checkpoints=ctx.files,
        fingerprint=ctx.cell.digest,
    )
    untrained = {"epoch": 0, **evaluate(tower, X_test, test_pairs)}
    rows = [untrained, *trainer.fit().rows]
    discard_checkpoint(ctx.files)
    cos, _ = cosine_forward(
        tower.scores(X_test[test_pairs[0]]), tower.scores(X_test[test_pairs[1]])
    )
    return CellOutput(rows, {"final_cos": cos, "final_y": test_pairs[2]})


def report(ctx: ReportContext) -> Report:
    tables, summary = [], {}
    for result in ctx.completed:
        label = f" — {result.cell.id}" if ctx.many else ""
        tables.append(
            Table(
                f"Siamese cosine loss on MNIST test pairs{label}",
                [
                    "epoch",
                    "train loss",
                    "test loss",
                    "pair acc %",
                    "mean cos (same)",
                    "mean cos (different)",
                ],
                [
                    [
                        str(r["epoch"]),
                        f"{r['loss']:+.4f}" if "loss" in r else "—",
                        f"{r['test_loss']:+.4f}",
                        percent(r["pair_accuracy"]),
                        f"{r['cos_same']:+.3f}",
                        f"{r['cos_different']:+.3f}",
                    ]
                    for r in result.rows
                ],
                note="Epoch 0 is the untrained network. Pairs are judged 'same digit' when "
                "cos > 0; the loss -y cos pulls same pairs to +1 and pushes different ones to -1.",
            )
        )
        ctx.save_cell_figure(
            result,
            "siamese",
            siamese_panels,
            result.rows,
            np.asarray(result.artifacts["final_cos"]),
            np.asarray(result.artifacts["final_y"]),
        )
        last = result.rows[-1]
        cell_summary = {
            "pair_accuracy": last["pair_accuracy"],
            "final_loss": last["test_loss"],
            "initial_pair_accuracy": result.rows[0]["pair_accuracy"],
        }
        if ctx.many:
            summary.setdefault("by_cell", {})[result.cell.id] = cell_summary
        else:
            summary.update(cell_summary)
    return Report(tables, summary)


def preflight(cells: list[Cell]) -> None:
    load_mnist()  # check the data before a run folder exists


def siamese_panels(rows: list[dict], cos: np.ndarray, y: np.ndarray) -> Figure:
    """Loss and pair accuracy per epoch; histogram of final cosines, same vs different."""
    figure = plotting.figure((11, 3.8))
    left, right = figure.subplots(1, 2)
    epochs = [r["epoch"] for r in rows]
    left.plot(epochs, [r["test_loss"] for r in rows], "o-", color="#333333", label="loss -y cos")
    twin = left.twinx()
    twin.plot(
        epochs,
        [100 * r["pair_accuracy"] for r in rows],
        "s-",
        color="#31a354",
        label="pair accuracy",
    )
    left.set(xlabel="epoch", ylabel="test loss", title="Training aligns the embeddings")
    twin.set_ylabel("pair accuracy (%)", color="#31a354")
    bins = np.linspace(-1, 1, 41)
    right.hist(cos[y > 0], bins=bins, alpha=0.6, color=plotting.POSITIVE, label="same digit")
    right.hist(cos[y < 0], bins=bins, alpha=0.6, color=plotting.NEGATIVE, label="different digits")
    right.set(xlabel="cos(z, z_hat)", ylabel="pairs", title="Test pairs after training")
    right.legend(frameon=False)
    plotting.tidy(left, right)
    return figure


EXPERIMENT = Experiment(
    name="siamese",
    schema=SiameseConfig,
    run_cell=run_cell,
    report=report,
    preflight=preflight,
    row_key=("epoch",),
)
