"""``siamese``: a shared-weight two-tower network trained with the cosine loss
L = -y cos(z, z_hat) on MNIST pairs (y = +1 same digit, -1 different digits); reports how
the loss, the pair accuracy (same when cos > 0) and the similarity of same / different
pairs change as training aligns the embeddings."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernelnet import plotting
from kernelnet.config import param
from kernelnet.data.mnist import load_mnist, scaled_pixels
from kernelnet.errors import Diverged
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
from kernelnet.tables import Table, percent


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
        "loss": cosine_loss(cos, y)[0],
        "pair_accuracy": float(((cos > 0) == (y > 0)).mean()),
        "cos_same": float(cos[y > 0].mean()),
        "cos_different": float(cos[y < 0].mean()),
    }


def run_cell(config: SiameseConfig, ctx: CellContext) -> CellOutput:
    s = config.siamese
    data = load_mnist()
    X = scaled_pixels(data.train_images[:20_000])
    labels = data.train_labels[:20_000].astype(np.int64)
    X_test = scaled_pixels(data.test_images)
    train_pairs = make_pairs(labels, s.train_pairs, ctx.rng)
    test_pairs = make_pairs(data.test_labels.astype(np.int64), s.test_pairs, ctx.rng)
    tower = MLP.create(784, s.hidden, s.embedding, ctx.rng, init="he", dtype=np.float64)
    optimizer = Adam(lr=s.learning_rate)
    rows = [{"epoch": 0, **evaluate(tower, X_test, test_pairs)}]
    first, second, y = train_pairs
    for epoch in range(1, s.epochs + 1):
        order = ctx.rng.permutation(len(y))
        for start in range(0, len(y), s.batch_size):
            batch = order[start : start + s.batch_size]
            loss, grads = pair_step(tower, X[first[batch]], X[second[batch]], y[batch])
            if not np.isfinite(loss):
                raise Diverged(
                    f"loss became {loss} at epoch {epoch}; try a lower learning rate",
                    {"epoch": epoch, "lr": s.learning_rate},
                )
            optimizer.step(tower.params, grads)
        rows.append({"epoch": epoch, **evaluate(tower, X_test, test_pairs)})
    cos, _ = cosine_forward(
        tower.scores(X_test[test_pairs[0]]), tower.scores(X_test[test_pairs[1]])
    )
    return CellOutput(rows, {"final_cos": cos, "final_y": test_pairs[2]})


def report(ctx: ReportContext) -> Report:
    if not ctx.completed:
        return Report([])
    result = ctx.completed[0]
    table = Table(
        "Siamese cosine loss on MNIST test pairs",
        ["epoch", "loss", "pair acc %", "mean cos (same)", "mean cos (different)"],
        [
            [
                str(r["epoch"]),
                f"{r['loss']:+.4f}",
                percent(r["pair_accuracy"]),
                f"{r['cos_same']:+.3f}",
                f"{r['cos_different']:+.3f}",
            ]
            for r in result.rows
        ],
        note="Epoch 0 is the untrained network. Pairs are judged 'same digit' when "
        "cos > 0; the loss -y cos pulls same pairs to +1 and pushes different ones to -1.",
    )
    plotting.save(
        ctx.run,
        "plots/siamese.png",
        plotting.siamese_panels(
            result.rows, result.artifacts["final_cos"], result.artifacts["final_y"]
        ),
    )
    last = result.rows[-1]
    return Report(
        [table],
        {
            "pair_accuracy": last["pair_accuracy"],
            "final_loss": last["loss"],
            "initial_pair_accuracy": result.rows[0]["pair_accuracy"],
        },
    )


EXPERIMENT = Experiment(
    name="siamese",
    help="A shared-weight two-tower network trained with the cosine loss on MNIST pairs.",
    details="""\
Both images of a pair go through the same tower (an MLP, weights shared); the cosine of
their embeddings is trained with L = -y cos (y = +1 for the same digit, -1 otherwise).
Reports test loss, pair accuracy and the mean cosine of same and different pairs per epoch.""",
    schema=SiameseConfig,
    run_cell=run_cell,
    report=report,
)
