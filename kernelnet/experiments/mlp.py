"""``mlp``: the multilayer perceptron (:class:`kernelnet.MLPClassifier`) on any dataset — a
shipped set or your own CSV, .npz or LIBSVM file with any number of classes. ``mnist``
stays the course setup; this is the same network for everything else.

The preflight estimates each cell's memory from the data's size, the network's sizes and the
optimizer (the first layer is inputs x hidden[0] weights, and Adam keeps two more arrays
of that size besides its update's temporaries) and refuses, before a run folder exists,
one that is over the memory limit."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernelnet.config import Cell, param
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
from kernelnet.data.registry import DATASET_HELP, DataFileOptions, LabelledSplit, load_labelled
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
    each_cell_data,
    where,
)
from kernelnet.experiments.mnist import training_curves
from kernelnet.footprint import check_memory
from kernelnet.model_io import save_model
from kernelnet.nn.estimator import MLPClassifier
from kernelnet.nn.layers import ACTIVATIONS
from kernelnet.nn.models import activation_bytes, describe, parameter_count
from kernelnet.nn.optim import OPTIMIZERS
from kernelnet.nn.trainer import training_bytes
from kernelnet.tables import Table, percent


@dataclass
class MlpData(DataFileOptions):
    dataset: str = param("moons", label="dataset", help=DATASET_HELP + "; any number of classes")
    standardize: bool = param(
        True, help="scale each feature to mean 0, std 1 (from the training part)"
    )
    val_fraction: float = param(
        0.2, ge=0, lt=1, help="share of the training part held out to keep the best epoch"
    )


@dataclass
class MlpModel:
    hidden: list[int] = param(default_factory=lambda: [64, 64], ge=1)
    activation: str = param("relu", choices=tuple(ACTIVATIONS))
    weight_decay: float = param(0.0, ge=0)


@dataclass
class MlpTrain:
    optimizer: str = param("adam", choices=tuple(OPTIMIZERS))
    learning_rate: float = param(1e-2, gt=0)
    epochs: int = param(100, ge=1, le=100_000)
    batch_size: int = param(32, ge=1)


@dataclass
class MlpConfig(ExperimentConfig):
    data: MlpData = field(default_factory=MlpData)
    model: MlpModel = field(default_factory=MlpModel)
    train: MlpTrain = field(default_factory=MlpTrain)
    # Left out of the cell digest (outcome=False) so existing cells keep their seeds and
    # stored results; the report refuses cells stored without the CV it asks for.
    cv: CVSection = param(default_factory=CVSection, outcome=False)


def run_cell(config: MlpConfig, ctx: CellContext) -> CellOutput:
    split = load_labelled(config.data, config.seed)
    X_train, X_test = split.X_train, split.X_test
    model = _network(config, ctx.rng).fit(X_train, split.y_train)
    history = model.history_
    save_model(ctx.files, model)
    artifacts = {
        "test_accuracy": float(model.score(X_test, split.y_test)),
        "train_accuracy": float(model.score(X_train, split.y_train)),
        "best_epoch": history.best_epoch,
        "iteration_loss": np.asarray(history.iteration_loss),
        "label_mapping": split.label_mapping,
        "sizes": {"train": len(X_train), "test": len(X_test)},
    }
    rows = [dict(row) for row in history.rows]
    if config.cv.folds:  # after the full fit, which so draws what it draws with CV off
        scores = _cross_validate(config, split, ctx.rng)
        rows[-1] |= cv_columns(scores)  # a cell's score, on its last epoch's row
        artifacts |= cv_artifacts(scores)
    return CellOutput(rows, artifacts)


def _cross_validate(
    config: MlpConfig, split: LabelledSplit, rng: np.random.Generator
) -> np.ndarray:
    """Fold accuracies of the cell's network on its training set: folds from the run seed
    and the data (the same for every cell), each fold's network initialized and shuffled
    by a Generator spawned from the cell's."""
    X, y = split.X_train, split.y_train
    folds = stratified_folds(y, config.cv.folds, fold_rng(config.seed, X, y))
    generators = rng.spawn(len(folds))

    def fit(model: MLPClassifier, X_fold: np.ndarray, y_fold: np.ndarray, index: int):
        return model.set_params(random_state=generators[index]).fit(X_fold, y_fold)

    return cross_val_scores(lambda: _network(config, None), X, y, folds, fit=fit)


