"""``asym-svm``: SVMs with different costs for the two kinds of error.

Primal: min 1/2 ||w||^2 + C0 sum_{y_i=-1} xi_i + C1 sum_{y_i=+1} xi_i; the dual is the
standard one with a per-sample box 0 <= alpha_i <= C_i. Sweeping C1/C0 trades false
negatives (a +1 point predicted -1, priced by C1) against false positives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernelnet import plotting
from kernelnet.config import format_value, param
from kernelnet.data.registry import BINARY_DATASETS, TOY2D, load_binary
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    CellResult,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
    verify_datasets,
)
from kernelnet.experiments.svm_sections import (
    KernelSection,
    PlotSection,
    SolverSection,
    dual_svm,
    kernel_of,
)
from kernelnet.kernels import KERNELS
from kernelnet.tables import Table, percent

RATIOS = [0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0]


@dataclass
class AsymData:
    dataset: str = param(
        default_factory=lambda: list(TOY2D), choices=BINARY_DATASETS, label="dataset"
    )


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


def error_counts(predicted: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(false positives, false negatives) for labels in {-1, +1}."""
    return int(((predicted > 0) & (truth < 0)).sum()), int(((predicted < 0) & (truth > 0)).sum())


def run_cell(config: AsymConfig, ctx: CellContext) -> CellOutput:
    split = load_binary(config.data.dataset)
    s = config.svm
    C1 = s.C0 * s.cost_ratio
    svm = dual_svm(
        kernel_of(config.kernel),
        s.C0,
        config.solver,
        s.support_tol,
        class_weight={-1.0: 1.0, 1.0: s.cost_ratio},
    )
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
    ctx.run.save_params(
        f"{config.data.dataset}_ratio={format_value(s.cost_ratio)}",
        alpha=svm.alpha_,
        bias=np.float64(svm.bias_),
        support=svm.support_,
    )
    return CellOutput([row], {"model": svm, "split": split})


def report(ctx: ReportContext) -> Report:
    by_dataset: dict[str, list[CellResult]] = {}
    for result in ctx.results:
        by_dataset.setdefault(result.cell.config.data.dataset, []).append(result)
    tables = []
    for dataset, results in by_dataset.items():
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
        tables.append(
            Table(
                f"{dataset}: cost ratio C1/C0 against errors "
                f"(C0 = {format_value(first.svm.C0)}, {first.kernel.name})",
                [
                    "C1/C0",
                    "test acc %",
                    "test FP",
                    "test FN",
                    "train FP / FN",
                    "support vectors",
                    "solver",
                ],
                rows,
            )
        )
    _plots(ctx, by_dataset)
    summary = {
        dataset: {
            format_value(r.row["cost_ratio"]): {
                k: r.row[k]
                for k in (
                    "test_accuracy",
                    "false_positives",
                    "false_negatives",
                    "train_false_positives",
                    "train_false_negatives",
                )
            }
            for r in results
            if r.ok
        }
        for dataset, results in by_dataset.items()
    }
    return Report(tables, {"by_dataset": summary})


def _plots(ctx: ReportContext, by_dataset: dict[str, list[CellResult]]) -> None:
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
    plotting.save(ctx.run, "plots/fp_fn_tradeoff.png", plotting.error_tradeoff(curves))
    resolution = ctx.results[0].cell.config.plot.resolution
    datasets = list(by_dataset)
    ratios = list(dict.fromkeys(r.cell.config.svm.cost_ratio for r in ctx.results))
    shown = ratios if len(ratios) <= 5 else [ratios[0], ratios[len(ratios) // 2], ratios[-1]]
    lookup = {(r.cell.config.data.dataset, r.cell.config.svm.cost_ratio): r for r in ctx.results}
    panels = [[_panel(lookup.get((d, q))) for q in shown] for d in datasets]
    plotting.save(
        ctx.run,
        "plots/decision_boundaries.png",
        plotting.decision_grid(
            panels,
            datasets,
            [f"C1/C0 = {format_value(q)}" for q in shown],
            resolution,
            "Asymmetric costs: the boundary moves away from the costlier class",
        ),
    )


def _panel(result: CellResult | None) -> dict | None:
    if result is None or not result.ok:
        return None if result is None else {"caption": result.status}
    model, split = result.artifacts["model"], result.artifacts["split"]
    if split.n_features != 2:
        return {"caption": "not 2-D"}
    return {
        "decision": model.decision_function,
        "X_train": split.X_train,
        "y_train": split.y_train,
        "X_test": split.X_test,
        "y_test": split.y_test,
        "support": model.support_,
        "caption": f"test FP {result.row['false_positives']}, FN {result.row['false_negatives']}",
    }


EXPERIMENT = Experiment(
    name="asym-svm",
    help="Asymmetric-cost kernel SVMs: sweep C1/C0 and watch false positives trade against "
    "false negatives.",
    details="""\
Minimizes 1/2 ||w||^2 + C0 sum_{y=-1} xi + C1 sum_{y=+1} xi through the dual with a
per-sample box 0 <= alpha_i <= C_i, for each cost ratio C1/C0 on each toy set, and reports
false positives, false negatives, accuracy and support vectors. Defaults:
configs/asym-svm.yaml (RBF, gamma 0.2, C0 = 1, ratios 0.1 ... 10).

Example:  kernelnet asym-svm --set svm.cost_ratio=0.2,1,5 --set data.dataset=moons""",
    schema=AsymConfig,
    run_cell=run_cell,
    report=report,
    preflight=verify_datasets,
)
