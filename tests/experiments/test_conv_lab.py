"""The conv lab's stack: the assignment's shapes from the shipped config (through the
command line), every layer kind's formula and parameter count, a forward pass agreeing with
the formulas, and bad layer specs as one line with exit 2."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.errors import ConfigError
from kernelnet.experiments.conv import forward_shapes, layer_table, parse_layer

# the assignment: 3x128x128 -> 32x64x64 -> 32x32x32 -> 32x64x64
ASSIGNMENT = ["32x64x64", "32x32x32", "32x64x64"]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(app, ["conv", "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.stderr
    return result, Path(result.stdout.strip().splitlines()[-1])


def test_the_shipped_stack_has_the_assignments_shapes(shipped):
    result, folder = shipped
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert [r["input_shape"] for r in rows] == ["3x128x128", *ASSIGNMENT[:-1]]
    assert [r["output_shape"] for r in rows] == ASSIGNMENT
    assert [r["forward_shape"] for r in rows] == ASSIGNMENT  # the layers themselves agree
    assert [r["kind"] for r in rows] == ["conv", "maxpool", "upsample"]
    assert [int(r["parameters"]) for r in rows] == [3 * 3 * 3 * 32 + 32, 0, 0]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["output_shapes"] == ASSIGNMENT and summary["forward_shapes_match"] is True
    assert summary["total_parameters"] == 896


def test_the_printed_table_shows_shapes_parameters_and_formulas(shipped):
    result, _ = shipped
    out = result.stdout
    assert "Layer shapes and parameters (input 3x128x128)" in out
    for text in (
        "floor((128 + 2·1 - 1·(3 - 1) - 1) / 2) + 1 = 64",
        "floor((64 + 2·0 - 2) / 2) + 1 = 32",
        "32·2 = 64",
        "3·3·3·32 + 32 = 896",
        "max pool 2x2, stride 2",
        "upsample x2 (nearest)",
    ):
        assert text in out, text


def test_other_ways_to_the_same_shapes():
    """Pooling instead of a strided convolution, and learned upsampling instead of nearest:
    the same shape chain, different parameter counts."""
    rows = layer_table(
        [3, 128, 128],
        ["conv(32, k=3, p=1)", "maxpool(2)", "avgpool(2)", "convT(32, k=4, s=2, p=1)"],
    )
    assert [r["output_shape"] for r in rows] == [
        "32x128x128",
        "32x64x64",
        "32x32x32",
        "32x64x64",
    ]
    assert rows[3]["weights"] == 4 * 4 * 32 * 32 and rows[3]["biases"] == 32
    assert rows[3]["size_formula"] == "(32 - 1)·2 - 2·1 + 1·(4 - 1) + 0 + 1 = 64"
    odd = layer_table([32, 32, 32], ["convT(32, k=3, s=2, p=1, op=1, bias=false)"])[0]
    assert odd["output_shape"] == "32x64x64" and odd["parameters"] == 3 * 3 * 32 * 32
    assert odd["parameter_formula"] == "3·3·32·32 = 9,216"


def test_overlapping_and_padded_pooling_and_bilinear_upsampling():
    rows = layer_table(
        [4, 9, 7], ["maxpool(3, s=2, p=1)", "avgpool(k=2, s=1)", "upsample(3, mode=bilinear)"]
    )
    assert [r["output_shape"] for r in rows] == ["4x5x4", "4x4x3", "4x12x9"]
    assert rows[0]["size_formula"] == (
        "H: floor((9 + 2·1 - 3) / 2) + 1 = 5; W: floor((7 + 2·1 - 3) / 2) + 1 = 4"
    )
    shapes = forward_shapes(
        [4, 9, 7],
        ["maxpool(3, s=2, p=1)", "avgpool(k=2, s=1)", "upsample(3, mode=bilinear)"],
        np.random.default_rng(0),
    )
    assert shapes == ["4x5x4", "4x4x3", "4x12x9"]


def test_every_layer_kind_runs_forward_with_the_tabled_shape():
    layers = [
        "conv(6, k=3, s=2, p=2, d=2, bias=false)",
        "maxpool(2)",
        "convT(5, k=3, s=2, p=1, op=1)",
        "avgpool(3, s=1, p=1)",
        "upsample(2)",
        "upsample(2, mode=bilinear)",
        "conv(2, k=1)",
    ]
    rows = layer_table([3, 13, 10], layers)
    assert forward_shapes([3, 13, 10], layers, np.random.default_rng(1)) == [
        r["output_shape"] for r in rows
    ]


def test_a_stack_too_large_to_run_still_gets_its_table():
    assert forward_shapes([3, 4096, 4096], ["maxpool(2)"], np.random.default_rng(0)) is None


def test_parse_defaults():
    pool = parse_layer("maxpool(3)")
    assert (pool.kind, pool.k, pool.s, pool.p) == ("maxpool", 3, 3, 0)  # non-overlapping
    assert parse_layer("upsample()").scale == 2 and parse_layer("upsample()").mode == "nearest"
    up = parse_layer("convT(16)")
    assert (up.filters, up.k, up.s, up.p, up.op) == (16, 4, 2, 1, 0)
    with pytest.raises(ConfigError, match="number of filters comes first"):
        parse_layer("convT(k=3)")


def test_a_layer_that_does_not_fit_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "conv",
            "--runs-dir",
            str(tmp_path),
            "--set",
            "conv.input=[3, 4, 4]",
            "--set",
            "conv.layers=['maxpool(2)', 'maxpool(2)', 'maxpool(2)']",
        ],
    )
    assert result.exit_code == 2
    assert "conv.layers[2]: 'maxpool(2)' does not fit a 3x1x1 input" in result.stderr
    assert "Traceback" not in result.stderr and not any(tmp_path.iterdir())


def test_an_unknown_layer_names_the_syntax(tmp_path):
    result = CliRunner().invoke(
        app, ["conv", "--runs-dir", str(tmp_path), "--set", "conv.layers=['pool(2)']"]
    )
    assert result.exit_code == 2 and "conv.layers[0]: 'pool(2)': expected conv(F" in result.stderr
    assert "maxpool(k, s=k, p=0)" in result.stderr
