"""Search through the command line: random search draws reproducibly, successive halving
finds the full grid's best cell with less training, and the summary's command reruns the
best cell exactly."""

from __future__ import annotations

import csv
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

KERNELNET = [sys.executable, "-m", "kernelnet"]
# Gradient descent from w = 0 at step sizes well below overshooting: a larger step lowers the
# objective faster at every length of training, so the best cell is known at every budget
# (the largest step), and halving must find it.
GRID = [
    "--set",
    "svm.C=1",
    "--set",
    "svm.learning_rate=1e-6,2e-6,5e-6,1e-5,2e-5,5e-5,1e-4,2e-4,3e-4",
]
HALVING = [
    "--set",
    "search.strategy=halving",
    "--set",
    "search.resource=svm.epochs",
    "--set",
    "search.metric=objective",
    "--set",
    "search.goal=min",
]


def kernelnet(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*KERNELNET, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def run_folder(done: subprocess.CompletedProcess, cwd: Path) -> Path:
    assert done.returncode == 0, done.stderr
    return cwd / done.stdout.strip().splitlines()[-1]


def rows(folder: Path) -> dict[str, dict[str, str]]:
    with open(folder / "metrics.csv", newline="") as handle:
        return {row["cell"]: row for row in csv.DictReader(handle)}


def test_halving_finds_the_full_grids_best_cell_with_less_training(tmp_path):
    common = ["svm-primal", "-q", "--no-plots", *GRID, "--set", "svm.epochs=27"]
    grid = run_folder(kernelnet(*common, cwd=tmp_path), tmp_path)
    grid_rows = rows(grid)
    best = min(grid_rows.values(), key=lambda row: float(row["objective"]))

    halving = run_folder(kernelnet(*common, *HALVING, cwd=tmp_path), tmp_path)
    summary = json.loads((halving / "summary.json").read_text())["search"]
    halving_rows = rows(halving)
    winner = halving_rows[summary["best_cell"]]
    assert best["cell"] == "learning_rate=0.0003"  # the known best
    assert summary["best_cell"] == f"{best['cell']},epochs=27"
    # The same settings are the same cell: identical numbers inside the search and the grid.
    assert winner["objective"] == best["objective"]
    assert summary["best_score"] == float(best["objective"])
    # Rounds: 9 candidates at 1 epoch, the best 3 at 3, the last one straight to 27.
    epochs = [int(row["epochs"]) for row in halving_rows.values()]
    assert sorted(epochs) == [1] * 9 + [3] * 3 + [27]
    assert sum(epochs) < 9 * 27 / 4
    grid_json = json.loads((halving / "grid.json").read_text())
    assert [c["id"] for c in grid_json["cells"]] == list(halving_rows)


def test_the_summarys_command_reruns_the_best_cell_exactly(tmp_path):
    args = ["svm-primal", "-q", "--no-plots", *GRID, "--set", "svm.epochs=9", *HALVING]
    halving = run_folder(kernelnet(*args, cwd=tmp_path), tmp_path)
    summary = json.loads((halving / "summary.json").read_text())["search"]
    command = shlex.split(summary["rerun"])
    assert command[:2] == ["kernelnet", "run"]
    again = run_folder(kernelnet(*command[1:], "-q", cwd=tmp_path), tmp_path)
    (row,) = rows(again).values()
    best = rows(halving)[summary["best_cell"]]
    shared = set(row) - {"cell"}  # the rerun sweeps nothing: no swept-key columns
    assert shared >= {"objective", "train_accuracy", "test_accuracy", "w_0", "b"}
    assert {k: row[k] for k in shared} == {k: best[k] for k in shared}


def test_random_search_draws_the_same_candidates_from_the_same_seed(tmp_path):
    args = ["kernel-table", "--dry-run", "--set", "data.dataset=moons", "--set", "kernel.name=rbf"]
    args += ["--set", "svm.C={log_uniform: [0.01, 100]}", "--set", "search.trials=6"]
    first = kernelnet(*args, cwd=tmp_path)
    second = kernelnet(*args, cwd=tmp_path)
    other = kernelnet(*args, "--seed", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert "6 cell(s)" in first.stdout and "C=" in first.stdout
    assert other.stdout != first.stdout


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "search.strategy=halving"], "needs search.resource"),
        (["--set", "search.strategy=halving", "--set", "search.resource=svm.C"], "whole-number"),
        (["--set", "search.strategy=halving", "--set", "search.resource=svm.nope"], "no setting"),
        (["--set", "svm.C={loguniform: [1, 2]}"], "random-search distribution"),
        (["--set", "svm.epochs={uniform: [1, 5]}"], "int_uniform or choice"),
    ],
)
def test_a_bad_search_is_one_line_exit_2(tmp_path, extra, message):
    done = kernelnet("svm-primal", "-q", *extra, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_a_metric_no_cell_has_is_one_line(tmp_path):
    done = kernelnet(
        "svm-primal", "-q", "--no-plots", *GRID, *HALVING[:4], "--set", "search.metric=nope",
        "--set", "svm.epochs=9",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "search.metric" in done.stderr and "objective" in done.stderr
