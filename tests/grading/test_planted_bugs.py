"""`kernelnet grade hw3` on the reference submission, the untouched handout and the planted
bugs of tests/grading/mutants.py: each mutant gets the exact code on the exact case.

Costs: each sandboxed case is ~0.5 s, so a mutant is graded on the cases of the function it
breaks only (a one-function copy of the spec), and the MNIST training case (a few seconds) only
for the training mutants and the reference. The hostile mutants run under a copy of the spec
that allows os/sys/time/socket (hw3 refuses them: 72) with a 2 s time limit, and are checked to
leave no process and no file of their sandbox uid behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kernelnet.grading import sandbox
from kernelnet.grading.grader import grade
from kernelnet.grading.spec import AssignmentSpec, load_assignment
from tests.grading import mutants
from tests.grading.mutants import Mutant, write_submission

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root: the sandbox's uid drop and netns")
HOSTILE_TIME_LIMIT = 2.0
CLI_TIMEOUT = 300
GRADESCOPE_VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


@pytest.fixture(scope="module")
def hw3() -> AssignmentSpec:
    return load_assignment("hw3")


def only(spec: AssignmentSpec, cases, hostile: bool = False) -> AssignmentSpec:
    """``spec`` with the named cases only (in the spec's order); ``hostile``: os, sys, time
    and socket allowed, and a short time limit."""
    wanted = set(cases)
    files = []
    for file in spec.files:
        functions = []
        for function in file.functions:
            kept = tuple(
                dataclasses.replace(case, time_limit=HOSTILE_TIME_LIMIT) if hostile else case
                for case in function.cases
                if case.name in wanted
            )
            if kept:
                functions.append(dataclasses.replace(function, cases=kept))
        if functions:
            files.append(dataclasses.replace(file, functions=tuple(functions)))
    found = {c.name for f in files for fn in f.functions for c in fn.cases}
    assert found == wanted, f"no such case in hw3: {sorted(wanted - found)}"
    imports = spec.allowed_imports + (mutants.HOSTILE_IMPORTS if hostile else ())
    return dataclasses.replace(spec, files=tuple(files), allowed_imports=imports)


@pytest.fixture
def sandbox_uids(monkeypatch) -> list[int]:
    """The uids the sandbox ran this test's children as (root only)."""
    uids: list[int] = []
    fresh = sandbox._fresh_uid

    def recording() -> int:
        uid = fresh()
        uids.append(uid)
        return uid

    monkeypatch.setattr(sandbox, "_fresh_uid", recording)
    return uids


def assert_nothing_left(uids: list[int]) -> None:
    """No live process and no file in the world-writable folders of any sandbox uid."""
    for uid in uids:
        assert sandbox.processes_of_uid(uid) == [], f"processes of sandbox uid {uid} remain"
        for folder in sandbox.WORLD_WRITABLE:
            if os.path.isdir(folder):
                left = [
                    e.path
                    for e in os.scandir(folder)
                    if e.stat(follow_symlinks=False).st_uid == uid
                ]
                assert left == [], f"files of sandbox uid {uid} remain: {left}"


def grade_mutant(spec, mutant: Mutant, folder: Path, **markers: str):
    write_submission(mutant, folder, **markers)
    result = grade(only(spec, mutant.expected, mutant.hostile), folder)
    codes = {r.test: r.code for r in result.results}
    assert codes == mutant.expected, (
        f"{mutant.name}: {[(r.test, r.code, r.reason) for r in result.results]}"
    )
    if mutant.reason:
        failing = next(r for r in result.results if r.code != 0)
        text = failing.reason + " " + " ".join(failing.traceback)
        assert mutant.reason in text, f"{mutant.name}: {mutant.reason!r} not in {text!r}"
    assert all((r.points == r.max_points) == (r.code == 0) for r in result.results)
    return result


# -- the reference and the handout, through the command line ------------------------------


def kernelnet(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "kernelnet", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=CLI_TIMEOUT)
    return process.returncode, out, err


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """``kernelnet grade hw3 ... --all --json`` on the reference folder, the reference as a
    .zip (its files inside a folder of the zip) and the untouched handout, run side by side
    (the machine has 2 cores; the reference's MNIST case is the long one)."""
    root = tmp_path_factory.mktemp("cli")
    reference = write_submission(None, root / "reference")
    archive = root / "alice.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name in mutants.FILES:
            zipped.write(reference / name, f"alice-hw3/{name}")
    handout = root / "handout"
    code, _, err = finish(kernelnet("handout", "hw3", str(handout)))
    assert code == 0, err
    runs = {
        "folder": (reference, root / "folder.json"),
        "zip": (archive, root / "zip.json"),
        "handout": (handout, root / "handout.json"),
    }
    started = {
        key: kernelnet("grade", "hw3", str(path), "--all", "--json", str(out))
        for key, (path, out) in runs.items()
    }
    done = {}
    for key, process in started.items():
        code, out, err = finish(process)
        results = runs[key][1]
        done[key] = (code, out, err, json.loads(results.read_text()) if results.exists() else None)
    return done


def check_gradescope_schema(results) -> None:
    """Gradescope's results.json: the field names and types its autograder reads."""
    assert isinstance(results, dict)
    assert isinstance(results["score"], (int, float)) and not isinstance(results["score"], bool)
    assert isinstance(results["tests"], list) and results["tests"]
    for key, kind in (("execution_time", (int, float)), ("output", str), ("visibility", str)):
        if key in results:
            assert isinstance(results[key], kind), key
    if "visibility" in results:
        assert results["visibility"] in GRADESCOPE_VISIBILITIES
    for test in results["tests"]:
        assert isinstance(test, dict)
        assert isinstance(test["name"], str) and test["name"]
        for key in ("score", "max_score"):
            assert isinstance(test[key], (int, float)) and not isinstance(test[key], bool), key
        assert test["status"] in {"passed", "failed"}
        assert isinstance(test["output"], str)
        assert test["visibility"] in GRADESCOPE_VISIBILITIES
        assert 0 <= test["score"] <= test["max_score"]
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))


