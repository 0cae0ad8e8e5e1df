"""benchmarks/grid_search.py checked on a tiny version of itself (200 MNIST images, a 3 x 3
grid, 3 folds, both sides in their own processes): kernelnet's command-line run and
scikit-learn's GridSearchCV on kernelnet's folds agree on every cell's fold scores and on the
best pair, so the comparison the benchmark reports is itself tested. Also: the comparison
notices a difference, and kernel-table's ``psd.check=false`` (the benchmark's setting) skips
only the PSD check."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import kernelnet

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "grid_search", ROOT / "benchmarks" / "grid_search.py"
)
grid_search = importlib.util.module_from_spec(_spec)
sys.modules["grid_search"] = grid_search  # dataclasses look their module up there
_spec.loader.exec_module(grid_search)

CS = [0.5, 2.0, 8.0]
GAMMAS = [2.0**-7, 2.0**-5, 2.0**-3]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The benchmark's own benchmark() on 200 images, one worker per side (a shared
    machine), both sides once."""
    scratch = tmp_path_factory.mktemp("grid_search")
    return grid_search.benchmark(
        200, 100, CS, GAMMAS, 3, repeats=1, workers=1, runs_dir=scratch / "runs",
        say=lambda *_: None,
    )  # fmt: skip


def test_both_sides_agree_on_every_cells_mean_cv_score_and_on_the_best_pair(tiny):
    agreement = tiny["agreement"]
    assert agreement["cells"] == 9 and agreement["folds_per_cell"] == 3
    assert agreement["max_abs_mean_cv_difference"] <= 1e-9
    assert agreement["max_abs_fold_difference"] <= 1e-9
    assert agreement["folds_that_differ"] == 0 and agreement["differing_cells"] == []
    assert agreement["same_best_pair"], (agreement["kernelnet_best"], agreement["sklearn_best"])
    assert (
        tiny["test_accuracy_of_best"]["kernelnet"] == tiny["test_accuracy_of_best"]["scikit-learn"]
    )
    # a search, not a constant: the grid's scores spread, so a wrong best would show
    run = kernelnet.load_run(tiny["kernelnet_run"])
    cv = [row["cv_mean"] for row in run.metrics]
    assert len(cv) == 9 and max(cv) - min(cv) > 0.05


def test_the_kernelnet_side_is_the_products_run_folder_and_its_best_cell(tiny):
    run = kernelnet.load_run(tiny["kernelnet_run"])
    assert run.status == "complete" and run.experiment == "kernel-table"
    config = run.config
    assert config["cv"]["folds"] == 3 and config["kernel"]["name"] == "rbf"
    assert config["solver"]["smo_tol"] == 1e-3 and config["psd"]["check"] is False
    assert sorted(config["svm"]["C"]) == CS and sorted(config["kernel"]["gamma"]) == GAMMAS
    best = run.summary["best_by_cv"]
    assert best["cell"] == tiny["kernelnet_best_cell"]
    assert [best["params"]["C"], best["params"]["gamma"]] == tiny["agreement"]["kernelnet_best"]
    top = max(row["cv_mean"] for row in run.metrics)
    assert best["cv_mean"] == top


def test_the_folds_are_kernelnets_a_partition_stratified_and_fixed_by_seed_and_data(tmp_path):
    data = grid_search.write_subset(tmp_path / "d.npz", 200, 50)
    split = grid_search.load_data(data)
    folds = grid_search.kernelnet_folds(split.X_train, split.y_train, 3)
    tests = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tests), np.arange(200))
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0 and train.size + test.size == 200
        counts = np.bincount(split.y_train[test], minlength=10)
        assert np.all(np.abs(counts - np.bincount(split.y_train, minlength=10) / 3) < 1)
    again = grid_search.kernelnet_folds(split.X_train, split.y_train, 3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    other = grid_search.kernelnet_folds(split.X_train, split.y_train, 3, seed=1)
    assert not np.array_equal(folds[0][1], other[0][1])


def _side(scores, best):
    order = [(C, g) for g in GAMMAS for C in CS]
    return grid_search.Side(1.0, scores, best, 0.5, {"order": order})


def test_the_comparison_notices_one_differing_fold_and_a_different_best_pair():
    order = [(C, g) for g in GAMMAS for C in CS]
    ours = {cell: [0.5, 0.6, 0.7] for cell in order}
    ours[(2.0, 2.0**-5)] = [0.9, 0.9, 0.9]
    theirs = {cell: list(s) for cell, s in ours.items()}
    theirs[(8.0, 2.0**-3)] = [0.5, 0.6, 0.725]
    theirs[(0.5, 2.0**-7)] = [0.9, 0.95, 0.85]  # same mean as the best, larger spread
    a = grid_search.compare(_side(ours, (2.0, 2.0**-5)), _side(theirs, (0.5, 2.0**-7)), CS, GAMMAS)
    assert a["folds_that_differ"] == 4 and a["cells_with_different_mean"] == 2
    assert math.isclose(a["max_abs_fold_difference"], 0.4)
    assert not a["same_best_pair"]
    # kernelnet's rule (ties: smaller std) on the other side's scores picks kernelnet's best,
    # GridSearchCV's (ties: first in C-outer order) on kernelnet's picks kernelnet's too
    assert a["best_by_kernelnet_rule_on_sklearn_scores"] == [2.0, 2.0**-5]
    assert a["best_by_sklearn_rule_on_kernelnet_scores"] == [2.0, 2.0**-5]


def test_psd_check_false_skips_only_the_psd_check(tmp_path):
    overrides = {"data.dataset": "moons", "kernel.name": ["rbf", "sigmoid"], "cv.folds": 3}
    checked = kernelnet.run("kernel-table", overrides=overrides | {"plots": False},
                            runs_dir=tmp_path)  # fmt: skip
    skipped = kernelnet.run(
        "kernel-table", overrides=overrides | {"plots": False, "psd.check": False},
        runs_dir=tmp_path,
    )  # fmt: skip
    assert checked.status == skipped.status == "complete"
    numbers = ("test_accuracy", "train_accuracy", "cv_mean", "cv_std", "n_support")
    for a, b in zip(checked.metrics, skipped.metrics):
        assert a["cell"] == b["cell"] and all(a[k] == b[k] for k in numbers)
    assert checked.summary["non_psd_cells"] == ["kernel=sigmoid"]  # sigmoid is indefinite here
    assert skipped.summary["non_psd_cells"] == [] and skipped.summary["gram_min_eigenvalue"] == {}
    assert set(checked.summary["gram_min_eigenvalue"]) == {"kernel=rbf", "kernel=sigmoid"}
    stored = json.loads((skipped.path / "cells" / "kernel=rbf" / "result.json").read_text())
    assert stored["artifacts"]["psd"] is None and stored["artifacts"]["min_eigenvalue"] is None
    report = skipped.path.joinpath("metrics.md").read_text()
    assert report.count("not checked") == 2 and "†" not in report
    assert "†" in checked.path.joinpath("metrics.md").read_text()
    # a diagnostic, left out of the cell digest: the cells (and their seeds) are the same
    assert _digests({"psd": {"check": False}}) == _digests({})


def _digests(extra):
    from kernelnet.config import expand, resolve
    from kernelnet.experiments import REGISTRY

    schema = REGISTRY["kernel-table"].schema
    raw = {"data": {"dataset": "moons"}, "kernel": {"name": ["rbf", "sigmoid"]}} | extra
    return [cell.digest for cell in expand(schema, resolve(schema, raw, {}))]
