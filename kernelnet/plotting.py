"""Figures as PNG files. Uses matplotlib's object API (``Figure``), never pyplot, so no
global backend or figure state is touched; PNGs render with Agg."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from kernelnet.runs import RunDir

NEGATIVE, POSITIVE = "#d7301f", "#2166ac"  # class colours: red for -1, blue for +1


def _tidy(*axes_list) -> None:
    """Light grid, no top/right frame."""
    for axes in axes_list:
        axes.grid(alpha=0.3)
        axes.spines[["top", "right"]].set_visible(False)


def save(run: RunDir, relative: str, figure: Figure, dpi: int = 120) -> None:
    """Write ``figure`` atomically into the run folder."""
    run.write_with(relative, lambda handle: figure.savefig(handle, format="png", dpi=dpi))


def primal_history(
    objective: np.ndarray,
    train_accuracy: np.ndarray,
    test_accuracy: np.ndarray,
    marked_epochs: Sequence[int],
    title: str,
) -> Figure:
    """Objective (left) and accuracy (right) against epoch; epoch 0 is the starting point."""
    epochs = np.arange(objective.size)
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    left.plot(epochs, objective, color="#333333", lw=1.8)
    marks = [e for e in marked_epochs if e < objective.size]
    left.scatter(marks, objective[marks], color="#e6550d", zorder=3, label="sweep points")
    left.set(xlabel="epoch", ylabel="E(w, b)", title="Training objective", yscale="log")
    left.legend(frameon=False)
    right.plot(epochs, 100 * train_accuracy, label="train", color="#756bb1", lw=1.8)
    right.plot(epochs, 100 * test_accuracy, label="test", color="#31a354", lw=1.8)
    right.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy", ylim=(0, 102))
    right.legend(frameon=False, loc="lower right")
    _tidy(left, right)
    figure.suptitle(title)
    return figure


def weight_bars(labels: Sequence[str], weights: np.ndarray, biases: np.ndarray) -> Figure:
    """Grouped bars: one group per weight component (and b), one bar per sweep point."""
    values = np.column_stack([weights, biases])  # (points, d + 1)
    names = [f"w{i}" for i in range(weights.shape[1])] + ["b"]
    figure = Figure(figsize=(max(6, 1.4 * len(names) + 2), 4), layout="constrained")
    axes = figure.subplots()
    width = 0.8 / len(labels)
    shades = colormaps["viridis"](np.linspace(0.1, 0.85, len(labels)))
    for i, label in enumerate(labels):
        axes.bar(
            np.arange(len(names)) + (i - (len(labels) - 1) / 2) * width,
            values[i],
            width,
            label=label,
            color=shades[i],
        )
    axes.axhline(0, color="black", lw=0.8)
    axes.set_xticks(np.arange(len(names)), names)
    axes.set(title="Learned parameters per sweep point", ylabel="value")
    axes.legend(frameon=False, fontsize="small")
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def _decision_panel(
    axes,
    decision: Callable[[np.ndarray], np.ndarray],
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    support: np.ndarray,
    resolution: int,
) -> None:
    both = np.vstack([X_train, X_test])
    low, high = both.min(axis=0) - 0.5, both.max(axis=0) + 0.5
    xs, ys = np.linspace(low[0], high[0], resolution), np.linspace(low[1], high[1], resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    values = decision(np.column_stack([grid_x.ravel(), grid_y.ravel()])).reshape(grid_x.shape)
    reach = max(float(np.percentile(np.abs(values), 98)), 1.0)
    axes.contourf(
        grid_x,
        grid_y,
        np.clip(values, -reach, reach),
        levels=np.linspace(-reach, reach, 21),
        cmap="RdBu",
        alpha=0.75,
    )
    axes.contour(
        grid_x,
        grid_y,
        values,
        levels=[-1, 0, 1],
        colors="k",
        linestyles=["--", "-", "--"],
        linewidths=[0.8, 1.6, 0.8],
    )
    colours = np.where(y_train > 0, POSITIVE, NEGATIVE)
    axes.scatter(X_train[:, 0], X_train[:, 1], c=colours, s=22, edgecolors="k", linewidths=0.6)
    axes.scatter(
        X_test[:, 0],
        X_test[:, 1],
        c=np.where(y_test > 0, POSITIVE, NEGATIVE),
        s=26,
        marker="^",
        edgecolors="white",
        linewidths=0.6,
        alpha=0.9,
    )
    axes.scatter(
        X_train[support, 0],
        X_train[support, 1],
        s=90,
        facecolors="none",
        edgecolors="black",
        linewidths=0.9,
    )
    axes.set(xlim=(low[0], high[0]), ylim=(low[1], high[1]), xticks=[], yticks=[])


def decision_grid(
    panels: list[list[dict | None]],
    row_labels: list[str],
    col_labels: list[str],
    resolution: int = 200,
    title: str = "",
) -> Figure:
    """A rows x columns grid of decision-function panels.

    Each panel is a dict with keys decision, X_train, y_train, X_test, y_test, support and
    caption, or None for a cell that has no model (drawn empty with its reason).
    """
    rows, cols = len(row_labels), len(col_labels)
    figure = Figure(figsize=(3.1 * cols, 3.0 * rows + 0.6), layout="constrained")
    grid = np.atleast_2d(figure.subplots(rows, cols, squeeze=False))
    for r in range(rows):
        for c in range(cols):
            axes, panel = grid[r, c], panels[r][c]
            if panel is None or panel.get("decision") is None:
                axes.text(
                    0.5,
                    0.5,
                    (panel or {}).get("caption", "no model"),
                    ha="center",
                    va="center",
                    transform=axes.transAxes,
                    wrap=True,
                )
                axes.set(xticks=[], yticks=[])
            else:
                _decision_panel(
                    axes,
                    panel["decision"],
                    panel["X_train"],
                    panel["y_train"],
                    panel["X_test"],
                    panel["y_test"],
                    panel["support"],
                    resolution,
                )
                axes.set_title(panel["caption"], fontsize="medium")
            if c == 0:
                axes.set_ylabel(row_labels[r], fontsize="large")
            if r == 0 and rows > 1:
                axes.set_title(f"{col_labels[c]}\n" + axes.get_title(), fontsize="medium")
    legend = "o train   ^ test   ○ support vector   — f(x)=0   -- f(x)=±1   blue: +1, red: -1"
    figure.suptitle(f"{title}\n{legend}" if title else legend, fontsize="medium")
    return figure


def training_curves(
    iteration_loss: Sequence[float],
    epochs: Sequence[int],
    train_accuracy: Sequence[float],
    val_accuracy: Sequence[float],
    title: str,
) -> Figure:
    """The classic two panels: loss per iteration (raw and smoothed) and accuracy per epoch."""
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    loss = np.asarray(iteration_loss)
    left.plot(np.arange(1, loss.size + 1), loss, color="#9ecae1", lw=0.6, label="per iteration")
    window = max(1, loss.size // 50)
    if window > 1:
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        left.plot(
            np.arange(window, loss.size + 1),
            smooth,
            color="#08519c",
            lw=1.6,
            label=f"moving mean ({window})",
        )
    left.set(xlabel="iteration", ylabel="training loss", title="Training loss", yscale="log")
    left.legend(frameon=False)
    right.plot(
        epochs, 100 * np.asarray(train_accuracy), "o-", color="#756bb1", label="train (sample)"
    )
    right.plot(epochs, 100 * np.asarray(val_accuracy), "s-", color="#31a354", label="validation")
    right.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy", xticks=list(epochs))
    right.legend(frameon=False, loc="lower right")
    _tidy(left, right)
    figure.suptitle(title)
    return figure


def confusion_matrix(matrix: np.ndarray, title: str) -> Figure:
    """Counts in each cell, colour by the row-normalized rate (true class = row)."""
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure = Figure(figsize=(6.4, 5.6), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    k = matrix.shape[0]
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                axes.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize="x-small",
                    color="white" if rates[i, j] > 0.5 else "black",
                )
    axes.set(xticks=range(k), yticks=range(k), xlabel="predicted", ylabel="true", title=title)
    figure.colorbar(image, ax=axes, label="fraction of the true class")
    return figure


def image_grid(
    images: np.ndarray,
    captions: Sequence[str],
    title: str,
    columns: int = 10,
    cmap: str = "gray_r",
    symmetric: bool = False,
) -> Figure:
    """Small images (n, 28, 28) in a grid, each with a caption; ``symmetric`` centres a
    diverging colour map on 0 per image (for weights)."""
    n = len(images)
    rows = max(1, int(np.ceil(n / columns)))
    figure = Figure(figsize=(1.25 * columns, 1.4 * rows + 0.5), layout="constrained")
    grid = np.atleast_2d(figure.subplots(rows, columns, squeeze=False))
    for index, axes in enumerate(grid.flat):
        axes.set_axis_off()
        if index >= n:
            continue
        image = images[index]
        if symmetric:
            reach = float(np.abs(image).max()) or 1.0
            axes.imshow(image, cmap=cmap, vmin=-reach, vmax=reach)
        else:
            axes.imshow(image, cmap=cmap)
        axes.set_title(captions[index], fontsize="x-small")
    figure.suptitle(title)
    return figure


def error_tradeoff(curves: dict[str, list[tuple[float, int, int, int, int]]]) -> Figure:
    """Per dataset: false positives and false negatives (train solid, test dashed) against
    the cost ratio C1/C0 on a log axis. Each curve entry is (ratio, train FP, train FN,
    test FP, test FN)."""
    figure = Figure(figsize=(3.4 * max(1, len(curves)), 3.6), layout="constrained")
    grid = np.atleast_1d(figure.subplots(1, max(1, len(curves)), squeeze=False)[0])
    for axes, (dataset, points) in zip(grid, curves.items()):
        ratio, train_fp, train_fn, test_fp, test_fn = (np.array(v) for v in zip(*points))
        axes.plot(ratio, train_fp, "o-", color=NEGATIVE, label="FP (train)")
        axes.plot(ratio, train_fn, "s-", color=POSITIVE, label="FN (train)")
        axes.plot(ratio, test_fp, "o--", color=NEGATIVE, alpha=0.5, label="FP (test)")
        axes.plot(ratio, test_fn, "s--", color=POSITIVE, alpha=0.5, label="FN (test)")
        axes.set(xscale="log", xlabel="C1 / C0", ylabel="errors", title=dataset)
        _tidy(axes)
    grid[0].legend(frameon=False, fontsize="small")
    figure.suptitle("False positives (−1 predicted +1) against false negatives as C1/C0 grows")
    return figure


def truncation_error(degrees: Sequence[int], errors: Sequence[float], poly_error: float) -> Figure:
    """Max error of the truncated Gaussian feature map against the truncation degree."""
    figure = Figure(figsize=(6.4, 4), layout="constrained")
    axes = figure.subplots()
    axes.semilogy(
        degrees,
        np.maximum(errors, 1e-17),
        "o-",
        color="#3182bd",
        label="Gaussian kernel, truncated map",
    )
    axes.axhline(
        max(poly_error, 1e-17), color="#e6550d", ls="--", label="(x·z + 1)², exact 6-feature map"
    )
    axes.set(
        xlabel="truncation degree P",
        ylabel="max |φ(x)·φ(z) − k(x, z)|",
        title="Explicit feature maps against their kernels",
    )
    axes.grid(alpha=0.3, which="both")
    axes.legend(frameon=False)
    return figure


def spectra(
    names: Sequence[str], eigenvalues: Sequence[np.ndarray], verdicts: Sequence[str]
) -> Figure:
    """Sorted Gram eigenvalues per construction on one fixed point set (symlog scale)."""
    columns = min(4, len(names))
    rows = int(np.ceil(len(names) / columns))
    figure = Figure(figsize=(3.3 * columns, 2.8 * rows), layout="constrained")
    grid = np.atleast_2d(figure.subplots(rows, columns, squeeze=False))
    for axes in grid.flat[len(names) :]:
        axes.set_axis_off()
    for axes, name, values, verdict in zip(grid.flat, names, eigenvalues, verdicts):
        colours = np.where(values < -1e-10 * np.abs(values).max(), NEGATIVE, POSITIVE)
        axes.bar(np.arange(values.size), values, color=colours)
        axes.set_yscale("symlog", linthresh=1e-3)
        axes.axhline(0, color="black", lw=0.6)
        axes.set_title(f"{name}\n{verdict}", fontsize="small")
        axes.set_xticks([])
    figure.suptitle("Gram eigenvalues on 25 points in 2-D (red: negative)")
    return figure


def knn_curves(curves: dict[str, tuple]) -> Figure:
    """Per dataset: train and validation accuracy against k, the chosen k and its test
    accuracy. Each entry is (ks, train_acc, val_acc, chosen_k, test_acc)."""
    figure = Figure(figsize=(3.4 * len(curves), 3.6), layout="constrained")
    grid = np.atleast_1d(figure.subplots(1, len(curves), squeeze=False)[0])
    for axes, (dataset, (ks, train, val, chosen, test)) in zip(grid, curves.items()):
        axes.plot(ks, 100 * np.asarray(train), "o-", color="#756bb1", label="train")
        axes.plot(ks, 100 * np.asarray(val), "s-", color="#31a354", label="validation")
        axes.axvline(chosen, color="#999999", ls=":", lw=1)
        axes.plot([chosen], [100 * test], "*", color="#e6550d", ms=12, label="test at chosen k")
        axes.set(xscale="log", xlabel="k", ylabel="accuracy (%)", title=dataset)
        _tidy(axes)
    grid[0].legend(frameon=False, fontsize="small")
    figure.suptitle("k-NN: k = 1 fits the training set perfectly; k is chosen on validation")
    return figure


def convolution_modes(
    signal: np.ndarray, kernel: np.ndarray, modes: dict[str, np.ndarray]
) -> Figure:
    """One panel per mode: the signal (grey steps) and that mode's output at the positions
    it covers; the three outputs agree where they overlap and differ in extent."""
    k = len(kernel)
    # index i of each mode is full[i + offset]; full[i] is centred at position i - (k - 1) / 2
    offsets = {"valid": k - 1, "same": (k - 1) // 2, "full": 0}
    colours = {"valid": "#e6550d", "same": "#31a354", "full": "#3182bd"}
    figure = Figure(figsize=(8, 6), layout="constrained")
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
        _tidy(axes)
    panels[-1].set_xlabel("position")
    figure.suptitle(f"Convolution modes with kernel {np.round(kernel, 3).tolist()}")
    return figure


def activation_panels(depth_norms: dict[str, np.ndarray]) -> Figure:
    """Three panels: sigmoid(kx) sharpening into a step; MSE and cross-entropy gradients
    against the logit for a sigmoid output with target 1; gradient norm through depth."""
    from kernelnet.nn.functional import sigmoid

    figure = Figure(figsize=(14, 4), layout="constrained")
    left, middle, right = figure.subplots(1, 3)
    x = np.linspace(-3, 3, 601)
    for k, shade in zip((1, 3, 10, 100), (0.35, 0.55, 0.75, 0.95)):
        left.plot(x, sigmoid(k * x), color=colormaps["viridis"](shade), label=f"k = {k}")
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
    _tidy(left, middle, right)
    return figure


def optimizer_trajectories(surfaces, paths: dict[str, dict[str, np.ndarray]]) -> Figure:
    """One contour plot per surface with every optimizer's path."""
    figure = Figure(figsize=(5.2 * len(surfaces), 4.6), layout="constrained")
    grid = np.atleast_1d(figure.subplots(1, len(surfaces), squeeze=False)[0])
    shades = colormaps["tab10"](np.arange(len(paths)))
    for axes, surface in zip(grid, surfaces):
        x0, x1, y0, y1 = surface.box
        gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
        values = surface.f(np.array([gx, gy]))
        axes.contourf(gx, gy, np.log1p(values - values.min()), levels=30, cmap="Greys", alpha=0.6)
        for colour, (name, by_surface) in zip(shades, paths.items()):
            path = by_surface[surface.name]
            axes.plot(path[:, 0], path[:, 1], "-", color=colour, lw=1.4, label=name)
            axes.plot(path[-1, 0], path[-1, 1], "o", color=colour, ms=4)
        axes.plot(*surface.start, "ks", ms=6)
        axes.plot(*surface.minimum, "r*", ms=12)
        axes.set(xlim=(x0, x1), ylim=(y0, y1), title=surface.name)
    grid[0].legend(frameon=False, fontsize="small", loc="lower left")
    figure.suptitle("Optimizer trajectories (square: start, star: minimum)")
    return figure


