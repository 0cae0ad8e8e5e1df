"""A generated class of 60 hw3 submissions (tests/grading/classroom.py: the reference, untouched
handouts, planted bugs, copies and near copies, some as zips, some with notebooks) graded
through the command line serially, with ``--workers 2`` and on a real local Dask cluster
(scheduler and worker processes): the three gradebooks are identical, every submission gets
the codes its planted bug must get, the copies are found, and a batch killed half way
(SIGKILL, no chance to tidy up) and resumed gives the uninterrupted batch's gradebook.

The MNIST training case is skipped (it is graded in tests/grading/test_planted_bugs.py).
"""

from __future__ import annotations

import csv
import html.parser
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.grading.classroom import same_code_groups, write_class
from tests.helpers import dump_dom, kernelnet_cli, needs_browser

SIZE = 60
SKIP = ["--set", "skip=[mnist_two_layer_net]"]
TIMEOUT = 900


def notebooks_installed() -> bool:
    from kernelnet.grading.notebooks import notebooks_available

    return notebooks_available()


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class") / "hw3-class"
    students = write_class(folder, SIZE, seed=7, notebooks=notebooks_installed())
    return folder, students


def grade(folder: Path, runs: Path, *options: str) -> Path:
    done = kernelnet_cli(
        "grade", "hw3", folder, "--runs-dir", runs, "--quiet", *SKIP, *options, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


def gradebook(run: Path) -> tuple[list[dict], list[dict]]:
    """grades.csv and metrics.csv without what may differ between equal gradings (times)."""

    def read(name: str, drop: tuple[str, ...]) -> list[dict]:
        with open(run / name, newline="", encoding="utf-8") as handle:
            return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(handle)]

    return read("grades.csv", ("seconds",)), read("metrics.csv", ("seconds",))


@pytest.fixture(scope="module")
def serial(klass, tmp_path_factory) -> Path:
    return grade(klass[0], tmp_path_factory.mktemp("serial"))


def test_every_submission_gets_the_codes_its_bugs_must_get(klass, serial):
    _, students = klass
    got = {(r["cell"], r["test"]): int(r["code"]) for r in gradebook(serial)[1]}
    for student in students:
        for test, code in student.expected.items():
            if test == "mnist_two_layer_net":
                continue
            assert got[(f"submission={student.name}", test)] == code, (student.kind, test)
    grades = {r["submission"]: r for r in gradebook(serial)[0]}
    assert len(grades) == SIZE and all(r["status"] == "graded" for r in grades.values())


def test_the_student_ids_come_from_the_class_manifest(klass, serial):
    folder, _ = klass
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as handle:
        manifest = {r["submission"]: r["student"] for r in csv.DictReader(handle)}
    grades = gradebook(serial)[0]
    assert {r["submission"]: r["student"] for r in grades} == manifest


def test_copies_and_near_copies_are_listed(klass, serial):
    _, students = klass
    summary = json.loads((serial / "summary.json").read_text())
    assert sorted(map(tuple, summary["duplicates"])) == sorted(same_code_groups(students))


def test_workers_give_the_serial_gradebook(klass, serial, tmp_path):
    parallel = grade(klass[0], tmp_path, "--workers", "2")
    assert gradebook(parallel) == gradebook(serial)


def test_a_dask_cluster_gives_the_serial_gradebook(klass, serial, tmp_path):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    from tests.test_dask_cluster import start_cluster, stop

    processes, scheduler_file = start_cluster(tmp_path / "cluster")
    try:
        on_dask = grade(klass[0], tmp_path / "runs", "--scheduler-file", str(scheduler_file))
    finally:
        stop(processes, scheduler_file)
    assert json.loads((on_dask / "run.json").read_text())["status"] == "complete"
    assert gradebook(on_dask) == gradebook(serial)


def test_a_batch_killed_half_way_resumes_to_the_same_gradebook(klass, serial, tmp_path):
    command = [sys.executable, "-m", "kernelnet", "grade", "hw3", str(klass[0]), "--quiet",
               "--runs-dir", str(tmp_path), "--workers", "2", *SKIP]  # fmt: skip
    batch = subprocess.Popen(
        command,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + TIMEOUT
    stored: list[Path] = []
    while len(stored) < SIZE // 2 and time.monotonic() < deadline and batch.poll() is None:
        time.sleep(0.2)
        stored = list(tmp_path.glob("grade/*/cells/*/result.json"))
    assert batch.poll() is None, "the batch ended before it was half way"
    os.killpg(batch.pid, signal.SIGKILL)  # the command, its workers and their sandboxes
    batch.wait()
    (run,) = tmp_path.glob("grade/*/")
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    kept = len(list(run.glob("cells/*/result.json")))
    assert SIZE // 2 <= kept < SIZE
    done = kernelnet_cli("grade", "--resume", run, "--quiet", timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["resumed"][-1]["skipped_cells"] == kept
    assert gradebook(run) == gradebook(serial)


class _StudentRows(html.parser.HTMLParser):
    """The report's student rows: submission -> (student, score), as the browser built them."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, tuple[str, float]] = {}

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag == "tr" and {"data-submission", "data-student", "data-score"} <= set(found):
            self.rows[found["data-submission"]] = (
                found["data-student"],
                float(found["data-score"]),
            )


@needs_browser
def test_the_class_report_renders_the_gradebook_in_a_browser(serial, tmp_path):
    page = _StudentRows()
    page.feed(dump_dom((serial / "report.html").as_uri(), tmp_path / "profile"))
    grades = gradebook(serial)[0]
    assert page.rows == {r["submission"]: (r["student"], float(r["score"])) for r in grades}
