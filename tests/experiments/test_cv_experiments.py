"""cv.folds in kernel-table, asym-svm, mlp and mnist-table: a cell's fold scores are the same
alone, inside a grid, serially and with --workers 2 (the command line, real processes); they
equal scikit-learn on the same folds; CV off changes no digest, no row; the test score is the
one of the model fitted on all training data; the summary names the best cell by CV."""

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from kernelnet.config import expand, read_config_file, resolve
from kernelnet.config.schema import outcome_values
from kernelnet.config.sweep import canonical_digest, data_identity
from kernelnet.cv import fold_rng, stratified_folds
from kernelnet.experiments import get_experiment
from kernelnet.shipped import shipped
from tests.helpers import invoke, kernelnet_cli, one_error_line

RBF = ["--set", "data.dataset=moons", "--set", "kernel.name=rbf", "--set", "kernel.gamma=0.5"]


def run_folder(done) -> Path:
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


def rows_of(folder: Path) -> dict[str, dict[str, str]]:
    """The last metrics row of each cell (the last epoch for per-epoch experiments)."""
    with open(folder / "metrics.csv", newline="") as handle:
        return {row["cell"]: row for row in csv.DictReader(handle)}


def cell_cv(folder: Path, cell: str) -> tuple[str, str, list[float]]:
    """(cv_mean, cv_std as written in metrics.csv, the stored fold scores) of a cell."""
    row = rows_of(folder)[cell]
    stored = json.loads((folder / "cells" / cell / "result.json").read_text())
    return row["cv_mean"], row["cv_std"], stored["artifacts"]["cv_scores"]


@pytest.fixture(scope="module")
def kernel_table_runs(tmp_path_factory):
    """One cell alone, the grid it sits in serially, and the grid with two workers."""
    runs = tmp_path_factory.mktemp("cv-runs")
    common = ["kernel-table", "--runs-dir", runs, "--quiet", "--no-plots", *RBF]
    alone = kernelnet_cli(*common, "--set", "cv.folds=5", "--set", "svm.C=5")
    grid = [*common, "--set", "cv.folds=5", "--set", "svm.C=0.5,5,50"]
    serial, parallel = kernelnet_cli(*grid), kernelnet_cli(*grid, "--workers", "2")
    off = kernelnet_cli(*common, "--set", "svm.C=0.5,5,50")
    return tuple(run_folder(done) for done in (alone, serial, parallel, off))


def test_a_cells_cv_score_is_the_same_alone_in_a_grid_serially_and_with_two_workers(
    kernel_table_runs,
):
    alone, serial, parallel, _ = kernel_table_runs
    single = cell_cv(alone, "single")
    assert len(single[2]) == 5 and float(single[0]) == pytest.approx(np.mean(single[2]))
    assert cell_cv(serial, "C=5") == single
    assert cell_cv(parallel, "C=5") == single
    for cell in ("C=0.5", "C=50"):
        assert cell_cv(serial, cell) == cell_cv(parallel, cell)
    assert cell_cv(serial, "C=0.5") != single  # the cells differ: the check can fail


def test_the_fold_scores_equal_scikit_learn_on_the_cells_training_set(kernel_table_runs):
    pytest.importorskip("sklearn")
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC

    from kernelnet.data.registry import load_labelled

    _, serial, _, _ = kernel_table_runs
    config = get_experiment("kernel-table").schema().data
    split = load_labelled(dataclasses.replace(config, dataset="moons"), 0)
    X, y = split.X_train, split.y_train
    folds = stratified_folds(y, 5, fold_rng(0, X, y))
    for C in (0.5, 5.0, 50.0):
        theirs = cross_val_score(SVC(kernel="rbf", C=C, gamma=0.5, tol=1e-8), X, y, cv=folds)
        assert cell_cv(serial, f"C={C:g}")[2] == theirs.tolist()


def test_cv_adds_columns_and_changes_no_other_number(kernel_table_runs):
    _, serial, _, off = kernel_table_runs
    on_rows, off_rows = rows_of(serial), rows_of(off)
    assert set(on_rows) == set(off_rows)
    for cell, row in off_rows.items():
        assert "cv_mean" not in row
        shown = {k: v for k, v in on_rows[cell].items() if k not in ("cv_mean", "cv_std")}
        assert {k: v for k, v in shown.items() if k != "fit_seconds"} == {
            k: v for k, v in row.items() if k != "fit_seconds"
        }


def test_the_summary_and_a_table_name_the_best_cell_by_cv(kernel_table_runs):
    _, serial, _, off = kernel_table_runs
    rows = rows_of(serial)
    best = max(rows, key=lambda cell: (float(rows[cell]["cv_mean"]), -float(rows[cell]["cv_std"])))
    summary = json.loads((serial / "summary.json").read_text())["best_by_cv"]
    assert summary["cell"] == best and summary["folds"] == 5
    assert summary["cv_mean"] == float(rows[best]["cv_mean"])
    assert summary["test_accuracy"] == float(rows[best]["test_accuracy"])
    assert "5-fold cross-validation" in (serial / "metrics.md").read_text()
    assert "best_by_cv" not in json.loads((off / "summary.json").read_text())


