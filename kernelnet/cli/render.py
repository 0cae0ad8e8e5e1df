"""Terminal output: rich tables on stdout, progress and diagnostics on stderr."""

import contextlib
import logging
import sys
import time
from collections.abc import Iterator

from rich import box
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable
from rich.text import Text

from kernelnet.experiments.base import CellResult
from kernelnet.tables import Table


def stdout_console() -> Console:
    # Off a terminal (pipes, files, CI) keep tables wide enough not to wrap numbers.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


NOTE_WIDTH = 100  # a table's note wraps here, not at a narrow table's edge


def rich_table(table: Table) -> RichTable:
    """Cells and titles are shown literally (``[x>0]`` is not rich markup); the note is
    printed under the table by :func:`print_tables`."""
    shown = RichTable(
        title=escape(table.title),
        box=box.SIMPLE_HEAVY,
        title_style="bold",
        min_width=min(len(table.title) + 4, 120),  # a title never wraps above a narrow table
    )
    for index, column in enumerate(table.columns):
        shown.add_column(escape(column), justify=table.alignment(index), overflow="fold")
    for row in table.rows:
        shown.add_row(*(escape(cell) for cell in row))
    return shown


def say(label: str, style: str, message: str) -> None:
    """One line on stderr: a styled label, then the message exactly as written (brackets in
    it are text, not markup)."""
    line = Text.assemble((label, style), " ", message)
    stderr_console().print(line, highlight=False, soft_wrap=True)


def print_tables(tables: list[Table], console: Console) -> None:
    """Each table, then its note as a paragraph as wide as the table or NOTE_WIDTH columns,
    whichever is wider (a note under a three-column table does not wrap every few words)."""
    for table in tables:
        shown = rich_table(table)
        console.print(shown)
        if table.note:
            width = max(console.measure(shown).maximum, NOTE_WIDTH)
            console.print(Text(table.note), width=min(width, console.width))
            console.print()


class _OneLine(logging.Formatter):
    """``warning: message``: one line per record, no traceback (that goes to log.txt)."""

    def format(self, record: logging.LogRecord) -> str:
        text = " ".join(record.getMessage().split("\n")[0].split())
        return f"{record.levelname.lower()}: {text}"


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (progress bars redirect it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


@contextlib.contextmanager
def diagnostics(quiet: bool, debug: bool) -> Iterator[None]:
    """Route kernelnet's log records (warnings, or everything with --debug) to stderr:
    one plain line each, or rich records with tracebacks under --debug."""
    logger = logging.getLogger("kernelnet")
    if debug:
        handler: logging.Handler = RichHandler(
            console=stderr_console(), show_path=True, show_time=False, rich_tracebacks=True
        )
        handler.setLevel(logging.DEBUG)
    else:
        handler = _CurrentStderr()
        handler.setFormatter(_OneLine())
        handler.setLevel(logging.ERROR if quiet else logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


class BarProgress:
    """Two bars on stderr: grid cells, and the steps inside the current cell."""

    def __init__(self, progress: Progress, title: str):
        self._progress = progress
        self._cells = progress.add_task(title, total=None, cell="")
        self._steps = None

    def cell_done(self, done: int, total: int, result: CellResult) -> None:
        mark = "" if result.ok else f" [red]{result.status}[/]"
        self._progress.update(self._cells, completed=done, total=total, cell=result.cell.id + mark)
        if self._steps is not None:
            self._progress.remove_task(self._steps)
            self._steps = None

    def step(self, done: int, total: int, label: str) -> None:
        if self._steps is None:
            self._steps = self._progress.add_task("  steps", total=total, cell=label)
        self._progress.update(self._steps, completed=done, total=total, cell=label)


class LineProgress:
    """Off a terminal: one line per finished cell of a grid (``svm-primal [3/60] C=1
    complete (2.1 s)``, the time since the run started), none for the steps inside a cell
    nor for a one-cell run."""

    def __init__(self, title: str):
        self._title = title
        self._started = time.monotonic()

    def cell_done(self, done: int, total: int, result: CellResult) -> None:
        if total < 2:
            return
        seconds = time.monotonic() - self._started
        error = f": {result.error}" if result.error else ""
        sys.stderr.write(
            f"{self._title} [{done}/{total}] {result.cell.id} {result.status}{error} "
            f"({seconds:.1f} s)\n"
        )
        sys.stderr.flush()

    def step(self, done: int, total: int, label: str) -> None:
        return None


@contextlib.contextmanager
def cell_progress(title: str, enabled: bool) -> Iterator[BarProgress | LineProgress | None]:
    """Progress on stderr: bars on a terminal, a line per finished cell elsewhere (a log
    file, CI, a pipe), nothing when not ``enabled`` (--quiet)."""
    console = stderr_console()
    if not enabled:
        yield None
        return
    if not console.is_terminal:
        yield LineProgress(title)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[cell]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield BarProgress(progress, title)
