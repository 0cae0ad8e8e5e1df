"""``activations``: activation and loss identities, each checked numerically on dense grids
and random vectors, with its maximum error; plus the pictures that go with them
(sigmoid sharpening into a step, MSE saturating where cross-entropy does not, vanishing
gradients through depth)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kernelnet import plotting
from kernelnet.config import param
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
)
from kernelnet.nn import layers
from kernelnet.nn.functional import sigmoid, softmax, softplus
from kernelnet.nn.gradcheck import numeric_gradient
from kernelnet.nn.losses import softmax_cross_entropy
from kernelnet.tables import Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

EXACT, ROUNDING, DIFFERENCE = (
    0.0,
    1e-12,
    1e-7,
)  # tolerances: exact, float64 rounding, finite differences


@dataclass
class ActivationSection:
    grid_points: int = param(
        2001, ge=11, help="points of the dense grid on [-grid_range, grid_range]"
    )
    grid_range: float = param(10.0, gt=0)
    vectors: int = param(200, ge=1, help="random vectors for the softmax identities")
    classes: int = param(10, ge=2)
    depth: int = param(30, ge=2, help="deepest chain for the vanishing-gradient plot")
    width: int = param(64, ge=2)


@dataclass
class ActivationsConfig(ExperimentConfig):
    activations: ActivationSection = field(default_factory=ActivationSection)


def numeric_derivative(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float = 1e-5):
    return (f(x + h) - f(x - h)) / (2 * h)


def numeric_jacobian(f: Callable[[np.ndarray], np.ndarray], z: np.ndarray, h: float = 1e-6):
    columns = []
    for i in range(z.size):
        e = np.zeros_like(z)
        e[i] = h
        columns.append((f(z + e) - f(z - e)) / (2 * h))
    return np.stack(columns, axis=1)  # J[i, j] = d f_i / d z_j


def identities(
    config: ActivationSection, rng: np.random.Generator
) -> list[tuple[str, float, float]]:
    """(identity, max error, tolerance) for each identity; it holds when error <= tolerance."""
    x = np.linspace(-config.grid_range, config.grid_range, config.grid_points)
    x = x[np.abs(x) > 1e-9]  # derivatives of kinked functions are checked away from 0
    heaviside = (x > 0).astype(float)
    relu, relu_cache = layers.relu_forward(x)
    s = sigmoid(x)
    rows = [
        ("sign(x) = 1[x>0] - 1[x<0]", np.abs(np.sign(x) - ((x > 0) * 1.0 - (x < 0))).max(), EXACT),
        (
            "ReLU'(x) = H(x)",
            np.abs(layers.relu_backward(np.ones_like(x), relu_cache) - heaviside).max(),
            EXACT,
        ),
        ("ReLU(x) = x H(x)", np.abs(relu - x * heaviside).max(), EXACT),
        (
            "sigma'(x) = sigma(x)(1 - sigma(x))",
            np.abs(numeric_derivative(sigmoid, x) - s * (1 - s)).max(),
            DIFFERENCE,
        ),
        ("log sigma(x) = -softplus(-x)", np.abs(np.log(s) + softplus(-x)).max(), ROUNDING),
        (
            "softplus(x) - softplus(-x) = x",
            np.abs(softplus(x) - softplus(-x) - x).max(),
            1e-12 * config.grid_range,
        ),
        ("softplus'(x) = sigma(x)", np.abs(numeric_derivative(softplus, x) - s).max(), DIFFERENCE),
        (
            "sigma(kx) -> H(x), k = 1000, |x| >= 0.1",
            np.abs(sigmoid(1000 * x[np.abs(x) >= 0.1]) - heaviside[np.abs(x) >= 0.1]).max(),
            1e-40,
        ),
    ]
    z = rng.normal(size=5)
    jacobian = numeric_jacobian(sigmoid, z)
    sz = sigmoid(z)
    rows.append(
        (
            "sigmoid Jacobian = diag(sigma(1 - sigma))",
            np.abs(jacobian - np.diag(sz * (1 - sz))).max(),
            DIFFERENCE,
        )
    )
    Z = rng.normal(size=(config.vectors, config.classes)) * 3
    shifts = rng.normal(size=(config.vectors, 1)) * 100
    rows.append(
        ("softmax(z + c) = softmax(z)", np.abs(softmax(Z + shifts) - softmax(Z)).max(), ROUNDING)
    )
    jac_error = 0.0
    for z in Z[:20]:
        sv = softmax(z[None])[0]
        numeric = numeric_jacobian(lambda v: softmax(v[None])[0], z)
        jac_error = max(jac_error, np.abs(numeric - (np.diag(sv) - np.outer(sv, sv))).max())
    rows.append(("softmax Jacobian = diag(s) - s s^T", jac_error, DIFFERENCE))
    y = rng.integers(0, config.classes, size=config.vectors)
    logits = Z.copy()
    analytic = (softmax(logits) - np.eye(config.classes)[y]) / len(y)
    numeric = numeric_gradient(lambda: softmax_cross_entropy(logits, y)[0], logits)
    rows.append(
        ("d CE / d logits = (softmax - onehot) / N", np.abs(analytic - numeric).max(), DIFFERENCE)
    )
    target = (rng.random(x.size) < 0.5).astype(float)
    mse_grad = numeric_derivative(lambda v: 0.5 * (sigmoid(v) - target) ** 2, x)
    rows.append(
        (
            "sigmoid output: dMSE/dz = dCE/dz * sigma(1 - sigma)",
            np.abs(mse_grad - (s - target) * s * (1 - s)).max(),
            DIFFERENCE,
        )
    )
    return [(name, float(error), tolerance) for name, error, tolerance in rows]


def gradient_through_depth(
    config: ActivationSection, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """||dL/dx|| at the input of a chain of ``depth`` (affine + activation) layers, for a
    random unit output gradient; weights N(0, 1/width) (Xavier-like, no gain)."""
    norms = {}
    x = rng.normal(size=(16, config.width))
    weights = [
        rng.normal(size=(config.width, config.width)) / np.sqrt(config.width)
        for _ in range(config.depth)
    ]
    for name, (forward, backward) in layers.ACTIVATIONS.items():
        caches, h = [], x
        for W in weights:
            h, affine_cache = layers.affine_forward(h, W, None)
            h, act_cache = forward(h)
            caches.append((affine_cache, act_cache))
        grad = rng.normal(size=h.shape)
        grad /= np.linalg.norm(grad)
        per_depth = []
        for affine_cache, act_cache in reversed(caches):
            grad = backward(grad, act_cache)
            grad, _, _ = layers.affine_backward(grad, affine_cache)
            per_depth.append(np.linalg.norm(grad))
        norms[name] = np.array(per_depth)  # index L-1: after backpropagating through L layers
    return norms


def run_cell(config: ActivationsConfig, ctx: CellContext) -> CellOutput:
    a = config.activations
    checks = identities(a, ctx.rng)
    rows = [
        {"identity": name, "max_error": error, "tolerance": tolerance, "holds": error <= tolerance}
        for name, error, tolerance in checks
    ]
    depth = gradient_through_depth(a, ctx.rng)
    scaling = softmax(np.array([[1.0, 2.0, 3.0]]) * np.array([[0.5], [1.0], [2.0], [5.0]]))
    return CellOutput(rows, {"depth": depth, "scaling": scaling})


def report(ctx: ReportContext) -> Report:
    if not ctx.completed:
        return Report([])
    result = ctx.completed[0]
    table = Table(
        "Activation and loss identities",
        ["identity", "max error", "tolerance", "holds"],
        [
            [
                r["identity"],
                f"{r['max_error']:.2e}",
                f"{r['tolerance']:.0e}",
                "yes" if r["holds"] else "NO",
            ]
            for r in result.rows
        ],
        align=["left", "right", "right", "left"],
    )
    scaling = result.artifacts["scaling"]
    sharpen = Table(
        "softmax is not invariant to scaling: softmax(t * [1, 2, 3])",
        ["t", "p1", "p2", "p3"],
        [[f"{t:g}", *(f"{p:.4f}" for p in row)] for t, row in zip([0.5, 1.0, 2.0, 5.0], scaling)],
        note="Scaling the logits up sharpens the distribution towards the arg max.",
    )
    depth = result.artifacts["depth"]
    ctx.save_figure("activations", activation_panels, depth)
    return Report(
        [table, sharpen],
        {
            "all_hold": all(r["holds"] for r in result.rows),
            "gradient_norm_at_depth": {k: float(v[-1]) for k, v in depth.items()},
        },
    )


def activation_panels(depth_norms: dict[str, np.ndarray]) -> Figure:
    """Three panels: sigmoid(kx) sharpening into a step; MSE and cross-entropy gradients
    against the logit for a sigmoid output with target 1; gradient norm through depth."""

    figure = plotting.figure((14, 4))
    left, middle, right = figure.subplots(1, 3)
    x = np.linspace(-3, 3, 601)
    for k, shade in zip((1, 3, 10, 100), (0.35, 0.55, 0.75, 0.95)):
        left.plot(x, sigmoid(k * x), color=plotting.colormap("viridis")(shade), label=f"k = {k}")
    left.step(x, (x > 0).astype(float), where="mid", color="black", ls="--", lw=1, label="H(x)")
    left.set(title="sigmoid(kx) tends to the step", xlabel="x")
    left.legend(frameon=False, fontsize="small")
    z = np.linspace(-10, 10, 401)
    s = sigmoid(z)
    middle.plot(z, np.abs(s - 1), color="#3182bd", label="|dCE/dz| = |s - y|")
    middle.plot(
        z, np.abs((s - 1) * s * (1 - s)), color="#e6550d", label="|dMSE/dz| = |s - y| s(1 - s)"
    )
    middle.set(
        title="target y = 1: MSE saturates when badly wrong",
        xlabel="logit z",
        yscale="log",
        ylim=(1e-5, 2),
    )
    middle.legend(frameon=False, fontsize="small")
    for name, norms in depth_norms.items():
        right.semilogy(np.arange(1, norms.size + 1), np.maximum(norms, 1e-300), label=name)
    right.set(
        title="gradient norm after L layers (backwards)", xlabel="layers L", ylabel="||dL/dh||"
    )
    right.legend(frameon=False, fontsize="small")
    plotting.tidy(left, middle, right)
    return figure


EXPERIMENT = Experiment(
    name="activations",
    schema=ActivationsConfig,
    run_cell=run_cell,
    report=report,
    row_key=("identity",),
    single_cell=True,  # a lab of fixed checks: run it once per setting
)
