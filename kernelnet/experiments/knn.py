"""``knn``: k-nearest neighbours, and choosing k honestly (on validation, never on test)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernelnet import plotting
from kernelnet.config import Cell, param
from kernelnet.data.mnist import load_mnist, scaled_pixels
from kernelnet.data.registry import BINARY_DATASETS, TOY2D, load_binary, verify_binary
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
)
from kernelnet.knn import METRICS, knn_predict_all_k
from kernelnet.tables import Table, percent

DATASETS = (*BINARY_DATASETS, "mnist")


@dataclass
class KnnData:
    dataset: str = param(
        default_factory=lambda: [*TOY2D, "mnist"], choices=DATASETS, label="dataset"
    )
    val_fraction: float = param(
        0.25, gt=0, lt=1, help="toy sets: share of the training points held out"
    )
    mnist_train: int = param(5000, ge=1, le=55_000)
    mnist_val: int = param(1000, ge=1, le=5_000, help="taken from the last 5,000 images")
    mnist_test: int = param(1000, ge=1, le=10_000)


@dataclass
class KnnSection:
    metric: str = param("euclidean", choices=METRICS)
    k: list[int] = param(default_factory=lambda: [1, 3, 5, 7, 9, 11, 15, 21, 31], ge=1)


@dataclass
class KnnConfig(ExperimentConfig):
    data: KnnData = field(default_factory=KnnData)
    knn: KnnSection = field(default_factory=KnnSection)


def splits(config: KnnConfig, rng: np.random.Generator):
    """(X_train, y_train, X_val, y_val, X_test, y_test) with integer labels 0..C-1."""
    d = config.data
    if d.dataset == "mnist":
        m = load_mnist()
        labels = m.train_labels.astype(np.int64)
        return (
            scaled_pixels(m.train_images[: d.mnist_train]),
            labels[: d.mnist_train],
            scaled_pixels(m.train_images[-5000:][: d.mnist_val]),
            labels[-5000:][: d.mnist_val],
            scaled_pixels(m.test_images[: d.mnist_test]),
            m.test_labels[: d.mnist_test].astype(np.int64),
        )
    split = load_binary(d.dataset)
    y_train = (split.y_train > 0).astype(np.int64)
    order = rng.permutation(len(y_train))
    n_val = max(1, int(round(d.val_fraction * len(order))))
    val, train = order[:n_val], order[n_val:]
    return (
        split.X_train[train],
        y_train[train],
        split.X_train[val],
        y_train[val],
        split.X_test,
        (split.y_test > 0).astype(np.int64),
    )


def choose_k(val_accuracy: dict[int, float]) -> int:
    """Best validation accuracy; among equals the smallest k (the simplest vote)."""
    best = max(val_accuracy.values())
    return min(k for k, acc in val_accuracy.items() if acc == best)


def run_cell(config: KnnConfig, ctx: CellContext) -> CellOutput:
    X_train, y_train, X_val, y_val, X_test, y_test = splits(config, ctx.rng)
    ks = sorted(set(k for k in config.knn.k if k <= len(y_train)))
    metric = config.knn.metric
    train_pred = knn_predict_all_k(X_train, y_train, X_train, ks, metric)
    val_pred = knn_predict_all_k(X_train, y_train, X_val, ks, metric)
    train_acc = {k: float((p == y_train).mean()) for k, p in train_pred.items()}
    val_acc = {k: float((p == y_val).mean()) for k, p in val_pred.items()}
    chosen = choose_k(val_acc)
    test_acc = float(
        (knn_predict_all_k(X_train, y_train, X_test, [chosen], metric)[chosen] == y_test).mean()
    )
    rows = [
        {
            "dataset": config.data.dataset,
            "metric": metric,
            "k": k,
            "train_accuracy": train_acc[k],
            "val_accuracy": val_acc[k],
            "chosen": k == chosen,
            "test_accuracy": test_acc if k == chosen else None,
        }
        for k in ks
    ]
    sizes = {"train": len(y_train), "val": len(y_val), "test": len(y_test)}
    return CellOutput(rows, {"chosen": chosen, "test_accuracy": test_acc, "sizes": sizes})


def report(ctx: ReportContext) -> Report:
    tables, curves, summary = [], {}, {}
    for result in ctx.completed:
        dataset = result.cell.config.data.dataset
        a = result.artifacts
        tables.append(
            Table(
                f"{dataset}: accuracy against k ({result.cell.config.knn.metric}; "
                f"{a['sizes']['train']} train / {a['sizes']['val']} validation / "
                f"{a['sizes']['test']} test)",
                ["k", "train acc %", "val acc %", ""],
                [
                    [
                        str(r["k"]),
                        percent(r["train_accuracy"]),
                        percent(r["val_accuracy"]),
                        "← chosen on validation" if r["chosen"] else "",
                    ]
                    for r in result.rows
                ],
                note=f"Test accuracy at the chosen k = {a['chosen']}: "
                f"{percent(a['test_accuracy'])}% (the test set is used once, after choosing).",
                align=["right", "right", "right", "left"],
            )
        )
        curves[dataset] = (
            [r["k"] for r in result.rows],
            [r["train_accuracy"] for r in result.rows],
            [r["val_accuracy"] for r in result.rows],
            a["chosen"],
            a["test_accuracy"],
        )
        summary[dataset] = {"chosen_k": a["chosen"], "test_accuracy": a["test_accuracy"]}
    if curves:
        plotting.save(ctx.run, "plots/accuracy_vs_k.png", plotting.knn_curves(curves))
    return Report(tables, {"by_dataset": summary})


def preflight(cells: list[Cell]) -> None:
    names = {cell.config.data.dataset for cell in cells}
    if "mnist" in names:
        load_mnist()
    verify_binary(names - {"mnist"})


EXPERIMENT = Experiment(
    name="knn",
    help="k-nearest neighbours: accuracy against k, k chosen on validation, test reported once.",
    details="""\
Vectorized k-NN (Euclidean or cosine). Each dataset is split into train / validation /
test; k is swept, k is chosen on validation only, and the test set is evaluated once, at the
chosen k. Ties: equal distances keep training order; a tied vote goes to the class of the
nearest tied neighbour. Defaults: configs/knn.yaml (toy sets and a 5,000-image MNIST subset).

Example:  kernelnet knn --set knn.metric=cosine --set data.dataset=mnist""",
    schema=KnnConfig,
    run_cell=run_cell,
    report=report,
    preflight=preflight,
)
