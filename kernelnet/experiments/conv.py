"""``conv``: convolution modes on a 1-D example, and a layer-by-layer shape and parameter
table for a configured stack of 2-D layers: convolutions (strided, padded, dilated),
transposed convolutions, max and average pooling, nearest and bilinear upsampling.

Each row gives the formula with the layer's numbers, and a forward pass of a random input
through kernelnet's own layers checks every shape the formulas give. The shipped stack is
the convolution assignment's 3x128x128 -> 32x64x64 -> 32x32x32 -> 32x64x64: a stride-2
convolution halves the maps, a 2x2 max pooling halves them again, and upsampling by 2
restores 64x64."""

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
from kernelnet.nn import pooling
from kernelnet.nn.conv import MODES, conv2d_forward, convolve1d, output_size
from kernelnet.nn.pooling import UPSAMPLE_MODES, conv_transpose_output_size, pool_output_size
from kernelnet.tables import Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LAYER = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$")
KINDS = ("conv", "convT", "maxpool", "avgpool", "upsample")
SYNTAX = (
    "expected conv(F, k=3, s=1, p=0, d=1, bias=true), convT(F, k=4, s=2, p=1, op=0, d=1, "
    "bias=true), maxpool(k, s=k, p=0), avgpool(k, s=k, p=0) or upsample(scale, mode=nearest)"
)
# per kind: the positional argument's name, and every option with its default
# (None: the stride of a pooling layer defaults to its window, non-overlapping)
OPTIONS: dict[str, tuple[str, dict[str, object]]] = {
    "conv": ("filters", {"k": 3, "s": 1, "p": 0, "d": 1, "bias": True}),
    "convT": ("filters", {"k": 4, "s": 2, "p": 1, "op": 0, "d": 1, "bias": True}),
    "maxpool": ("k", {"k": 2, "s": None, "p": 0}),
    "avgpool": ("k", {"k": 2, "s": None, "p": 0}),
    "upsample": ("scale", {"scale": 2, "mode": "nearest"}),
}
POOL_NAMES = {"maxpool": "max pool", "avgpool": "average pool"}


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the stack: its kind and settings (``filters`` for the convolutions)."""

    kind: str
    filters: int = 0
    k: int = 3
    s: int = 1
    p: int = 0
    d: int = 1
    op: int = 0
    bias: bool = True
    scale: int = 2
    mode: str = "nearest"

    @property
    def has_parameters(self) -> bool:
        return self.kind in ("conv", "convT")

    def __str__(self) -> str:
        if self.kind == "conv":
            return (
                f"conv {self.k}x{self.k}, {self.filters} filters, stride {self.s}, "
                f"padding {self.p}"
                + (f", dilation {self.d}" if self.d != 1 else "")
                + ("" if self.bias else ", no bias")
            )
        if self.kind == "convT":
            return (
                f"transposed conv {self.k}x{self.k}, {self.filters} filters, stride {self.s}, "
                f"padding {self.p}"
                + (f", output padding {self.op}" if self.op else "")
                + (f", dilation {self.d}" if self.d != 1 else "")
                + ("" if self.bias else ", no bias")
            )
        if self.kind in POOL_NAMES:
            return f"{POOL_NAMES[self.kind]} {self.k}x{self.k}, stride {self.s}" + (
                f", padding {self.p}" if self.p else ""
            )
        return f"upsample x{self.scale} ({self.mode})"


def _value(text: str, key: str, value: str):
    if key == "bias":
        if value not in ("true", "false"):
            raise ConfigError(f"conv.layers: {text!r}: bias must be true or false")
        return value == "true"
    if key == "mode":
        if value not in UPSAMPLE_MODES:
            raise ConfigError(
                f"conv.layers: {text!r}: mode must be one of {', '.join(UPSAMPLE_MODES)}"
            )
        return value
    if not value.isdigit() or (int(value) < 1 and key not in ("p", "op")):
        raise ConfigError(f"conv.layers: {text!r}: {key} must be a positive integer")
    return int(value)


def parse_layer(text: str) -> LayerSpec:
    """``"conv(64, k=3, s=2, p=1, d=1, bias=false)"``, ``"maxpool(2)"``,
    ``"upsample(2, mode=bilinear)"``, ``"convT(32, k=4, s=2, p=1)"`` -> LayerSpec."""
    match = LAYER.match(text)
    if match is None or match.group(1) not in KINDS:
        raise ConfigError(f"conv.layers: {text!r}: {SYNTAX}")
    kind = match.group(1)
    positional, options = OPTIONS[kind]
    values: dict[str, object] = dict(options)
    items = [part.strip() for part in match.group(2).split(",")]
    items = [] if items == [""] else items
    if kind in ("conv", "convT") and (not items or "=" in items[0]):
        raise ConfigError(f"conv.layers: {text!r}: the number of filters comes first")
    for position, item in enumerate(items):
        key, equals, value = (part.strip() for part in item.partition("="))
        if not equals:
            if position:
                raise ConfigError(f"conv.layers: {text!r}: only the first value may be unnamed")
            key, value = positional, key
        elif key not in options:
            raise ConfigError(
                f"conv.layers: {text!r}: unknown option {key!r} (valid: {', '.join(options)})"
            )
        values[key] = _value(text, key, value)
    if kind in POOL_NAMES and values["s"] is None:
        values["s"] = values["k"]
    spec = LayerSpec(kind, **values)
    if kind in POOL_NAMES and 2 * spec.p > spec.k:
        raise ConfigError(f"conv.layers: {text!r}: padding {spec.p} is over half the window")
    if kind == "convT" and spec.op >= max(spec.s, spec.d):
        raise ConfigError(f"conv.layers: {text!r}: op must be below the stride or dilation")
    return spec


def _size(spec: LayerSpec, size: int) -> tuple[int, str]:
    """The output size along one axis and the formula that gives it, with the numbers."""
    k, s, p, d = spec.k, spec.s, spec.p, spec.d
    if spec.kind == "conv":
        out = output_size(size, k, s, p, d)
        return out, f"floor(({size} + 2·{p} - {d}·({k} - 1) - 1) / {s}) + 1 = {out}"
    if spec.kind in POOL_NAMES:
        out = pool_output_size(size, k, s, p)
        return out, f"floor(({size} + 2·{p} - {k}) / {s}) + 1 = {out}"
    if spec.kind == "convT":
        out = conv_transpose_output_size(size, k, s, p, d, spec.op)
        return out, f"({size} - 1)·{s} - 2·{p} + {d}·({k} - 1) + {spec.op} + 1 = {out}"
    out = size * spec.scale
    return out, f"{size}·{spec.scale} = {out}"


def layer_table(input_shape: list[int], layers: list[str]) -> list[dict]:
    """Shape and parameter count after each layer, with the formulas that give them; raises
    ConfigError if a layer stops fitting."""
    channels, height, width = input_shape
    rows = []
    for index, text in enumerate(layers, start=1):
        try:
            spec = parse_layer(text)
        except ConfigError as exc:  # say which layer of the list
            raise ConfigError(
                str(exc).replace("conv.layers:", f"conv.layers[{index - 1}]:", 1)
            ) from None
        (out_h, rule_h), (out_w, rule_w) = _size(spec, height), _size(spec, width)
        if out_h < 1 or out_w < 1:
            raise ConfigError(
                f"conv.layers[{index - 1}]: {text!r} does not fit a "
                f"{channels}x{height}x{width} input"
            )
        out_channels = spec.filters if spec.has_parameters else channels
        weights = spec.k * spec.k * channels * spec.filters if spec.has_parameters else 0
        biases = spec.filters if spec.has_parameters and spec.bias else 0
        if spec.has_parameters:
            count = f"{spec.k}·{spec.k}·{channels}·{spec.filters}"
            count += f" + {biases}" if biases else ""
            count += f" = {weights + biases:,}"
        else:
            count = "0 (no weights)"
        rows.append(
            {
                "layer": index,
                "kind": spec.kind,
                "spec": str(spec),
                "input_shape": f"{channels}x{height}x{width}",
                "output_shape": f"{out_channels}x{out_h}x{out_w}",
                "weights": weights,
                "biases": biases,
                "parameters": weights + biases,
                "size_formula": rule_h if rule_h == rule_w else f"H: {rule_h}; W: {rule_w}",
                "parameter_formula": count,
            }
        )
        channels, height, width = out_channels, out_h, out_w
    return rows


# A forward pass through the stack is run only while its largest map stays this small
# (float64 numbers), so that a user's large stack still gets its table at once.
FORWARD_LIMIT = 4_000_000


def forward_shapes(
    input_shape: list[int], layers: list[str], rng: np.random.Generator
) -> list[str] | None:
    """The shape after each layer of an actual forward pass of one random input through
    kernelnet's layers (random weights): an independent check of the table's formulas.
    None when a map would exceed FORWARD_LIMIT numbers."""
    rows = layer_table(input_shape, layers)
    largest = max(
        [int(np.prod(input_shape))]
        + [int(np.prod([int(v) for v in r["output_shape"].split("x")])) for r in rows]
    )
    if largest > FORWARD_LIMIT:
        return None
    x = rng.normal(size=(1, *input_shape))
    shapes = []
    for text in layers:
        spec = parse_layer(text)
        channels = x.shape[1]
        if spec.kind == "conv":
            w = rng.normal(size=(spec.filters, channels, spec.k, spec.k))
            b = rng.normal(size=spec.filters) if spec.bias else None
            x, _ = conv2d_forward(x, w, b, stride=spec.s, padding=spec.p, dilation=spec.d)
        elif spec.kind == "convT":
            w = rng.normal(size=(channels, spec.filters, spec.k, spec.k))
            b = rng.normal(size=spec.filters) if spec.bias else None
            x, _ = pooling.conv_transpose2d_forward(x, w, b, spec.s, spec.p, spec.op, spec.d)
        elif spec.kind == "maxpool":
            x, _ = pooling.maxpool2d_forward(x, spec.k, spec.s, spec.p)
        elif spec.kind == "avgpool":
            x, _ = pooling.avgpool2d_forward(x, spec.k, spec.s, spec.p)
        elif spec.mode == "nearest":
            x, _ = pooling.upsample_nearest_forward(x, spec.scale)
        else:
            x, _ = pooling.upsample_bilinear_forward(x, spec.scale)
        shapes.append("x".join(str(v) for v in x.shape[1:]))
    return shapes


@dataclass
class ConvSection:
    input: list[int] = param(
        default_factory=lambda: [3, 128, 128], ge=1, help="channels, height, width"
    )
    layers: list[str] = param(
        default_factory=lambda: ["conv(32, k=3, s=2, p=1)", "maxpool(2)", "upsample(2)"],
        help="the stack, first layer first: conv(F, k, s, p, d, bias), convT(F, k, s, p, op, "
        "d, bias), maxpool(k, s, p), avgpool(k, s, p), upsample(scale, mode=nearest|bilinear)",
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
    rows = layer_table(c.input, c.layers)
    ran = forward_shapes(c.input, c.layers, ctx.rng)
    for row, shape in zip(rows, ran or [None] * len(rows)):
        row["forward_shape"] = shape or ""
    return CellOutput(
        rows,
        {
            "modes": modes,
            "oracle": oracle,
            "signal": signal,
            "kernel": kernel,
            "forward_ran": ran is not None,
        },
    )


def report(ctx: ReportContext) -> Report:
    if not ctx.completed:
        return Report([])
    result = ctx.completed[0]
    a = result.artifacts
    total = sum(r["parameters"] for r in result.rows)
    input_shape = result.rows[0]["input_shape"] if result.rows else ""
    forward_match = bool(a["forward_ran"]) and all(
        r["forward_shape"] == r["output_shape"] for r in result.rows
    )
    if not a["forward_ran"]:
        checked = "No forward pass was run (a map would exceed "
        checked += f"{FORWARD_LIMIT:,} numbers); the shapes come from the formulas alone."
    elif forward_match:
        checked = (
            f"A forward pass of a random {input_shape} input through kernelnet's layers "
            "gives every one of these shapes."
        )
    else:
        mismatched = [
            f"layer {r['layer']}: {r['forward_shape']}"
            for r in result.rows
            if r["forward_shape"] != r["output_shape"]
        ]
        checked = "A forward pass DISAGREES with the formulas: " + "; ".join(mismatched) + "."
    stack = Table(
        f"Layer shapes and parameters (input {input_shape})",
        ["#", "layer", "output", "parameters", "output size per axis", "parameter count"],
        [
            [
                str(r["layer"]),
                r["spec"],
                r["output_shape"],
                f"{r['parameters']:,}",
                r["size_formula"],
                r["parameter_formula"],
            ]
            for r in result.rows
        ],
        note=f"Total {total:,} parameters. {checked} Output size: convolution "
        "floor((in + 2p - d(k - 1) - 1) / s) + 1, pooling floor((in + 2p - k) / s) + 1, "
        "transposed convolution (in - 1)s - 2p + d(k - 1) + op + 1, upsampling in·scale; "
        "parameters k·k·C_in·C_out + C_out (bias), none for pooling and upsampling.",
        align=["right", "left", "right", "right", "left", "left"],
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
        "output_shapes": [r["output_shape"] for r in result.rows],
        "forward_shapes_match": forward_match if a["forward_ran"] else None,
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
