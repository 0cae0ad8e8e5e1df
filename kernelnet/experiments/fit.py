"""``fit``: what an activation can fit. Regression networks (MSE) on 1-D target functions,
for each activation and a few widths and depths, including a block whose branches are
summed before the output layer and the fitting assignment's skip network
(y = (a1 + a2 + a3) W4 + b4, see :mod:`kernelnet.nn.branches`). A linear (identity)
network can only produce a line.

Early stopping: every step (full batch, so a step is an epoch) is followed by the MSE on
``val_points`` held-out noisy points; with ``patience`` P > 0 training stops once P steps
in a row have not lowered it, and the weights of the best step are restored (the trainer's
keep-best). The training-curve figure marks, per network, the best step and where training
stopped; the table says why it stopped."""

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
from kernelnet.nn.branches import BranchSumNet, SkipSumNet
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


# network kinds: "" (a plain MLP), summed branches, and the skip network in its two readings
KINDS = ("", "branches", "skip", "skip-chain")
ARCHITECTURE_SYNTAX = "expected DEPTHxWIDTH, branches:, skip: or skip-chain:DEPTHxWIDTH"


def parse_architecture(text: str) -> tuple[str, int, int]:
    """``"2x32"`` -> ("mlp", depth 2, width 32); ``"branches:3x16"`` -> summed branches of
    depths 1..3, width 16; ``"skip:3x16"`` -> the skip network a1 + a2 + a3 as the
    assignment writes it (a_k reads s^(k-1)(x)); ``"skip-chain:3x16"`` -> the same sum with
    a_(k+1) reading s(a_k)."""
    kind, _, shape = text.rpartition(":")
    try:
        depth, width = (int(v) for v in shape.split("x"))
    except ValueError:
        raise ConfigError(f"fit.architecture: {text!r}: {ARCHITECTURE_SYNTAX}") from None
    if kind not in KINDS or depth < 1 or width < 1:
        raise ConfigError(f"fit.architecture: {text!r}: {ARCHITECTURE_SYNTAX}")
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
    val_points: int = param(100, ge=1, help="held-out noisy points whose MSE is monitored")
    patience: int = param(
        0,
        ge=0,
        help="stop after N steps without a lower validation MSE and keep the best step's "
        "weights; 0 = run every step",
    )


@dataclass
class FitConfig(ExperimentConfig):
    fit: FitSection = field(default_factory=FitSection)


def build(architecture: str, activation: str, rng: np.random.Generator):
    kind, depth, width = parse_architecture(architecture)
    if kind == "branches":
        return BranchSumNet.create(1, width, depth, 1, rng, activation)
    if kind in ("skip", "skip-chain"):
        wiring = "input" if kind == "skip" else "chain"
        return SkipSumNet.create(1, width, depth, 1, rng, activation, wiring)
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
    # drawn after the network, so the training data and initial weights do not depend on it
    x_val = ctx.rng.uniform(-3, 3, size=(f.val_points, 1))
    y_val = TARGETS[f.target](x_val) + f.noise * ctx.rng.normal(size=x_val.shape)

    def evaluate() -> dict[str, float]:
        val_mse = float(np.mean((net.scores(x_val) - y_val) ** 2))
        return {"val_mse": val_mse, "minus_val_mse": -val_mse}  # the trainer maximizes

    full_batch = TrainSettings(
        epochs=f.steps,
        batch_size=f.train_points,
        patience=f.patience,
        keep_best=f.patience > 0,
        checkpoint_every=0,
        log_epochs=False,
        shuffle=False,
    )
    history = Trainer(
        net,
        Adam(lr=f.learning_rate),
        lambda batch: net.loss(x_train[batch], y_train[batch]),
        f.train_points,
        full_batch,
        ctx.rng,
        evaluate,
        "minus_val_mse",
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
        "val_mse": float(np.mean((net.scores(x_val) - y_val) ** 2)),
        "best_line_train_mse": float(np.mean((line - y_train[:, 0]) ** 2)),
        "max_second_difference": float(np.abs(np.diff(prediction[:, 0], 2)).max()),
        "steps_run": len(history.rows),
        "best_step": history.best_epoch,
        "stopped_early": history.stopped_early,
    }
    return CellOutput(
        [row],
        {
            "x": x_test[:, 0],
            "prediction": prediction[:, 0],
            "target": y_test[:, 0],
            "x_train": x_train[:, 0],
            "y_train": y_train[:, 0],
            # training loss: the MSE each step starts from; validation: after the step
            "train_curve": np.array([r["loss"] for r in history.rows]),
            "val_curve": np.array([r["val_mse"] for r in history.rows]),
        },
    )


