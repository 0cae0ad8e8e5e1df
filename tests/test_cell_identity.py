"""Every cell's results are its own: the examples of the cell-identity issue, each through
the command line a user types."""

import csv
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import kernelnet
from kernelnet.cli import app
from kernelnet.config import expand, resolve
from kernelnet.config.sweep import cell_id, safe_text
from kernelnet.experiments import REGISTRY
from kernelnet.runner import execute

runner = CliRunner()


def run(*args, expect: int = 0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == expect, result.stderr
    return result


def folder_of(result) -> Path:
    return Path(result.stdout.strip().splitlines()[-1])


def metrics(folder: Path) -> list[dict]:
    return list(csv.DictReader(open(folder / "metrics.csv")))


def test_asym_svm_gamma_sweep_keeps_every_cell(tmp_path):
    result = run(
        "asym-svm", "--runs-dir", tmp_path, "--quiet",
        "--set", "data.dataset=moons", "--set", "kernel.gamma=0.2,1",
        "--set", "svm.cost_ratio=0.5,2", "--set", "plot.resolution=20",
    )  # fmt: skip
    folder = folder_of(result)
    rows = metrics(folder)
    assert list(rows[0])[:3] == ["cell", "gamma", "ratio"]
    assert [(r["gamma"], r["ratio"]) for r in rows] == [
        ("0.2", "0.5"), ("0.2", "2"), ("1", "0.5"), ("1", "2"),
    ]  # fmt: skip
    assert len({r["cell"] for r in rows}) == 4
    params = sorted((folder / "cells").glob("*/params.npz"))
    assert len(params) == 4
    alphas = [np.load(p)["alpha"] for p in params]
    assert not np.array_equal(alphas[0], alphas[2])  # different gammas, different models
    boundaries = sorted(p.name for p in (folder / "plots").glob("decision_boundaries*.png"))
    assert boundaries == ["decision_boundaries_gamma=0.2.png", "decision_boundaries_gamma=1.png"]


@pytest.mark.parametrize("workers", [1, 2])
def test_mnist_learning_rate_sweep_saves_one_model_per_cell(tmp_path, workers):
    result = run(
        "mnist", "--runs-dir", tmp_path, "--quiet", "--epochs", "1", "--workers", workers,
        "--set", "train.learning_rate=0.001,0.002", "--set", "data.train_size=500",
        "--set", "data.val_size=100", "--set", "data.test_size=200",
    )  # fmt: skip
    folder = folder_of(result)
    models = {p.parent.name: np.load(p)["W1"] for p in (folder / "cells").glob("*/model.npz")}
    assert set(models) == {"learning_rate=0.001", "learning_rate=0.002"}
    assert not np.array_equal(*models.values())
    for cell in models:
        assert (folder / "plots" / cell / "training.png").is_file()
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["by_cell"]) == set(models)


def test_kernel_check_writes_one_counterexample_per_cell(tmp_path):
    result = run(
        "kernel-check", "--runs-dir", tmp_path, "--quiet",
        "--set", "check.construction=-a * k1", "--set", "kernels.a=1,2,3",
        "--set", "check.trials=5", "--set", "feature_maps.max_degree=2",
    )  # fmt: skip
    folder = folder_of(result)
    examples = sorted((folder / "cells").glob("*/counterexample.json"))
    assert [p.parent.name for p in examples] == ["a=1", "a=2", "a=3"]
    gram = [np.array(json.loads(p.read_text())["gram"]) for p in examples]
    # -a * rbf on one point is -a: each file holds its own cell's counterexample
    assert [float(g[0, 0]) for g in gram] == pytest.approx([-1.0, -2.0, -3.0])
    summary = json.loads((folder / "summary.json").read_text())
    assert list(summary["verdicts"]) == ["a=1", "a=2", "a=3"]


@pytest.mark.parametrize("values", ["1,1.0", "0.5,1,0.50"])
def test_two_identical_cells_are_a_config_error_naming_the_key(tmp_path, values):
    result = run(
        "kernel-table", "--runs-dir", tmp_path, "--dry-run",
        "--set", "data.dataset=moons", "--set", "kernel.name=rbf", "--set", f"svm.C={values}",
        expect=2,
    )  # fmt: skip
    assert "svm.C" in result.stderr and "same value twice" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_ids_are_canonical_unique_and_safe_as_file_names():
    assert cell_id({"C": 1.0}) == cell_id({"C": 1}) == "C=1"
    assert cell_id({"C": 0.1}) == "C=0.1" and cell_id({"lr": 1e-05}) == "lr=1e-05"
    assert cell_id({"hidden": [256, 128]}) == "hidden=256_128"
    assert cell_id({}) == "single"
    texts = ["k1 + k2", "k1 - k2", "k1 * k2", "k1 / k2", "../etc", "a,b=c", "k1 _ k2", "k1__k2"]
    ids = [cell_id({"construction": t}) for t in texts]
    assert len(set(ids)) == len(ids)
    for text in ids + [cell_id({"x": "y" * 500})]:
        assert re.fullmatch(r"[A-Za-z0-9._+=,~-]+", text) and len(text) <= 160
        assert ".." not in text.split("=", 1)[1].split("~")[0] or "~" in text
    assert safe_text("moons") == "moons"


