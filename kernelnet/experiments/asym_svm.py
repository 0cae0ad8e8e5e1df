"""``asym-svm``: SVMs with different costs for the two kinds of error.

Primal: min 1/2 ||w||^2 + C0 sum_{y_i=-1} xi_i + C1 sum_{y_i=+1} xi_i; the dual is the
standard one with a per-sample box 0 <= alpha_i <= C_i. Sweeping C1/C0 trades false
negatives (a +1 point predicted -1, priced by C1) against false positives.

The preflight refuses, before a run folder exists, a cvxopt solve that would need more
memory than the limit or take minutes (:func:`kernelnet.svm.dual.check_cvxopt`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kernelnet import plotting
from kernelnet.config import Cell, format_value, param
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
    DataFileOptions,
    load_binary_data,
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
from kernelnet.experiments.kernel_table import CVXOPT_INSTEAD
from kernelnet.experiments.svm_sections import (
    KernelSection,
    PlotSection,
    SolverSection,
    dual_svm,
    kernel_of,
    panel_artifact,
)
from kernelnet.kernels import KERNELS
from kernelnet.plotting import panel_of
from kernelnet.svm.dual import check_cvxopt
from kernelnet.tables import Table, percent

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RATIOS = [0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0]


@dataclass
class AsymData(DataFileOptions):
    dataset: str = param(default_factory=lambda: list(TOY2D), label="dataset", help=DATASET_HELP)


@dataclass
class AsymKernel(KernelSection):
    name: str = param("rbf", choices=tuple(KERNELS), label="kernel")


@dataclass
class AsymSVM:
    C0: float = param(1.0, gt=0, help="cost of a margin violation by a -1 point")
    cost_ratio: float = param(
        default_factory=lambda: list(RATIOS), gt=0, label="ratio", help="C1 / C0"
    )
    support_tol: float = param(1e-5, gt=0, lt=0.5)


@dataclass
class AsymConfig(ExperimentConfig):
    data: AsymData = field(default_factory=AsymData)
    kernel: AsymKernel = field(default_factory=AsymKernel)
    svm: AsymSVM = field(default_factory=AsymSVM)
    solver: SolverSection = field(default_factory=SolverSection)
    plot: PlotSection = field(default_factory=PlotSection)
    # Left out of the cell digest (outcome=False) so existing cells keep their seeds and
    # stored results; the report refuses cells stored without the CV it asks for.
    cv: CVSection = param(default_factory=CVSection, outcome=False)


def error_counts(predicted: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(false positives, false negatives) for labels in {-1, +1}."""
    return int(((predicted > 0) & (truth < 0)).sum()), int(((predicted < 0) & (truth > 0)).sum())


def run_cell(config: AsymConfig, ctx: CellContext) -> CellOutput:
    split = load_binary_data(config.data, config.seed)
    s = config.svm
    C1 = s.C0 * s.cost_ratio
    svm = _svm(config)
    svm.fit(split.X_train, split.y_train)
    predicted = svm.predict(split.X_test)
    fp, fn = error_counts(predicted, split.y_test)
    train_fp, train_fn = error_counts(svm.predict(split.X_train), split.y_train)
    positive_sv = int((split.y_train[svm.support_] > 0).sum())
    row = {
        "dataset": config.data.dataset,
        "kernel": config.kernel.name,
        "C0": s.C0,
        "C1": C1,
        "cost_ratio": s.cost_ratio,
        "test_accuracy": float((predicted == split.y_test).mean()),
        "false_positives": fp,
        "false_negatives": fn,
        "train_false_positives": train_fp,
        "train_false_negatives": train_fn,
        "n_support": int(svm.support_.size),
        "n_support_positive": positive_sv,
        "n_support_negative": int(svm.support_.size) - positive_sv,
        "solver_status": svm.solver_.status,
    }
    if config.solver.name == "auto":  # the solver auto chose
        row["solver"] = svm.solver_.solver
    ctx.files.save_params(alpha=svm.alpha_, bias=np.float64(svm.bias_), support=svm.support_)
    panel = panel_artifact(svm, split, config.plot.resolution, f"test FP {fp}, FN {fn}")
    artifacts = {"panel": panel, "label_mapping": split.label_mapping}
    if config.cv.folds:
        X, y = split.X_train, split.y_train
        folds = stratified_folds(y, config.cv.folds, fold_rng(config.seed, X, y))
        scores = cross_val_scores(lambda: _svm(config), X, y, folds)
        row |= cv_columns(scores)
        artifacts |= cv_artifacts(scores)
    return CellOutput([row], artifacts)


def _svm(config: AsymConfig):
    """The cell's unfitted SVM: C0 for -1 points, C0 * cost_ratio for +1 points."""
    s = config.svm
    return dual_svm(
        kernel_of(config.kernel),
        s.C0,
        config.solver,
        s.support_tol,
        class_weight={-1.0: 1.0, 1.0: s.cost_ratio},
    )


def preflight(cells: list[Cell]) -> None:
    """Load each distinct dataset once (a data problem stops the run before a folder
    exists) and refuse a cell whose cvxopt solve is over its bounds."""
    for cell, split in each_cell_data(cells, load_binary_data):
        if cell.config.solver.name == "cvxopt":  # auto takes SMO beyond cvxopt's bounds
            check_cvxopt(len(split.y_train), CVXOPT_INSTEAD, where("asym-svm", cell, cells))
        if cell.config.cv.folds:
            check_folds(split.y_train, cell.config.cv.folds, where("asym-svm", cell, cells))


WITHIN = ("dataset", "ratio")  # the axes a table and its figure lay out themselves
COUNTS = (
    "test_accuracy",
    "false_positives",
    "false_negatives",
    "train_false_positives",
    "train_false_negatives",
)


