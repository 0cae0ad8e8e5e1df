"""One contract test over every registered experiment (in the spirit of scikit-learn's
``parametrize_with_checks``): its defaults resolve, --dry-run lists its cells and writes
nothing, a sweep gives distinct rows and distinct files, its report works with zero, one
and many completed cells, and missing or corrupt data is exit 2 with no run folder."""

import csv
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kernelnet import cell_store
from kernelnet.cli import app
from kernelnet.cli.launch import default_config
from kernelnet.config import RawConfig, expand, format_value, read_config_file
from kernelnet.experiments import REGISTRY
from kernelnet.experiments.base import ReportContext
from kernelnet.runner import resolve_experiment_config
from kernelnet.runs import RunDir

runner = CliRunner()
DATA = Path(__file__).resolve().parents[2] / "data"
MNIST_FILE = "mnist/train-images-idx3-ubyte.gz"
SUBMISSIONS = Path(__file__).resolve().parents[1] / "grading" / "submissions"

# Per experiment: --set items that make it small, the sweep that gives it several cells
# (None: one cell by nature, so a sweep must be refused), and the data file it reads.
CASES = {
    "svm-primal": (["svm.epochs=3"], "svm.C=1,2", "iris_binary/iris_binary.npz"),
    "kernel-table": (
        ["data.dataset=moons", "kernel.name=linear,rbf", "plot.resolution=20"],
        "svm.C=0.5,2",
        "toy2d/moons.npz",
    ),
    "mnist": (
        ["data.train_size=300", "data.val_size=100", "data.test_size=100", "train.epochs=1"],
        "train.learning_rate=0.001,0.002",
        MNIST_FILE,
    ),
    "gradcheck": (["check.name=affine,relu"], "check.h=1e-5,2e-5", None),
    "asym-svm": (
        ["data.dataset=moons", "svm.cost_ratio=0.5,2", "plot.resolution=20"],
        "kernel.gamma=0.2,1",
        "toy2d/moons.npz",
    ),
    "kernel-check": (
        ["check.construction=-a * k1", "check.trials=5", "feature_maps.max_degree=2"],
        "kernels.a=1,2",
        None,
    ),
    "knn": (["data.dataset=moons", "knn.k=1,3"], "knn.metric=euclidean,cosine", "toy2d/moons.npz"),
    "conv": ([], None, None),
    "activations": (["activations.grid_points=101", "activations.depth=3"], None, None),
    "optimizers": (
        [
            "optimizer.name=sgd",
            "optimizer.steps=5",
            "mnist.train_size=200",
            "mnist.val_size=100",
            "mnist.epochs=1",
        ],
        "optimizer.momentum=0.5,0.9",
        MNIST_FILE,
    ),
    "fit": (
        ["fit.target=sine", "fit.activation=relu", "fit.architecture=1x8", "fit.steps=5"],
        "fit.learning_rate=0.01,0.02",
        None,
    ),
    "mlp": (
        ["data.dataset=xor", "train.epochs=5"],
        "model.hidden=[[8],[16]]",
        "toy2d/xor.npz",
    ),
    "mnist-table": (
        ["data.train_size=300", "data.val_size=200", "data.test_size=200", "networks.epochs=1"],
        "method=knn,linear",
        MNIST_FILE,
    ),
    "siamese": (
        ["siamese.train_pairs=100", "siamese.test_pairs=40", "siamese.epochs=1"],
        "siamese.learning_rate=0.001,0.002",
        MNIST_FILE,
    ),
    "grade": (
        [
            "skip=[svm_train,svm_predict,qp_matrices,solve_dual,svm_bias_predict,"
            "fc_forward,fc_backward,relu_backward,softmax_loss,train_two_layer_net]"
        ],
        f"submission={SUBMISSIONS}/reference,{SUBMISSIONS}/partial",
        None,
    ),
}
NAMES = sorted(REGISTRY)
SWEPT = [name for name in NAMES if CASES[name][1] is not None]
WITH_DATA = [name for name in NAMES if CASES[name][2] is not None]


def arguments(name: str, runs: Path, sweep: bool = True) -> list[str]:
    small, sweep_item, _ = CASES[name]
    items = small + ([sweep_item] if sweep and sweep_item else [])
    return [name, "--runs-dir", str(runs), "--quiet", *(a for i in items for a in ("--set", i))]


def test_every_registered_experiment_has_a_case():
    assert set(CASES) == set(REGISTRY)


@pytest.mark.parametrize("name", NAMES)
def test_defaults_resolve_to_unique_file_safe_cells(name):
    experiment = REGISTRY[name]
    path = default_config(name)
    for raw in (RawConfig(), read_config_file(path) if path else RawConfig()):
        cells = expand(experiment.schema, resolve_experiment_config(experiment, raw))
        ids = [c.id for c in cells]
        assert len(set(ids)) == len(ids)
        assert all(re.fullmatch(r"[A-Za-z0-9._+=,~-]+", i) for i in ids), ids
        if experiment.single_cell:
            assert len(cells) == 1


