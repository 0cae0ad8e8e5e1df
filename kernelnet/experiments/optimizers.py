"""``optimizers``: how SGD, momentum, Nesterov, Adagrad, RMSProp and Adam move — on 2-D
test surfaces (a plateau, an elongated valley, Rosenbrock) and training the MNIST MLP on a
subset — plus two numerical checks: Adam's bias-corrected moments are unbiased for a
stationary gradient distribution, and the two usual forms of Nesterov momentum produce
the same iterates.

Where a run starts matters on the plateau. ``optimizer.start`` lists the starting states
the surface tables use: ``rest`` (no history: velocity and moment estimates zero, what
kernelnet always did) and ``moving``, the course's scenario: the optimizer arrives at the
start having already taken ``prior_steps`` steps down a slope towards the minimum, each
with a gradient of size ``prior_gradient``, so its state (velocity, squared-gradient sums,
moment estimates) remembers that motion. At rest the adaptive methods escape the plateau
first (their step is lr whatever the gradient's size) and heavy-ball momentum is slow;
moving, momentum carries the optimizer across while Adagrad's accumulated squares freeze it:
the course's ranking momentum > Adam > Adagrad."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kernelnet import plotting
from kernelnet.config import Cell, param
from kernelnet.data.mnist import load_mnist, mnist_split
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
    cell_names,
)
from kernelnet.nn.models import MLP
from kernelnet.nn.optim import OPTIMIZERS, Adam, Nesterov, make_optimizer
from kernelnet.nn.trainer import TrainSettings, discard_checkpoint, train_classifier
from kernelnet.tables import Table, percent

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ADAPTIVE = ("adagrad", "rmsprop", "adam")
STARTS = ("rest", "moving")


@dataclass(frozen=True)
class Surface:
    name: str
    f: Callable[[np.ndarray], float]
    grad: Callable[[np.ndarray], np.ndarray]
    start: tuple[float, float]
    minimum: tuple[float, float]
    sgd_lr: float  # for sgd, momentum, nesterov
    adaptive_lr: float  # for adagrad, rmsprop, adam
    box: tuple[float, float, float, float]  # x0, x1, y0, y1 for the contour plot


def _plateau(p):  # flat far from the well: 1 - exp(-|p|^2 / 2)
    return 1.0 - np.exp(-0.5 * (p[0] ** 2 + p[1] ** 2))


def _plateau_grad(p):
    return np.exp(-0.5 * (p[0] ** 2 + p[1] ** 2)) * np.array([p[0], p[1]])


def _valley(p):  # condition number 50
    return 0.5 * (p[0] ** 2 + 50.0 * p[1] ** 2)


def _valley_grad(p):
    return np.array([p[0], 50.0 * p[1]])


def _rosenbrock(p):
    return (1 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2


def _rosenbrock_grad(p):
    return np.array(
        [-2 * (1 - p[0]) - 400.0 * p[0] * (p[1] - p[0] ** 2), 200.0 * (p[1] - p[0] ** 2)]
    )


SURFACES = {
    s.name: s
    for s in [
        # far out on the plateau the gradient is ~1e-4: plain SGD barely moves, adaptive steps do
        Surface(
            "plateau", _plateau, _plateau_grad, (3.3, 3.0), (0.0, 0.0), 0.5, 0.1, (-4, 4, -4, 4)
        ),
        # lr * curvature = 1 on the steep axis: stable for all three momentum variants
        Surface(
            "valley",
            _valley,
            _valley_grad,
            (-4.0, 1.0),
            (0.0, 0.0),
            0.02,
            0.1,
            (-4.5, 4.5, -1.5, 1.5),
        ),
        Surface(
            "rosenbrock",
            _rosenbrock,
            _rosenbrock_grad,
            (-1.5, 2.0),
            (1.0, 1.0),
            1e-3,
            0.05,
            (-2, 2, -1, 3),
        ),
    ]
}


@dataclass
class OptimizerSection:
    name: str = param(
        default_factory=lambda: list(OPTIMIZERS), choices=tuple(OPTIMIZERS), label="optimizer"
    )
    momentum: float = param(0.9, ge=0, lt=1)
    surfaces: list[str] = param(default_factory=lambda: list(SURFACES), choices=tuple(SURFACES))
    steps: int = param(300, ge=1)
    start: list[str] = param(
        default_factory=lambda: list(STARTS),
        choices=STARTS,
        help="starting states of the surface runs: rest (no history) and moving (the "
        "course's: prior_steps steps already taken towards the minimum)",
    )
    prior_steps: int = param(5, ge=1, le=10_000, help="moving: steps taken before the start")
    prior_gradient: float = param(
        0.5, gt=0, help="moving: the size of the gradient each of those steps saw"
    )
    reach: float = param(0.1, gt=0, help="a run reaches the minimum within this distance")


@dataclass
class MnistSubset:
    train_size: int = param(5000, ge=100, le=55_000)
    val_size: int = param(1000, ge=100, le=5_000)
    epochs: int = param(3, ge=1)
    sgd_lr: float = param(0.05, gt=0)
    adaptive_lr: float = param(1e-3, gt=0)


@dataclass
class OptimizersConfig(ExperimentConfig):
    optimizer: OptimizerSection = field(default_factory=OptimizerSection)
    mnist: MnistSubset = field(default_factory=MnistSubset)


def trajectory(
    surface: Surface,
    name: str,
    momentum: float,
    steps: int,
    prior_steps: int = 0,
    prior_gradient: float = 0.5,
) -> np.ndarray:
    """The iterates (steps + 1, 2) from ``surface.start``. With ``prior_steps`` the
    optimizer first takes that many steps with the constant gradient of size
    ``prior_gradient`` pointing away from the minimum (descending towards it), on a copy
    of the start: only its state carries over, so the run begins at the start, moving."""
    lr = surface.adaptive_lr if name in ADAPTIVE else surface.sgd_lr
    optimizer = make_optimizer(name, lr=lr, momentum=momentum)
    start = np.array(surface.start, dtype=float)
    towards = np.array(surface.minimum) - start
    towards /= np.linalg.norm(towards)
    approach = {"p": start.copy()}
    for _ in range(prior_steps):
        optimizer.step(approach, {"p": -prior_gradient * towards})
    params = {"p": start}
    path = [params["p"].copy()]
    for _ in range(steps):
        optimizer.step(params, {"p": surface.grad(params["p"])})
        path.append(params["p"].copy())
    return np.array(path)


def first_reach(path: np.ndarray, minimum: tuple[float, float], within: float) -> int | None:
    """The first step whose iterate is within ``within`` of the minimum; None if none."""
    close = np.flatnonzero(np.linalg.norm(path - np.array(minimum), axis=1) < within)
    return int(close[0]) if close.size else None


def run_cell(config: OptimizersConfig, ctx: CellContext) -> CellOutput:
    o, m = config.optimizer, config.mnist
    rows, paths = [], {}
    for start in o.start:
        prior = o.prior_steps if start == "moving" else 0
        for surface_name in o.surfaces:
            surface = SURFACES[surface_name]
            path = trajectory(surface, o.name, o.momentum, o.steps, prior, o.prior_gradient)
            paths.setdefault(start, {})[surface_name] = path
            rows.append(
                {
                    "problem": surface_name,
                    "start": start,
                    "optimizer": o.name,
                    "steps": o.steps,
                    "final_loss": float(surface.f(path[-1])),
                    "distance_to_minimum": float(np.linalg.norm(path[-1] - surface.minimum)),
                    "reached_at_step": first_reach(path, surface.minimum, o.reach),
                    "val_accuracy": None,
                }
            )
    data = mnist_split(m.train_size, m.val_size, test=1, dtype=np.float32)
    model = MLP.create(784, [100], 10, ctx.rng, init="he")
    lr = m.adaptive_lr if o.name in ADAPTIVE else m.sgd_lr
    history = train_classifier(
        model,
        make_optimizer(o.name, lr=lr, momentum=o.momentum),
        data.X_train,
        data.y_train,
        data.X_val,
        data.y_val,
        TrainSettings(epochs=m.epochs, batch_size=100, keep_best=False),
        ctx.rng,
        checkpoints=ctx.files,
        fingerprint=ctx.cell.digest,
    )
    discard_checkpoint(ctx.files)
    rows.append(
        {
            "problem": "mnist-mlp",
            "start": "rest",
            "optimizer": o.name,
            "steps": len(history.iteration_loss),
            "final_loss": history.rows[-1]["loss"],
            "distance_to_minimum": None,
            "reached_at_step": None,
            "val_accuracy": history.rows[-1]["val_accuracy"],
        }
    )
    return CellOutput(rows, {"paths": paths, "mnist_loss": np.array(history.iteration_loss)})


def adam_bias_check(
    rng: np.random.Generator,
    runs: int = 20000,
    mean: float = 0.5,
    std: float = 2.0,
    steps: tuple[int, ...] = (1, 2, 5, 20, 100),
):
    """Max relative deviation of E[m_hat] from mu and E[v_hat] from mu^2 + sigma^2 over the
    given step counts, with gradients ~ N(mu, sigma^2), estimated from ``runs`` runs."""
    worst_m = worst_v = 0.0
    for count in steps:
        adam, params = Adam(lr=0.0), {"w": np.zeros(runs)}
        for _ in range(count):
            adam.step(params, {"w": rng.normal(mean, std, runs)})
        m_hat, v_hat = adam.moments("w")
        worst_m = max(worst_m, abs(m_hat.mean() - mean) / mean)
        worst_v = max(worst_v, abs(v_hat.mean() - (mean**2 + std**2)) / (mean**2 + std**2))
    return worst_m, worst_v


def nesterov_check(steps: int = 200, lr: float = 0.01, momentum: float = 0.9) -> float:
    """Max distance between kernelnet's Nesterov iterates and the look-ahead formulation
    (v <- mu v - lr grad(w + mu v); w <- w + v), compared at the look-ahead point, on the
    valley surface."""
    surface = SURFACES["valley"]
    optimizer, params = Nesterov(lr=lr, momentum=momentum), {"w": np.array(surface.start)}
    w, v, worst = np.array(surface.start), np.zeros(2), 0.0
    for _ in range(steps):
        optimizer.step(params, {"w": surface.grad(params["w"])})
        v = momentum * v - lr * surface.grad(w + momentum * v)
        w = w + v
        worst = max(worst, float(np.abs(params["w"] - (w + momentum * v)).max()))
    return worst


def report(ctx: ReportContext) -> Report:
    done = ctx.completed
    names = cell_names(done, lambda r: r.cell.config.optimizer.name)
    surface_rows = [
        (name, r)
        for name, result in zip(names, done)
        for r in result.rows
        if r["problem"] != "mnist-mlp"
    ]
    mnist_rows = [
        (name, r)
        for name, result in zip(names, done)
        for r in result.rows
        if r["problem"] == "mnist-mlp"
    ]
    o = done[0].cell.config.optimizer if done else None
    start_text = {
        "rest": "rest = no history (zero velocity and moments)",
        "moving": (
            f"moving = {o.prior_steps} steps already taken towards the minimum with gradients "
            f"of size {o.prior_gradient:g}"
            if o
            else ""
        ),
    }
    shown_starts = list(dict.fromkeys(r["start"] for _, r in surface_rows))
    surface_order = list(dict.fromkeys(r["problem"] for _, r in surface_rows))
    surface_rows.sort(
        key=lambda pair: (
            surface_order.index(pair[1]["problem"]),
            shown_starts.index(pair[1]["start"]),
        )
    )  # stable: optimizers stay in grid order within a surface and start
    within = o.reach if o else 0.1
    tables = [
        Table(
            "2-D surfaces: where each optimizer ends",
            [
                "surface",
                "start",
                "optimizer",
                "steps",
                "final loss",
                "distance to minimum",
                f"first step within {within:g}",
            ],
            [
                [
                    r["problem"],
                    r["start"],
                    name,
                    str(r["steps"]),
                    f"{r['final_loss']:.3g}",
                    f"{r['distance_to_minimum']:.3g}",
                    "never" if r["reached_at_step"] is None else str(r["reached_at_step"]),
                ]
                for name, r in surface_rows
            ],
            align=["left", "left", "left", "right", "right", "right", "right"],
            note="Start: " + "; ".join(start_text[s] for s in shown_starts) + ".",
        ),
        ranking_table(surface_rows, within, start_text),
        Table(
            "MNIST MLP on a subset",
            ["optimizer", "iterations", "final epoch loss", "val acc %"],
            [
                [
                    name,
                    str(r["steps"]),
                    f"{r['final_loss']:.4f}",
                    percent(r["val_accuracy"], 2),
                ]
                for name, r in mnist_rows
            ],
            note="Every run starts at rest (He-initialized weights, no optimizer history).",
        ),
    ]
    m_dev, v_dev = adam_bias_check(ctx.rng("adam bias check"))
    nesterov = nesterov_check()
    tables.append(
        Table(
            "Numerical checks",
            ["check", "result"],
            [
                ["Adam: max |E[m^] - mu| / mu over t = 1..100 (20,000 runs)", f"{m_dev:.4f}"],
                ["Adam: max |E[v^] - (mu^2 + s^2)| / (mu^2 + s^2)", f"{v_dev:.4f}"],
                [
                    "Nesterov: max |w_kernelnet - (w + mu v)_lookahead| over 200 steps",
                    f"{nesterov:.2e}",
                ],
            ],
            align=["left", "right"],
        )
    )
    surfaces = list(dict.fromkeys(s for r in done for s in r.cell.config.optimizer.surfaces))
    if surfaces:
        ctx.save_figure(
            "trajectories",
            optimizer_trajectories,
            [SURFACES[s] for s in surfaces],
            {n: r.artifacts["paths"] for n, r in zip(names, done)},
        )
    if done:
        ctx.save_figure(
            "mnist_loss",
            loss_curves,
            {n: np.asarray(r.artifacts["mnist_loss"]) for n, r in zip(names, done)},
        )
    return Report(
        tables,
        {
            "adam_mean_deviation": m_dev,
            "adam_second_moment_deviation": v_dev,
            "nesterov_max_difference": nesterov,
        },
    )


def ranking_table(surface_rows, within: float, start_text: dict[str, str]) -> Table:
    """Per surface and starting state, the optimizers in the order they reach the minimum
    (those that never do, by their final distance)."""
    groups: dict[tuple[str, str], list] = {}
    for name, r in surface_rows:
        groups.setdefault((r["problem"], r["start"]), []).append((name, r))
    lines = []
    for (surface, start), entries in groups.items():
        reached = sorted(
            (r["reached_at_step"], name) for name, r in entries if r["reached_at_step"] is not None
        )
        stuck = sorted(
            (r["distance_to_minimum"], name) for name, r in entries if r["reached_at_step"] is None
        )
        order = [f"{name} ({step})" for step, name in reached]
        order += [f"{name} (never, {distance:.2g} away)" for distance, name in stuck]
        lines.append([surface, start, " > ".join(order)])
    return Table(
        "Who reaches the minimum first, by starting state",
        ["surface", "start", "ranking (first step within reach)"],
        lines,
        align=["left", "left", "left"],
        note=(
            f"Reach: within {within:g} of the minimum. The course's plateau question assumes "
            "the optimizer is already moving (its answer: momentum > Adam > Adagrad); from rest "
            "the adaptive methods escape first, since their steps do not shrink with the "
            "gradient."
        ),
    )


def optimizer_trajectories(surfaces, paths: dict[str, dict[str, dict[str, np.ndarray]]]) -> Figure:
    """One contour plot per surface and starting state with every optimizer's path;
    ``paths[optimizer][start][surface]``."""
    starts = list(dict.fromkeys(s for by_start in paths.values() for s in by_start))
    figure = plotting.figure((5.2 * len(surfaces), 4.6 * len(starts)))
    rows = figure.subplots(len(starts), len(surfaces), squeeze=False)
    for start, grid in zip(starts, rows):
        _trajectory_row(grid, surfaces, {n: p.get(start, {}) for n, p in paths.items()}, start)
    rows[0][0].legend(frameon=False, fontsize="small", loc="lower left")
    figure.suptitle("Optimizer trajectories (square: start, star: minimum)")
    return figure


def _trajectory_row(grid, surfaces, paths: dict[str, dict[str, np.ndarray]], start: str):
    shades = plotting.colormap("tab10")(np.arange(len(paths)) % 10)
    for axes, surface in zip(grid, surfaces):
        x0, x1, y0, y1 = surface.box
        gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
        values = surface.f(np.array([gx, gy]))
        axes.contourf(gx, gy, np.log1p(values - values.min()), levels=30, cmap="Greys", alpha=0.6)
        for colour, (name, by_surface) in zip(shades, paths.items()):
            path = by_surface.get(surface.name)
            if path is None:
                continue  # this cell did not run on this surface
            path = np.asarray(path)
            axes.plot(path[:, 0], path[:, 1], "-", color=colour, lw=1.4, label=name)
            axes.plot(path[-1, 0], path[-1, 1], "o", color=colour, ms=4)
        axes.plot(*surface.start, "ks", ms=6)
        axes.plot(*surface.minimum, "r*", ms=12)
        axes.set(xlim=(x0, x1), ylim=(y0, y1), title=f"{surface.name}, start: {start}")


def loss_curves(curves: dict[str, np.ndarray]) -> Figure:
    figure = plotting.figure((7, 4))
    axes = figure.subplots()
    for name, loss in curves.items():
        window = max(1, loss.size // 30)
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        axes.plot(np.arange(window, loss.size + 1), smooth, label=name)
    axes.set(
        yscale="log",
        xlabel="iteration",
        ylabel="training loss (moving mean)",
        title="MNIST MLP on a subset",
    )
    axes.legend(frameon=False)
    plotting.tidy(axes)
    return figure


def preflight(cells: list[Cell]) -> None:
    load_mnist()  # every cell trains on MNIST: check the data before a folder exists


EXPERIMENT = Experiment(
    name="optimizers",
    schema=OptimizersConfig,
    run_cell=run_cell,
    report=report,
    preflight=preflight,
    row_key=("problem", "start"),
)
