"""A self-contained HTML page for the reproduce report: tables and embedded plots.

Converts the Markdown that kernelnet itself writes (``### title`` headings, pipe tables,
plain paragraphs) — not general Markdown."""

from __future__ import annotations

import base64
import html
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


def markdown_to_html(text: str) -> str:
    parts, table = [], []

    def flush_table() -> None:
        if not table:
            return
        header, *body = [
            row for row in table if not set(row.replace("|", "").strip()) <= set(":- ")
        ]
        cells = lambda row: [html.escape(c.strip()) for c in row.strip().strip("|").split(" | ")]  # noqa: E731
        parts.append(
            "<table><thead><tr>"
            + "".join(f"<th>{c}</th>" for c in cells(header))
            + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in cells(r)) + "</tr>" for r in body)
            + "</tbody></table>"
        )
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