@pytest.mark.parametrize("experiment", ["kernel-table", "asym-svm", "mlp", "mnist-table"])
def test_the_cv_section_enters_no_cell_digest(experiment):
    """The cv section is left out of what a cell's digest hashes: every existing cell keeps
    its digest (its Generator, its stored result) and turning CV on changes neither."""
    schema = get_experiment(experiment).schema
    raw = read_config_file(shipped("configs") / f"{experiment}.yaml")
    off = expand(schema, resolve(schema, raw.values, raw.locations))
    raw.override("cv.folds=5")
    on = expand(schema, resolve(schema, raw.values, raw.locations))
    assert [c.values["cv"] for c in off] == [{"folds": 0}] * len(off)
    assert [c.values["cv"] for c in on] == [{"folds": 5}] * len(on)
    for cell in off:
        assert "cv" not in outcome_values(schema, cell.values)
        without = {k: v for k, v in outcome_values(schema, cell.values).items() if k != "cv"}
        assert cell.digest == canonical_digest(data_identity(without))
    assert [c.digest for c in on] == [c.digest for c in off]


def test_asym_svm_fold_scores_equal_scikit_learn_with_the_same_class_weights(tmp_path):
    pytest.importorskip("sklearn")
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC

    from kernelnet.data.registry import load_binary_data

    done = invoke(
        "asym-svm", "--runs-dir", tmp_path, "--quiet", "--no-plots", "--set", "cv.folds=4",
        "--set", "data.dataset=moons", "--set", "svm.cost_ratio=0.25,4",
    )  # fmt: skip
    folder = Path(done.stdout.strip().splitlines()[-1])
    config = get_experiment("asym-svm").schema().data
    split = load_binary_data(dataclasses.replace(config, dataset="moons"), 0)
    X, y = split.X_train, split.y_train
    folds = stratified_folds(y, 4, fold_rng(0, X, y))
    for ratio in (0.25, 4.0):
        svc = SVC(kernel="rbf", C=1.0, gamma=0.2, class_weight={-1.0: 1.0, 1.0: ratio}, tol=1e-8)
        theirs = cross_val_score(svc, X, y, cv=folds).tolist()
        assert cell_cv(folder, f"ratio={ratio:g}")[2] == theirs
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["best_by_cv"]["cell"] in ("ratio=0.25", "ratio=4")


def test_mlp_scores_its_last_epoch_row_and_keeps_the_test_score_of_the_full_fit(tmp_path):
    common = ["mlp", "--runs-dir", tmp_path, "--quiet", "--no-plots", "--set",
              "data.dataset=moons", "--set", "train.epochs=4"]  # fmt: skip
    grid = run_folder_of(  # in two worker processes: each fold's Generator travels with the cell
        invoke(*common, "--set", "cv.folds=3", "--set", "model.hidden=[[8],[16]]", "--workers", "2")
    )
    alone = run_folder_of(invoke(*common, "--set", "cv.folds=3", "--set", "model.hidden=[16]"))
    off = run_folder_of(invoke(*common, "--set", "model.hidden=[16]"))
    with open(grid / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["cell"] == "hidden=16"]
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    assert [bool(r["cv_mean"]) for r in rows] == [False, False, False, True]
    assert cell_cv(grid, "hidden=16") == cell_cv(alone, "single")
    summary = {
        name: json.loads((folder / "summary.json").read_text()) for name, folder in
        (("alone", alone), ("off", off))
    }  # fmt: skip
    assert summary["alone"]["test_accuracy"] == summary["off"]["test_accuracy"]
    assert summary["alone"]["best_by_cv"]["cell"] == "single"


def run_folder_of(result) -> Path:
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def test_mnist_table_cross_validates_each_method_on_the_same_folds(tmp_path):
    common = ["mnist-table", "--runs-dir", tmp_path, "--quiet", "--no-plots",
              "--set", "data.train_size=300", "--set", "data.val_size=200",
              "--set", "data.test_size=200", "--set", "networks.epochs=2",
              "--set", "cv.folds=3"]  # fmt: skip
    grid = run_folder_of(invoke(*common, "--set", "method=knn,linear"))
    alone = run_folder_of(invoke(*common, "--set", "method=knn"))
    assert cell_cv(grid, "method=knn") == cell_cv(alone, "single")
    rows = rows_of(grid)
    best = max(rows, key=lambda cell: float(rows[cell]["cv_mean"]))
    summary = json.loads((grid / "summary.json").read_text())["best_by_cv"]
    assert summary["cell"] == best
    assert summary["test_error"] == float(rows[best]["test_error"])


def test_more_folds_than_a_class_has_samples_is_refused_before_a_folder_exists(tmp_path):
    line = one_error_line(
        invoke("kernel-table", "--runs-dir", tmp_path, *RBF, "--set", "cv.folds=40")
    )
    assert "cv.folds=40: class" in line and "use at most" in line
    assert not (tmp_path / "kernel-table").exists()
    line = one_error_line(invoke("mlp", "--runs-dir", tmp_path, "--set", "cv.folds=1"))
    assert "at least 2" in line