def _by_dataset(results: list[CellResult]) -> dict[str, list[CellResult]]:
    by_dataset: dict[str, list[CellResult]] = {}
    for result in results:
        by_dataset.setdefault(result.cell.config.data.dataset, []).append(result)
    return by_dataset


def _table(dataset: str, setting: str, results: list[CellResult]) -> Table:
    first = results[0].cell.config
    rows = []
    for r in results:
        if not r.ok:
            rows.append([format_value(r.cell.config.svm.cost_ratio), r.status] + [""] * 5)
            continue
        rows.append(
            [
                format_value(r.row["cost_ratio"]),
                percent(r.row["test_accuracy"]),
                str(r.row["false_positives"]),
                str(r.row["false_negatives"]),
                f"{r.row['train_false_positives']} / {r.row['train_false_negatives']}",
                f"{r.row['n_support']} ({r.row['n_support_positive']}+ / "
                f"{r.row['n_support_negative']}−)",
                r.row["solver_status"],
            ]
        )
    return Table(
        f"{dataset}: cost ratio C1/C0 against errors "
        f"(C0 = {format_value(first.svm.C0)}, {first.kernel.name}"
        + (f"; {setting}" if setting else "")
        + ")",
        ["C1/C0", "test acc %", "test FP", "test FN", "train FP / FN", "support vectors", "solver"],
        rows,
    )


def report(ctx: ReportContext) -> Report:
    tables, summary = [], {}
    for setting, members in group_cells(ctx.results, WITHIN).items():
        by_dataset = _by_dataset(members)
        tables += [_table(dataset, setting, results) for dataset, results in by_dataset.items()]
        counts = {
            dataset: {
                format_value(r.row["cost_ratio"]): {k: r.row[k] for k in COUNTS}
                for r in results
                if r.ok
            }
            for dataset, results in by_dataset.items()
        }
        if setting:
            summary.setdefault("by_setting", {})[setting] = counts
        else:
            summary["by_dataset"] = counts
        _plots(ctx, setting, by_dataset)
    cv_tables, cv_summary = cv_report(ctx.results, ctx.config, "test_accuracy", "test acc %")
    return Report(tables + cv_tables, summary | cv_summary)


def _plots(ctx: ReportContext, setting: str, by_dataset: dict[str, list[CellResult]]) -> None:
    suffix = figure_suffix(setting)
    curves = {
        dataset: [
            (
                r.row["cost_ratio"],
                r.row["train_false_positives"],
                r.row["train_false_negatives"],
                r.row["false_positives"],
                r.row["false_negatives"],
            )
            for r in results
            if r.ok
        ]
        for dataset, results in by_dataset.items()
    }
    curves = {dataset: points for dataset, points in curves.items() if points}
    if not curves:
        return  # no completed cell in this group: nothing to draw
    ctx.save_figure(f"fp_fn_tradeoff{suffix}", error_tradeoff, curves, setting)
    members = [r for results in by_dataset.values() for r in results]
    if any(r.ok and r.artifacts["panel"] is None for r in members):
        return  # decision regions are drawn for 2-D data only
    datasets = list(by_dataset)
    ratios = list(dict.fromkeys(r.cell.config.svm.cost_ratio for r in members))
    shown = ratios if len(ratios) <= 5 else [ratios[0], ratios[len(ratios) // 2], ratios[-1]]
    lookup = {(r.cell.config.data.dataset, r.cell.config.svm.cost_ratio): r for r in members}
    panels = [[panel_of(lookup.get((d, q))) for q in shown] for d in datasets]
    ctx.save_figure(
        f"decision_boundaries{suffix}",
        plotting.decision_grid,
        panels,
        datasets,
        [f"C1/C0 = {format_value(q)}" for q in shown],
        "Asymmetric costs: the boundary moves away from the costlier class"
        + (f" ({setting})" if setting else ""),
    )


def error_tradeoff(
    curves: dict[str, list[tuple[float, int, int, int, int]]], setting: str = ""
) -> Figure:
    """Per dataset: false positives and false negatives (train solid, test dashed) against
    the cost ratio C1/C0 on a log axis. Each curve entry is (ratio, train FP, train FN,
    test FP, test FN)."""
    figure = plotting.figure((3.4 * max(1, len(curves)), 3.6))
    grid = np.atleast_1d(figure.subplots(1, max(1, len(curves)), squeeze=False)[0])
    for axes, (dataset, points) in zip(grid, curves.items()):
        ratio, train_fp, train_fn, test_fp, test_fn = (np.array(v) for v in zip(*points))
        axes.plot(ratio, train_fp, "o-", color=plotting.NEGATIVE, label="FP (train)")
        axes.plot(ratio, train_fn, "s-", color=plotting.POSITIVE, label="FN (train)")
        axes.plot(ratio, test_fp, "o--", color=plotting.NEGATIVE, alpha=0.5, label="FP (test)")
        axes.plot(ratio, test_fn, "s--", color=plotting.POSITIVE, alpha=0.5, label="FN (test)")
        axes.set(xscale="log", xlabel="C1 / C0", ylabel="errors", title=dataset)
        plotting.tidy(axes)
    grid[0].legend(frameon=False, fontsize="small")
    figure.suptitle(
        "False positives (−1 predicted +1) against false negatives as C1/C0 grows"
        + (f" ({setting})" if setting else "")
    )
    return figure


EXPERIMENT = Experiment(
    name="asym-svm",
    schema=AsymConfig,
    run_cell=run_cell,
    report=report,
    preflight=preflight,
)
