"""``kernel-table``: kernel SVMs through the dual QP, as a dataset x kernel grid.

Footprint: the preflight (before a run folder exists) refuses, with one line, a cell whose
cvxopt solve would need more memory than the limit or take minutes
(:func:`kernelnet.svm.dual.check_cvxopt`; ``solver.name=smo`` or ``auto`` is the way to fit
more samples). The Gram-matrix PSD check is an eigendecomposition, O(n^3): beyond
``PSD_MAX_N`` training samples it is made on a random subset of that many (a principal
submatrix: a negative eigenvalue there is one of the whole matrix too), said in the log and
the details table. ``psd.check=false`` skips it (a C x gamma search of an RBF kernel, whose
Gram matrix is PSD by construction, on 2,000 MNIST images spent 1.7 s of each cell's 6 s in
it); the tables then say "not checked".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from kernelnet import plotting
from kernelnet.config import Cell, param
from kernelnet.config.sweep import safe_text
from kernelnet.cv import (
    CVSection,
    check_folds,
    cross_val_scores,
    cv_artifacts,
    cv_columns,
    cv_report,
    fold_rng,
    stratified_folds,
)
from kernelnet.data.registry import (
    DATASET_HELP,
    TOY2D,
    BinarySplit,
    DataFileOptions,
    LabelledSplit,
    load_labelled,
)
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    CellResult,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
    each_cell_data,
    figure_suffix,
    group_cells,
    where,
)
from kernelnet.experiments.svm_sections import (
    KernelSection,
    PlotSection,
    SolverSection,
    kernel_of,
    kernel_svm,
    panel_artifact,
)
from kernelnet.footprint import check_memory
from kernelnet.mercer import check_psd
from kernelnet.model_io import save_model
from kernelnet.plotting import panel_of
from kernelnet.svm.dual import check_cvxopt
from kernelnet.tables import Table, number, percent


@dataclass
class TableData(DataFileOptions):
    dataset: str = param(
        default_factory=lambda: list(TOY2D),
        label="dataset",
        help=DATASET_HELP + "; a file may hold more than two classes (one-vs-one)",
    )


@dataclass
class DualSVMSection:
    C: float = param(1.0, gt=0, help="upper bound on each alpha")
    support_tol: float = param(
        1e-5, gt=0, lt=0.5, help="alpha > tol*C is a support vector; free if also < C - tol*C"
    )


@dataclass
class PSDSection:
    check: bool = param(
        True,
        sweepable=False,
        help="check that the Gram matrix of the training set is PSD (an eigendecomposition, "
        "O(n^3), on at most 2,000 samples); false skips it, e.g. in a search over "
        "an RBF kernel's settings",
    )


@dataclass
class KernelTableConfig(ExperimentConfig):
    data: TableData = field(default_factory=TableData)
    kernel: KernelSection = field(default_factory=KernelSection)
    svm: DualSVMSection = field(default_factory=DualSVMSection)
    solver: SolverSection = field(default_factory=SolverSection)
    plot: PlotSection = field(default_factory=PlotSection)
    # Left out of the cell digest (outcome=False) so existing cells keep their seeds and
    # stored results; the report refuses cells stored without the CV it asks for.
    cv: CVSection = param(default_factory=CVSection, outcome=False)
    # A diagnostic: skipping it changes no other number, so cells keep their seeds.
    psd: PSDSection = param(default_factory=PSDSection, outcome=False)


# check_psd on an n x n Gram matrix: peak memory 3.27 / 3.08 / 3.03 times 8 n^2 bytes for
# n = 1,000 / 2,000 / 4,000, in 0.5 / 3.6 / 25 s (one core; measured like cvxopt's, see
# kernelnet.svm.dual).
PSD_MAX_N = 2000
PSD_MATRICES = 3.3
CVXOPT_INSTEAD = (  # in the words of the config (the solver section's keys)
    "use solver.name=smo (libsvm's method, kernel rows on demand; solver.name=auto takes it "
    "beyond 1,000 samples) or a smaller data file"
)


def _largest_pair(y: np.ndarray) -> int:
    """Samples in the largest one-vs-one problem: the two most numerous classes."""
    counts = sorted(np.unique(y, return_counts=True)[1].tolist())
    return sum(counts[-2:])


def preflight(cells: list[Cell]) -> None:
    """Load each distinct dataset once (a data problem stops the run before a folder
    exists), then check each cell's footprint: the PSD check's Gram matrix, and a cvxopt
    solve of its largest pair of classes."""
    for cell, split in each_cell_data(cells, load_labelled):
        named = where("kernel-table", cell, cells)
        m = min(len(split.y_train), PSD_MAX_N)
        if cell.config.psd.check:
            check_memory(
                f"{named}the PSD check's {m:,} x {m:,} Gram matrix",
                PSD_MATRICES * 8.0 * m * m,
                "use a smaller data file or psd.check=false",
            )
        if cell.config.solver.name == "cvxopt":
            check_cvxopt(_largest_pair(split.y_train), CVXOPT_INSTEAD, named)
        if cell.config.cv.folds:
            check_folds(split.y_train, cell.config.cv.folds, named)


def _psd_points(X: np.ndarray, ctx: CellContext) -> np.ndarray:
    """The training points the PSD check uses: all, or PSD_MAX_N drawn at random."""
    if len(X) <= PSD_MAX_N:
        return X
    ctx.log.info(
        "%s: Gram-matrix PSD check on %d of the %d training samples (drawn at random; "
        "the eigendecomposition is O(n^3))",
        ctx.cell.id,
        PSD_MAX_N,
        len(X),
    )
    return X[np.sort(ctx.rng.choice(len(X), PSD_MAX_N, replace=False))]


def run_cell(config: KernelTableConfig, ctx: CellContext) -> CellOutput:
    split = load_labelled(config.data, config.seed)
    k = config.kernel
    row = {
        "dataset": config.data.dataset,
        "kernel": k.name,
        "C": config.svm.C,
        "gamma": k.gamma,
        "degree": k.degree,
        "coef0": k.coef0,
    }
    spectrum = None
    if config.psd.check:
        psd_points = _psd_points(split.X_train, ctx)
        spectrum = check_psd(kernel_of(k)(psd_points))
        if not spectrum.psd:
            ctx.log.warning(
                "%s: Gram matrix is not PSD (lambda_min = %.3g)",
                ctx.cell.id,
                spectrum.min_eigenvalue,
            )
    svm = kernel_svm(k, config.svm.C, config.solver, config.svm.support_tol)
    started = time.perf_counter()
    svm.fit(split.X_train, split.y_train)
    seconds = time.perf_counter() - started
    pairs = svm.estimators_  # one binary SVM, or one per pair of classes (one-vs-one)
    row |= {
        "train_accuracy": float((svm.predict(split.X_train) == split.y_train).mean()),
        "test_accuracy": float((svm.predict(split.X_test) == split.y_test).mean()),
        "n_support": int(sum(m.support_.size for m in pairs)),
        "solver_status": "; ".join(dict.fromkeys(m.solver_.status for m in pairs)),
        "iterations": int(sum(m.solver_.iterations for m in pairs)),
        "fit_seconds": seconds,
    }
    if config.solver.name == "auto":  # the solver auto chose, pair by pair
        row["solver"] = "; ".join(dict.fromkeys(_solver_used(m) for m in pairs))
    if len(pairs) == 1:
        model = pairs[0]
        ctx.files.save_params(
            alpha=model.alpha_, bias=np.float64(model.bias_), support=model.support_
        )
    else:
        ctx.files.save_params(
            **{
                f"{name}_{i}_{j}": value
                for (i, j), m in zip(svm.pairs_, pairs)
                for name, value in (("dual_coef", m.dual_coef_), ("bias", np.float64(m.bias_)))
            }
        )
    save_model(ctx.files, svm)
    panel = None
    if len(pairs) == 1:  # decision regions are drawn for two classes in 2-D
        psd = "" if spectrum is None or spectrum.psd else ", not PSD"
        caption = f"test {percent(row['test_accuracy'])}%, {row['n_support']} SV{psd}"
        panel = panel_artifact(pairs[0], _pm(split, svm.classes_), config.plot.resolution, caption)
    artifacts = {  # psd and min_eigenvalue None: not checked (psd.check=false)
        "panel": panel,
        "label_mapping": split.label_mapping,
        "psd": None if spectrum is None else bool(spectrum.psd),
        "min_eigenvalue": None if spectrum is None else float(spectrum.min_eigenvalue),
    }
    if spectrum is not None and len(psd_points) < len(split.X_train):
        artifacts["psd_samples"] = len(psd_points)
    if config.cv.folds:
        scores = _cross_validate(config, split)
        row |= cv_columns(scores)
        artifacts |= cv_artifacts(scores)
    return CellOutput([row], artifacts)


def _cross_validate(config: KernelTableConfig, split: LabelledSplit) -> np.ndarray:
    """Fold accuracies of the cell's SVM on its training set (folds from the run seed and
    the data, the same for every cell of the grid)."""
    X, y = split.X_train, split.y_train
    folds = stratified_folds(y, config.cv.folds, fold_rng(config.seed, X, y))
    svm = kernel_svm(config.kernel, config.svm.C, config.solver, config.svm.support_tol)
    return cross_val_scores(svm, X, y, folds)


def _solver_used(model) -> str:
    """cvxopt or smo (a QP result says which), else the blocked solver's result."""
    return getattr(model.solver_, "solver", "blocked")


