"""``activations``: activation and loss identities, each checked numerically on dense grids
and random vectors, with its maximum error; plus the pictures that go with them
(sigmoid sharpening into a step, MSE saturating where cross-entropy does not, vanishing
gradients through depth).

Vanishing gradients depend on the initialization as much as on the activation, so the
depth experiment names it (``activations.init``, a list: one table column each) and prints
beside every measured norm the mean-field prediction that explains it: backpropagating
through one (affine, activation) layer multiplies the mean squared gradient by

    chi_l = fan_in * Var(w) * E[phi'(a_l)^2],   a_l ~ N(0, q_l),
    q_{l+1} = fan_in * Var(w) * E[phi(a_l)^2]   (q_1 = fan_in * Var(w) * E[x^2]),

so the norm after L layers (from the top) is about sqrt(prod chi_l). ReLU has
E[phi'^2] = 1/2 for any symmetric a: He's Var(w) = 2/fan_in gives chi = 1 exactly, the
Xavier/Glorot variance 2/(fan_in + fan_out) (= 1/fan_in here, the layers are square)
gives 1/2, so 2^(-L/2). A sigmoid's derivative is at most 1/4 (root mean square about
0.24 where the signal settles), so its gradient vanishes under every standard
initialization."""

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
from kernelnet.nn.functional import log_softmax, sigmoid, softmax, softplus
from kernelnet.nn.gradcheck import numeric_gradient
from kernelnet.nn.losses import softmax_cross_entropy
from kernelnet.nn.models import MLP
from kernelnet.tables import Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

EXACT, ROUNDING, DIFFERENCE = (
    0.0,
    1e-12,
    1e-7,
)  # tolerances: exact, float64 rounding, finite differences


@dataclass(frozen=True)
class Initialization:
    """Weights N(0, variance(fan_in, fan_out)), biases none (the depth chain has none)."""

    name: str
    variance: Callable[[int, int], float]
    meaning: str


INITIALIZATIONS = {
    i.name: i
    for i in [
        Initialization("he", lambda fan_in, fan_out: 2.0 / fan_in, "He/Kaiming: 2/fan_in"),
        Initialization(
            "xavier",
            lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
            "Xavier/Glorot: 2/(fan_in + fan_out)",
        ),
        Initialization("lecun", lambda fan_in, fan_out: 1.0 / fan_in, "LeCun: 1/fan_in"),
        Initialization("small", lambda fan_in, fan_out: 1e-4, "fixed std 0.01"),
    ]
}
# The initialization each activation is meant for: He derived it for ReLU (and its leaky
# variant, whose slope 0.01 changes chi by 1e-4); Glorot for symmetric saturating units.
STANDARD_INIT = {
    "relu": "he",
    "leaky_relu": "he",
    "sigmoid": "xavier",
    "tanh": "xavier",
    "identity": "xavier",
}
QUADRATURE_POINTS = 200  # even: no node at a = 0, where ReLU's derivative is a convention


@dataclass
class ActivationSection:
    grid_points: int = param(
        2001, ge=11, help="points of the dense grid on [-grid_range, grid_range]"
    )
    grid_range: float = param(10.0, gt=0)
    vectors: int = param(200, ge=1, help="random vectors for the softmax identities")
    classes: int = param(10, ge=2)
    # bounded so the chain's weights (depth x width^2 float64) stay under half a gigabyte
    depth: int = param(30, ge=2, le=200, help="deepest chain for the vanishing-gradient plot")
    width: int = param(64, ge=2, le=512)
    batch: int = param(
        16, ge=1, le=1024, help="inputs sent through the chain (rows of x ~ N(0, 1))"
    )
    init: list[str] = param(
        default_factory=lambda: ["he", "xavier", "small"],
        choices=tuple(INITIALIZATIONS),
        help="weight initializations of the depth table, one column each: he (2/fan_in), "
        "xavier (2/(fan_in + fan_out), = lecun 1/fan_in on these square layers: the lab's "
        "weights before this setting existed), small (std 0.01)",
    )
    # the MLP is built to be counted: at most about 2e7 parameters
    mlp_input: int = param(784, ge=1, le=10_000, help="d of the parameter count n_theta")
    mlp_hidden: int = param(100, ge=1, le=2_000, help="d_h of the parameter count n_theta")
    mlp_classes: int = param(10, ge=1, le=1_000, help="d_o of the parameter count n_theta")


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
    rows += softmax_identities(config, rng, Z)
    counts = parameter_counts(config, rng)
    rows.append(
        (
            "n_theta = d_h d + d_h + d_o d_h + d_o (MLP's parameters counted)",
            abs(counts[0]["counted"] - counts[0]["formula"]),
            EXACT,
        )
    )
    return [(name, float(error), tolerance) for name, error, tolerance in rows]


