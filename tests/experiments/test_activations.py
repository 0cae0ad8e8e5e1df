import csv
import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.experiments.activations import ActivationSection, gradient_through_depth, identities


def test_every_identity_holds_within_its_tolerance():
    checks = identities(ActivationSection(), np.random.default_rng(0))
    assert len(checks) == 19
    for name, error, tolerance in checks:
        assert error <= tolerance, name


def test_sigmoid_gradients_vanish_with_depth_and_identity_ones_do_not():
    norms = gradient_through_depth(ActivationSection(depth=20), np.random.default_rng(0))
    xavier = norms["xavier"]
    assert xavier["sigmoid"][-1] < 1e-10 < xavier["identity"][-1]
    assert xavier["sigmoid"][-1] < xavier["tanh"][-1] < xavier["identity"][-1] * 10


def test_activations_experiment(tmp_path):
    result = CliRunner().invoke(app, ["activations", "--runs-dir", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert all(r["holds"] == "True" for r in rows)
    assert rows[0]["identity"] == "sign(x) = 1[x>0] - 1[x<0]"
    assert json.loads((folder / "summary.json").read_text())["all_hold"] is True
    assert (folder / "plots" / "activations.png").is_file()
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["gradient_norm_at_depth"]) == {"he", "xavier", "small"}
    assert summary["n_theta"]["784-100-10"] == 100 * 784 + 100 + 10 * 100 + 10


def test_the_initialization_is_a_setting_and_the_table_names_it(tmp_path):
    result = CliRunner().invoke(
        app,
        ["activations", "--runs-dir", str(tmp_path), "--set", "activations.init=lecun,he"],
    )
    assert result.exit_code == 0, result.stderr
    assert "lecun: measured" in result.stdout and "he: predicted" in result.stdout
    assert "xavier: measured" not in result.stdout
    folder = Path(result.stdout.strip().splitlines()[-1])
    summary = json.loads((folder / "summary.json").read_text())
    assert list(summary["gradient_norm_at_depth"]) == ["lecun", "he"]
    # lecun's 1/fan_in is xavier's 2/(fan_in + fan_out) on square layers: the numbers the
    # lab printed before the initialization was named (ReLU 3.0e-5, sigmoid 7.4e-20 there)
    assert summary["gradient_norm_at_depth"]["lecun"]["relu"] < 1e-4


def test_an_unknown_initialization_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(
        app, ["activations", "--runs-dir", str(tmp_path), "--set", "activations.init=hee,xavier"]
    )
    assert result.exit_code == 2
    assert "must be one of he, xavier, lecun, small" in result.stderr
    assert "did you mean 'he'" in result.stderr


def test_tables_show_brackets_literally(tmp_path):
    result = CliRunner().invoke(app, ["activations", "--runs-dir", str(tmp_path)])
    assert "1[x>0] - 1[x<0]" in result.stdout
