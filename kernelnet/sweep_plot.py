"""A picture of any sweep: one metric of a finished run against its swept values.

What is drawn depends on how many axes the grid has (an axis with one value is not swept):

- one axis: the metric as a line against the values, with error bars when the run has a
  spread column for it (``cv_std`` beside ``cv_mean``, else ``<metric>_std``);
- two axes: a heat map, the first axis down the rows and the second across, every cell
  annotated with its value;
- more: small multiples, one such heat map for each combination of the further axes' values,
  all on one colour scale.

Numeric values are placed at their values (cell edges half-way between neighbours), on a log
axis where they are log-spaced: every value > 0, the largest at least 4x the smallest and
the steps between neighbours' logarithms within a factor 1.5 of each other (0.1, 1, 10;
2^-5 ... 2^15; 0.1, 0.25, ..., 10). Other values (names, lists) are evenly spaced, in grid
order. The best cell is marked with a star: the largest value, or the smallest for a metric
whose name says it is an error, a loss or a time (``error``, ``loss``, ``seconds``); a tie
goes to the smaller spread where the run has one (``cv_std``: the rule of the run's summary),
then to the first cell in grid order.

The data come from the run's grid.json (the cells and their swept values, in grid order) and
metrics.csv (one row per cell, or per cell and epoch: then the row of the cell's last epoch).
The metric defaults to ``cv_mean`` when the run has it, else the experiment's headline
(:data:`HEADLINES`), else the first numeric column. matplotlib (object API, Agg) is imported
only when a figure is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kernelnet import plotting
from kernelnet.config.sweep import format_value
from kernelnet.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from kernelnet.runs import RunDir

# The metric a sweep of each experiment is judged by when no --metric is given and the run
# has no cv_mean; an experiment not named here falls back on the first of these present.
HEADLINES = {
    "kernel-table": "test_accuracy",
    "asym-svm": "test_accuracy",
    "svm-primal": "test_accuracy",
    "knn": "test_accuracy",
    "mlp": "val_accuracy",
    "mnist": "test_accuracy",
    "mnist-table": "test_error",
}
FALLBACK_HEADLINES = ("test_accuracy", "accuracy", "val_accuracy", "test_error", "passed")
NOT_METRICS = {"cell", "epoch", "status"}  # columns that identify a row, never a metric
LOWER_IS_BETTER = ("error", "loss", "seconds")
MAX_PANELS = 64  # small multiples beyond this are unreadable; say so instead
BEST_GID, VALUES_GID = "best", "values"  # what the tests (and users) find the artists by
BEST_COLOUR = "#d7301f"  # red: seen on every colour of viridis


class SweepPlotError(ConfigError):
    """A run that cannot be drawn as asked (nothing swept, no such metric): exit 2."""


@dataclass(frozen=True)
class Axis:
    label: str  # the axis label in cell ids and metrics.csv (C, gamma, dataset)
    key: str  # its dotted config key (svm.C)
    values: tuple[Any, ...]  # distinct values, in grid order

    @property
    def numeric(self) -> bool:
        return all(_is_number(v) for v in self.values)

    @property
    def log_spaced(self) -> bool:
        return self.numeric and is_log_spaced([float(v) for v in self.values])


@dataclass(frozen=True)
class Sweep:
    """A run's metric over its swept axes: ``values[i]`` and ``spread[i]`` (NaN where a
    cell has no number) belong to ``cells[i]``, whose swept values are ``points[i]``."""

    run_name: str
    experiment: str
    metric: str
    axes: tuple[Axis, ...]
    cells: tuple[str, ...]
    points: tuple[tuple[Any, ...], ...]  # per cell, its value on each axis (axes order)
    values: np.ndarray  # (n_cells,) float64
    spread: np.ndarray | None  # (n_cells,) or None without a spread column
    lower_is_better: bool

    @property
    def best(self) -> int:
        """Index of the best cell; among equal values the smaller spread (where the run has
        one: the cell :func:`kernelnet.cv.best_by_cv` names in the summary, when many cells
        of a C x gamma grid tie), then the first in grid order."""
        sign = 1.0 if self.lower_is_better else -1.0

        def rank(index: int) -> tuple[float, float, int]:
            spread = math.nan if self.spread is None else float(self.spread[index])
            return (
                sign * float(self.values[index]),
                spread if math.isfinite(spread) else math.inf,
                index,
            )

        return min(np.flatnonzero(np.isfinite(self.values)).tolist(), key=rank)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_log_spaced(values: Sequence[float]) -> bool:
    """True for positive values spanning at least 4x in roughly geometric steps."""
    ordered = sorted(set(values))
    if len(ordered) < 2 or ordered[0] <= 0 or ordered[-1] / ordered[0] < 4:
        return False
    steps = np.diff(np.log(ordered))
    return bool(steps.max() / steps.min() <= 1.5)


def _number(text: str) -> float:
    """A metrics.csv value as a float; NaN for an empty, non-numeric or non-finite one."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _axes(grid: dict[str, Any], where: str) -> tuple[list[Axis], list[dict[str, Any]]]:
    """The swept axes (two or more values) of a run's grid.json and its cells."""
    cells = grid.get("cells")
    if not isinstance(cells, list) or not all(
        isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("params"), dict)
        for c in cells
    ):
        raise SweepPlotError(f"{where}/grid.json: damaged (no list of cells with ids and params)")
    labels = list(dict.fromkeys(label for c in cells for label in c["params"]))
    axes = []
    for label in labels:
        values = list(dict.fromkeys(_hashable(c["params"].get(label)) for c in cells))
        keys = [c.get("keys", {}).get(label) for c in cells if isinstance(c.get("keys"), dict)]
        if len(values) > 1:
            key = next((k for k in keys if isinstance(k, str)), label)
            axes.append(Axis(label, key, tuple(values)))
    return axes, cells


