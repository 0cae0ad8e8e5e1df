"""``knn``: k-nearest neighbours, and choosing k honestly (on validation, never on test).

With ``cv.folds`` = f > 0, k is chosen by f-fold cross-validation instead: every k of the
cell's list is scored on the folds of the training part (the points the neighbours are taken
from; folds from the run seed and those points, :mod:`kernelnet.cv`) and the k with the
highest mean fold accuracy is chosen (among equals the smallest). The validation part is
still held out and its accuracy shown beside, for comparison; it chooses nothing. The test
set is scored once, at the chosen k, from the whole training part. A k larger than the
smallest fold's training part cannot be cross-validated: it gets no CV score and is not a
candidate. Every row gains ``k_cv_mean`` and ``k_cv_std`` (that k's fold accuracies); the
chosen k's row also holds ``cv_mean`` and ``cv_std``, the cell's CV score as in every other
experiment (and, like ``test_accuracy``, only there), so whatever ranks cells by
``cv_mean`` (the CV table's star, ``best_by_cv``, a search) ranks them by their chosen k.
With ``cv.folds: 0`` (the default) everything is as without CV.

On two-dimensional data each cell also predicts every point of a grid over the data (the
``BOUNDARY_GRID`` x ``BOUNDARY_GRID`` centres spanning the points, padded) for up to
``BOUNDARY_PANELS`` of the swept k, and stores them in ``cells/<cell>/boundaries.npz``
(with the training points they were predicted from); the report draws them as small
multiples, ``plots/decision_boundaries_<dataset>.png``: how the boundary smooths as k grows.

The preflight estimates each cell's memory (the distance blocks, the neighbour lists of
every query) and refuses, before a run folder exists, one that is over the memory limit.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kernelnet import plotting
from kernelnet.config import Cell, param
from kernelnet.config.sweep import safe_text
from kernelnet.cv import (
    CVSection,
    check_folds,
    cv_report,
    fold_rng,
    score_folds_by_setting,
    stratified_folds,
)
from kernelnet.data.mnist import load_mnist, mnist_split
from kernelnet.data.registry import (
    BINARY_DATASETS,
    TOY2D,
    DataFileOptions,
    load_labelled,
)
from kernelnet.data.validation import label_text
from kernelnet.errors import DataError
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
from kernelnet.seeding import cell_rng
from kernelnet.tables import Table, percent

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DATASETS = (*BINARY_DATASETS, "mnist")
BOUNDARY_GRID = 120  # grid points per axis of a decision-boundary panel
BOUNDARY_PANELS = 9  # at most this many k are drawn (spread over the swept ones)
BOUNDARY_FILE = "boundaries.npz"
MNIST_MAPPING = {str(digit): digit for digit in range(10)}  # MNIST's labels are the digits


@dataclass
class KnnData(DataFileOptions):
    dataset: str = param(
        default_factory=lambda: [*TOY2D, "mnist"],
        label="dataset",
        help="mnist, a shipped two-class set, or a path to a CSV, .npz or LIBSVM file, a "
        "features .npy beside its labels or a folder of X.npy and y.npy (any number of classes)",
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
    # Left out of the cell digest (outcome=False) so existing cells keep their seeds and
    # stored results; the report refuses cells stored without the CV it asks for.
    cv: CVSection = param(default_factory=CVSection, outcome=False)


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


def cross_validate_ks(
    X: np.ndarray, y: np.ndarray, ks: list[int], metric: str, folds: int, seed: int
) -> dict[int, np.ndarray]:
    """Fold accuracies (folds,) of each k of ``ks`` that every fold's training part can
    serve (k at most its size), all k of a fold from one distance computation. Folds from
    ``seed`` and the training data ``X`` (n, d), ``y`` (n,) coded 0..C-1."""
    split = stratified_folds(y, folds, fold_rng(seed, X, y))
    scored = [k for k in ks if k <= min(len(train) for train, _ in split)]
    if not scored:
        return {}

    def fit_and_score(train: np.ndarray, test: np.ndarray) -> list[float]:
        predicted = knn_predict_all_k(X[train], y[train], X[test], scored, metric)
        return [float((predicted[k] == y[test]).mean()) for k in scored]

    return dict(zip(scored, score_folds_by_setting(split, fit_and_score)))


def run_cell(config: KnnConfig, ctx: CellContext) -> CellOutput:
    X_train, y_train, X_val, y_val, X_test, y_test, mapping = mapped_splits(config, ctx.rng)
    ks = sorted(set(k for k in config.knn.k if k <= len(y_train)))
    metric = config.knn.metric
    train_pred = knn_predict_all_k(X_train, y_train, X_train, ks, metric)
    val_pred = knn_predict_all_k(X_train, y_train, X_val, ks, metric)
    train_acc = {k: float((p == y_train).mean()) for k, p in train_pred.items()}
    val_acc = {k: float((p == y_val).mean()) for k, p in val_pred.items()}
    folds = config.cv.folds
    cv_scores = {}
    if folds:
        cv_scores = cross_validate_ks(X_train, y_train, ks, metric, folds, config.seed)
        if not cv_scores:  # the preflight refuses this; a direct call is told the same
            raise DataError(f"no k of knn.k is at most the {folds}-fold training parts' size")
        chosen = choose_k({k: float(np.mean(s)) for k, s in cv_scores.items()})  # = k_cv_mean
    else:
        chosen = choose_k(val_acc)
    test_acc = float(
        (knn_predict_all_k(X_train, y_train, X_test, [chosen], metric)[chosen] == y_test).mean()
    )
    rows = []
    for k in ks:
        row = {
            "dataset": config.data.dataset,
            "metric": metric,
            "k": k,
            "train_accuracy": train_acc[k],
            "val_accuracy": val_acc[k],
        }
        if folds:  # the columns exist only with CV on: CV off writes what it always wrote
            scores = cv_scores.get(k)
            row["k_cv_mean"] = None if scores is None else float(np.mean(scores))
            row["k_cv_std"] = None if scores is None else float(np.std(scores))
        row |= {"chosen": k == chosen, "test_accuracy": test_acc if k == chosen else None}
        if folds and k == chosen:  # the cell's CV score, like its test score: the chosen k's
            row |= {"cv_mean": row["k_cv_mean"], "cv_std": row["k_cv_std"]}
        rows.append(row)
    sizes = {"train": len(y_train), "val": len(y_val), "test": len(y_test)}
    if X_train.shape[1] == 2:
        ctx.files.save_npz(
            BOUNDARY_FILE,
            **boundary_grid(X_train, y_train, (X_train, X_val, X_test), ks, metric),
        )
    artifacts = {
        "chosen": chosen,
        "test_accuracy": test_acc,
        "sizes": sizes,
        "label_mapping": mapping,
    }
    if folds:
        artifacts["chosen_by"] = f"{folds}-fold cross-validation"
        artifacts["cv_scores"] = [float(s) for s in cv_scores[chosen]]  # the chosen k's
        artifacts["cv_scores_by_k"] = {str(k): [float(v) for v in s] for k, s in cv_scores.items()}
    return CellOutput(rows, artifacts)


def boundary_ks(ks: list[int], panels: int = BOUNDARY_PANELS) -> list[int]:
    """The k drawn: every one of the sorted ``ks`` when they fit in ``panels``, else
    ``panels`` of them spread evenly from the smallest to the largest."""
    if len(ks) <= panels:
        return list(ks)
    picks = np.unique(np.round(np.linspace(0, len(ks) - 1, panels)).astype(int))
    return [ks[i] for i in picks]


def boundary_grid(X_train, y_train, spanned, ks, metric, size: int = BOUNDARY_GRID) -> dict:
    """k-NN predictions on a ``size`` x ``size`` grid of 2-D points covering every array in
    ``spanned`` (padded by 5% of each range): ``xs`` (size,), ``ys`` (size,), ``k`` (m,),
    ``predictions`` (m, size, size) with rows along y (the class code at (xs[j], ys[i]) is
    ``predictions[:, i, j]``), and the training points ``X_train`` (n, 2), ``y_train``
    (n,) they were predicted from."""
    points = np.concatenate(spanned)
    low, high = points.min(axis=0), points.max(axis=0)
    pad = 0.05 * np.maximum(high - low, 1e-9)
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], size)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], size)
    grid = np.column_stack([np.tile(xs, size), np.repeat(ys, size)])  # row i is ys[i]
    drawn = boundary_ks(ks)
    predicted = knn_predict_all_k(X_train, y_train, grid, drawn, metric)
    return {
        "xs": xs,
        "ys": ys,
        "k": np.array(drawn, dtype=np.int64),
        "predictions": np.stack([predicted[k].reshape(size, size) for k in drawn]),
        "X_train": X_train,
        "y_train": y_train,
    }


def _table(result: CellResult, setting: str) -> Table:
    dataset, a = result.cell.config.data.dataset, result.artifacts
    if "chosen_by" in a:
        return _cv_table(result, setting)
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


def _cv_table(result: CellResult, setting: str) -> Table:
    """The cell's table when k was chosen by cross-validation: each k's CV accuracy beside
    its training and validation accuracy."""
    dataset, a = result.cell.config.data.dataset, result.artifacts
    folds = result.cell.config.cv.folds

    def cv_text(row: dict) -> str:
        if row.get("k_cv_mean") is None:
            return "— (k > a fold's training part)"
        return f"{percent(row['k_cv_mean'])} ± {percent(row['k_cv_std'])}"

    return Table(
        f"{dataset}: accuracy against k ({result.cell.config.knn.metric}; "
        f"{a['sizes']['train']} train / {a['sizes']['val']} validation / "
        f"{a['sizes']['test']} test)" + (f" — {setting}" if setting else ""),
        ["k", "train acc %", "val acc %", f"{folds}-fold CV acc % (mean ± std)", ""],
        [
            [
                str(r["k"]),
                percent(r["train_accuracy"]),
                percent(r["val_accuracy"]),
                cv_text(r),
                f"← chosen by {folds}-fold CV" if r["chosen"] else "",
            ]
            for r in result.rows
        ],
        note=f"k is chosen by {folds}-fold stratified cross-validation on the "
        f"{a['sizes']['train']} training points (the highest mean, among equals the smallest "
        "k); the validation accuracy is shown for comparison and chooses nothing. Test "
        f"accuracy at the chosen k = {a['chosen']}: {percent(a['test_accuracy'])}% (the test "
        "set is used once, after choosing).",
        align=["right", "right", "right", "right", "left"],
    )


def _chosen_entry(result: CellResult) -> dict:
    """A dataset's summary entry: the chosen k, its test accuracy and, with CV, how k was
    chosen and the chosen k's CV mean and spread."""
    a = result.artifacts
    entry = {"chosen_k": a["chosen"], "test_accuracy": a["test_accuracy"]}
    if "chosen_by" in a:
        row = next(r for r in result.rows if r["k"] == a["chosen"])
        entry |= {"chosen_by": a["chosen_by"], "cv_mean": row["cv_mean"], "cv_std": row["cv_std"]}
    return entry


