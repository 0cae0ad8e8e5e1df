import csv
import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.experiments.activations import ActivationSection, gradient_through_depth, identities


def test_every_identity_holds_within_its_tolerance():
    checks = identities(ActivationSection(), np.random.default_rng(0))
    assert len(checks) == 13
    for name, error, tolerance in checks:
        assert error <= tolerance, name


def test_sigmoid_gradients_vanish_with_depth_and_identity_ones_do_not():
    norms = gradient_through_depth(ActivationSection(depth=20), np.random.default_rng(0))
    assert norms["sigmoid"][-1] < 1e-10 < norms["identity"][-1]
    assert norms["sigmoid"][-1] < norms["tanh"][-1] < norms["identity"][-1] * 10


def test_activations_experiment(tmp_path):
    result = CliRunner().invoke(app, ["activations", "--runs-dir", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert all(r["holds"] == "True" for r in rows)
    assert rows[0]["identity"] == "sign(x) = 1[x>0] - 1[x<0]"
    assert json.loads((folder / "summary.json").read_text())["all_hold"] is True
    assert (folder / "plots" / "activations.png").is_file()


def test_tables_show_brackets_literally(tmp_path):
    result = CliRunner().invoke(app, ["activations", "--runs-dir", str(tmp_path)])
    assert "1[x>0] - 1[x<0]" in result.stdout
