"""kernelnet in a Jupyter notebook: a progress display while ``kernelnet.run`` works, and a
run shown as an HTML table of its cells and metrics with its figures inline.

Nothing here imports IPython unless a notebook kernel is already running it, so the library
and the command line never pay for it. The progress display is one output area updated in
place (IPython's ``display_id``): the cells done out of the grid, the last finished cell and
its status, the step inside the running cell. A run's HTML is built from the run folder
alone (``Run._repr_html_``), every text escaped, figures embedded as data (bounded reads).
"""

from __future__ import annotations

import html
import sys
import time
from pathlib import Path
from typing import Any

MAX_FIGURES = 8  # inline; the rest are named
MAX_ROWS = 50  # metrics rows shown; the rest are in metrics.csv
MAX_COLUMNS = 12
STEP_SECONDS = 0.5  # the display is redrawn at most this often for steps inside a cell


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (an IPython shell with a kernel)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class NotebookProgress:
    """The runner's progress (cells done, steps inside a cell) as one updating output."""

    def __init__(self, experiment: str):
        from IPython.display import HTML, display

        self._html = HTML
        self._experiment = experiment
        self._started = time.monotonic()
        self._last_step = 0.0
        self._done, self._total, self._last = 0, 0, ""
        self._handle = display(HTML(self._render("starting")), display_id=True)

    def _render(self, step: str) -> str:
        fraction = self._done / self._total if self._total else 0.0
        seconds = time.monotonic() - self._started
        cells = f"{self._done}/{self._total} cells" if self._total else "cells: —"
        parts = [
            f"<b>{html.escape(self._experiment)}</b>",
            f'<progress value="{fraction:.3f}" max="1" style="width:14em"></progress>',
            html.escape(cells),
            html.escape(self._last),
            f"<i>{html.escape(step)}</i>" if step else "",
            f"{seconds:.1f} s",
        ]
        return (
            '<div class="kernelnet-progress">' + " &nbsp; ".join(p for p in parts if p) + "</div>"
        )

    def cell_done(self, done: int, total: int, result: Any) -> None:
        self._done, self._total = done, total
        status = "" if result.ok else f" {result.status}"
        self._last = f"{result.cell.id}{status}"
        self._handle.update(self._html(self._render("")))

    def step(self, done: int, total: int, label: str) -> None:
        now = time.monotonic()
        if now - self._last_step < STEP_SECONDS and done < total:
            return
        self._last_step = now
        self._handle.update(self._html(self._render(f"{label} ({done}/{total})")))


def run_html(run: Any) -> str:
    """A run as HTML: what it is, its cells' metrics, its figures (``Run._repr_html_``)."""
    from kernelnet.report_html import embedded_png

    folder = run._dir
    head = (
        f"<p><b>{html.escape(run.experiment)}</b> run <code>{html.escape(str(run.path))}</code>"
        f" — <b>{html.escape(run.status)}</b></p>"
    )
    rows = folder.read_metrics() if folder.file("metrics.csv").is_file() else []
    columns = list(dict.fromkeys(k for row in rows for k in row))[:MAX_COLUMNS]
    table = ""
    if rows:
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(row.get(c) or '')}</td>" for c in columns) + "</tr>"
            for row in rows[:MAX_ROWS]
        )
        more = len(rows) - MAX_ROWS
        table = (
            "<table><thead><tr>"
            + "".join(f"<th>{html.escape(c)}</th>" for c in columns)
            + f"</tr></thead><tbody>{body}</tbody></table>"
            + (f"<p>{more} more rows in metrics.csv</p>" if more > 0 else "")
        )
    where = Path(folder.file("plots"))
    plots = sorted(where.rglob("*.png")) if where.is_dir() else []
    figures = "".join(embedded_png(p, folder.path) for p in plots[:MAX_FIGURES])
    if len(plots) > MAX_FIGURES:
        rest = len(plots) - MAX_FIGURES
        figures += f"<p>{rest} more figures in {html.escape(str(where))}</p>"
    return f'<div class="kernelnet-run">{head}{table}{figures}</div>'
