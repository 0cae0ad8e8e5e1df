"""``kernelnet runs plot RUN``: on real runs, the figure drawn is the run's metrics.csv; the
default metric is the CV mean when the run has one; refusals are one line, exit 2."""

import csv
from pathlib import Path

import numpy as np
import pytest

from kernelnet.runs import RunDir
from kernelnet.sweep_plot import BEST_GID, VALUES_GID, draw, load_sweep
from tests.helpers import invoke, one_error_line

GRID = ["--no-plots", "--quiet", "--set", "data.dataset=moons", "--set", "kernel.name=rbf",
        "--set", "kernel.gamma=0.1,1,10", "--set", "svm.C=0.1,1,10,100"]  # fmt: skip


def folder_of(result) -> Path:
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("plot-runs")
    swept = folder_of(invoke("kernel-table", "--runs-dir", runs, *GRID, "--set", "cv.folds=3"))
    one_cell = ["--no-plots", "--quiet", "--set", "data.dataset=moons", "--set", "kernel.name=rbf"]
    single = folder_of(invoke("kernel-table", "--runs-dir", runs, *one_cell))
    return runs, swept, single


def test_the_plot_of_a_cv_grid_is_its_cv_means_with_the_best_framed(runs):
    runs_dir, swept, _ = runs
    result = invoke("runs", "plot", swept, "--runs-dir", runs_dir)
    written = Path(result.stdout.strip())
    assert result.exit_code == 0 and written == swept / "plots" / "sweep_cv_mean.png"
    assert written.read_bytes()[:4] == b"\x89PNG"
    with open(swept / "metrics.csv", newline="") as handle:
        rows = {
            (float(r["gamma"]), float(r["C"])): float(r["cv_mean"]) for r in csv.DictReader(handle)
        }
    figure = draw(load_sweep(RunDir.open(swept)))
    (mesh,) = [a for a in figure.axes[0].get_children() if a.get_gid() == VALUES_GID]
    expected = [[rows[(g, c)] for c in (0.1, 1.0, 10.0, 100.0)] for g in (0.1, 1.0, 10.0)]
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(3, 4), expected)
    best = max(rows, key=lambda k: rows[k])
    (frame,) = [a for a in figure.axes[0].get_children() if a.get_gid() == BEST_GID]
    x0, y0 = frame.get_xy()
    assert x0 < best[1] < x0 + frame.get_width() and y0 < best[0] < y0 + frame.get_height()


def test_metric_and_out_options(runs, tmp_path):
    runs_dir, swept, _ = runs
    out = tmp_path / "accuracy.png"
    result = invoke("runs", "plot", "latest", "--runs-dir", runs_dir)  # latest: the single run
    assert result.exit_code == 2
    result = invoke("runs", "plot", swept.name, "--runs-dir", runs_dir,
                    "--metric", "test_accuracy", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(out) and out.read_bytes()[:4] == b"\x89PNG"
    result = invoke("runs", "plot", swept, "--runs-dir", runs_dir, "--out", tmp_path)
    assert result.stdout.strip() == str(tmp_path / "sweep_cv_mean.png"), result.stderr
    line = one_error_line(invoke("runs", "plot", swept, "--out", "/proc/no/such.png"))
    assert "cannot write the figure" in line


def test_refusals_are_one_line(runs, tmp_path):
    runs_dir, swept, single = runs
    line = one_error_line(invoke("runs", "plot", single, "--runs-dir", runs_dir))
    assert line == f"error: nothing was swept in {single.name}"
    line = one_error_line(invoke("runs", "plot", swept, "--metric", "acc", "--runs-dir", runs_dir))
    assert "'acc' is not a metric of this run; the metrics are:" in line
    assert "test_accuracy" in line and "cv_mean" in line
    line = one_error_line(
        invoke("runs", "plot", swept, "--metric", "solver_status", "--runs-dir", runs_dir)
    )
    assert "is not numeric" in line
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text('{"experiment": "kernel-table", "status": "complete"}')
    line = one_error_line(invoke("runs", "plot", broken, "--runs-dir", runs_dir))
    assert "grid.json: missing" in line


def test_a_per_epoch_run_is_drawn_from_each_cells_last_epoch(tmp_path):
    folder = folder_of(
        invoke(
            "mlp",
            "--runs-dir",
            tmp_path,
            "--no-plots",
            "--quiet",
            "--set",
            "data.dataset=moons",
            "--set",
            "train.epochs=3",
            "--set",
            "train.learning_rate=0.001,0.01,0.1",
        )  # fmt: skip
    )
    with open(folder / "metrics.csv", newline="") as handle:
        last = {r["cell"]: float(r["val_accuracy"]) for r in csv.DictReader(handle)
                if r["epoch"] == "3"}  # fmt: skip
    result = invoke("runs", "plot", folder, "--runs-dir", tmp_path)
    assert result.exit_code == 0 and result.stdout.strip().endswith("sweep_val_accuracy.png")
    sweep = load_sweep(RunDir.open(folder))
    assert dict(zip(sweep.cells, sweep.values.tolist())) == last
