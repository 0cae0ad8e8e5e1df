import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from kernelnet.cli import app

runner = CliRunner()


VALID = "no counterexample in 40 trials (point scales 0.1–100)"


def test_default_constructions_and_columns(tmp_path):
    result = runner.invoke(
        app, ["kernel-check", "--runs-dir", str(tmp_path), "--set", "check.trials=40"]
    )
    assert result.exit_code == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert list(rows[0]) == [
        "cell",
        "construction",
        "base_kernels",
        "trials",
        "min_eigenvalue",
        "symmetric",
        "verdict",
    ]
    verdicts = {r["construction"]: r["verdict"] for r in rows}
    assert verdicts == {
        "k1 + k2": VALID,
        "k1 - k2": "not PSD",
        "a * k1": VALID,
        "-a * k1": "not PSD",
        "f(x) f(z)": VALID,
        "k3(phi(x), phi(z))": VALID,
        "p(k1)": VALID,
        "k1 * k2": VALID,
        "exp(k1)": VALID,
        "sigmoid(gamma=0.5, coef0=-1)": "not PSD",
    }
    cell = next(r["cell"] for r in rows if r["construction"] == "k1 - k2")
    example = json.loads((folder / "cells" / cell / "counterexample.json").read_text())
    assert example["quadratic_form"] < 0
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["poly2_feature_map_error"] < 1e-12
    assert (folder / "plots" / "eigenvalue_spectra.png").is_file()
    assert (folder / "plots" / "feature_map_error.png").is_file()


def test_bad_expression_is_a_config_error(tmp_path):
    result = runner.invoke(
        app,
        [
            "kernel-check",
            "--runs-dir",
            str(tmp_path),
            "--set",
            "check.construction=[k1 + __import__]",
        ],
    )
    assert result.exit_code == 2
    assert "check.construction" in result.stderr and "unknown name '__import__'" in result.stderr
    assert not any(tmp_path.iterdir())
