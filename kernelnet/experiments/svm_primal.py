"""``svm-primal``: soft-margin SVM by gradient descent, swept over training length.

With ``cv.folds`` = k > 0 each cell is also cross-validated on the training set: the cell's
descent (its C and class weights, learning rate, epochs, method, schedule and update) is run
from zero on each fold's training part and scored by accuracy on the held-out fold. The
folds come from the run seed and the training data (:mod:`kernelnet.cv`), so every cell of
a grid is scored on the same folds; the test set is scored once, by the full fit as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kernelnet import plotting
from kernelnet.config import Cell, format_value, param
from kernelnet.cv import (
    CVSection,
    check_folds,
    cv_artifacts,
    cv_columns,
    cv_report,
    fold_rng,
    score_folds,
    stratified_folds,
)
from kernelnet.data.registry import (
    DATASET_HELP,
    BinarySplit,
    DataFileOptions,
    load_binary_data,
)
from kernelnet.data.validation import classes_of
from kernelnet.errors import Diverged
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
from kernelnet.footprint import check_memory
from kernelnet.model_io import save_model
from kernelnet.nn.trainer import EXPLODE_FACTOR
from kernelnet.svm.linear import LinearSVM
from kernelnet.svm.primal import (
    SCHEDULES,
    UPDATES,
    descent_path,
    fit_gradient_descent,
    predict,
)
from kernelnet.tables import Table, number, percent

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class PrimalData(DataFileOptions):
    dataset: str = param("iris_binary", label="dataset", help=DATASET_HELP)


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
    update: str = param(
        "simultaneous",
        choices=UPDATES,
        help="simultaneous: both gradients at (w, b), as the assignment's Algorithm 1; "
        "coordinate: b's gradient at the updated w (coordinate descent)",
    )
    positive_weight: float = param(1.0, gt=0, help="C multiplier for the +1 class")
    negative_weight: float = param(1.0, gt=0, help="C multiplier for the -1 class")


@dataclass
class SvmPrimalConfig(ExperimentConfig):
    data: PrimalData = field(default_factory=PrimalData)
    svm: PrimalSVM = field(default_factory=PrimalSVM)
    # Left out of the cell digest (outcome=False) so existing cells keep their seeds and
    # stored results; the report refuses cells stored without the CV it asks for.
    cv: CVSection = param(default_factory=CVSection, outcome=False)


# The trajectory is followed in blocks of epochs: the (w, b) of up to a block's epochs are
# stacked and scored together (one matrix product per block, as for the whole trajectory at
# once when it fits), so memory stays bounded whatever the number of epochs or features.
BLOCK_BYTES = 32 * 2**20
ROW_WEIGHTS = 32  # up to this many features, each weight is a metrics column and a bar
# Up to this many features the table prints every weight; beyond, a line a person can read:
# ||w||, the count, the LARGEST_WEIGHTS largest by magnitude and the file holding them all.
PRINTED_WEIGHTS = 10
LARGEST_WEIGHTS = 3


def block_epochs(epochs: int, d: int, n_scored: int) -> int:
    """Epochs stacked per block: all of them when (w, b) and the margins of the ``n_scored``
    train and test points fit in BLOCK_BYTES."""
    return max(1, min(epochs + 1, BLOCK_BYTES // (8 * (d + 1 + n_scored))))


def primal_bytes(epochs: int, d: int, n_train: int, n_test: int) -> int:
    """The cell's footprint beyond its data: a block of stacked weights and their margins
    (with numpy's temporaries, about three times that), the per-epoch curves (objective,
    train and test accuracy: stored, read back and drawn, about four copies) and w."""
    rows = block_epochs(epochs, d, n_train + n_test)
    return 8 * (3 * rows * (d + 1 + n_train + n_test) + 4 * 3 * (epochs + 1) + 4 * d)


@dataclass(frozen=True)
class Trajectory:
    """The final parameters and the per-epoch curves (epochs + 1,), epoch 0 the start."""

    w: np.ndarray
    b: float
    objective: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray


def _objective_block(W, B, X, y, costs) -> np.ndarray:
    """E(w, b) for each stacked row of ``W`` (e, d), ``B`` (e,)."""
    margins = y[:, None] * (X @ W.T + B)
    slack = np.maximum(0.0, 1.0 - margins)
    return 0.5 * np.einsum("ed,ed->e", W, W) + costs @ slack


def _accuracy_block(W, B, X, y) -> np.ndarray:
    scores = X @ W.T + B
    return (np.where(scores > 0, 1.0, -1.0) == y[:, None]).mean(axis=0)


def follow(path, split, costs, epochs: int, learning_rate: float) -> Trajectory:
    """Walk the descent ``path`` ((w, b) per epoch), scoring it block by block; raises
    Diverged at the first block whose objective explodes (check_divergence's rule)."""
    d = split.n_features
    rows = block_epochs(epochs, d, len(split.y_train) + len(split.y_test))
    W, B = np.zeros((rows, d)), np.zeros(rows)
    curves: list[list[np.ndarray]] = [[], [], []]
    start_value = None
    filled = 0

    def flush() -> None:
        nonlocal start_value
        Wb, Bb = W[:filled], B[:filled]
        objective = _objective_block(Wb, Bb, split.X_train, split.y_train, costs)
        start_value = objective[0] if start_value is None else start_value
        check_divergence(objective, learning_rate, start_value, sum(map(len, curves[0])))
        curves[0].append(objective)
        curves[1].append(_accuracy_block(Wb, Bb, split.X_train, split.y_train))
        curves[2].append(_accuracy_block(Wb, Bb, split.X_test, split.y_test))

    for w, b in path:
        W[filled], B[filled] = w, b
        filled += 1
        if filled == rows:
            flush()
            filled = 0
    if filled:
        flush()
    objective, train_accuracy, test_accuracy = (np.concatenate(c) for c in curves)
    return Trajectory(w, b, objective, train_accuracy, test_accuracy)


def linear_svm(svm: PrimalSVM, fit, split) -> LinearSVM:
    """The cell's fit as the LinearSVM estimator (what ``Run.model`` gives back)."""
    model = LinearSVM(
        C=svm.C,
        learning_rate=svm.learning_rate,
        epochs=svm.epochs,
        batch_size=None if svm.method == "batch" else svm.batch_size,
        schedule=svm.schedule,
        decay=svm.decay,
        update=svm.update,
    )
    model._set_state(
        {
            "coef": fit.w,
            "intercept": fit.b,
            "classes": classes_of(split.label_mapping),
            "n_features_in": split.n_features,
        }
    )
    return model


def check_divergence(
    objective: np.ndarray, learning_rate: float, start: float | None = None, offset: int = 0
) -> None:
    """Diverged if E(w, b) becomes non-finite or exceeds EXPLODE_FACTOR times its value at
    the start (w = 0, b = 0), naming the first such epoch (the trainer's rule).
    ``objective`` may be a block of the curve: epochs ``offset``, ``offset + 1``, ...,
    with ``start`` the value at epoch 0 (by default ``objective[0]``)."""
    bound = EXPLODE_FACTOR * max(1.0, float(objective[0] if start is None else start))
    bad = np.flatnonzero(~np.isfinite(objective) | (objective > bound))
    if bad.size:
        epoch, value = offset + int(bad[0]), float(objective[bad[0]])
        what = f"became {value}" if not np.isfinite(value) else f"exploded to {value:.3g}"
        raise Diverged(
            f"the objective {what} at epoch {epoch} with learning rate {learning_rate:g}; "
            "try a lower learning rate",
            {"epoch": epoch, "lr": learning_rate, "objective": value},
        )


def sample_costs(svm: PrimalSVM, y: np.ndarray) -> np.ndarray:
    """C_i of each sample of ``y`` (n,) in {-1, +1}: C times its class's weight."""
    return svm.C * np.where(y > 0, svm.positive_weight, svm.negative_weight)


def run_cell(config: SvmPrimalConfig, ctx: CellContext) -> CellOutput:
    split = load_binary_data(config.data, config.seed)
    svm = config.svm
    costs = sample_costs(svm, split.y_train)
    path = descent_path(
        split.X_train,
        split.y_train,
        costs,
        svm.learning_rate,
        svm.epochs,
        batch_size=None if svm.method == "batch" else svm.batch_size,
        schedule=svm.schedule,
        decay=svm.decay,
        rng=ctx.rng,
        update=svm.update,
    )
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported by follow()
        fit = follow(path, split, costs, svm.epochs, svm.learning_rate)
    row = {
        "epochs": svm.epochs,
        "train_accuracy": float((predict(fit.w, fit.b, split.X_train) == split.y_train).mean()),
        "test_accuracy": float((predict(fit.w, fit.b, split.X_test) == split.y_test).mean()),
        "objective": float(fit.objective[-1]),
        "b": float(fit.b),
    }
    if fit.w.size <= ROW_WEIGHTS:
        row |= {f"w_{i}": float(v) for i, v in enumerate(fit.w)}
    else:  # thousands of columns help no one: the weights are in params.npz and the model
        row |= {"n_weights": int(fit.w.size), "w_norm": float(np.linalg.norm(fit.w))}
    ctx.files.save_params(w=fit.w, b=np.float64(fit.b))
    save_model(ctx.files, linear_svm(config.svm, fit, split))
    ctx.log.info(
        "epochs=%d: test accuracy %.4f, objective %.6g",
        svm.epochs,
        row["test_accuracy"],
        row["objective"],
    )
    artifacts = {
        "objective": fit.objective,
        "test_accuracy": fit.test_accuracy,
        "train_accuracy": fit.train_accuracy,
        "label_mapping": split.label_mapping,
    }
    if fit.w.size > PRINTED_WEIGHTS:
        artifacts["largest_weights"] = largest_weights(fit.w)
    if config.cv.folds:  # after the full fit, which so draws what it draws with CV off
        scores = cross_validate(config, split, ctx.rng)
        row |= cv_columns(scores)
        artifacts |= cv_artifacts(scores)
    return CellOutput([row], artifacts)


def cross_validate(
    config: SvmPrimalConfig, split: BinarySplit, rng: np.random.Generator
) -> np.ndarray:
    """Fold accuracies, shape (cv.folds,), of the cell's descent run from w = 0, b = 0 on
    each fold's training part (each sample keeps its C_i). The folds come from the run seed
    and the training data (the same for every cell); fold ``f``'s minibatch order from the
    ``f``-th Generator spawned from the cell's, so a fold's fit does not depend on the
    others'. A fold whose weights stop being finite is divergence, as for the full fit."""
    svm = config.svm
    X, y = split.X_train, split.y_train
    folds = stratified_folds(y, config.cv.folds, fold_rng(config.seed, X, y))
    costs = sample_costs(svm, y)
    # (fold number, its Generator), taken in turn: score_folds fits the folds in order
    fold_generators = iter(enumerate(rng.spawn(len(folds)), start=1))

    def fit_and_score(train: np.ndarray, test: np.ndarray) -> float:
        number, generator = next(fold_generators)
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is said below
            fit = fit_gradient_descent(
                X[train],
                y[train],
                costs[train],
                svm.learning_rate,
                svm.epochs,
                batch_size=None if svm.method == "batch" else svm.batch_size,
                schedule=svm.schedule,
                decay=svm.decay,
                rng=generator,
                history=False,
                update=svm.update,
            )
        if not (np.isfinite(fit.w).all() and np.isfinite(fit.b)):
            raise Diverged(
                f"the weights stopped being finite training on cross-validation fold {number} "
                f"of {len(folds)} with learning rate {svm.learning_rate:g}; "
                "try a lower learning rate",
                {"fold": number, "lr": svm.learning_rate},
            )
        return float(np.mean(predict(fit.w, fit.b, X[test]) == y[test]))

    return score_folds(folds, fit_and_score)


def largest_weights(w: np.ndarray, count: int = LARGEST_WEIGHTS) -> list[list[float]]:
    """The ``count`` entries of ``w`` (d,) largest in magnitude, largest first, as
    ``[feature index, weight]`` pairs (ties: the lower index first). The index is the
    feature's 0-based column among the features (the label column not counted)."""
    order = np.argsort(-np.abs(w), kind="stable")[:count]
    return [[int(i), float(w[i])] for i in order]


def preflight(cells: list[Cell]) -> None:
    """Load each distinct dataset once (a data problem stops the run before a folder
    exists) and check each cell's estimated footprint against the memory limit."""
    for cell, split in each_cell_data(cells, load_binary_data):
        epochs = cell.config.svm.epochs
        check_memory(
            f"{where('svm-primal', cell, cells)}{epochs:,} epochs on {split.n_features:,} features",
            primal_bytes(epochs, split.n_features, len(split.y_train), len(split.y_test)),
            "use fewer svm.epochs",
        )
        if cell.config.cv.folds:
            check_folds(split.y_train, cell.config.cv.folds, where("svm-primal", cell, cells))


def _row_weights(row: dict) -> list[float]:
    """The weights a metrics row holds as columns ``w_0``, ``w_1``, ... (none beyond
    ROW_WEIGHTS features)."""
    return [v for k, v in row.items() if k.startswith("w_") and k != "w_norm"]


def _lists_every_weight(row: dict) -> bool:
    return "w_norm" not in row and len(_row_weights(row)) <= PRINTED_WEIGHTS


def _weights_text(result: CellResult, params_file: str) -> str:
    """Every weight, ``[+0.1234, ...]``, for up to PRINTED_WEIGHTS features; beyond that
    ``||w||``, how many weights, the largest few ``w_i = +v`` and ``params_file``, where the
    whole vector is (array ``w``)."""
    row = result.row
    listed = _row_weights(row)
    if _lists_every_weight(row):
        return "[" + ", ".join(f"{v:+.4f}" for v in listed) + "]"
    norm = row["w_norm"] if "w_norm" in row else float(np.linalg.norm(listed))
    count = row.get("n_weights", len(listed))
    largest = result.artifacts.get("largest_weights")
    if largest is None and listed:  # a cell stored before the artifact existed
        largest = largest_weights(np.asarray(listed))
    top = "; largest " + ", ".join(f"w_{int(i)} = {v:+.4f}" for i, v in largest) if largest else ""
    return f"||w|| = {norm:.4f} ({count:,} weights{top}; all in {params_file})"


def _title(config: dict, setting: str) -> str:
    svm = config["svm"]
    # a swept update is named by the setting; one coordinate-descent run by the title
    coordinate = ", coordinate descent" if svm.get("update") == "coordinate" else ""
    return (
        f"Primal soft-margin SVM on {format_value(config['data']['dataset'])} "
        f"(C={format_value(svm['C'])}, learning rate {format_value(svm['learning_rate'])}, "
        f"{svm['method']}{coordinate})" + (f" — {setting}" if setting else "")
    )


def _table(title: str, results: list[CellResult], ctx: ReportContext) -> Table:
    def params_file(result: CellResult) -> str:  # as the run folder names it
        return ctx.files(result).path("params.npz").relative_to(ctx.run.path).as_posix()

    rows = [
        [
            str(r.cell.config.svm.epochs),
            percent(r.row["train_accuracy"]) if r.ok else r.status,
            percent(r.row["test_accuracy"]) if r.ok else "",
            number(r.row["objective"], 6) if r.ok else "",
            f"{r.row['b']:+.4f}" if r.ok else "",
            _weights_text(r, params_file(r)) if r.ok else r.error[:60],
        ]
        for r in results
    ]
    note = (
        "w_i is the weight of the i-th feature column (from 0, the label column not counted); "
        "the files named are in the run folder."
        if any(r.ok and not _lists_every_weight(r.row) for r in results)
        else ""
    )
    columns = ["epochs", "train acc %", "test acc %", "objective E(w,b)", "b", "w"]
    return Table(title, columns, rows, note=note, align=["right"] * 5 + ["left"])


def report(ctx: ReportContext) -> Report:
    tables = []
    for setting, members in group_cells(ctx.results, ("epochs",)).items():
        title = _title(ctx.config, setting)
        tables.append(_table(title, members, ctx))
        done = [r for r in members if r.ok]
        if not done:
            continue
        suffix = figure_suffix(setting)
        longest = max(done, key=lambda r: r.row["epochs"])
        ctx.save_figure(
            f"training_history{suffix}",
            primal_history,
            np.asarray(longest.artifacts["objective"]),
            np.asarray(longest.artifacts["train_accuracy"]),
            np.asarray(longest.artifacts["test_accuracy"]),
            [r.row["epochs"] for r in done],
            title,
        )
        if any("w_norm" in r.row for r in done):
            continue  # a bar per weight is drawn for up to ROW_WEIGHTS features
        ctx.save_figure(
            f"weights{suffix}",
            weight_bars,
            [r.cell.id for r in done],
            np.array([_row_weights(r.row) for r in done]),
            np.array([r.row["b"] for r in done]),
        )
    for setting, members in group_cells(ctx.results, ("epochs", "update")).items():
        pair = _update_pair(members)
        if pair is None:
            continue
        tables.append(_comparison_table(ctx.config, setting, *pair))
        simultaneous, coordinate = (max(p, key=lambda r: r.row["epochs"]) for p in pair)
        ctx.save_figure(
            f"update_comparison{figure_suffix(setting)}",
            update_comparison,
            np.asarray(simultaneous.artifacts["objective"]),
            np.asarray(coordinate.artifacts["objective"]),
            _comparison_title(ctx.config, setting),
        )
    # the test score of a cell is its row's: its artifact of that name is the per-epoch curve
    cv_tables, cv_summary = cv_report(
        ctx.results, ctx.config, "test_accuracy", "test acc %", test_in_row=True
    )
    tables += cv_tables
    done = ctx.completed
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
            "longest_cell": longest.cell.id,
            "best_test_accuracy": best.row["test_accuracy"],
            "best_cell": best.cell.id,
        }
    return Report(tables, summary | cv_summary)