def softmax_identities(
    config: ActivationSection, rng: np.random.Generator, Z: np.ndarray
) -> list[tuple[str, float, float]]:
    """The softmax facts the course derives, on the random logits ``Z`` (N, C)."""
    pairs = np.concatenate([Z[:, :2], 30 * rng.normal(size=(config.vectors, 2))])
    two_class = np.stack(
        [sigmoid(pairs[:, 0] - pairs[:, 1]), sigmoid(pairs[:, 1] - pairs[:, 0])], axis=1
    )
    extreme = np.concatenate([Z, 1000 * Z])  # exp underflows for most entries of these
    probabilities = softmax(extreme)
    # positivity is part of the identity: a zero or negative output counts as a failure
    sums = np.abs(probabilities.sum(axis=1) - 1).max() if probabilities.min() > 0 else np.inf
    log_jacobian_error = chain_error = 0.0
    A = rng.normal(size=(config.classes, 4))
    B = rng.normal(size=(4, 4))

    def x_of(u: np.ndarray) -> np.ndarray:  # a smooth map u -> logits, for the chain rule
        return A @ np.tanh(B @ u)

    for z in Z[:20]:
        sv = softmax(z[None])[0]
        numeric = numeric_jacobian(lambda v: log_softmax(v[None])[0], z)  # [j, i] = d/dz_i
        log_jacobian_error = max(
            log_jacobian_error, np.abs(numeric - (np.eye(z.size) - sv[None, :])).max()
        )
        u = rng.normal(size=4)
        x_jacobian = numeric_jacobian(x_of, u)  # [i, m] = d x_i / d u_m
        expected = x_jacobian - softmax(x_of(u)[None])[0] @ x_jacobian  # minus E_k[grad x_k]
        numeric = numeric_jacobian(lambda v: log_softmax(x_of(v)[None])[0], u)
        chain_error = max(chain_error, np.abs(numeric - expected).max())
    k = np.logspace(0, 300, 301)
    return [
        (
            "2 classes: softmax(z) = [sigma(z1 - z2), sigma(z2 - z1)]",
            np.abs(softmax(pairs) - two_class).max(),
            ROUNDING,
        ),
        ("softmax(z) > 0 and sum_k softmax(z)_k = 1 (|z| up to ~1e4)", sums, ROUNDING),
        ("d log softmax(z)_j / dz_i = delta_ij - softmax(z)_i", log_jacobian_error, DIFFERENCE),
        (
            "grad_u log softmax(x(u))_i = grad_u x_i - E_{k~softmax}[grad_u x_k]",
            chain_error,
            DIFFERENCE,
        ),
        (
            "sigma(k x) = 1/2 at x = 0 for every k (k = 1 .. 1e300)",
            np.abs(sigmoid(k * 0.0) - 0.5).max(),
            EXACT,
        ),
    ]


def parameter_counts(config: ActivationSection, rng: np.random.Generator) -> list[dict]:
    """n_theta of the one-hidden-layer MLP, by the course's formula and by counting the
    arrays :meth:`MLP.create` allocates; with batch norm the hidden layer has gamma and beta
    instead of its bias, one more number per hidden unit."""
    d, d_h, d_o = config.mlp_input, config.mlp_hidden, config.mlp_classes
    rows = []
    for batchnorm, formula, text in [
        (False, d_h * d + d_h + d_o * d_h + d_o, "d_h d + d_h + d_o d_h + d_o"),
        (True, d_h * d + 2 * d_h + d_o * d_h + d_o, "d_h d + 2 d_h + d_o d_h + d_o"),
    ]:
        model = MLP.create(d, [d_h], d_o, rng, init="he", dtype=np.float32, batchnorm=batchnorm)
        rows.append(
            {
                "network": f"{d}-{d_h}-{d_o}" + (" with batch norm" if batchnorm else ""),
                "formula_text": text,
                "formula": formula,
                "counted": sum(p.size for p in model.params.values()),
            }
        )
    return rows


def chain_weights(config: ActivationSection, rng: np.random.Generator):
    """The input x (batch, width), the standard-normal weights Z_l (one draw shared by every
    initialization: W_l = std * Z_l, so initializations differ only in scale) and a random
    unit output gradient."""
    x = rng.normal(size=(config.batch, config.width))
    Z = [rng.standard_normal((config.width, config.width)) for _ in range(config.depth)]
    grad = rng.normal(size=(config.batch, config.width))
    return x, Z, grad / np.linalg.norm(grad)