def test_the_reference_gets_full_marks_on_every_case(cli_runs, hw3):
    code, out, err, results = cli_runs["folder"]
    assert code == 0, out + err
    check_gradescope_schema(results)
    cases = [c for _, f in hw3.functions() for c in f.cases]
    assert len(results["tests"]) == len(cases)  # --all: hidden cases included
    assert {t["status"] for t in results["tests"]} == {"passed"}
    assert all(t["score"] == t["max_score"] > 0 for t in results["tests"])
    assert results["score"] == sum(c.points for c in cases)
    hidden = [t for t in results["tests"] if t["visibility"] != "visible"]
    assert len(hidden) == sum(c.visibility == "hidden" for c in cases) > 0


def test_the_untouched_handout_gets_40_on_every_case(cli_runs, hw3):
    code, out, err, results = cli_runs["handout"]
    assert code == 1, out + err
    check_gradescope_schema(results)
    cases = [c for _, f in hw3.functions() for c in f.cases]
    assert len(results["tests"]) == len(cases)
    assert results["score"] == 0
    for test in results["tests"]:
        assert test["status"] == "failed" and test["score"] == 0
        assert test["output"].startswith("code 40: NotImplementedError"), test


def test_a_zip_of_the_reference_gives_the_folders_results(cli_runs):
    folder, zipped = cli_runs["folder"], cli_runs["zip"]
    assert zipped[0] == folder[0] == 0, zipped[1] + zipped[2]
    check_gradescope_schema(zipped[3])

    def outcome(results):
        return [(t["name"], t["score"], t["status"], t["output"]) for t in results["tests"]]

    assert outcome(zipped[3]) == outcome(folder[3])
    assert zipped[3]["score"] == folder[3]["score"]


def test_grading_the_same_submission_twice_gives_identical_results(tmp_path, hw3):
    mutant = next(m for m in mutants.WRONG if m.name == "coordinate_descent")
    folder = write_submission(mutant, tmp_path / "s")
    spec = only(hw3, ["train_3_epochs", "train_10_epochs", "qp_G_h"])
    first, second = grade(spec, folder), grade(spec, folder)

    def outcome(result):
        return [(r.test, r.code, r.points, r.reason, r.traceback) for r in result.results]

    assert outcome(first) == outcome(second)
    assert {r.code for r in first.results} == {0, 53}


# -- the planted bugs ---------------------------------------------------------------------


def test_the_suite_has_at_least_30_distinct_planted_bugs():
    names = [m.name for m in mutants.ALL]
    assert len(names) == len(set(names)) >= 30
    codes = {code for m in mutants.ALL for code in m.expected.values()}
    assert {1, 2, 50, 51, 52, 53, 54, 55, 60, 61, 70, 71, 72, 73} <= codes


