"""What a user reads: the reproduce report's links survive moving the page, a table cell
holding ``|`` renders as that one cell, and svm-primal on thousands of features prints a
summary of the weights that names where the full vector is, not every weight."""

from __future__ import annotations

import csv
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import numpy as np
import pytest
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.report_html import markdown_to_html, page
from kernelnet.tables import Table
from tests.helpers import dump_dom, kernelnet_cli, needs_browser


class Page(HTMLParser):
    """Every href, and every table as rows of cell texts (th and td alike)."""

    def __init__(self, text: str):
        super().__init__()
        self.hrefs: list[str] = []
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href"]
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def resolved(href: str, page_path: Path) -> Path:
    """The local file ``href`` points to when the page is opened from ``page_path``
    (RFC 3986 resolution against the page's own file:// URI, as a browser does)."""
    url = urlparse(urljoin(page_path.resolve().as_uri(), href))
    assert url.scheme == "file", href
    return Path(unquote(url.path))


def write_csv(path: Path, n_rows: int, n_features: int, seed: int = 0) -> Path:
    """Two classes told apart by the first two features; the rest is noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"f{i}" for i in range(n_features)] + ["label"])
        for features, label in zip(X, labels):
            writer.writerow([*map(repr, features.tolist()), label])
    return path


# -- issue 1: report.html's links and table cells --


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    """A reproduce of one iris config and one 12-feature CSV config (its w column reads
    ``||w|| = ...``, a cell full of pipes)."""
    root = tmp_path_factory.mktemp("polish")
    wide = write_csv(root / "wide.csv", 40, 12)
    configs = root / "configs"
    configs.mkdir()
    (configs / "a.yaml").write_text("experiment: svm-primal\nsvm:\n  epochs: [1, 3]\n")
    (configs / "b.yaml").write_text(
        f"experiment: svm-primal\ndata:\n  dataset: {wide}\nsvm:\n  epochs: 3\n"
    )
    result = CliRunner().invoke(
        app, ["reproduce", "--configs", str(configs), "--runs-dir", str(root / "runs"), "-q"]
    )
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def test_report_links_resolve_after_the_page_is_moved(reproduced, tmp_path):
    moved = tmp_path / "elsewhere" / "deeper" / "report.html"
    moved.parent.mkdir(parents=True)
    shutil.move(shutil.copy(reproduced / "report.html", tmp_path / "copy.html"), moved)
    hrefs = Page(moved.read_text()).hrefs
    assert len(hrefs) == 2  # one per run folder
    for href in hrefs:
        target = resolved(href, moved)
        assert target.is_file() and target.name == "metrics.md", (href, target)
        assert target.parent.parent.name == "svm-primal"


def test_report_cells_with_pipes_read_as_written(reproduced):
    tables = Page((reproduced / "report.html").read_text()).tables
    cells = [cell for table in tables for row in table for cell in row]
    assert not any("\\|" in cell for cell in cells), [c for c in cells if "\\|" in c]
    norms = [cell for cell in cells if cell.startswith("||w|| = ")]
    assert norms, cells  # the 12-feature run's weight summary
    for table in tables:  # no row split into more cells than the header has
        assert {len(row) for row in table} == {len(table[0])}, table


CELLS = ["|x|", "a | b", "|", "ends with \\", "\\|", "", "-", ":---:", "<b>&</b>", "||w|| = 1"]


def test_every_cell_round_trips_through_markdown_to_html():
    rows = [[text, str(i)] for i, text in enumerate(CELLS)]
    markdown = Table("pipes", ["text | here", "i"], rows).to_markdown()
    (table,) = Page(markdown_to_html(markdown)).tables
    assert table == [["text | here", "i"], *rows]


@needs_browser
def test_a_pipe_cell_is_one_cell_in_a_real_browser(tmp_path):
    markdown = Table("t", ["name", "value"], [["|x|", "1"], ["a | b", "2"]]).to_markdown()
    path = tmp_path / "t.html"
    path.write_text(page("t", [markdown_to_html(markdown)]), encoding="utf-8")
    (table,) = Page(dump_dom(path.as_uri(), tmp_path / "profile")).tables
    assert table == [["name", "value"], ["|x|", "1"], ["a | b", "2"]]


@needs_browser
def test_a_moved_report_link_opens_the_run_in_a_real_browser(reproduced, tmp_path):
    moved = tmp_path / "moved" / "report.html"
    moved.parent.mkdir()
    shutil.copy(reproduced / "report.html", moved)
    href = Page(moved.read_text()).hrefs[0]
    dom = dump_dom(urljoin(moved.as_uri(), href), tmp_path / "profile")
    assert "Primal soft-margin SVM" in dom  # the run's metrics.md, not an error page


# -- issue 2: svm-primal's weights on a wide file --


def svm_primal(tmp_path: Path, data: str, *options: str):
    done = kernelnet_cli(
        "svm-primal", "--runs-dir", tmp_path / "runs", "--set", f"data.dataset={data}", *options
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, Path(done.stdout.strip().splitlines()[-1])


def test_wide_file_prints_a_summary_that_names_the_weights_file(tmp_path):
    data = write_csv(tmp_path / "wide.csv", 30, 5000)
    stdout, folder = svm_primal(tmp_path, str(data), "--epochs", "3")
    assert len(stdout.splitlines()) < 60, stdout
    text = " ".join(stdout.split())  # however the terminal wrapped it
    named = re.findall(r"cells/\S+?/params\.npz", text)
    assert named, stdout
    weights = np.load(folder / named[0])["w"]
    assert weights.shape == (5000,)
    assert f"||w|| = {np.linalg.norm(weights):.4f}" in text
    assert "5,000 weights" in text
    for i in np.argsort(-np.abs(weights), kind="stable")[:3]:  # the largest, by magnitude
        assert f"w_{i} = {weights[i]:+.4f}" in text, (i, stdout)


def test_eleven_features_are_summarised_too(tmp_path):
    data = write_csv(tmp_path / "eleven.csv", 30, 11)
    stdout, folder = svm_primal(tmp_path, str(data), "--epochs", "3")
    weights = np.load(folder / "cells" / "single" / "params.npz")["w"]
    text = " ".join(stdout.split())
    assert "11 weights" in text and "cells/single/params.npz" in text
    assert weights.shape == (11,) and f"||w|| = {np.linalg.norm(weights):.4f}" in text
    assert len(re.findall(r"w_\d+ = [+-]", text)) == 3  # the largest few, not all eleven
    assert "[" not in text.split("epochs")[-1]  # no list of every weight


def test_iris_still_prints_every_weight(tmp_path):
    stdout, folder = svm_primal(tmp_path, "iris_binary", "--epochs", "3")
    weights = np.load(folder / "cells" / "single" / "params.npz")["w"]
    assert weights.shape == (4,)
    assert "[" + ", ".join(f"{v:+.4f}" for v in weights) + "]" in stdout
    assert "params.npz" not in stdout and "||w||" not in stdout