def _last_rows(rows: list[dict[str, str]], metric: str | None = None) -> dict[str, dict[str, str]]:
    """One metrics row per cell: the row of its largest epoch, or its last row when the rows
    have no epoch; with ``metric``, among the rows that have a number in it (knn's test
    accuracy and CV score sit on the chosen k's row only)."""
    chosen: dict[str, dict[str, str]] = {}
    for row in rows:
        if metric is not None and math.isnan(_number(row.get(metric, ""))):
            continue
        cell = row.get("cell", "")
        previous = chosen.get(cell)
        # NaN (no epoch) compares False: the later row stands
        if previous is None or not _number(row.get("epoch", "")) < _number(
            previous.get("epoch", "")
        ):
            chosen[cell] = row
    return chosen


def metric_columns(rows: list[dict[str, str]], axes: Sequence[Axis]) -> list[str]:
    """The columns that hold a number in at least one row (swept columns and row keys
    aside): the metrics a sweep can be drawn by."""
    skip = NOT_METRICS | {a.label for a in axes}
    columns = list(dict.fromkeys(column for row in rows for column in row))
    return [
        c
        for c in columns
        if c not in skip and any(not math.isnan(_number(row.get(c, ""))) for row in rows)
    ]


def _spread_column(metric: str, columns: Sequence[str]) -> str | None:
    candidates = ["cv_std"] if metric == "cv_mean" else []
    candidates += [f"{metric}_std", f"{metric.removesuffix('_mean')}_std"]
    return next((c for c in candidates if c in columns and c != metric), None)


def default_metric(experiment: str, numeric: Sequence[str]) -> str | None:
    """``cv_mean`` if the run has it, else the experiment's headline, else the first usual
    headline present, else the first numeric column."""
    for name in ("cv_mean", HEADLINES.get(experiment), *FALLBACK_HEADLINES):
        if name in numeric:
            return name
    return numeric[0] if numeric else None