def _pm(split: LabelledSplit, classes: np.ndarray) -> BinarySplit:
    """A two-class split with labels -1/+1 (the second class +1), for drawing."""

    def pm(y: np.ndarray) -> np.ndarray:
        return np.where(y == classes[1], 1.0, -1.0)

    return BinarySplit(split.name, split.X_train, pm(split.y_train), split.X_test, pm(split.y_test))


WITHIN = ("dataset", "kernel")  # the axes an accuracy table lays out as rows and columns


def _grid(results: list[CellResult]):
    """Datasets and kernels in run order, and the result for each (dataset, kernel)."""

    def key(r: CellResult) -> tuple[str, str]:
        return r.cell.config.data.dataset, r.cell.config.kernel.name

    datasets = list(dict.fromkeys(key(r)[0] for r in results))
    kernels = list(dict.fromkeys(key(r)[1] for r in results))
    return datasets, kernels, {key(r): r for r in results}


def _accuracy_table(results: list[CellResult], setting: str, key: str, what: str) -> Table:
    datasets, kernels, lookup = _grid(results)
    rows = []
    non_psd = False
    for dataset in datasets:
        line = [dataset]
        for kernel in kernels:
            result = lookup.get((dataset, kernel))
            if result is None:
                line.append("")
            elif not result.ok:
                line.append(result.status)
            else:
                mark = " †" if result.artifacts["psd"] is False else ""
                non_psd |= bool(mark)
                line.append(percent(result.row[key]) + mark)
        rows.append(line)
    note = (
        "† the Gram matrix on the training set is not positive semidefinite (see below)."
        if non_psd
        else ""
    )
    return Table(
        f"{what} (%) by dataset and kernel" + (f" — {setting}" if setting else ""),
        ["dataset"] + kernels,
        rows,
        note,
    )


