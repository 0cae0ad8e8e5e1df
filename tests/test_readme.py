"""The README never drifts: every output block, figure and number in prose it marks is
produced again by the program here and compared (docs/readme.py; one test per command).
When one fails, the message shows what the program prints now; `python docs/readme.py
--write` rewrites the README and its images from the program."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("readme_tool", ROOT / "docs" / "readme.py")
readme_tool = importlib.util.module_from_spec(_spec)
sys.modules["readme_tool"] = readme_tool
_spec.loader.exec_module(readme_tool)

README = readme_tool.parse(readme_tool.README.read_text(encoding="utf-8"))
JOBS = readme_tool.jobs(README)


def test_the_readme_marks_what_it_quotes():
    """The markers are there: the quoted commands, the figures and the facts the issue
    found drifting (a README with its markers dropped would pass every other test)."""
    commands = {job.key for job in JOBS}
    assert {"kernelnet svm-primal", "kernelnet kernel-table", "kernelnet mnist"} <= commands
    assert len(README.figures) >= 2
    assert {"mnist-deep.test", "knn.mnist-test", "kernel-check.gaussian-20"} <= set(README.facts)
    assert all(block.steps for block in README.blocks)


@pytest.mark.parametrize("job", JOBS, ids=[job.key[:60] for job in JOBS])
def test_readme_matches_the_program(job, tmp_path):
    outcome = readme_tool.run_job(job, README, tmp_path)
    assert not outcome.problems, "\n".join(
        [*outcome.problems, "(python docs/readme.py --write rewrites README.md from the program)"]
    )


def test_a_changed_quote_is_caught(tmp_path):
    """The comparison can fail: one digit changed in a quoted table is reported, and a run
    folder's time stamp is not."""
    text = "<!-- output -->\n```\n$ kernelnet svm-primal --set svm.epochs=1 --no-plots\nBODY\n```\n"
    block = readme_tool.parse(text.replace("BODY", "")).blocks[0]
    produced = readme_tool.run_block(block, tmp_path)
    lines = produced[0][1]
    assert lines[-1].startswith("runs/svm-primal/")
    good = "\n".join(lines).replace(lines[-1], "runs/svm-primal/20200101-000000-abcd")
    readme = readme_tool.parse(text.replace("BODY", good))
    assert readme_tool.block_problems(readme.blocks[0], produced) == []
    row = next(line for line in lines if "51.3" in line)
    bad = readme_tool.parse(text.replace("BODY", good.replace(row, row.replace("51.3", "51.4"))))
    assert readme_tool.block_problems(bad.blocks[0], produced)


def test_an_unknown_fact_is_refused():
    with pytest.raises(ValueError, match="does not know"):
        readme_tool.jobs(readme_tool.parse("text <!--f:no.such-->1<!--/f--> more"))
