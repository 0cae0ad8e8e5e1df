import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.svm import SVC
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.data.registry import load_binary
from kernelnet.experiments.asym_svm import error_counts


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(
        app,
        [
            "asym-svm",
            "--runs-dir",
            str(runs),
            "--set",
            "data.dataset=moons,xor",
            "--set",
            "svm.cost_ratio=0.25,1,4",
        ],
    )
    assert result.exit_code == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    return folder, list(csv.DictReader(open(folder / "metrics.csv")))


def test_rows_and_costs(run):
    _, rows = run
    assert [(r["dataset"], float(r["cost_ratio"])) for r in rows] == [
        (d, q) for d in ("moons", "xor") for q in (0.25, 1.0, 4.0)
    ]
    assert all(float(r["C1"]) == float(r["C0"]) * float(r["cost_ratio"]) for r in rows)


def test_errors_match_libsvm_with_equivalent_class_weights(run):
    _, rows = run
    for row in rows:
        split = load_binary(row["dataset"])
        ratio = float(row["cost_ratio"])
        reference = SVC(
            C=1.0, kernel="rbf", gamma=0.2, tol=1e-6, class_weight={-1.0: 1.0, 1.0: ratio}
        ).fit(split.X_train, split.y_train)
        fp, fn = error_counts(reference.predict(split.X_test), split.y_test)
        assert (int(row["false_positives"]), int(row["false_negatives"])) == (fp, fn)


def test_raising_the_positive_cost_trades_false_negatives_for_false_positives(run):
    _, rows = run
    for dataset in ("moons", "xor"):
        mine = [r for r in rows if r["dataset"] == dataset]
        fn = [int(r["train_false_negatives"]) for r in mine]
        fp = [int(r["train_false_positives"]) for r in mine]
        assert fn[0] > fn[-1] and fp[0] < fp[-1]


def test_outputs(run):
    folder, _ = run
    assert (folder / "plots" / "fp_fn_tradeoff.png").is_file()
    assert (folder / "plots" / "decision_boundaries.png").is_file()
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["by_dataset"]) == {"moons", "xor"}
    with np.load(folder / "cells" / "dataset=moons,ratio=4" / "params.npz") as saved:
        assert saved["alpha"].max() <= 4.0 + 1e-6
