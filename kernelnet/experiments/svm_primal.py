"""``svm-primal``: soft-margin SVM by gradient descent, swept over training length."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernelnet import plotting
from kernelnet.config import format_value, param
from kernelnet.data.registry import BINARY_DATASETS, load_binary
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
    verify_datasets,
)
from kernelnet.svm.primal import SCHEDULES, fit_gradient_descent, predict
from kernelnet.tables import Table, number, percent


@dataclass
class PrimalData:
    dataset: str = param("iris_binary", choices=BINARY_DATASETS, label="dataset")


@dataclass
class PrimalSVM:
    C: float = param(5.0, gt=0, help="cost of margin violations")
    learning_rate: float = param(1e-3, gt=0)
    epochs: int = param(
        default_factory=lambda: [1, 3, 10, 30, 100], ge=1, help="each value trains from zero"
    )
    method: str = param(
        "batch",
        choices=("batch", "stochastic"),
        help="full-batch gradient descent, or minibatches in shuffled order",
    )
    batch_size: int = param(1, ge=1, help="minibatch size for method: stochastic")
    schedule: str = param("constant", choices=SCHEDULES, help="learning-rate schedule per epoch")
    decay: float = param(0.0, ge=0, help="inverse: lr/(1+decay*e); exponential: lr*decay^e")
    positive_weight: float = param(1.0, gt=0, help="C multiplier for the +1 class")
    negative_weight: float = param(1.0, gt=0, help="C multiplier for the -1 class")


@dataclass
class SvmPrimalConfig(ExperimentConfig):
    data: PrimalData = field(default_factory=PrimalData)
    svm: PrimalSVM = field(default_factory=PrimalSVM)


def _objective_path(fit, X, y, costs) -> np.ndarray:
    """E(w, b) after each epoch, from the recorded trajectory (epochs + 1,)."""
    margins = y[:, None] * (X @ fit.w_history.T + fit.b_history)
    slack = np.maximum(0.0, 1.0 - margins)
    return 0.5 * np.einsum("ed,ed->e", fit.w_history, fit.w_history) + costs @ slack


def _accuracy_path(fit, X, y) -> np.ndarray:
    scores = X @ fit.w_history.T + fit.b_history
    return (np.where(scores > 0, 1.0, -1.0) == y[:, None]).mean(axis=0)


def run_cell(config: SvmPrimalConfig, ctx: CellContext) -> CellOutput:
    split = load_binary(config.data.dataset)
    svm = config.svm
    costs = svm.C * np.where(split.y_train > 0, svm.positive_weight, svm.negative_weight)
    fit = fit_gradient_descent(
        split.X_train,
        split.y_train,
        costs,
        svm.learning_rate,
        svm.epochs,
        batch_size=None if svm.method == "batch" else svm.batch_size,
        schedule=svm.schedule,
        decay=svm.decay,
        rng=ctx.rng,
    )
    objective = _objective_path(fit, split.X_train, split.y_train, costs)
    row = {
        "epochs": svm.epochs,
        "train_accuracy": float((predict(fit.w, fit.b, split.X_train) == split.y_train).mean()),
        "test_accuracy": float((predict(fit.w, fit.b, split.X_test) == split.y_test).mean()),
        "objective": float(objective[-1]),
        "b": float(fit.b),
        **{f"w_{i}": float(v) for i, v in enumerate(fit.w)},
    }
    ctx.run.save_params(ctx.cell.id, w=fit.w, b=np.float64(fit.b))
    ctx.log.info(
        "epochs=%d: test accuracy %.4f, objective %.6g",
        svm.epochs,
        row["test_accuracy"],
        row["objective"],
    )
    artifacts = {
        "objective": objective,
        "test_accuracy": _accuracy_path(fit, split.X_test, split.y_test),
        "train_accuracy": _accuracy_path(fit, split.X_train, split.y_train),
        "label_mapping": split.label_mapping,
    }
    return CellOutput([row], artifacts)


def report(ctx: ReportContext) -> Report:
    done = ctx.completed
    rows = [
        [
            str(r.row["epochs"]),
            percent(r.row["train_accuracy"]),
            percent(r.row["test_accuracy"]),
            number(r.row["objective"], 6),
            f"{r.row['b']:+.4f}",
            "[" + ", ".join(f"{v:+.4f}" for k, v in r.row.items() if k.startswith("w_")) + "]",
        ]
        for r in done
    ]
    svm = ctx.config["svm"]
    title = (
        f"Primal soft-margin SVM on {format_value(ctx.config['data']['dataset'])} "
        f"(C={format_value(svm['C'])}, learning rate {format_value(svm['learning_rate'])}, "
        f"{svm['method']})"
    )
    extra_axes = [k for k in (done[0].cell.params if done else {}) if k != "epochs"]
    columns = ["epochs", "train acc %", "test acc %", "objective E(w,b)", "b", "w"]
    if extra_axes:
        columns = ["cell"] + columns
        rows = [[r.cell.id] + row for r, row in zip(done, rows)]
    table = Table(
        title, columns, rows, align=["left"] * (len(extra_axes) > 0) + ["right"] * 5 + ["left"]
    )
    summary = {}
    if done:
        longest = max(done, key=lambda r: r.row["epochs"])
        best = max(done, key=lambda r: r.row["test_accuracy"])
        summary = {
            "dataset": ctx.config["data"]["dataset"],
            "label_mapping": longest.artifacts["label_mapping"],
            "longest_run": {
                k: longest.row[k]
                for k in ("epochs", "train_accuracy", "test_accuracy", "objective")
            },
            "best_test_accuracy": best.row["test_accuracy"],
            "best_cell": best.cell.id,
        }
        plotting.save(
            ctx.run,
            "plots/training_history.png",
            plotting.primal_history(
                longest.artifacts["objective"],
                longest.artifacts["train_accuracy"],
                longest.artifacts["test_accuracy"],
                [r.row["epochs"] for r in done],
                title,
            ),
        )
        plotting.save(
            ctx.run,
            "plots/weights.png",
            plotting.weight_bars(
                [r.cell.id for r in done],
                np.array([[v for k, v in r.row.items() if k.startswith("w_")] for r in done]),
                np.array([r.row["b"] for r in done]),
            ),
        )
    return Report([table], summary)


EXPERIMENT = Experiment(
    name="svm-primal",
    help="Soft-margin SVM by batch gradient descent on the hinge loss, swept over epochs.",
    schema=SvmPrimalConfig,
    run_cell=run_cell,
    report=report,
    preflight=verify_datasets,
)
