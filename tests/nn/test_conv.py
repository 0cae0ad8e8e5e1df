import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.errors import ConfigError
from kernelnet.experiments.conv import layer_table, parse_layer
from kernelnet.nn.conv import conv2d_forward, convolve1d, output_size

SIGNAL = np.array([1, 1, 4, 4, 4, 1, 1], dtype=float)
KERNEL = np.array([0.25, 0.25, 0.25])


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("valid", [3 / 2, 9 / 4, 3, 9 / 4, 3 / 2]),
        ("full", [1 / 4, 1 / 2, 3 / 2, 9 / 4, 3, 9 / 4, 3 / 2, 1 / 2, 1 / 4]),
        ("same", [1 / 2, 3 / 2, 9 / 4, 3, 9 / 4, 3 / 2, 1 / 2]),
    ],
)
def test_the_exact_one_dimensional_answers(mode, expected):
    np.testing.assert_allclose(convolve1d(SIGNAL, KERNEL, mode), expected, rtol=0, atol=1e-15)


def test_modes_match_numpy_convolve_for_every_length():
    rng = np.random.default_rng(0)
    for n in range(1, 9):
        for k in range(1, n + 1):
            signal, kernel = rng.normal(size=n), rng.normal(size=k)
            for mode in ("valid", "same", "full"):
                np.testing.assert_allclose(
                    convolve1d(signal, kernel, mode), np.convolve(signal, kernel, mode), atol=1e-12
                )


def loop_conv2d(x, w, b, s, p, d):
    """Reference: the definition, one output element at a time."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    OH, OW = output_size(H, KH, s, p, d), output_size(W, KW, s, p, d)
    out = np.zeros((N, F, OH, OW))
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    total = b[f]
                    for c in range(C):
                        for u in range(KH):
                            for v in range(KW):
                                total += xp[n, c, i * s + u * d, j * s + v * d] * w[f, c, u, v]
                    out[n, f, i, j] = total
    return out


@pytest.mark.parametrize("s, p, d", [(1, 0, 1), (2, 1, 1), (1, 2, 2), (3, 1, 2)])
def test_forward_matches_the_loop_definition(s, p, d):
    rng = np.random.default_rng(s + 10 * p + 100 * d)
    x, w, b = rng.normal(size=(2, 3, 9, 8)), rng.normal(size=(4, 3, 3, 2)), rng.normal(size=4)
    out, _ = conv2d_forward(x, w, b, stride=s, padding=p, dilation=d)
    np.testing.assert_allclose(out, loop_conv2d(x, w, b, s, p, d), rtol=1e-12, atol=1e-12)


def test_output_size_rule():
    assert output_size(128, 3, 1, 1) == 128
    assert output_size(128, 3, 2, 1) == 64
    assert output_size(64, 3, 1, 2, 2) == 64
    assert output_size(7, 3) == 5


def test_three_by_three_from_32_to_64_channels_has_18432_weights():
    rows = layer_table([32, 16, 16], ["conv(64, k=3, p=1, bias=false)"])
    assert rows[0]["weights"] == 3 * 3 * 32 * 64 == 18432 and rows[0]["parameters"] == 18432
    assert rows[0]["output_shape"] == "64x16x16"


@pytest.mark.parametrize(
    "text",
    [
        "conv(64, q=3)",
        "pool(2)",
        "conv(64, k=0)",
        "conv(64, bias=yes)",
        "conv(k=3)",
        "maxpool(2, 3)",
        "maxpool(3, p=2)",
        "avgpool(k=2, d=2)",
        "upsample(2, mode=cubic)",
        "upsample(0)",
        "convT(8, s=2, op=2)",
        "conv 3x3",
    ],
)
def test_bad_layer_specs(text):
    with pytest.raises(ConfigError):
        parse_layer(text)


def test_a_kernel_that_no_longer_fits_is_a_config_error():
    with pytest.raises(ConfigError, match="does not fit"):
        layer_table([3, 4, 4], ["conv(8, k=3)", "conv(8, k=3)", "conv(8, k=3)"])


def test_conv_experiment(tmp_path):
    result = CliRunner().invoke(app, ["conv", "--runs-dir", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert [r["output_shape"] for r in rows] == ["32x64x64", "32x32x32", "32x64x64"]
    assert rows[0]["weights"] == str(3 * 3 * 3 * 32) and rows[0]["biases"] == "32"
    assert (folder / "plots" / "convolution_modes.png").is_file()
