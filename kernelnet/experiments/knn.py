"""``knn``: k-nearest neighbours, and choosing k honestly (on validation, never on test).

The preflight estimates each cell's memory (the distance blocks, the neighbour lists of
every query) and refuses, before a run folder exists, one that is over the memory limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kernelnet import plotting
from kernelnet.config import Cell, param
from kernelnet.data.mnist import load_mnist, mnist_split
from kernelnet.data.registry import (
    BINARY_DATASETS,
    TOY2D,
    DataFileOptions,
    load_labelled,
)
from kernelnet.data.validation import label_text
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    CellResult,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
    figure_suffix,
    group_cells,
)
from kernelnet.footprint import check_memory
from kernelnet.knn import METRICS, knn_predict_all_k
from kernelnet.tables import Table, percent

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DATASETS = (*BINARY_DATASETS, "mnist")
MNIST_MAPPING = {str(digit): digit for digit in range(10)}  # MNIST's labels are the digits


@dataclass
class KnnData(DataFileOptions):
    dataset: str = param(
        default_factory=lambda: [*TOY2D, "mnist"],
        label="dataset",
        help="mnist, a shipped two-class set, or a path to a CSV, .npz or LIBSVM file "
        "(any number of classes)",
    )
    val_fraction: float = param(
        0.25, gt=0, lt=1, help="share of the training points held out for choosing k"
    )
    mnist_train: int = param(5000, ge=1, le=55_000)
    mnist_val: int = param(1000, ge=1, le=5_000, help="the last N training images")
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
    return mapped_splits(config, rng)[:6]


def mapped_splits(config: KnnConfig, rng: np.random.Generator):
    """:func:`splits` and the label mapping: {original label as text: its code 0..C-1}."""
    d = config.data
    if d.dataset == "mnist":
        m = mnist_split(d.mnist_train, d.mnist_val, d.mnist_test)
        return m.X_train, m.y_train, m.X_val, m.y_val, m.X_test, m.y_test, MNIST_MAPPING
    X_fit, y_fit, X_test, y_test, mapping = labelled(config)
    order = rng.permutation(len(y_fit))
    n_val = max(1, int(round(d.val_fraction * len(order))))
    val, train = order[:n_val], order[n_val:]
    return X_fit[train], y_fit[train], X_fit[val], y_fit[val], X_test, y_test, mapping


def labelled(config: KnnConfig):
    """A shipped two-class set or a user's file: (X_train, y_train, X_test, y_test, label
    mapping) with labels coded 0..C-1 in sorted order, and the mapping {label as text:
    code} recorded as the neighbours vote on these codes (two classes too: 0 and 1, not the
    -1/+1 the two-class models use)."""
    split = load_labelled(config.data, config.seed, extra_names=("mnist",))
    classes = split.classes
    y_train = np.searchsorted(classes, split.y_train).astype(np.int64)
    y_test = np.searchsorted(classes, split.y_test).astype(np.int64)
    mapping = {label_text(c): code for code, c in enumerate(classes)}
    return split.X_train, y_train, split.X_test, y_test, mapping


def choose_k(val_accuracy: dict[int, float]) -> int:
    """Best validation accuracy; among equals the smallest k (the simplest vote)."""
    best = max(val_accuracy.values())
    return min(k for k, acc in val_accuracy.items() if acc == best)


def run_cell(config: KnnConfig, ctx: CellContext) -> CellOutput:
    X_train, y_train, X_val, y_val, X_test, y_test, mapping = mapped_splits(config, ctx.rng)
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
    artifacts = {
        "chosen": chosen,
        "test_accuracy": test_acc,
        "sizes": sizes,
        "label_mapping": mapping,
    }
    return CellOutput(rows, artifacts)


def _table(result: CellResult, setting: str) -> Table:
    dataset, a = result.cell.config.data.dataset, result.artifacts
    return Table(
        f"{dataset}: accuracy against k ({result.cell.config.knn.metric}; "
        f"{a['sizes']['train']} train / {a['sizes']['val']} validation / "
        f"{a['sizes']['test']} test)" + (f" — {setting}" if setting else ""),
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


def report(ctx: ReportContext) -> Report:
    tables, summary = [], {}
    for setting, members in group_cells(ctx.completed, ("dataset",)).items():
        curves, chosen = {}, {}
        for result in members:
            dataset, a = result.cell.config.data.dataset, result.artifacts
            tables.append(_table(result, setting))
            curves[dataset] = (
                [r["k"] for r in result.rows],
                [r["train_accuracy"] for r in result.rows],
                [r["val_accuracy"] for r in result.rows],
                a["chosen"],
                a["test_accuracy"],
            )
            chosen[dataset] = {"chosen_k": a["chosen"], "test_accuracy": a["test_accuracy"]}
        ctx.save_figure(f"accuracy_vs_k{figure_suffix(setting)}", knn_curves, curves, setting)
        if setting:
            summary.setdefault("by_setting", {})[setting] = chosen
        else:
            summary["by_dataset"] = chosen
    mappings = {
        r.cell.config.data.dataset: r.artifacts["label_mapping"]
        for r in ctx.completed
        if "label_mapping" in r.artifacts  # absent from cells stored before it was recorded
    }
    if mappings:
        summary["label_mapping"] = mappings
    return Report(tables, summary)


# kernelnet.knn.knn_predict_all_k scores queries in blocks of 12.5 million distances and
# keeps, for every query, its k_max nearest training points (int64) and their labels.
# tracemalloc's peak was 3.0 times the distance block while the neighbour lists are small
# (5,000 x 5,000 points, k <= 31: 287 MB), and about 2.1 times the lists once they
# dominate (20,000 queries, 2,000 training points, k = 2,000: 651 MB).
DISTANCE_BLOCK = 12_500_000


def knn_bytes(n_train: int, n_query: int, k_max: int) -> float:
    """Estimated peak memory of predicting ``n_query`` points from ``n_train`` for every
    k up to ``k_max``."""
    rows = min(n_query, max(1, DISTANCE_BLOCK // max(1, n_train)))
    lists = 8.0 * n_query * k_max
    return max(3 * 8.0 * rows * n_train + lists, 2.2 * lists)


def _sizes(config: KnnConfig) -> tuple[int, int, int]:
    """(train, validation, test) sizes of a cell, as run_cell splits them."""
    d = config.data
    if d.dataset == "mnist":
        return d.mnist_train, d.mnist_val, d.mnist_test
    _, y_fit, _, y_test, _ = labelled(config)
    n_val = max(1, int(round(d.val_fraction * len(y_fit))))
    return len(y_fit) - n_val, n_val, len(y_test)


def preflight(cells: list[Cell]) -> None:
    """Load every distinct dataset once, before a run folder exists, and refuse a cell
    whose estimated memory is over the limit."""
    seen: dict[tuple, tuple[int, int, int]] = {}
    for cell in cells:
        d = cell.config.data
        key = (d.dataset, d.label_column, d.test_path, d.test_fraction, cell.config.seed)
        if key not in seen:
            if d.dataset == "mnist":
                load_mnist()
            seen[key] = _sizes(cell.config)
        n_train, n_val, n_test = seen[key]
        k_max = max((k for k in cell.config.knn.k if k <= n_train), default=1)
        where = f"knn cell {cell.id}" if len(cells) > 1 else "knn"
        check_memory(
            f"{where} ({n_train:,} training points, k up to {k_max:,})",
            knn_bytes(n_train, max(n_train, n_val, n_test), k_max),
            "use smaller knn.k values or a smaller data file",
        )


def knn_curves(curves: dict[str, tuple], setting: str = "") -> Figure:
    """Per dataset: train and validation accuracy against k, the chosen k and its test
    accuracy. Each entry is (ks, train_acc, val_acc, chosen_k, test_acc)."""
    figure = plotting.figure((3.4 * len(curves), 3.6))
    grid = np.atleast_1d(figure.subplots(1, len(curves), squeeze=False)[0])
    for axes, (dataset, (ks, train, val, chosen, test)) in zip(grid, curves.items()):
        axes.plot(ks, 100 * np.asarray(train), "o-", color="#756bb1", label="train")
        axes.plot(ks, 100 * np.asarray(val), "s-", color="#31a354", label="validation")
        axes.axvline(chosen, color="#999999", ls=":", lw=1)
        axes.plot([chosen], [100 * test], "*", color="#e6550d", ms=12, label="test at chosen k")
        axes.set(xscale="log", xlabel="k", ylabel="accuracy (%)", title=dataset)
        plotting.tidy(axes)
    grid[0].legend(frameon=False, fontsize="small")
    figure.suptitle(
        "k-NN: k = 1 fits the training set perfectly; k is chosen on validation"
        + (f" — {setting}" if setting else "")
    )
    return figure


EXPERIMENT = Experiment(
    name="knn",
    schema=KnnConfig,
    run_cell=run_cell,
    report=report,
    preflight=preflight,
    row_key=("k",),
)