def loss_curves(curves: dict[str, np.ndarray]) -> Figure:
    figure = Figure(figsize=(7, 4), layout="constrained")
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
    _tidy(axes)
    return figure


def fit_grid(results) -> Figure:
    """Rows: targets; columns: activations; one line per network, the target dashed."""
    targets = list(dict.fromkeys(r.row["target"] for r in results))
    activations = list(dict.fromkeys(r.row["activation"] for r in results))
    nets = list(dict.fromkeys(r.row["architecture"] for r in results))
    shades = dict(zip(nets, colormaps["viridis"](np.linspace(0.1, 0.85, len(nets)))))
    figure = Figure(figsize=(3.2 * len(activations), 2.6 * len(targets)), layout="constrained")
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
    figure.suptitle("Fitted curves (target dashed, training points grey)")
    return figure


def siamese_panels(rows: list[dict], cos: np.ndarray, y: np.ndarray) -> Figure:
    """Loss and pair accuracy per epoch; histogram of final cosines, same vs different."""
    figure = Figure(figsize=(11, 3.8), layout="constrained")
    left, right = figure.subplots(1, 2)
    epochs = [r["epoch"] for r in rows]
    left.plot(epochs, [r["loss"] for r in rows], "o-", color="#333333", label="loss -y cos")
    twin = left.twinx()
    twin.plot(
        epochs,
        [100 * r["pair_accuracy"] for r in rows],
        "s-",
        color="#31a354",
        label="pair accuracy",
    )
    left.set(xlabel="epoch", ylabel="test loss", title="Training aligns the embeddings")
    twin.set_ylabel("pair accuracy (%)", color="#31a354")
    bins = np.linspace(-1, 1, 41)
    right.hist(cos[y > 0], bins=bins, alpha=0.6, color=POSITIVE, label="same digit")
    right.hist(cos[y < 0], bins=bins, alpha=0.6, color=NEGATIVE, label="different digits")
    right.set(xlabel="cos(z, z_hat)", ylabel="pairs", title="Test pairs after training")
    right.legend(frameon=False)
    _tidy(left, right)
    return figure
