"""A cell's cross-validation score, and a successive-halving search's rounds, are the same
serially, with `--workers 2` and on a Dask cluster of real `dask scheduler` / `dask worker`
processes (issue 22): folds come from the run seed and the data, rounds from the stored
results, never from where a cell ran."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

KERNELNET = [sys.executable, "-m", "kernelnet"]
CV_GRID = [
    "kernel-table", "-q", "--no-plots", "--set", "data.dataset=moons", "--set", "kernel.name=rbf",
    "--set", "svm.C=0.5,5", "--set", "kernel.gamma=0.5,2", "--set", "cv.folds=5",
]  # fmt: skip
HALVING = [
    "svm-primal", "-q", "--no-plots", "--set", "svm.C=1",
    "--set", "svm.learning_rate=1e-6,1e-5,1e-4,3e-4", "--set", "svm.epochs=9",
    "--set", "search.strategy=halving", "--set", "search.resource=svm.epochs",
    "--set", "search.metric=objective", "--set", "search.goal=min",
]  # fmt: skip


@pytest.fixture(scope="module")
def scheduler_file(tmp_path_factory):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    from tests.test_dask_cluster import start_cluster, stop

    processes, found = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield found
    stop(processes, found)


def _run(args: list[str], where: list[str], cwd: Path) -> Path:
    done = subprocess.run(
        [*KERNELNET, *args, *where], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return cwd / done.stdout.strip().splitlines()[-1]


def _numbers(folder: Path) -> tuple[list[dict[str, str]], dict]:
    with open(folder / "metrics.csv", newline="") as handle:
        rows = [
            {k: v for k, v in row.items() if not k.endswith("seconds")}
            for row in csv.DictReader(handle)
        ]
    summary = json.loads((folder / "summary.json").read_text())
    search = {k: v for k, v in summary.get("search", {}).items() if k != "rerun"}
    return rows, search


def test_cv_scores_and_halving_rounds_are_the_same_on_every_executor(tmp_path, scheduler_file):
    places = {
        "serial": [],
        "workers": ["--workers", "2"],
        "dask": ["--scheduler-file", str(scheduler_file)],
    }
    for args in (CV_GRID, HALVING):
        seen = {}
        for name, where in places.items():
            folder = tmp_path / f"{args[0]}-{name}"
            folder.mkdir()
            seen[name] = _numbers(_run(args, where, folder))
        rows, search = seen["serial"]
        assert rows and search["best_cell"]
        assert any(row.get("cv_mean") for row in rows) or search["strategy"] == "halving"
        assert seen["workers"] == seen["serial"]
        assert seen["dask"] == seen["serial"]