@pytest.mark.parametrize(
    "mutant", mutants.WRONG + mutants.TRAINING + mutants.BROKEN, ids=lambda m: m.name
)
def test_planted_bug_gets_its_code(mutant, hw3, tmp_path):
    grade_mutant(hw3, mutant, tmp_path / "submission")


def hostile(name: str) -> Mutant:
    return next(m for m in mutants.HOSTILE if m.name == name)


@needs_root
@pytest.mark.parametrize("name", ["infinite_loop", "allocates_30_gb", "prints_100_mb", "os_exit"])
def test_hostile_submission_gets_its_code_and_leaves_nothing(name, hw3, tmp_path, sandbox_uids):
    grade_mutant(hw3, hostile(name), tmp_path / "submission")
    assert len(sandbox_uids) == 1
    assert_nothing_left(sandbox_uids)


@needs_root
def test_fifty_sleeping_children_hit_the_process_limit_and_are_killed(hw3, tmp_path, sandbox_uids):
    # Bounded first: a fork loop that stops by itself, so a broken limit cannot hurt.
    grade_mutant(hw3, hostile("forks_50_sleeping_children"), tmp_path / "submission")
    assert_nothing_left(sandbox_uids)


@needs_root
def test_a_fork_bomb_is_contained_and_leaves_no_process(hw3, tmp_path, sandbox_uids):
    grade_mutant(hw3, hostile("fork_bomb"), tmp_path / "submission")
    assert_nothing_left(sandbox_uids)


@pytest.fixture
def open_folder():
    """A root-owned folder any uid can enter (0755), outside pytest's tmp_path (whose parent
    is 0700, which would refuse the sandbox uid on the path alone): what protects the files
    in it is their own mode. Removed after."""
    folder = Path(tempfile.mkdtemp(prefix="kernelnet-planted-grader-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@needs_root
def test_a_write_outside_the_folder_changes_nothing(hw3, tmp_path, open_folder, sandbox_uids):
    target = open_folder / "expected_outputs.txt"
    target.write_text("the grader's own file\n")
    target.chmod(0o644)  # readable by all, writable by root only
    stray = Path("/tmp") / f"kernelnet-planted-stray-{os.getpid()}"
    result = grade_mutant(
        hw3,
        hostile("writes_outside_its_folder"),
        tmp_path / "submission",
        TARGET=str(target),
        STRAY=str(stray),
    )
    assert "Permission denied" in result.results[0].reason
    assert target.read_text() == "the grader's own file\n"
    assert sorted(os.listdir(open_folder)) == ["expected_outputs.txt"]
    assert not stray.exists()  # written to /tmp by the sandbox uid, removed after
    assert_nothing_left(sandbox_uids)


@needs_root
def test_a_read_of_a_root_only_file_is_refused(hw3, tmp_path, open_folder, sandbox_uids):
    secret = open_folder / "hidden_expected.npy"
    np.save(secret, np.arange(5.0))
    secret.chmod(0o600)
    assert secret.stat().st_uid == 0 and stat.S_IMODE(secret.stat().st_mode) == 0o600
    result = grade_mutant(
        hw3, hostile("reads_a_secret"), tmp_path / "submission", SECRET=str(secret)
    )
    assert "Permission denied" in result.results[0].reason
    assert_nothing_left(sandbox_uids)


@needs_root
def test_a_connection_to_a_local_port_never_arrives(hw3, tmp_path, sandbox_uids):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(5)
        port = server.getsockname()[1]
        grade_mutant(
            hw3, hostile("connects_to_a_local_port"), tmp_path / "submission", PORT=str(port)
        )
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()  # nothing connected
    assert_nothing_left(sandbox_uids)


def test_every_hostile_mutant_has_a_test():
    tested = {
        "infinite_loop",
        "allocates_30_gb",
        "prints_100_mb",
        "os_exit",
        "forks_50_sleeping_children",
        "fork_bomb",
        "writes_outside_its_folder",
        "reads_a_secret",
        "connects_to_a_local_port",
    }
    assert {m.name for m in mutants.HOSTILE} == tested


def test_the_grader_still_grades_the_reference_after_the_hostile_mutants(hw3, tmp_path):
    # Run last in this file: whatever the hostile submissions did, the grader's answers on a
    # correct submission are unchanged.
    folder = write_submission(None, tmp_path / "reference")
    cases = ["gradients_random_point", "dual_alpha_linear", "relu_forward_small"]
    result = grade(only(hw3, cases), folder)
    assert [(r.test, r.code, r.points) for r in result.results] == [
        (r.test, 0, r.max_points) for r in result.results
    ]