def _min_eigenvalue(result: CellResult) -> str:
    if not result.ok or result.artifacts["min_eigenvalue"] is None:
        return "—"
    subset = "*" if "psd_samples" in result.artifacts else ""
    return number(result.artifacts["min_eigenvalue"], 3) + subset


def _psd_verdict(result: CellResult) -> str:
    if not result.ok:
        return "—"
    return {True: "yes", False: "NO", None: "not checked"}[result.artifacts["psd"]]


def report(ctx: ReportContext) -> Report:
    results = ctx.results
    groups = group_cells(results, WITHIN)
    tables = []
    for setting, members in groups.items():
        tables.append(_accuracy_table(members, setting, "test_accuracy", "Test accuracy"))
        tables.append(_accuracy_table(members, setting, "train_accuracy", "Train accuracy"))
    detail_rows = [
        [
            r.cell.id,
            r.row.get("solver_status", r.status),
            str(r.row.get("iterations", "")),
            str(r.row.get("n_support", "")),
            _min_eigenvalue(r),
            _psd_verdict(r),
            f"{r.row['fit_seconds']:.3f}" if r.ok else "—",
        ]
        for r in results
    ]
    tables.append(
        Table(
            "Solver and Gram-matrix details",
            ["cell", "status", "iterations", "support vectors", "λmin(K)", "PSD", "fit s"],
            detail_rows,
            note=f"* λmin of the Gram matrix of {PSD_MAX_N:,} training samples drawn at random."
            if any(r.ok and "psd_samples" in r.artifacts for r in results)
            else "",
            align=["left", "left"] + ["right"] * 5,
        )
    )
    cv_tables, cv_summary = cv_report(results, ctx.config, "test_accuracy", "test acc %")
    tables += cv_tables
    _plots(ctx, groups)
    done = ctx.completed
    summary = {
        "label_mapping": {r.cell.config.data.dataset: r.artifacts["label_mapping"] for r in done},
        "test_accuracy": {r.cell.id: r.row["test_accuracy"] for r in done},
        "non_psd_cells": [r.cell.id for r in done if r.artifacts["psd"] is False],
        "gram_min_eigenvalue": {
            r.cell.id: r.artifacts["min_eigenvalue"]
            for r in done
            if r.artifacts["min_eigenvalue"] is not None
        },
        "mean_test_accuracy": float(np.mean([r.row["test_accuracy"] for r in done]))
        if done
        else None,
    } | cv_summary
    return Report(tables, summary)


def _plots(ctx: ReportContext, groups: dict[str, list[CellResult]]) -> None:
    for setting, members in groups.items():
        if not any(r.ok for r in members) or any(
            r.ok and r.artifacts["panel"] is None for r in members
        ):
            continue  # nothing to draw, or data that is not 2-D
        datasets, kernels, lookup = _grid(members)
        panels = [[panel_of(lookup.get((d, k))) for k in kernels] for d in datasets]
        suffix = figure_suffix(setting)
        ctx.save_figure(
            f"decision_grid{suffix}",
            plotting.decision_grid,
            panels,
            datasets,
            kernels,
            "Kernel SVM decision functions" + (f" ({setting})" if setting else ""),
        )
        for dataset, row in zip(datasets, panels):
            ctx.save_figure(
                f"{safe_text(dataset)}{suffix}",
                plotting.decision_grid,
                [row],
                [dataset],
                kernels,
                f"{dataset}: " + ", ".join(kernels),
            )


EXPERIMENT = Experiment(
    name="kernel-table",
    schema=KernelTableConfig,
    run_cell=run_cell,
    report=report,
    preflight=preflight,
)