def report(ctx: ReportContext) -> Report:
    folds = int((ctx.config.get("cv") or {}).get("folds") or 0)
    # first: it refuses a resumed cell stored with other cv settings
    cv_tables, cv_summary = cv_report(ctx.results, ctx.config, "test_accuracy", "test acc %")
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
                [r.get("k_cv_mean") for r in result.rows] if folds else None,
                [r.get("k_cv_std") for r in result.rows] if folds else None,
            )
            chosen[dataset] = _chosen_entry(result)
        ctx.save_figure(f"accuracy_vs_k{figure_suffix(setting)}", knn_curves, curves, setting)
        for result in members:
            _save_boundaries(ctx, result, setting)
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
    return Report(tables + cv_tables, summary | cv_summary)


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
    whose estimated memory is over the limit, or (with CV on) whose training part has a
    class with fewer points than folds or no k a fold's training part can serve."""
    seen: dict[tuple, tuple[int, int, int]] = {}
    for cell in cells:
        d = cell.config.data
        key = (d.dataset, d.label_column, d.test_path, d.test_fraction, cell.config.seed)
        key += (d.val_fraction, d.mnist_train, d.mnist_val, d.mnist_test)  # what _sizes reads
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
        if cell.config.cv.folds:
            _check_cv(cell, f"{where}: ")


