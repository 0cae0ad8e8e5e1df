import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.errors import ConfigError
from kernelnet.experiments.fit import parse_architecture


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(
        app,
        [
            "fit",
            "--runs-dir",
            str(runs),
            "--quiet",
            "--set",
            "fit.target=sine,abs",
            "--set",
            "fit.activation=identity,tanh",
            "--set",
            "fit.architecture=[3x16, 'branches:2x16']",
            "--set",
            "fit.steps=600",
        ],
    )
    assert result.exit_code == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert (folder / "plots" / "fits.png").is_file()
    return list(csv.DictReader(open(folder / "metrics.csv")))


def test_a_linear_network_can_only_fit_a_line(rows):
    for row in (r for r in rows if r["activation"] == "identity"):
        assert float(row["max_second_difference"]) < 1e-10
        assert float(row["train_mse"]) >= float(row["best_line_train_mse"]) - 1e-12


def test_a_nonlinear_network_beats_the_best_line(rows):
    for row in (r for r in rows if r["activation"] == "tanh"):
        assert float(row["train_mse"]) < 0.5 * float(row["best_line_train_mse"])


def test_architecture_syntax():
    assert parse_architecture("3x32") == ("mlp", 3, 32)
    assert parse_architecture("branches:2x8") == ("branches", 2, 8)
    for bad in ("3", "x32", "res:2x8", "0x4"):
        with pytest.raises(ConfigError):
            parse_architecture(bad)