def load_sweep(run: RunDir, metric: str | None = None) -> Sweep:
    """The sweep of a finished (or partly finished) run; SweepPlotError, one line, when
    nothing was swept, the metric is unknown or not numeric, or no cell has a number."""
    name = run.path.name
    axes, cells = _axes(run.read_grid(), str(run.path))
    if not axes:
        raise SweepPlotError(f"nothing was swept in {name}")
    rows = run.read_metrics()
    if not rows:
        raise SweepPlotError(f"{name}: metrics.csv has no rows; nothing to plot")
    experiment = str(run.manifest.get("experiment", ""))
    numeric = metric_columns(rows, axes)
    columns = list(dict.fromkeys(column for row in rows for column in row))
    if metric is None:
        metric = default_metric(experiment, numeric)
        if metric is None:
            raise SweepPlotError(f"{name}: metrics.csv has no numeric column to plot")
    elif metric not in numeric:
        what = "is not numeric" if metric in columns else "is not a metric of this run"
        raise SweepPlotError(
            f"--metric {metric!r} {what}; the metrics are: {', '.join(numeric) or '(none)'}"
        )
    spread_column = _spread_column(metric, numeric)
    last = _last_rows(rows, metric)
    ids = [c["id"] for c in cells]
    values = np.array([_number(last.get(i, {}).get(metric, "")) for i in ids])
    if not np.isfinite(values).any():
        raise SweepPlotError(f"{name}: no cell has a number in {metric}")
    spread = None
    if spread_column is not None:
        spread = np.array([_number(last.get(i, {}).get(spread_column, "")) for i in ids])
    points = tuple(tuple(_hashable(c["params"].get(a.label)) for a in axes) for c in cells)
    return Sweep(
        name,
        experiment,
        metric,
        tuple(axes),
        tuple(ids),
        points,
        values,
        spread,
        any(word in metric for word in LOWER_IS_BETTER),
    )


# -- drawing ---------------------------------------------------------------------------


def _shown(value: Any) -> str:
    return format_value(list(value) if isinstance(value, tuple) else value)


def _annotation(value: float, sweep: Sweep) -> str:
    """A value's text: three decimals when every value of the sweep is a fraction (an
    accuracy: 0.940 beside 0.941 reads as the same precision, where 3 significant digits
    would print 0.94), else three significant digits."""
    if not math.isfinite(value):
        return "—"
    finite = sweep.values[np.isfinite(sweep.values)]
    fractions = bool(np.all((finite >= 0) & (finite <= 1)))
    return f"{value:.3f}" if fractions else f"{value:.3g}"


def _positions(axis: Axis) -> tuple[np.ndarray, np.ndarray]:
    """Where each value of ``axis`` sits and the edges of its heat-map cells: at the
    values (half-way edges, geometric on a log axis), or at 0..n-1 for names."""
    if not axis.numeric:
        centres = np.arange(len(axis.values), dtype=float)
        return centres, np.arange(len(axis.values) + 1, dtype=float) - 0.5
    centres = np.array([float(v) for v in axis.values])
    ordered = np.sort(centres)
    if axis.log_spaced:
        logs = np.log(ordered)
        steps = np.diff(logs)
        edges = np.exp(np.concatenate([[logs[0] - steps[0] / 2], logs[:-1] + steps / 2,
                                       [logs[-1] + steps[-1] / 2]]))  # fmt: skip
    else:
        steps = np.diff(ordered)
        edges = np.concatenate(
            [[ordered[0] - steps[0] / 2], ordered[:-1] + steps / 2, [ordered[-1] + steps[-1] / 2]]
        )
    return centres, edges


def _tick_labels(axis: Axis) -> list[str]:
    """Each value's text; ``2^k`` for a log-spaced axis of powers of two spanning 2^6 or
    more (libsvm's C and gamma grids), where the decimals would be unreadable."""
    if axis.log_spaced:
        exponents = [math.log2(float(v)) for v in axis.values]
        span = max(exponents) - min(exponents)
        if span >= 6 and all(e == int(e) for e in exponents):
            return [f"$2^{{{int(e)}}}$" for e in exponents]
    return [_shown(v) for v in axis.values]


def _set_ticks(axes: Axes, axis: Axis, which: str) -> None:
    centres, _ = _positions(axis)
    set_scale = axes.set_xscale if which == "x" else axes.set_yscale
    set_ticks = axes.set_xticks if which == "x" else axes.set_yticks
    if axis.log_spaced:
        set_scale("log")
    set_ticks(centres, _tick_labels(axis), minor=False)
    if axis.numeric:
        set_ticks([], minor=True)
    (axes.set_xlabel if which == "x" else axes.set_ylabel)(axis.key)