def test_compare_keys_rows_on_cell_and_epoch(tmp_path):
    result = run(
        "siamese", "--runs-dir", tmp_path, "--quiet",
        "--set", "siamese.learning_rate=0.001,0.002", "--set", "siamese.train_pairs=100",
        "--set", "siamese.test_pairs=40", "--set", "siamese.epochs=1",
    )  # fmt: skip
    first = folder_of(result)
    second = first.parent / (first.name + "-copy")
    shutil.copytree(first, second)
    rows = metrics(second)
    assert rows[1]["cell"] == "learning_rate=0.001" and rows[1]["epoch"] == "1"
    rows[1]["loss"] = str(float(rows[1]["loss"]) + 0.25)
    with open(second / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    compared = run("runs", "compare", first, second, expect=1)
    assert "cell=learning_rate=0.001,epoch=1" in compared.stdout
    assert "+0.25" in compared.stdout
    assert "identical" not in compared.stdout


def test_a_cells_randomness_does_not_depend_on_the_grid_around_it(tmp_path):
    common = ["--set", "svm.method=stochastic", "--set", "svm.epochs=5", "--quiet"]
    alone = folder_of(run("svm-primal", "--runs-dir", tmp_path / "a", *common))
    grid = folder_of(run("svm-primal", "--runs-dir", tmp_path / "b", *common, "--set", "svm.C=5,6"))
    in_grid = next(r for r in metrics(grid) if r["cell"] == "C=5")
    (only,) = metrics(alone)
    assert in_grid["objective"] == only["objective"]
    assert in_grid["w_0"] == only["w_0"]


def test_a_swept_seed_gives_each_cell_its_own_numbers(tmp_path):
    result = run(
        "kernel-check", "--runs-dir", tmp_path, "--quiet", "--set", "seed=0,1",
        "--set", "check.construction=k1 - k2", "--set", "check.trials=5",
        "--set", "feature_maps.max_degree=2",
    )  # fmt: skip
    rows = metrics(folder_of(result))
    assert [r["cell"] for r in rows] == ["seed=0", "seed=1"]
    assert rows[0]["min_eigenvalue"] != rows[1]["min_eigenvalue"]


def test_no_code_makes_a_generator_of_its_own():
    package = Path(kernelnet.__file__).parent
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "seeding.py"
        and re.search(r"default_rng\(|np\.random\.seed|RandomState\(", path.read_text())
        and path.name != "gradcheck.py"  # nn/gradcheck: a fixed dropout mask, see below
    ]
    assert offenders == []
    gradcheck = (package / "nn" / "gradcheck.py").read_text()
    assert gradcheck.count("default_rng(") == 1  # the mask is rebuilt from a seed it is given


def test_optimizers_surfaces_have_choices(tmp_path):
    result = run(
        "optimizers", "--runs-dir", tmp_path, "--set", "optimizer.surfaces=[valey]", expect=2
    )
    assert "did you mean 'valley'" in result.stderr
    assert "Traceback" not in result.stderr and not any(tmp_path.iterdir())


def test_siamese_reports_every_cell_of_a_sweep(tmp_path):
    result = run(
        "siamese", "--runs-dir", tmp_path,
        "--set", "siamese.learning_rate=0.001,0.01", "--set", "siamese.train_pairs=100",
        "--set", "siamese.test_pairs=40", "--set", "siamese.epochs=1",
    )  # fmt: skip
    folder = folder_of(result)
    markdown = (folder / "metrics.md").read_text()
    assert "— learning_rate=0.001" in markdown and "— learning_rate=0.01" in markdown
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["by_cell"]) == {"learning_rate=0.001", "learning_rate=0.01"}
    assert len(list((folder / "plots").glob("*/siamese.png"))) == 2


def test_every_cell_failing_still_writes_metrics_and_errors(tmp_path):
    result = run(
        "asym-svm", "--runs-dir", tmp_path, "--set", "data.dataset=moons",
        "--set", "svm.cost_ratio=0.5,2", "--set", "solver.maxiters=1",
        "--set", "solver.fallback=none",
        expect=1,
    )  # fmt: skip
    folder = folder_of(result)
    rows = metrics(folder)
    assert [r["cell"] for r in rows] == ["ratio=0.5", "ratio=2"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert [c["cell"] for c in summary["failed_cells"]] == ["ratio=0.5", "ratio=2"]
    assert all("maxiters" in c["error"] or "status" in c["error"] for c in summary["failed_cells"])
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"
    assert "Failed cells" in (folder / "metrics.md").read_text()


def test_a_report_that_raises_loses_nothing(tmp_path, monkeypatch):
    def broken(ctx):
        raise RuntimeError("the plot could not be drawn")

    monkeypatch.setitem(REGISTRY, "conv", replace(REGISTRY["conv"], report=broken))
    result = run("conv", "--runs-dir", tmp_path, expect=1)
    folder = folder_of(result)
    assert "the report failed: RuntimeError: the plot could not be drawn" in result.stderr
    assert "Traceback" not in result.stderr
    assert metrics(folder)[0]["cell"] == "single"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["report_error"] == "RuntimeError: the plot could not be drawn"
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"
    assert "Traceback" in (folder / "log.txt").read_text()
    assert (folder / "cells" / "single" / "result.json").is_file()


def test_the_cell_store_holds_data_only(tmp_path):
    experiment = REGISTRY["kernel-table"]
    resolved = resolve(
        experiment.schema,
        {"data": {"dataset": "moons"}, "kernel": {"name": "rbf"}, "plot": {"resolution": 20}},
        {},
    )
    resolved["experiment"] = experiment.name
    outcome = execute(experiment, resolved, tmp_path, [])
    (cell,) = expand(experiment.schema, resolved)
    stored = outcome.run.path / "cells" / cell.id
    assert sorted(p.name for p in stored.iterdir()) == [
        "model-arrays.npz", "model.json", "params.json", "params.npz", "result-arrays.npz",
        "result.json",
    ]  # fmt: skip
    with np.load(stored / "model-arrays.npz", allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)
    document = json.loads((stored / "result.json").read_text())
    assert document["cell"] == cell.id and document["config_digest"] == cell.digest
    with np.load(stored / "result-arrays.npz", allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)
    assert not list(outcome.run.path.rglob("*.pkl"))
