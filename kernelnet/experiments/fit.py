"""``fit``: what an activation can fit. Regression networks (MSE) on 1-D target functions,
for each activation and a few widths and depths, including a block whose branches are
summed before the output layer. A linear (identity) network can only produce a line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kernelnet import plotting
from kernelnet.config import param
from kernelnet.errors import ConfigError
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
    figure_suffix,
    group_cells,
)
from kernelnet.nn.branches import BranchSumNet
from kernelnet.nn.models import MLP
from kernelnet.nn.optim import Adam
from kernelnet.nn.trainer import Trainer, TrainSettings
from kernelnet.tables import Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TARGETS = {
    "sine": lambda x: np.sin(2 * x),
    "step": lambda x: (x > 0).astype(float),
    "abs": np.abs,
    "cubic": lambda x: 0.2 * x**3 - x,
}


def parse_architecture(text: str) -> tuple[str, int, int]:
    """``"2x32"`` -> ("mlp", depth 2, width 32); ``"branches:3x16"`` -> summed branches of
    depths 1..3, width 16."""
    kind, _, shape = text.rpartition(":")
    try:
        depth, width = (int(v) for v in shape.split("x"))
    except ValueError:
        raise ConfigError(
            f"fit.architecture: {text!r}: expected DEPTHxWIDTH or branches:DEPTHxWIDTH"
        ) from None
    if kind not in ("", "branches") or depth < 1 or width < 1:
        raise ConfigError(
            f"fit.architecture: {text!r}: expected DEPTHxWIDTH or branches:DEPTHxWIDTH"
        )
    return kind or "mlp", depth, width


@dataclass
class FitSection:
    target: str = param(
        default_factory=lambda: list(TARGETS), choices=tuple(TARGETS), label="target"
    )
    activation: str = param(
        default_factory=lambda: ["identity", "relu", "tanh", "sigmoid"],
        choices=("identity", "relu", "leaky_relu", "tanh", "sigmoid"),
        label="activation",
    )
    architecture: str = param(
        default_factory=lambda: ["1x8", "1x64", "3x32", "branches:3x16"], label="net"
    )
    train_points: int = param(200, ge=2)
    noise: float = param(0.05, ge=0)
    steps: int = param(2000, ge=1)
    learning_rate: float = param(0.01, gt=0)


@dataclass
class FitConfig(ExperimentConfig):
    fit: FitSection = field(default_factory=FitSection)


def build(architecture: str, activation: str, rng: np.random.Generator):
    kind, depth, width = parse_architecture(architecture)
    if kind == "branches":
        return BranchSumNet.create(1, width, depth, 1, rng, activation)
    return MLP.create(
        1,
        [width] * depth,
        1,
        rng,
        init="xavier",
        dtype=np.float64,
        activation=activation,
        loss_name="mse",
    )


def run_cell(config: FitConfig, ctx: CellContext) -> CellOutput:
    f = config.fit
    x_train = ctx.rng.uniform(-3, 3, size=(f.train_points, 1))
    y_train = TARGETS[f.target](x_train) + f.noise * ctx.rng.normal(size=x_train.shape)
    x_test = np.linspace(-3, 3, 400)[:, None]
    y_test = TARGETS[f.target](x_test)
    net = build(f.architecture, f.activation, ctx.rng)
    full_batch = TrainSettings(
        epochs=f.steps,
        batch_size=f.train_points,
        keep_best=False,
        checkpoint_every=0,
        log_epochs=False,
        shuffle=False,
    )
    Trainer(
        net,
        Adam(lr=f.learning_rate),
        lambda batch: net.loss(x_train[batch], y_train[batch]),
        f.train_points,
        full_batch,
        ctx.rng,
    ).fit()
    train_mse = float(np.mean((net.scores(x_train) - y_train) ** 2))
    prediction = net.scores(x_test)
    line = np.polyval(np.polyfit(x_train[:, 0], y_train[:, 0], 1), x_train[:, 0])
    row = {
        "target": f.target,
        "activation": f.activation,
        "architecture": f.architecture,
        "train_mse": train_mse,
        "test_mse": float(np.mean((prediction - y_test) ** 2)),
        "best_line_train_mse": float(np.mean((line - y_train[:, 0]) ** 2)),
        "max_second_difference": float(np.abs(np.diff(prediction[:, 0], 2)).max()),
    }
    return CellOutput(
        [row],
        {
            "x": x_test[:, 0],
            "prediction": prediction[:, 0],
            "target": y_test[:, 0],
            "x_train": x_train[:, 0],
            "y_train": y_train[:, 0],
        },
    )


WITHIN = ("target", "activation", "net")  # the axes one figure lays out itself


def report(ctx: ReportContext) -> Report:
    tables, summary = [], {}
    for setting, members in group_cells(ctx.results, WITHIN).items():
        done = [r for r in members if r.ok]
        rows = [
            [
                r.cell.config.fit.target,
                r.cell.config.fit.activation,
                r.cell.config.fit.architecture,
                f"{r.row['train_mse']:.2e}" if r.ok else r.status,
                f"{r.row['test_mse']:.2e}" if r.ok else "",
            ]
            for r in members
        ]
        linear = [r for r in done if r.row["activation"] == "identity"]
        note = ""
        if linear:
            worst_curvature = max(r.row["max_second_difference"] for r in linear)
            beats_line = min(r.row["train_mse"] - r.row["best_line_train_mse"] for r in linear)
            note = (
                f"Linear (identity) networks: largest second difference of the fitted curve "
                f"{worst_curvature:.1e} (a straight line), and none beats the least-squares "
                f"line (smallest train MSE minus the line's: {beats_line:+.1e})."
            )
        tables.append(
            Table(
                "Regression fits: mean squared error" + (f" — {setting}" if setting else ""),
                ["target", "activation", "network", "train MSE", "test MSE"],
                rows,
                note=note,
                align=["left", "left", "left", "right", "right"],
            )
        )
        if done:
            ctx.save_figure(f"fits{figure_suffix(setting)}", fit_grid, done, setting)
        worst = max((r.row["max_second_difference"] for r in linear), default=None)
        if setting:
            summary.setdefault("linear_max_second_difference_by_setting", {})[setting] = worst
        else:
            summary["linear_max_second_difference"] = worst
    return Report(tables, summary)


def preflight(cells) -> None:
    for cell in cells:
        parse_architecture(cell.config.fit.architecture)


def fit_grid(results, setting: str = "") -> Figure:
    """Rows: targets; columns: activations; one line per network, the target dashed."""
    targets = list(dict.fromkeys(r.row["target"] for r in results))
    activations = list(dict.fromkeys(r.row["activation"] for r in results))
    nets = list(dict.fromkeys(r.row["architecture"] for r in results))
    shades = dict(zip(nets, plotting.colormap("viridis")(np.linspace(0.1, 0.85, len(nets)))))
    figure = plotting.figure((3.2 * len(activations), 2.6 * len(targets)))
    grid = figure.subplots(len(targets), len(activations), squeeze=False, sharex=True)
    for r in results:
        axes = grid[targets.index(r.row["target"]), activations.index(r.row["activation"])]
        a = r.artifacts
        if not axes.lines:
            axes.scatter(a["x_train"], a["y_train"], s=4, color="#bbbbbb")
            axes.plot(a["x"], a["target"], "k--", lw=1)
        axes.plot(
            a["x"],
            a["prediction"],
            color=shades[r.row["architecture"]],
            lw=1.5,
            label=r.row["architecture"],
        )
    for i, target in enumerate(targets):
        grid[i, 0].set_ylabel(target)
    for j, activation in enumerate(activations):
        grid[0, j].set_title(activation)
    grid[0, 0].legend(frameon=False, fontsize="x-small")
    figure.suptitle(
        "Fitted curves (target dashed, training points grey)" + (f" — {setting}" if setting else "")
    )
    return figure


EXPERIMENT = Experiment(
    name="fit",
    schema=FitConfig,
    run_cell=run_cell,
    report=report,
    preflight=preflight,
)
