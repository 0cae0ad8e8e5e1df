import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from typer.testing import CliRunner

from kernelnet.cli import app
from tests.helpers import BROWSER, browser_flags, dump_dom, needs_browser

runner = CliRunner()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce")
    configs = root / "configs"
    configs.mkdir()
    (configs / "a.yaml").write_text("experiment: svm-primal\nsvm:\n  epochs: [1, 10]\n")
    (configs / "b.yaml").write_text(
        "experiment: kernel-table\ndata:\n  dataset: moons\nkernel:\n  name: [rbf, linear]\n"
    )
    result = runner.invoke(
        app, ["reproduce", "--configs", str(configs), "--runs-dir", str(root / "runs"), "--quiet"]
    )
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1]), configs, root


def test_report_files(report):
    folder, _, _ = report
    assert not folder.name.startswith(".") and folder.parent.name == "reproduce"
    assert (folder.parent.parent / "latest").resolve() == folder.resolve()
    markdown = (folder / "REPORT.md").read_text()
    assert "2 of 2 experiments complete" in markdown
    total = float(re.search(r"2 configs in ([0-9.]+) s in all", markdown).group(1))
    manifest = json.loads((folder / "run.json").read_text())
    assert total == pytest.approx(manifest["seconds"], abs=0.05) and total > 0
    assert "## svm-primal (a.yaml)" in markdown and "## kernel-table (b.yaml)" in markdown
    page = (folder / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4  # svm-primal 2, kernel-table 2
    links = re.findall(r'href="([^"]+)"', page)  # absolute: they survive the page being moved
    assert len(links) == 2 and all(
        link.startswith("file://") and Path(unquote(urlparse(link).path)).is_file()
        for link in links
    )


def test_a_failing_experiment_fails_the_reproduce(report, tmp_path):
    _, configs, root = report
    broken = tmp_path / "configs"
    shutil.copytree(configs, broken)
    (broken / "c.yaml").write_text("experiment: svm-primal\nsvm:\n  C: -1\n")
    result = runner.invoke(
        app,
        ["reproduce", "--configs", str(broken), "--runs-dir", str(tmp_path / "runs"), "--quiet"],
    )
    assert result.exit_code == 1
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert "svm.C: must be > 0 (got -1)" in (folder / "REPORT.md").read_text()


@needs_browser
def test_report_renders_in_a_headless_browser(report, tmp_path):
    folder, _, _ = report
    flags = browser_flags(tmp_path / "profile")
    url = (folder / "report.html").resolve().as_uri()
    dom = dump_dom(url, tmp_path / "profile")
    assert "<table>" in dom and "kernelnet reproduce" in dom
    assert dom.count("<img") >= 4
    shot = tmp_path / "report.png"
    subprocess.run(
        [BROWSER, *flags, f"--screenshot={shot}", "--window-size=1200,1600", url],
        capture_output=True,
        timeout=120,
    )
    assert shot.is_file() and shot.stat().st_size > 20_000  # a rendered page, not a blank one