def _update_pair(members: list[CellResult]):
    """(simultaneous cells, coordinate-descent cells) of one group, each of the epochs the
    other has too, or None unless both updates completed for some epochs."""
    by_update: dict[str, dict[int, CellResult]] = {u: {} for u in UPDATES}
    for result in members:
        if result.ok:
            by_update[result.cell.config.svm.update][result.row["epochs"]] = result
    common = sorted(set(by_update["simultaneous"]) & set(by_update["coordinate"]))
    if not common:
        return None
    return tuple([by_update[u][e] for e in common] for u in UPDATES)


def _comparison_title(config: dict, setting: str) -> str:
    return _title(config, setting).replace(
        "Primal soft-margin SVM", "Simultaneous update against coordinate descent", 1
    )


def _comparison_table(
    config: dict, setting: str, simultaneous: list[CellResult], coordinate: list[CellResult]
) -> Table:
    """One row per epochs value: E(w, b), b and test accuracy under each update."""
    rows = [
        [
            str(s.row["epochs"]),
            number(s.row["objective"], 6),
            number(c.row["objective"], 6),
            f"{c.row['objective'] - s.row['objective']:+.6g}",
            f"{s.row['b']:+.4f}",
            f"{c.row['b']:+.4f}",
            percent(s.row["test_accuracy"]),
            percent(c.row["test_accuracy"]),
        ]
        for s, c in zip(simultaneous, coordinate)
    ]
    columns = [
        "epochs",
        "E sim.",
        "E coord.",
        "E coord. - E sim.",
        "b sim.",
        "b coord.",
        "test % sim.",
        "test % coord.",
    ]
    return Table(
        _comparison_title(config, setting),
        columns,
        rows,
        note="sim.: both gradients at (w, b), Algorithm 1; coord.: coordinate descent, b's "
        "gradient at the updated w. Both start at w = 0, b = 0 and take the same first w "
        "step; E is the objective E(w, b) after that many epochs.",
        align=["right"] * len(columns),
    )