def backprop_norms(activation: str, x: np.ndarray, weights: list[np.ndarray], grad: np.ndarray):
    """||dL/dh|| at the input of the first k (affine + activation) layers counted from the
    top, k = 1..depth (index k - 1), for the output gradient ``grad``."""
    forward, backward = layers.ACTIVATIONS[activation]
    caches, h = [], x
    for W in weights:
        h, affine_cache = layers.affine_forward(h, W, None)
        h, act_cache = forward(h)
        caches.append((affine_cache, act_cache))
    per_depth = []
    for affine_cache, act_cache in reversed(caches):
        grad = backward(grad, act_cache)
        grad, _, _ = layers.affine_backward(grad, affine_cache)
        per_depth.append(np.linalg.norm(grad))
    return np.array(per_depth)


def gradient_through_depth(
    config: ActivationSection, rng: np.random.Generator, inits: list[str] | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """{init: {activation: norms}}: the norm of the gradient after backpropagating through
    1..depth layers of ``width`` units, weights of each initialization in ``inits``
    (default: the config's list)."""
    x, Z, grad = chain_weights(config, rng)
    n = config.width
    result = {}
    for name in inits or config.init:
        std = np.sqrt(INITIALIZATIONS[name].variance(n, n))
        weights = [std * z for z in Z]
        result[name] = {
            activation: backprop_norms(activation, x, weights, grad)
            for activation in layers.ACTIVATIONS
        }
    return result


def gaussian_mean(
    f: Callable[[np.ndarray], np.ndarray], variance: float, rule: tuple[np.ndarray, np.ndarray]
) -> float:
    """E[f(a)] for a ~ N(0, variance), by the Gauss-Hermite ``rule`` (nodes, weights) of
    ``np.polynomial.hermite_e.hermegauss`` (weight exp(-t^2 / 2))."""
    nodes, weights = rule
    return float(weights @ f(np.sqrt(variance) * nodes) / weights.sum())


def mean_field_chi(activation: str, gain: float, depth: int, input_moment: float = 1.0):
    """chi_l = gain * E[phi'(a_l)^2] for l = 1..depth with a_l ~ N(0, q_l) and
    q_{l+1} = gain * E[phi(a_l)^2], q_1 = gain * input_moment; gain = fan_in * Var(w).
    phi and phi' are the lab's own layer functions (forward, and backward of ones)."""
    forward, backward = layers.ACTIVATIONS[activation]

    def phi(a):
        return forward(a)[0]

    def slope(a):
        return backward(np.ones_like(a), forward(a)[1])

    rule = np.polynomial.hermite_e.hermegauss(QUADRATURE_POINTS)
    q, chis = gain * input_moment, []
    for _ in range(depth):
        chis.append(gain * gaussian_mean(lambda a: slope(a) ** 2, q, rule))
        q = gain * gaussian_mean(lambda a: phi(a) ** 2, q, rule)
    return np.array(chis)


def predicted_norms(activation: str, init: str, config: ActivationSection) -> np.ndarray:
    """The mean-field norm after k = 1..depth layers from the top: sqrt(prod of the top k
    chi_l) for a unit output gradient."""
    n = config.width
    gain = n * INITIALIZATIONS[init].variance(n, n)
    chis = mean_field_chi(activation, gain, config.depth)
    return np.sqrt(np.cumprod(chis[::-1]))


def run_cell(config: ActivationsConfig, ctx: CellContext) -> CellOutput:
    a = config.activations
    checks = identities(a, ctx.rng)
    rows = [
        {"identity": name, "max_error": error, "tolerance": tolerance, "holds": error <= tolerance}
        for name, error, tolerance in checks
    ]
    # the figure shows each activation under its standard initialization, listed or not
    inits = list(dict.fromkeys([*a.init, *STANDARD_INIT.values()]))
    depth = gradient_through_depth(a, ctx.rng, inits)
    predicted = {
        init: {act: predicted_norms(act, init, a) for act in layers.ACTIVATIONS} for init in inits
    }
    scaling = softmax(np.array([[1.0, 2.0, 3.0]]) * np.array([[0.5], [1.0], [2.0], [5.0]]))
    artifacts = {
        "depth": depth,
        "predicted": predicted,
        "scaling": scaling,
        "parameter_counts": parameter_counts(a, ctx.rng),
    }
    return CellOutput(rows, artifacts)


def depth_table(config: ActivationSection, depth: dict, predicted: dict) -> Table:
    """Measured and mean-field norms after ``depth`` layers, one column pair per listed
    initialization; the activation's standard initialization starred."""
    columns = ["activation"]
    for init in config.init:
        columns += [f"{init}: measured", f"{init}: predicted"]
    rows = []
    for act in layers.ACTIVATIONS:
        row = [act]
        for init in config.init:
            star = " *" if STANDARD_INIT[act] == init else ""
            row += [f"{depth[init][act][-1]:.2e}{star}", f"{predicted[init][act][-1]:.2e}"]
        rows.append(row)
    n, L = config.width, config.depth
    meanings = "; ".join(f"{i} = {INITIALIZATIONS[i].meaning}" for i in config.init)
    settled = {gain: mean_field_chi("sigmoid", gain, L)[-1] for gain in (1.0, 2.0)}
    return Table(
        f"Gradient norm after {L} layers ({n} units, no biases, unit output gradient)",
        columns,
        rows,
        note=(
            f"* the activation's standard initialization. {meanings} (Var(w); the layers are "
            f"square, so xavier = lecun = 1/{n}). Predicted: sqrt(prod_l chi_l) with "
            "chi_l = fan_in Var(w) E[phi'(a_l)^2], the mean squared gradient's factor per "
            "layer (mean field). ReLU: E[phi'^2] = 1/2, so He gives chi = 1 (the norm stays "
            f"near 1) and xavier 1/2 (2^(-{L}/2) = {2 ** (-L / 2):.1e}). Sigmoid: phi' <= 1/4 "
            f"(root mean square {np.sqrt(settled[1.0]):.2f} where the signal settles), so "
            f"chi = {settled[1.0]:.3f} under xavier and {settled[2.0]:.3f} under he: it "
            "vanishes under every initialization. Tanh under xavier: the signal shrinks "
            "towards tanh's linear part (q_l about 1/(2l)), chi_l about 1 - 1/l, so the "
            "norm falls like L^(-1/2), not exponentially."
        ),
    )


def report(ctx: ReportContext) -> Report:
    if not ctx.completed:
        return Report([])
    result = ctx.completed[0]
    config = result.cell.config.activations
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
    counts = result.artifacts["parameter_counts"]
    count_table = Table(
        "MLP parameter count n_theta",
        ["network", "formula", "by the formula", "counted in MLP.create"],
        [
            [c["network"], c["formula_text"], f"{c['formula']:,}", f"{c['counted']:,}"]
            for c in counts
        ],
        align=["left", "left", "right", "right"],
    )
    depth, predicted = result.artifacts["depth"], result.artifacts["predicted"]
    ctx.save_figure("activations", activation_panels, depth, predicted)
    return Report(
        [table, sharpen, count_table, depth_table(config, depth, predicted)],
        {
            "all_hold": all(r["holds"] for r in result.rows),
            "gradient_norm_at_depth": {
                init: {k: float(v[-1]) for k, v in depth[init].items()} for init in config.init
            },
            "predicted_gradient_norm_at_depth": {
                init: {k: float(v[-1]) for k, v in predicted[init].items()} for init in config.init
            },
            "standard_init": STANDARD_INIT,
            "n_theta": {c["network"]: c["counted"] for c in counts},
        },
    )


def activation_panels(depth: dict, predicted: dict) -> Figure:
    """Three panels: sigmoid(kx) sharpening into a step; MSE and cross-entropy gradients
    against the logit for a sigmoid output with target 1; gradient norm through depth under
    each activation's standard initialization (dotted: the mean-field prediction), with
    ReLU under Xavier for contrast."""

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
    lines = [(act, init) for act, init in STANDARD_INIT.items()] + [("relu", "xavier")]
    for index, (act, init) in enumerate(lines):
        norms, theory = np.asarray(depth[init][act]), np.asarray(predicted[init][act])
        layers_k = np.arange(1, norms.size + 1)
        colour = plotting.colormap("tab10")(index % 10)
        style = "--" if (act, init) == ("relu", "xavier") else "-"
        right.semilogy(
            layers_k, np.maximum(norms, 1e-300), style, color=colour, label=f"{act} ({init})"
        )
        right.semilogy(layers_k, np.maximum(theory, 1e-300), ":", color=colour, lw=1)
    right.set(
        title="gradient norm after L layers (dotted: mean field)",
        xlabel="layers L (backwards)",
        ylabel="||dL/dh||",
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