def _check_cv(cell: Cell, where: str) -> None:
    """DataError unless the cell's training part (split by the cell's own Generator, as
    the executor derives it for run_cell) can be dealt into cv.folds folds with every class
    in each, and some k of knn.k is at most the smallest fold's training part."""
    folds = cell.config.cv.folds
    y_train = mapped_splits(cell.config, cell_rng(cell.config.seed, cell.digest))[1]
    check_folds(y_train, folds, where)
    smallest = len(y_train) - -(-len(y_train) // folds)  # less the largest test fold
    if not any(k <= smallest for k in cell.config.knn.k):
        raise DataError(
            f"{where}cv.folds={folds}: a fold trains on only {smallest} of the "
            f"{len(y_train)} training points, fewer than the smallest k of knn.k "
            f"({min(cell.config.knn.k)}); use smaller knn.k values or fewer folds"
        )


def _save_boundaries(ctx: ReportContext, result: CellResult, setting: str) -> None:
    """The cell's decision-boundary figure, when it stored a grid (2-D data only)."""
    try:
        grid = ctx.files(result).read_arrays(BOUNDARY_FILE)
    except FileNotFoundError:  # not 2-D (or a cell stored before grids were)
        return
    dataset = result.cell.config.data.dataset
    if "chosen_by" in result.artifacts:  # the panels show what chose k
        scores = {r["k"]: r["k_cv_mean"] for r in result.rows if r.get("k_cv_mean") is not None}
        label = "CV"
    else:
        scores, label = {r["k"]: r["val_accuracy"] for r in result.rows}, "val"
    title = f"{dataset}: k-NN decision regions as k grows ({result.cell.config.knn.metric})"
    ctx.save_figure(
        f"decision_boundaries_{_figure_name(dataset)}{figure_suffix(setting)}",
        decision_boundaries,
        grid,
        scores,
        result.artifacts["chosen"],
        title + (f" — {setting}" if setting else ""),
        label,
    )


def _figure_name(dataset: str) -> str:
    """A shipped set by its name; a file by its name and a short hash of the path as
    written (two files called data.csv never share a figure)."""
    if dataset in DATASETS:
        return dataset
    digest = hashlib.sha256(dataset.encode()).hexdigest()[:6]
    return f"{safe_text(os.path.basename(dataset.rstrip('/')) or 'data', 60)}~{digest}"


def decision_boundaries(
    grid: dict, val_accuracy: dict, chosen: int, title: str, score_label: str = "val"
) -> Figure:
    """One panel per k of ``grid`` (see :func:`boundary_grid`): the predicted class of every
    grid point as a filled region, the training points on top, the accuracy that chose k
    (``val_accuracy``: validation, or the CV mean with ``score_label="CV"``) in the panel's
    title and the chosen k marked."""
    from matplotlib.colors import ListedColormap

    ks = [int(k) for k in grid["k"]]
    columns = len(ks) if len(ks) <= 3 else int(np.ceil(np.sqrt(len(ks))))  # 4: 2 x 2
    rows = -(-len(ks) // columns)
    figure = plotting.figure((3.3 * columns, 3.1 * rows + 0.5))
    axes_grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    n_classes = int(max(grid["predictions"].max(), grid["y_train"].max())) + 1
    colours = (
        [plotting.NEGATIVE, plotting.POSITIVE]
        if n_classes == 2
        else [plotting.colormap("tab10")(i % 10) for i in range(n_classes)]
    )
    regions = ListedColormap(colours)
    xs, ys = grid["xs"], grid["ys"]
    for axes, k, predicted in zip(axes_grid, ks, grid["predictions"]):
        axes.pcolormesh(xs, ys, predicted, cmap=regions, vmin=-0.5, vmax=n_classes - 0.5,
                        alpha=0.25, shading="nearest", rasterized=True)  # fmt: skip
        if n_classes > 1:
            axes.contour(xs, ys, predicted, levels=np.arange(n_classes - 1) + 0.5,
                         colors="black", linewidths=0.8)  # fmt: skip
        axes.scatter(*grid["X_train"].T, c=grid["y_train"], cmap=regions, vmin=-0.5,
                     vmax=n_classes - 0.5, s=14, edgecolors="white", linewidths=0.5)  # fmt: skip
        shown = f"k = {k}"
        if k in val_accuracy:
            shown += f" ({score_label} {percent(val_accuracy[k])}%)"
        axes.set_title(shown + (" ← chosen" if k == chosen else ""), fontsize="medium",
                       fontweight="bold" if k == chosen else "normal")  # fmt: skip
        axes.set(xticks=[], yticks=[], xlim=(xs[0], xs[-1]), ylim=(ys[0], ys[-1]))
    for axes in axes_grid[len(ks) :]:
        axes.set_visible(False)
    figure.suptitle(title)
    return figure


def knn_curves(curves: dict[str, tuple], setting: str = "") -> Figure:
    """Per dataset: train and validation accuracy against k, the chosen k and its test
    accuracy. Each entry is (ks, train_acc, val_acc, chosen_k, test_acc, cv_mean, cv_std):
    each k's CV mean and spread, None without cross-validation (an entry None for a k it
    could not score)."""
    figure = plotting.figure((3.4 * len(curves), 3.6))
    grid = np.atleast_1d(figure.subplots(1, len(curves), squeeze=False)[0])
    chosen_by = "on validation"
    for axes, (dataset, entry) in zip(grid, curves.items()):
        ks, train, val, chosen, test, cv_mean, cv_std = entry
        axes.plot(ks, 100 * np.asarray(train), "o-", color="#756bb1", label="train")
        axes.plot(ks, 100 * np.asarray(val), "s-", color="#31a354", label="validation")
        if cv_mean is not None:
            chosen_by = "by cross-validation"
            scored = [i for i, m in enumerate(cv_mean) if m is not None]
            mean = 100 * np.array([cv_mean[i] for i in scored])
            spread = 100 * np.array([cv_std[i] for i in scored])
            axes.errorbar([ks[i] for i in scored], mean, yerr=spread, fmt="d-", color="#3182bd",
                          capsize=2, label="CV mean ± std")  # fmt: skip
        axes.axvline(chosen, color="#999999", ls=":", lw=1)
        axes.plot([chosen], [100 * test], "*", color="#e6550d", ms=12, label="test at chosen k")
        axes.set(xscale="log", xlabel="k", ylabel="accuracy (%)", title=dataset)
        plotting.tidy(axes)
    grid[0].legend(frameon=False, fontsize="small")
    figure.suptitle(
        f"k-NN: k = 1 fits the training set perfectly; k is chosen {chosen_by}"
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
