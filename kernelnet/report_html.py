"""A self-contained HTML page for the reproduce report: tables and embedded plots.

Converts the Markdown that kernelnet itself writes (``### title`` headings, pipe tables,
plain paragraphs) — not general Markdown."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from kernelnet.safe_read import read_bytes

FIGURE_BYTES = 64 * 2**20

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #2166ac; padding-bottom: .3rem; }
h2 { margin-top: 2.5rem; color: #2166ac; }
table { border-collapse: collapse; margin: .8rem 0 1.2rem; font-size: .9rem; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .7rem; text-align: right; }
th { background: #f3f6fa; } td:first-child, th:first-child { text-align: left; }
.complete { color: #1a7f37; } .failed, .diverged, .error, .interrupted { color: #c62828; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #555; } code { background: #f3f3f3; padding: 0 .2rem; }
"""


# A cell separator is a pipe that no backslash escapes (Table.to_markdown writes a ``|``
# inside a cell as ``\|``, as GitHub-flavoured Markdown does).
_SEPARATOR = re.compile(r"(?<!\\)\|")
_DELIMITER_CELL = re.compile(r":?-+:?")


def table_cells(line: str) -> list[str]:
    """The cells of one Markdown table row, unescaped: ``| a | \\|x\\| |`` -> ``["a", "|x|"]``.

    Split at unescaped pipes only, so an escaped one stays inside its cell and reads as a
    plain ``|``."""
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    if inner.endswith("|") and not inner.endswith("\\|"):
        inner = inner[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _SEPARATOR.split(inner)]


def _table_html(lines: list[str]) -> str:
    """A table from its Markdown rows: the first is the header; the second, when it is the
    delimiter row (``---:`` and the like in every cell), is dropped. Only the second line is
    ever taken as the delimiter, so a data row of dashes stays a row."""
    header, *body = (table_cells(line) for line in lines)
    if body and all(_DELIMITER_CELL.fullmatch(c) for c in body[0]):
        body = body[1:]

    def row(cells: list[str], tag: str) -> str:
        return "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>"

    return (
        f"<table><thead>{row(header, 'th')}</thead><tbody>"
        + "".join(row(cells, "td") for cells in body)
        + "</tbody></table>"
    )


def markdown_to_html(text: str) -> str:
    """HTML for the Markdown kernelnet writes: ``#``-headings (the ``#`` title is left to
    :func:`page`), pipe tables and paragraphs, every text escaped."""
    parts: list[str] = []
    table: list[str] = []

    def flush_table() -> None:
        if table:
            parts.append(_table_html(table))
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if line.startswith("### "):
            parts.append(f"<h3>{html.escape(line[4:])}</h3>")
        elif line.startswith("## "):
            parts.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            continue
        elif line.strip():
            parts.append(f"<p>{html.escape(line)}</p>")
    flush_table()
    return "\n".join(parts)


def embedded_png(path: Path, root: Path) -> str:
    """A figure of the run folder ``root`` as an inline image (bounded read, inside root)."""
    data = base64.b64encode(read_bytes(path, FIGURE_BYTES, root)).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(path.name)}</figcaption></figure>"
    )


def page(title: str, sections: list[str]) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