def update_comparison(simultaneous: np.ndarray, coordinate: np.ndarray, title: str) -> Figure:
    """E(w, b) per epoch under both updates (left, log scale) and their difference
    E(coordinate) - E(simultaneous) (right); epoch 0 is the shared start."""
    figure = plotting.figure((11, 4.2))
    left, right = figure.subplots(1, 2)
    left.plot(np.arange(simultaneous.size), simultaneous, color="#333333", lw=1.8,
              label="simultaneous (Algorithm 1)")  # fmt: skip
    left.plot(np.arange(coordinate.size), coordinate, color="#e6550d", lw=1.4, ls="--",
              label="coordinate descent")  # fmt: skip
    left.set(xlabel="epoch", ylabel="E(w, b)", title="Training objective", yscale="log")
    left.legend(frameon=False, loc="upper right")
    length = min(simultaneous.size, coordinate.size)
    difference = coordinate[:length] - simultaneous[:length]
    right.plot(np.arange(length), difference, color="#3182bd", lw=1.6)
    right.axhline(0, color="black", lw=0.8)
    # symlog: the spikes (one run's objective jumping while the other's does not) and the
    # small steady gap between them are both readable
    right.set_yscale("symlog", linthresh=0.1)
    right.set(xlabel="epoch", ylabel="E(coordinate) - E(simultaneous)", title="Difference")
    plotting.tidy(left, right)
    figure.suptitle(title)
    return figure