def _line(axes: Axes, sweep: Sweep) -> None:
    axis = sweep.axes[0]
    centres, _ = _positions(axis)
    x = np.array([centres[axis.values.index(p[0])] for p in sweep.points])
    order = np.argsort(x, kind="stable")
    if sweep.spread is not None:
        container = axes.errorbar(
            x[order], sweep.values[order], yerr=sweep.spread[order],
            fmt="o-" if axis.numeric else "o", color=plotting.POSITIVE,
            capsize=3, label=sweep.metric,
        )  # fmt: skip
        container.lines[0].set_gid(VALUES_GID)
    else:  # names are not a scale: points, not a line through them
        style = "o-" if axis.numeric else "o"
        (line,) = axes.plot(x[order], sweep.values[order], style, color=plotting.POSITIVE)
        line.set_gid(VALUES_GID)
    best = sweep.best
    (star,) = axes.plot([x[best]], [sweep.values[best]], "*", color=BEST_COLOUR, markersize=16,
                        markeredgecolor="black", zorder=5, label="best")  # fmt: skip
    star.set_gid(BEST_GID)
    axes.annotate(
        f"best {_annotation(sweep.values[best], sweep)}", (x[best], sweep.values[best]),
        textcoords="offset points", xytext=(10, 8), ha="left", fontsize="small",
    )  # fmt: skip
    _set_ticks(axes, axis, "x")
    axes.set_ylabel(sweep.metric + (" (± std)" if sweep.spread is not None else ""))
    plotting.tidy(axes)


def _heat_map(
    axes: Axes, sweep: Sweep, members: list[int], vmin: float, vmax: float, colours: Any
) -> Any:
    """One heat map of the cells ``members`` (indices into the sweep) over the first two
    axes; returns the mesh (for the colour bar)."""
    rows_axis, columns_axis = sweep.axes[0], sweep.axes[1]
    y_centres, y_edges = _positions(rows_axis)
    x_centres, x_edges = _positions(columns_axis)
    y_order, x_order = np.argsort(y_centres), np.argsort(x_centres)
    grid = np.full((len(rows_axis.values), len(columns_axis.values)), np.nan)
    for index in members:
        i = rows_axis.values.index(sweep.points[index][0])
        j = columns_axis.values.index(sweep.points[index][1])
        grid[i, j] = sweep.values[index]
    # pcolormesh wants increasing edges: lay the grid out in sorted order of the positions
    shown = grid[np.ix_(y_order, x_order)]
    mesh = axes.pcolormesh(
        x_edges, y_edges, np.ma.masked_invalid(shown), cmap=colours, vmin=vmin, vmax=vmax,
        shading="flat",
    )  # fmt: skip
    mesh.set_gid(VALUES_GID)
    middle = (vmin + vmax) / 2
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            value = grid[i, j]
            dark = math.isfinite(value) and (value < middle) != sweep.lower_is_better
            axes.text(
                x_centres[j], y_centres[i], _annotation(value, sweep), ha="center", va="center",
                fontsize="x-small", color="white" if dark else "black",
            )  # fmt: skip
    best = sweep.best
    if best in members:
        i = rows_axis.values.index(sweep.points[best][0])
        j = columns_axis.values.index(sweep.points[best][1])
        axes.add_patch(_outline(x_edges, y_edges, x_order, y_order, i, j))
    _set_ticks(axes, columns_axis, "x")
    _set_ticks(axes, rows_axis, "y")
    return mesh