def fitting_noise(row: dict, train_curve) -> bool:
    """Past its best step, did the network still lower its training loss (by over 1%)?
    Then the held-out MSE stopped improving because it was fitting the training noise;
    otherwise training had converged (to the noise floor) or stalled on a plateau."""
    return bool(train_curve[-1] < 0.99 * train_curve[row["best_step"] - 1])


def early_stopping_table(stopped, patience: int, setting: str) -> Table:
    rows = []
    for r in stopped:
        a, best = r.artifacts, r.row["best_step"]
        rows.append(
            [
                r.row["target"],
                r.row["activation"],
                r.row["architecture"],
                str(best),
                str(r.row["steps_run"]),
                f"{a['val_curve'][best - 1]:.2e} -> {a['val_curve'][-1]:.2e}",
                f"{a['train_curve'][best - 1]:.2e} -> {a['train_curve'][-1]:.2e}",
                "training loss still falling"
                if fitting_noise(r.row, a["train_curve"])
                else "training loss not falling",
            ]
        )
    noise = sum(fitting_noise(r.row, r.artifacts["train_curve"]) for r in stopped)
    return Table(
        f"Early stopping (patience {patience})" + (f" — {setting}" if setting else ""),
        [
            "target",
            "activation",
            "network",
            "best step",
            "stopped at",
            "held-out MSE",
            "training loss",
            "why",
        ],
        rows,
        note=f"Each network stopped {patience} steps after its best held-out MSE, whose weights "
        "it keeps; the MSE columns go from that best step to the step it stopped at. Why the "
        f"held-out MSE stopped improving: for {noise} the training loss still fell by over 1% "
        "after the best step, so the network went on fitting the particulars of its training "
        "points (their noise; for a straight line, how the training sample differs from the "
        f"held-out one); for {len(stopped) - noise} it did not, so training had converged (the "
        "noise variance, dotted in the figure, is the floor) or stalled on a plateau.",
        align=["left", "left", "left", "right", "right", "right", "right", "left"],
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
                str(r.row["best_step"]) if r.ok else "",
                str(r.row["steps_run"]) if r.ok else "",
            ]
            for r in members
        ]
        linear = [r for r in done if r.row["activation"] == "identity"]
        notes = []
        if linear:
            worst_curvature = max(r.row["max_second_difference"] for r in linear)
            beats_line = min(r.row["train_mse"] - r.row["best_line_train_mse"] for r in linear)
            notes.append(
                f"Linear (identity) networks: largest second difference of the fitted curve "
                f"{worst_curvature:.1e} (a straight line), and none beats the least-squares "
                f"line (smallest train MSE minus the line's: {beats_line:+.1e})."
            )
        stopping_table = None
        if done:
            f = done[0].cell.config.fit
            stopped = [r for r in done if r.row["stopped_early"]]
            if f.patience:
                notes.append(
                    f"Early stopping: after every step the MSE on {f.val_points} held-out "
                    f"noisy points is measured; once {f.patience} steps in a row have not "
                    "lowered it, training stops and the weights of the best step are restored "
                    f"(the results above). {len(stopped)} of {len(done)} networks stopped "
                    "early (see the next table and the figure training_curves: a dot at each "
                    "network's best step, a cross where it stopped)."
                )
                stopping_table = early_stopping_table(stopped, f.patience, setting)
            else:
                notes.append("Patience 0: every network trains for every step.")
        tables.append(
            Table(
                "Regression fits: mean squared error" + (f" — {setting}" if setting else ""),
                [
                    "target",
                    "activation",
                    "network",
                    "train MSE",
                    "test MSE",
                    "best step",
                    "steps run",
                ],
                rows,
                note=" ".join(notes),
                align=["left", "left", "left", "right", "right", "right", "right"],
            )
        )
        if stopping_table is not None:
            tables.append(stopping_table)
        if done:
            ctx.save_figure(f"fits{figure_suffix(setting)}", fit_grid, done, setting)
            ctx.save_figure(
                f"training_curves{figure_suffix(setting)}", training_curves, done, setting
            )
        worst = max((r.row["max_second_difference"] for r in linear), default=None)
        stopping = {
            "stopped_early": sum(r.row["stopped_early"] for r in done),
            "steps_run": int(sum(r.row["steps_run"] for r in done)),
        }
        if setting:
            summary.setdefault("linear_max_second_difference_by_setting", {})[setting] = worst
            summary.setdefault("early_stopping_by_setting", {})[setting] = stopping
        else:
            summary["linear_max_second_difference"] = worst
            summary["early_stopping"] = stopping
    return Report(tables, summary)