def primal_history(
    objective: np.ndarray,
    train_accuracy: np.ndarray,
    test_accuracy: np.ndarray,
    marked_epochs: Sequence[int],
    title: str,
) -> Figure:
    """Objective (left) and accuracy (right) against epoch; epoch 0 is the starting point."""
    epochs = np.arange(objective.size)
    figure = plotting.figure((11, 4.2))
    left, right = figure.subplots(1, 2)
    left.plot(epochs, objective, color="#333333", lw=1.8)
    marks = [e for e in marked_epochs if e < objective.size]
    left.scatter(marks, objective[marks], color="#e6550d", zorder=3, label="sweep points")
    left.set(xlabel="epoch", ylabel="E(w, b)", title="Training objective", yscale="log")
    left.legend(frameon=False)
    right.plot(epochs, 100 * train_accuracy, label="train", color="#756bb1", lw=1.8)
    right.plot(epochs, 100 * test_accuracy, label="test", color="#31a354", lw=1.8)
    right.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy", ylim=(0, 102))
    right.legend(frameon=False, loc="lower right")
    plotting.tidy(left, right)
    figure.suptitle(title)
    return figure


def weight_bars(labels: Sequence[str], weights: np.ndarray, biases: np.ndarray) -> Figure:
    """Grouped bars: one group per weight component (and b), one bar per sweep point."""
    values = np.column_stack([weights, biases])  # (points, d + 1)
    names = [f"w{i}" for i in range(weights.shape[1])] + ["b"]
    figure = plotting.figure((max(6, 1.4 * len(names) + 2), 4))
    axes = figure.subplots()
    width = 0.8 / len(labels)
    shades = plotting.colormap("viridis")(np.linspace(0.1, 0.85, len(labels)))
    for i, label in enumerate(labels):
        axes.bar(
            np.arange(len(names)) + (i - (len(labels) - 1) / 2) * width,
            values[i],
            width,
            label=label,
            color=shades[i],
        )
    axes.axhline(0, color="black", lw=0.8)
    axes.set_xticks(np.arange(len(names)), names)
    axes.set(title="Learned parameters per sweep point", ylabel="value")
    axes.legend(frameon=False, fontsize="small")
    axes.spines[["top", "right"]].set_visible(False)
    return figure


EXPERIMENT = Experiment(
    name="svm-primal",
    schema=SvmPrimalConfig,
    run_cell=run_cell,
    report=report,
    preflight=preflight,
)
