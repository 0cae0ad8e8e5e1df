"""``conv``: convolution modes on a 1-D example, and a layer-by-layer shape and parameter
table for a configured stack of 2-D convolutions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kernelnet import plotting
from kernelnet.config import Cell, param
from kernelnet.errors import ConfigError
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
)
from kernelnet.nn.conv import MODES, convolve1d, output_size
from kernelnet.tables import Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LAYER = re.compile(r"^\s*conv\(\s*(\d+)\s*((?:,\s*\w+\s*=\s*\w+\s*)*)\)\s*$")
KEYS = {"k": 3, "s": 1, "p": 0, "d": 1, "bias": 1}


@dataclass(frozen=True)
class LayerSpec:
    out_channels: int
    k: int
    s: int
    p: int
    d: int
    bias: bool

    def __str__(self) -> str:
        return (
            f"conv {self.k}x{self.k}, {self.out_channels} filters, stride {self.s}, "
            f"padding {self.p}, dilation {self.d}" + ("" if self.bias else ", no bias")
        )


def parse_layer(text: str) -> LayerSpec:
    """``"conv(64, k=3, s=2, p=1, d=1, bias=false)"`` -> LayerSpec."""
    match = LAYER.match(text)
    if match is None:
        raise ConfigError(f"conv.layers: {text!r}: expected conv(F, k=3, s=1, p=0, d=1, bias=true)")
    values = dict(KEYS)
    for item in filter(None, (part.strip() for part in match.group(2).split(","))):
        key, value = (part.strip() for part in item.split("="))
        if key not in KEYS:
            raise ConfigError(
                f"conv.layers: {text!r}: unknown option {key!r} (valid: {', '.join(KEYS)})"
            )
        if key == "bias":
            if value not in ("true", "false"):
                raise ConfigError(f"conv.layers: {text!r}: bias must be true or false")
            values[key] = value == "true"
        else:
            if not value.isdigit() or (int(value) < 1 and key != "p"):
                raise ConfigError(f"conv.layers: {text!r}: {key} must be a positive integer")
            values[key] = int(value)
    return LayerSpec(
        int(match.group(1)),
        values["k"],
        values["s"],
        values["p"],
        values["d"],
        bool(values["bias"]),
    )


def layer_table(input_shape: list[int], layers: list[str]) -> list[dict]:
    """Shape and parameter count after each layer; raises ConfigError if a kernel stops fitting."""
    channels, height, width = input_shape
    rows = []
    for index, text in enumerate(layers, start=1):
        spec = parse_layer(text)
        out_h = output_size(height, spec.k, spec.s, spec.p, spec.d)
        out_w = output_size(width, spec.k, spec.s, spec.p, spec.d)
        if out_h < 1 or out_w < 1:
            raise ConfigError(
                f"conv.layers[{index - 1}]: {text!r} does not fit a "
                f"{channels}x{height}x{width} input"
            )
        weights = spec.k * spec.k * channels * spec.out_channels
        biases = spec.out_channels if spec.bias else 0
        rows.append(
            {
                "layer": index,
                "spec": str(spec),
                "input_shape": f"{channels}x{height}x{width}",
                "output_shape": f"{spec.out_channels}x{out_h}x{out_w}",
                "weights": weights,
                "biases": biases,
                "parameters": weights + biases,
            }
        )
        channels, height, width = spec.out_channels, out_h, out_w
    return rows


@dataclass
class ConvSection:
    input: list[int] = param(
        default_factory=lambda: [3, 128, 128], ge=1, help="channels, height, width"
    )
    layers: list[str] = param(
        default_factory=lambda: [
            "conv(32, k=3, s=1, p=1)",
            "conv(64, k=3, s=1, p=1, bias=false)",
            "conv(64, k=3, s=2, p=1)",
            "conv(128, k=3, s=1, p=2, d=2)",
            "conv(128, k=1)",
            "conv(256, k=5, s=2, p=0)",
        ]
    )
    signal: list[float] = param(default_factory=lambda: [1.0, 1.0, 4.0, 4.0, 4.0, 1.0, 1.0])
    kernel: list[float] = param(default_factory=lambda: [0.25, 0.25, 0.25])


@dataclass
class ConvConfig(ExperimentConfig):
    conv: ConvSection = field(default_factory=ConvSection)


def run_cell(config: ConvConfig, ctx: CellContext) -> CellOutput:
    c = config.conv
    signal, kernel = np.array(c.signal), np.array(c.kernel)
    modes = {mode: convolve1d(signal, kernel, mode) for mode in MODES}
    oracle = {mode: np.convolve(signal, kernel, mode) for mode in MODES}
    return CellOutput(
        layer_table(c.input, c.layers),
        {"modes": modes, "oracle": oracle, "signal": signal, "kernel": kernel},
    )


def report(ctx: ReportContext) -> Report:
    if not ctx.completed:
        return Report([])
    result = ctx.completed[0]
    a = result.artifacts
    total = sum(r["parameters"] for r in result.rows)
    stack = Table(
        "Layer shapes and parameters",
        ["#", "layer", "input", "output", "weights", "biases", "parameters"],
        [
            [
                str(r["layer"]),
                r["spec"],
                r["input_shape"],
                r["output_shape"],
                f"{r['weights']:,}",
                f"{r['biases']:,}",
                f"{r['parameters']:,}",
            ]
            for r in result.rows
        ],
        note=f"Total {total:,} parameters. Output size per axis: "
        "floor((in + 2p - d(k - 1) - 1) / s) + 1; weights = k·k·C_in·C_out.",
        align=["right", "left", "right", "right", "right", "right", "right"],
    )
    modes = Table(
        f"1-D convolution modes: signal {a['signal'].tolist()} * kernel {a['kernel'].tolist()}",
        ["mode", "kernelnet", "numpy.convolve", "match"],
        [
            [
                mode,
                np.array2string(a["modes"][mode], precision=4, separator=", "),
                np.array2string(a["oracle"][mode], precision=4, separator=", "),
                "yes"
                if np.allclose(a["modes"][mode], a["oracle"][mode], rtol=0, atol=1e-12)
                else "NO",
            ]
            for mode in MODES
        ],
        align=["left", "left", "left", "left"],
    )
    ctx.save_figure(
        "convolution_modes",
        convolution_modes,
        a["signal"],
        a["kernel"],
        a["modes"],
    )
    summary = {
        "total_parameters": total,
        "modes": {m: v.tolist() for m, v in a["modes"].items()},
        "modes_match_numpy": all(
            np.allclose(a["modes"][m], a["oracle"][m], atol=1e-12) for m in MODES
        ),
    }
    return Report([stack, modes], summary)


def preflight(cells: list[Cell]) -> None:
    for cell in cells:
        c = cell.config.conv
        if len(c.input) != 3:
            raise ConfigError(f"conv.input: expected [channels, height, width] (got {c.input})")
        layer_table(c.input, c.layers)
        if not c.kernel or len(c.kernel) > len(c.signal):
            raise ConfigError("conv.kernel: must be non-empty and no longer than conv.signal")


def convolution_modes(
    signal: np.ndarray, kernel: np.ndarray, modes: dict[str, np.ndarray]
) -> Figure:
    """One panel per mode: the signal (grey steps) and that mode's output at the positions
    it covers; the three outputs agree where they overlap and differ in extent."""
    k = len(kernel)
    # index i of each mode is full[i + offset]; full[i] is centred at position i - (k - 1) / 2
    offsets = {"valid": k - 1, "same": (k - 1) // 2, "full": 0}
    colours = {"valid": "#e6550d", "same": "#31a354", "full": "#3182bd"}
    figure = plotting.figure((8, 6))
    panels = figure.subplots(len(modes), 1, sharex=True, squeeze=False)[:, 0]
    for axes, (mode, values) in zip(panels, modes.items()):
        positions = np.arange(len(values)) + offsets[mode] - (k - 1) / 2
        axes.step(
            np.arange(len(signal)), signal, where="mid", color="#bbbbbb", lw=2, label="signal"
        )
        axes.plot(
            positions, values, "o-", color=colours[mode], label=f"{mode}: {len(values)} values"
        )
        axes.axvspan(positions[0] - 0.5, positions[-1] + 0.5, color=colours[mode], alpha=0.08)
        axes.legend(frameon=False, loc="upper right", fontsize="small")
        plotting.tidy(axes)
    panels[-1].set_xlabel("position")
    figure.suptitle(f"Convolution modes with kernel {np.round(kernel, 3).tolist()}")
    return figure


EXPERIMENT = Experiment(
    name="conv",
    schema=ConvConfig,
    run_cell=run_cell,
    report=report,
    row_key=("layer",),
    single_cell=True,  # a lab of fixed checks: run it once per setting
    preflight=preflight,
)