def _network(config: MlpConfig, rng: np.random.Generator | None) -> MLPClassifier:
    m, t = config.model, config.train
    return MLPClassifier(
        hidden_layer_sizes=tuple(m.hidden),
        activation=m.activation,
        optimizer=t.optimizer,
        learning_rate=t.learning_rate,
        epochs=t.epochs,
        batch_size=t.batch_size,
        weight_decay=m.weight_decay,
        validation_fraction=config.data.val_fraction,
        standardize=config.data.standardize,
        random_state=rng,
    )


DATA_COPIES = 3  # MLPClassifier.fit: the standardized data, its training and held-out parts


def cell_bytes(config: MlpConfig, split: LabelledSplit) -> float:
    """Estimated peak memory of a cell beyond the loaded data (float64 throughout)."""
    n, d = split.X_train.shape
    hidden, classes = config.model.hidden, split.classes.size
    n_val = int(round(config.data.val_fraction * n))
    optimizer = OPTIMIZERS[config.train.optimizer].__name__
    parameters = 8.0 * parameter_count(d, hidden, classes)
    return (
        training_bytes(parameters, optimizer, keep_best=n_val > 0, checkpoints=False)
        + activation_bytes(d, hidden, classes, min(config.train.batch_size, n), n)
        + DATA_COPIES * 8.0 * n * d
    )


def preflight(cells: list[Cell]) -> None:
    """Load each distinct dataset once (a data problem stops the run before a folder
    exists) and refuse a cell whose estimated memory is over the limit."""
    for cell, split in each_cell_data(cells, load_labelled):
        config = cell.config
        network = describe(split.n_features, config.model.hidden, split.classes.size)
        check_memory(
            f"{where('mlp', cell, cells)}{network} trained with {config.train.optimizer}",
            cell_bytes(config, split),
            "use data with fewer features, fewer units in model.hidden, or train.optimizer=sgd",
        )
        if config.cv.folds:
            check_folds(split.y_train, config.cv.folds, where("mlp", cell, cells))


def report(ctx: ReportContext) -> Report:
    rows, summary = [], {}
    for result in ctx.results:
        name = result.cell.id if ctx.many else str(result.cell.config.data.dataset)
        if not result.ok:
            rows.append([name, result.status, "", "", ""])
            continue
        a = result.artifacts
        rows.append(
            [
                name,
                percent(a["train_accuracy"], 2),
                percent(a["test_accuracy"], 2),
                str(a["best_epoch"] or len(result.rows)),
                f"{a['sizes']['train']} / {a['sizes']['test']}",
            ]
        )
        summary.setdefault("by_cell", {})[result.cell.id] = {
            "test_accuracy": a["test_accuracy"],
            "train_accuracy": a["train_accuracy"],
        }
        ctx.save_cell_figure(
            result,
            "training",
            training_curves,
            a["iteration_loss"],
            [r["epoch"] for r in result.rows],
            [r["train_accuracy"] for r in result.rows],
            [r["val_accuracy"] for r in result.rows],
            f"MLP {result.cell.config.model.hidden} on {result.cell.config.data.dataset}",
        )
    done = ctx.completed
    if len(done) == 1:
        summary["test_accuracy"] = done[0].artifacts["test_accuracy"]
    cv_tables, cv_summary = cv_report(ctx.results, ctx.config, "test_accuracy", "test acc %")
    table = Table(
        "MLP: accuracy after training",
        [
            "cell" if ctx.many else "dataset",
            "train acc %",
            "test acc %",
            "best epoch",
            "train / test",
        ],
        rows,
        note="The best epoch is chosen on the held-out part of the training data "
        "(data.val_fraction); the test part is used once, at the end.",
        align=["left", "right", "right", "right", "right"],
    )
    return Report([table, *cv_tables], summary | cv_summary)


EXPERIMENT = Experiment(
    name="mlp",
    schema=MlpConfig,
    run_cell=run_cell,
    report=report,
    preflight=preflight,
    row_key=("epoch",),
)