def preflight(cells) -> None:
    for cell in cells:
        parse_architecture(cell.config.fit.architecture)


def _panels(results):
    """A figure of panels, one row per target and one column per activation, and a colour
    per network: what both fit figures are drawn on."""
    targets = list(dict.fromkeys(r.row["target"] for r in results))
    activations = list(dict.fromkeys(r.row["activation"] for r in results))
    nets = list(dict.fromkeys(r.row["architecture"] for r in results))
    shades = dict(zip(nets, plotting.colormap("viridis")(np.linspace(0.1, 0.85, len(nets)))))
    figure = plotting.figure((3.2 * len(activations), 2.6 * len(targets)))
    grid = figure.subplots(len(targets), len(activations), squeeze=False, sharex=True)
    return figure, grid, targets, activations, shades


def fit_grid(results, setting: str = "") -> Figure:
    """Rows: targets; columns: activations; one line per network, the target dashed."""
    figure, grid, targets, activations, shades = _panels(results)
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


def training_curves(results, setting: str = "") -> Figure:
    """Rows: targets; columns: activations. Per network, the training loss (solid) and the
    held-out MSE (dashed) against the step, log scale; a dot marks the best held-out MSE
    (the weights kept with early stopping), a cross the step where training stopped. The
    dotted line is the noise variance, the held-out MSE of the noiseless target: a network
    that reaches it has nothing left to learn, one that keeps lowering only its training
    loss below it is fitting the noise."""
    figure, grid, targets, activations, shades = _panels(results)
    for r in results:
        axes = grid[targets.index(r.row["target"]), activations.index(r.row["activation"])]
        a, colour = r.artifacts, shades[r.row["architecture"]]
        steps = np.arange(1, len(a["val_curve"]) + 1)
        axes.plot(steps, a["train_curve"], color=colour, lw=1, label=r.row["architecture"])
        axes.plot(steps, a["val_curve"], color=colour, lw=1, ls="--")
        best = r.row["best_step"]
        if best:
            axes.plot(best, a["val_curve"][best - 1], "o", color=colour, ms=5)
        if r.row["stopped_early"]:
            axes.plot(steps[-1], a["val_curve"][-1], "x", color=colour, ms=7, mew=2)
        axes.set_yscale("log")
    noise = results[0].cell.config.fit.noise
    for axes in grid.flat:
        if noise > 0:  # the held-out MSE of the target itself: no fit gets below it on average
            axes.axhline(noise**2, color="#999999", lw=0.8, ls=":")
        plotting.tidy(axes)
    for i, target in enumerate(targets):
        grid[i, 0].set_ylabel(f"{target}: MSE")
    for j, activation in enumerate(activations):
        grid[0, j].set_title(activation)
        grid[-1, j].set_xlabel("step")
    grid[0, 0].legend(frameon=False, fontsize="x-small")
    patience = results[0].cell.config.fit.patience
    figure.suptitle(
        "Training loss (solid), held-out MSE (dashed), noise variance (dotted); dot: best "
        "held-out step, cross: "
        + (f"stopped (patience {patience})" if patience else "stopped (patience off)")
        + (f" — {setting}" if setting else "")
    )
    return figure


EXPERIMENT = Experiment(
    name="fit",
    schema=FitConfig,
    run_cell=run_cell,
    report=report,
    preflight=preflight,
)