@pytest.mark.parametrize("name", NAMES)
def test_dry_run_lists_the_cells_and_writes_nothing(name, tmp_path):
    result = runner.invoke(app, [*arguments(name, tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.stderr
    expected = {"kernel-table": 4, "asym-svm": 4, "gradcheck": 4}.get(
        name, 1 + bool(CASES[name][1])
    )
    assert f"{expected} cell(s)" in result.stdout
    assert not any(tmp_path.iterdir())


REFUSED_SWEEPS = {"conv": "conv.input=[[3,8,8],[3,16,16]]", "activations": "activations.depth=3,4"}


def test_one_cell_experiments_are_declared():
    assert {n for n in NAMES if REGISTRY[n].single_cell} == set(REFUSED_SWEEPS)


@pytest.mark.parametrize("name", sorted(REFUSED_SWEEPS))
def test_one_cell_experiments_refuse_a_sweep(name, tmp_path):
    result = runner.invoke(app, [name, "--runs-dir", str(tmp_path), "--set", REFUSED_SWEEPS[name]])
    assert result.exit_code == 2
    assert "runs as one cell" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def swept_runs(tmp_path_factory):
    """Each experiment run once through the command line with its sweep."""
    runs = tmp_path_factory.mktemp("contract")
    folders = {}
    for name in NAMES:
        result = runner.invoke(app, arguments(name, runs))
        assert result.exit_code == 0, (name, result.stderr)
        folders[name] = Path(result.stdout.strip().splitlines()[-1])
    return folders


@pytest.mark.parametrize("name", NAMES)
def test_a_sweep_gives_distinct_rows_and_files(name, swept_runs):
    folder = swept_runs[name]
    experiment = REGISTRY[name]
    grid = json.loads((folder / "grid.json").read_text())
    cells = {c["id"]: c for c in grid["cells"]}
    labels = list(dict.fromkeys(k for c in grid["cells"] for k in c["params"]))
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    header = list(rows[0])
    assert header[0] == "cell"
    assert header[1 : 1 + len(labels)] == labels  # every swept key is a column
    assert {r["cell"] for r in rows} == set(cells)
    keys = [tuple(r[k] for k in ("cell", *experiment.row_key)) for r in rows]
    assert len(set(keys)) == len(keys), "rows are not told apart by cell + row key"
    for row in rows:  # the stamped values are the cell's own
        params = cells[row["cell"]]["params"]
        assert all(row[k] == format_value(v) for k, v in params.items())
    # every cell has its own stored result, and its own files
    for cell_id in cells:
        assert (folder / "cells" / cell_id / "result.json").is_file()
    per_cell = [
        p.relative_to(folder)
        for p in folder.rglob("*")
        if p.is_file()
        and p.name not in ("result.json", "result-arrays.npz")
        and p.relative_to(folder).parts[0] in ("cells",)
    ]
    for path in per_cell:
        assert path.parts[1] in cells, path  # cells/<id>/...: the path names its cell
    by_cell: dict[str, set] = {}
    for path in per_cell:
        by_cell.setdefault(path.parts[1], set()).add(Path(*path.parts[2:]))
    if by_cell:  # an experiment that writes per-cell files writes them for every cell
        assert set(by_cell) == set(cells)
        assert len({frozenset(v) for v in by_cell.values()}) == 1
    for plot in (folder / "plots").rglob("*.png") if (folder / "plots").is_dir() else []:
        parts = plot.relative_to(folder / "plots").parts
        assert len(parts) == 1 or (len(parts) == 2 and parts[0] in cells), plot
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["cells"] == len(cells)


def numbers(folder: Path) -> list[dict]:
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    return [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]


@pytest.mark.parametrize("name", ["kernel-table", "mnist", "siamese", "svm-primal", "fit"])
def test_no_plots_draws_nothing_and_changes_no_number(name, swept_runs, tmp_path):
    """--no-plots (the config's plots: false) skips every figure; the cells keep their seeds
    (plots is left out of the cell digest) so every number is the same."""
    result = runner.invoke(app, [*arguments(name, tmp_path), "--no-plots"])
    assert result.exit_code == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert list((swept_runs[name] / "plots").rglob("*.png"))  # the same run with plots has some
    assert not list(folder.rglob("*.png"))
    assert numbers(folder) == numbers(swept_runs[name])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("completed", ["none", "one", "all"])
def test_report_works_with_zero_one_and_many_completed_cells(name, completed, swept_runs, tmp_path):
    folder = RunDir(swept_runs[name])
    experiment = REGISTRY[name]
    resolved = resolve_experiment_config(experiment, read_config_file(folder.file("config.yaml")))
    cells = expand(experiment.schema, resolved)
    stored = cell_store.load_results(folder, cells)
    results = [stored[c.index] for c in cells]
    keep = {"none": 0, "one": 1, "all": len(results)}[completed]
    results = [
        r if i < keep else replace(r, status="failed", artifacts={}, error="synthetic failure")
        for i, r in enumerate(results)
    ]
    report = experiment.report(ReportContext(RunDir(tmp_path), resolved, results))
    assert isinstance(report.tables, list)
    json.dumps(report.summary, default=str)
    if keep == len(results):
        assert report.tables, "a report with completed cells shows a table"


@pytest.mark.parametrize("name", WITH_DATA)
@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_bad_data_is_exit_2_before_any_run_folder(name, damage, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    target = data / CASES[name][2]
    if damage == "missing":
        target.unlink()
    else:
        target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
    monkeypatch.setenv("KERNELNET_DATA", str(data))
    result = runner.invoke(app, arguments(name, tmp_path / "runs"))
    assert result.exit_code == 2, result.stderr
    assert str(target.name) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
