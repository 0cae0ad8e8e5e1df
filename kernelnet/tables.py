"""Result tables: built by experiments, rendered as Markdown (files) and rich (terminal)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Table:
    """A titled table of already-formatted cells, plus an optional note under it."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""
    align: list[str] = field(default_factory=list)  # "left" | "right" per column

    def alignment(self, index: int) -> str:
        if index < len(self.align):
            return self.align[index]
        return "left" if index == 0 else "right"

    def to_markdown(self) -> str:
        """A ``### title`` and a pipe table; a ``|`` inside a cell is written ``\\|`` (GitHub's
        escape, which report_html.table_cells undoes), so it never splits the cell."""

        def line(cells: list[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        rule = [
            "---:" if self.alignment(i) == "right" else ":---" for i in range(len(self.columns))
        ]
        parts = [f"### {self.title}", "", line(self.columns), "| " + " | ".join(rule) + " |"]
        parts += [line(row) for row in self.rows]
        if self.note:
            parts += ["", self.note]
        return "\n".join(parts) + "\n"


def percent(fraction: float | None, digits: int = 1) -> str:
    """0.875 -> '87.5'; None (no value) -> '—'."""
    return "—" if fraction is None else f"{100 * fraction:.{digits}f}"


def number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"
