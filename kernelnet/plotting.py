"""The pieces every figure shares: a new figure, the house style, saving, and the decision
panel drawn by kernel-table and asym-svm. Figures used by one experiment live with that
experiment.

Uses matplotlib's object API (``Figure``), never pyplot, so no global backend or figure
state is touched; PNGs render with Agg. matplotlib is imported only when a figure is made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from kernelnet.runs import RunDir

NEGATIVE, POSITIVE = "#d7301f", "#2166ac"  # class colours: red for -1, blue for +1


def figure(size: tuple[float, float], layout: str | None = "constrained") -> Figure:
    """A new figure, with constrained layout unless the caller places its axes itself
    (constrained layout lays out twice: worth it for ticks and legends, not for images)."""
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout=layout)


def colormap(name: str):
    from matplotlib import colormaps

    return colormaps[name]


def tidy(*axes_list) -> None:
    """Light grid, no top/right frame."""
    for axes in axes_list:
        axes.grid(alpha=0.3)
        axes.spines[["top", "right"]].set_visible(False)


def save(run: RunDir, relative: str, figure: Figure, dpi: int = 120) -> None:
    """Write ``figure`` atomically into the run folder."""
    run.write_with(relative, lambda handle: figure.savefig(handle, format="png", dpi=dpi))


@dataclass(frozen=True)
class DecisionPanel:
    """What one decision-function panel shows, as data (a cell computes it where it runs
    and stores it; the report only draws). ``values`` is f on a ``resolution`` x
    ``resolution`` grid spanning ``extent`` = (x0, x1, y0, y1)."""

    values: np.ndarray  # (resolution, resolution), rows along y
    extent: tuple[float, float, float, float]
    X_train: np.ndarray  # (n_train, 2)
    y_train: np.ndarray  # (n_train,) in {-1, +1}
    X_test: np.ndarray
    y_test: np.ndarray
    support: np.ndarray  # indices into X_train
    caption: str

    @classmethod
    def compute(
        cls,
        decision: Callable[[np.ndarray], np.ndarray],
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_test: np.ndarray,
        y_test: np.ndarray,
        support: np.ndarray,
        resolution: int,
        caption: str,
    ) -> DecisionPanel:
        both = np.vstack([X_train, X_test])
        low, high = both.min(axis=0) - 0.5, both.max(axis=0) + 0.5
        xs = np.linspace(low[0], high[0], resolution)
        ys = np.linspace(low[1], high[1], resolution)
        grid_x, grid_y = np.meshgrid(xs, ys)
        values = decision(np.column_stack([grid_x.ravel(), grid_y.ravel()]))
        extent = (float(low[0]), float(high[0]), float(low[1]), float(high[1]))
        return cls(
            values.reshape(grid_x.shape), extent, X_train, y_train, X_test, y_test, support, caption
        )

    def to_artifact(self) -> dict[str, Any]:
        return {
            "values": self.values,
            "extent": list(self.extent),
            "X_train": self.X_train,
            "y_train": self.y_train,
            "X_test": self.X_test,
            "y_test": self.y_test,
            "support": self.support,
            "caption": self.caption,
        }

    @classmethod
    def from_artifact(cls, data: dict[str, Any]) -> DecisionPanel:
        return cls(
            np.asarray(data["values"]),
            tuple(data["extent"]),
            np.asarray(data["X_train"]),
            np.asarray(data["y_train"]),
            np.asarray(data["X_test"]),
            np.asarray(data["y_test"]),
            np.asarray(data["support"], dtype=np.int64),
            str(data["caption"]),
        )

    def draw(self, axes) -> None:
        x0, x1, y0, y1 = self.extent
        rows, cols = self.values.shape
        grid_x, grid_y = np.meshgrid(np.linspace(x0, x1, cols), np.linspace(y0, y1, rows))
        reach = max(float(np.percentile(np.abs(self.values), 98)), 1.0)
        axes.contourf(
            grid_x,
            grid_y,
            np.clip(self.values, -reach, reach),
            levels=np.linspace(-reach, reach, 21),
            cmap="RdBu",
            alpha=0.75,
        )
        axes.contour(
            grid_x,
            grid_y,
            self.values,
            levels=[-1, 0, 1],
            colors="k",
            linestyles=["--", "-", "--"],
            linewidths=[0.8, 1.6, 0.8],
        )
        X, y = self.X_train, self.y_train
        colours = np.where(y > 0, POSITIVE, NEGATIVE)
        axes.scatter(X[:, 0], X[:, 1], c=colours, s=22, edgecolors="k", linewidths=0.6)
        axes.scatter(
            self.X_test[:, 0],
            self.X_test[:, 1],
            c=np.where(self.y_test > 0, POSITIVE, NEGATIVE),
            s=26,
            marker="^",
            edgecolors="white",
            linewidths=0.6,
            alpha=0.9,
        )
        axes.scatter(
            X[self.support, 0],
            X[self.support, 1],
            s=90,
            facecolors="none",
            edgecolors="black",
            linewidths=0.9,
        )
        axes.set(xlim=(x0, x1), ylim=(y0, y1), xticks=[], yticks=[])
        axes.set_title(self.caption, fontsize="medium")


def panel_of(result: Any) -> DecisionPanel | str:
    """A cell result's stored ``panel`` artifact, or what to write in its place (None: the
    cell is not in this run)."""
    if result is None:
        return "not in this run"
    if not result.ok:
        return f"{result.status}:\n{result.error[:80]}"
    return DecisionPanel.from_artifact(result.artifacts["panel"])


def decision_grid(
    panels: list[list[DecisionPanel | str]],
    row_labels: list[str],
    col_labels: list[str],
    title: str = "",
) -> Figure:
    """A rows x columns grid of decision panels; a string stands for a cell without a
    model and is written in its panel (e.g. "failed: ...")."""
    rows, cols = len(row_labels), len(col_labels)
    shown = figure((3.1 * cols, 3.0 * rows + 0.6))
    grid = np.atleast_2d(shown.subplots(rows, cols, squeeze=False))
    for r in range(rows):
        for c in range(cols):
            axes, panel = grid[r, c], panels[r][c]
            if isinstance(panel, DecisionPanel):
                panel.draw(axes)
            else:
                axes.text(
                    0.5, 0.5, panel, ha="center", va="center", transform=axes.transAxes, wrap=True
                )
                axes.set(xticks=[], yticks=[])
            if c == 0:
                axes.set_ylabel(row_labels[r], fontsize="large")
            if r == 0 and rows > 1:
                axes.set_title(f"{col_labels[c]}\n" + axes.get_title(), fontsize="medium")
    legend = "o train   ^ test   ○ support vector   — f(x)=0   -- f(x)=±1   blue: +1, red: -1"
    shown.suptitle(f"{title}\n{legend}" if title else legend, fontsize="medium")
    return shown