def _outline(x_edges, y_edges, x_order, y_order, i: int, j: int):
    """A thick frame around heat-map cell (i, j) (grid order), the best cell's mark."""
    from matplotlib.patches import Rectangle

    column = int(np.flatnonzero(x_order == j)[0])
    row = int(np.flatnonzero(y_order == i)[0])
    x0, x1 = x_edges[column], x_edges[column + 1]
    y0, y1 = y_edges[row], y_edges[row + 1]
    patch = Rectangle(
        (x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=BEST_COLOUR, linewidth=3, clip_on=False
    )
    patch.set_gid(BEST_GID)
    return patch


def _panels(sweep: Sweep) -> list[tuple[str, list[int]]]:
    """(title, member cells) per combination of the axes beyond the first two."""
    further = sweep.axes[2:]
    groups: dict[tuple, list[int]] = {}
    for index, point in enumerate(sweep.points):
        groups.setdefault(point[2:], []).append(index)
    return [
        (", ".join(f"{a.key}={_shown(v)}" for a, v in zip(further, key)), members)
        for key, members in groups.items()
    ]


def _best_point(sweep: Sweep) -> str:
    """The best cell's id, and its values as the ticks show them where they differ (2^k for
    libsvm's C and gamma: "gamma=0.03125,C=2 (gamma 2^-5, C 2^1)")."""
    shown = []
    for axis, value in zip(sweep.axes, sweep.points[sweep.best]):
        tick = _tick_labels(axis)[axis.values.index(value)]
        if tick != _shown(value):
            shown.append(f"{axis.label} {tick}")
    cell = sweep.cells[sweep.best]
    return f"{cell} ({', '.join(shown)})" if shown else cell


def draw(sweep: Sweep) -> Figure:
    """The figure of a sweep (see the module docstring for its kind)."""
    direction = "lower is better" if sweep.lower_is_better else "higher is better"
    title = f"{sweep.metric} ({direction})\n{sweep.experiment or 'run'} {sweep.run_name}"
    best_text = f"best: {_best_point(sweep)}, {_annotation(sweep.values[sweep.best], sweep)}"
    if len(sweep.axes) == 1:
        fig = plotting.figure((max(5.0, 0.6 * len(sweep.axes[0].values) + 2), 4.0))
        _line(fig.subplots(), sweep)
        fig.suptitle(f"{title}\n{best_text} (★)", fontsize="small")
        return fig
    panels = _panels(sweep) if len(sweep.axes) > 2 else [("", list(range(len(sweep.cells))))]
    if len(panels) > MAX_PANELS:
        raise SweepPlotError(
            f"{sweep.run_name}: {len(panels)} panels (one per value of "
            f"{', '.join(a.key for a in sweep.axes[2:])}) is more than {MAX_PANELS} to draw"
        )
    columns = math.ceil(math.sqrt(len(panels)))
    rows = math.ceil(len(panels) / columns)
    n_x, n_y = len(sweep.axes[1].values), len(sweep.axes[0].values)
    cell_w, cell_h = max(3.6, 0.6 * n_x + 1.6), max(2.8, 0.42 * n_y + 1.4)
    fig = plotting.figure((cell_w * columns + 1.2, cell_h * rows + 0.9))
    grid = np.atleast_2d(fig.subplots(rows, columns, squeeze=False))
    finite = sweep.values[np.isfinite(sweep.values)]
    vmin, vmax = float(finite.min()), float(finite.max())
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    colours = plotting.colormap("viridis_r" if sweep.lower_is_better else "viridis")
    mesh = None
    for axes, (panel_title, members) in zip(grid.flat, panels):
        mesh = _heat_map(axes, sweep, members, vmin, vmax, colours)
        if panel_title:
            axes.set_title(panel_title, fontsize="small")
    for axes in list(grid.flat)[len(panels) :]:
        axes.set_visible(False)
    fig.colorbar(mesh, ax=grid.ravel().tolist(), label=sweep.metric, shrink=0.9)
    fig.suptitle(f"{title}\n{best_text} (framed)", fontsize="small")
    return fig


# -- writing ----------------------------------------------------------------------------


def figure_name(metric: str) -> str:
    return f"plots/sweep_{metric}.png"


def plot_run(run: RunDir, metric: str | None = None, out: Path | None = None) -> Path:
    """Draw ``run``'s sweep of ``metric`` into ``out`` (a file, or a folder to hold
    ``sweep_<metric>.png``; default: the run's ``plots/``), written atomically; the path
    written. A place that cannot be written is one SweepPlotError line."""
    sweep = load_sweep(run, metric)
    fig = draw(sweep)

    def write(handle):
        fig.savefig(handle, format="png", dpi=120)

    from kernelnet.safe_write import write_atomic

    target = run.file(figure_name(sweep.metric)) if out is None else Path(out)
    if target.is_dir():
        target = target / Path(figure_name(sweep.metric)).name
    try:
        if out is None:
            return run.write_with(figure_name(sweep.metric), write)
        write_atomic(target, write)
    except OSError as exc:
        raise SweepPlotError(f"{target}: cannot write the figure ({exc.strerror or exc})") from None
    return target


NOT_SWEEPS = ("grade",)  # cells that are submissions, not settings: nothing to compare


def add_sweep_figure(run: RunDir) -> Path | None:
    """The hook for the runner or the report: when ``run`` sweeps something and has a
    number to draw, add its sweep figure (default metric) to the run's plots and return
    its path; None, silently, when there is nothing to draw (nothing swept, no numeric
    metric, a grading run). Call it only when figures are wanted (``plots``)."""
    if run.manifest.get("experiment") in NOT_SWEEPS:
        return None
    try:
        return plot_run(run)
    except SweepPlotError:
        return None
