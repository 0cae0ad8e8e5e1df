"""`kernelnet grade ASSIGNMENT CLASS...` as an instructor runs it: a grading run is a run (its
folder, one cell per submission, grades.csv, metrics.csv, results.json and grading.log per
submission, report.html), what it refuses in one line, and how the runs commands read it.

To stay fast, these grade three of hw3's cases (one per file: ``FEW``); the whole class with
every case, on every executor and through a kill and a resume, is tests/grading/test_class_scale.py.
"""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from kernelnet.grading.spec import load_assignment
from tests.grading.mutants import REFERENCE
from tests.helpers import kernelnet_cli, one_line

FEW = ("gradients_at_zero", "qp_G_h", "relu_forward_small")


def skip_all_but(names: tuple[str, ...]) -> str:
    spec = load_assignment("hw3")
    others = [c.name for f in spec.files for fn in f.functions for c in fn.cases]
    return "skip=[" + ",".join(n for n in others if n not in names) + "]"


SKIP = ["--set", skip_all_but(FEW)]


def copy_reference(folder: Path) -> Path:
    shutil.copytree(REFERENCE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def zip_folder(folder: Path, archive: Path, inside: str = "hw3/") -> Path:
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.glob("*.py")):
            out.write(path, inside + path.name)
    return archive


@pytest.fixture(scope="module")
def handout(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("handout") / "hw3"
    done = kernelnet_cli("handout", "hw3", str(folder))
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture(scope="module")
def small_class(tmp_path_factory, handout) -> Path:
    """alice (reference), bob (the untouched handout), carol (the reference as a zip, inside a
    folder of the zip), dave (alice's code with comments and names changed), erin (a fc_forward
    that returns the wrong shape), and a manifest naming three of them."""
    root = tmp_path_factory.mktemp("class") / "class"
    root.mkdir()
    copy_reference(root / "alice")
    shutil.copytree(handout, root / "bob", ignore=shutil.ignore_patterns("data"))
    zip_folder(copy_reference(root.parent / "carol-src"), root / "carol.zip")
    dave = copy_reference(root / "dave")
    text = (dave / "two_layer_net.py").read_text()
    (dave / "two_layer_net.py").write_text("# my own work, honest\n" + text.replace("    ", "  "))
    erin = copy_reference(root / "erin")
    net = (erin / "two_layer_net.py").read_text()
    (erin / "two_layer_net.py").write_text(
        net.replace("def relu_forward(X):", "def relu_forward(X):\n    return X[:, :1]")
    )
    (root / "manifest.csv").write_text("submission,student,email\nalice,u001,a@x\nbob,u002,b@x\n")
    return root


def run_folder(done) -> Path:
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def graded_run(small_class, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    return kernelnet_cli("grade", "hw3", str(small_class), "--runs-dir", str(runs), *SKIP)


@pytest.fixture(scope="module")
def graded(graded_run) -> Path:
    return run_folder(graded_run)


def test_off_a_terminal_each_graded_submission_is_a_line_on_stderr(graded_run):
    lines = graded_run.stderr.splitlines()
    assert [line.split()[2] for line in lines] == [
        f"submission={n}" for n in ("alice", "bob", "carol", "dave", "erin")
    ]
    assert [line.split()[1] for line in lines] == [f"[{i}/5]" for i in range(1, 6)]


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_class_is_a_run_with_one_cell_per_submission(graded):
    assert graded.parent.name == "grade"
    manifest = json.loads((graded / "run.json").read_text())
    assert manifest["experiment"] == "grade" and manifest["status"] == "complete"
    grid = json.loads((graded / "grid.json").read_text())
    ids = [c["id"] for c in grid["cells"]]
    assert ids == [f"submission={n}" for n in ("alice", "bob", "carol", "dave", "erin")]
    for cell in ids:
        results = json.loads((graded / "cells" / cell / "results.json").read_text())
        assert [t["name"].split(" ")[0] for t in results["tests"]] == list(FEW)
        assert (graded / "cells" / cell / "grading.log").read_text().count("[") >= len(FEW)


def test_grades_csv_has_one_row_per_student_with_ids_from_the_manifest(graded):
    got = {r["submission"]: r for r in rows(graded / "grades.csv")}
    assert list(got) == ["alice", "bob", "carol", "dave", "erin"]
    assert got["alice"]["student"] == "u001" and got["bob"]["student"] == "u002"
    assert got["carol"]["student"] == "carol"  # not in the manifest: its own name
    spec = load_assignment("hw3")
    points = {c.name: c.points for f in spec.files for fn in f.functions for c in fn.cases}
    full = sum(points[n] for n in FEW)
    assert {n: float(r["score"]) for n, r in got.items()} == {
        "alice": full,
        "bob": 0,
        "carol": full,
        "dave": full,
        "erin": full - points["relu_forward_small"],
    }
    assert all(float(r["max_score"]) == full for r in got.values())
    assert float(got["erin"]["points two_layer_net.py"]) == 0
    assert float(got["erin"]["points soft_margin_svm.py"]) == points["gradients_at_zero"]


def test_metrics_csv_has_one_row_per_submission_and_test(graded):
    got = rows(graded / "metrics.csv")
    assert len(got) == 5 * len(FEW)
    codes = {(r["cell"], r["test"]): int(r["code"]) for r in got}
    assert codes[("submission=bob", "qp_G_h")] == 40
    assert codes[("submission=erin", "relu_forward_small")] == 52
    assert all(codes[("submission=alice", t)] == 0 for t in FEW)


def test_near_identical_submissions_are_listed(graded):
    summary = json.loads((graded / "summary.json").read_text())
    assert summary["duplicates"] == [["alice", "carol", "dave"]]  # erin changed the code
    assert summary["graded"] == 5 and summary["not_graded"] == 0


def test_the_class_report_is_written(graded):
    page = (graded / "report.html").read_text()
    assert "<html" in page and "alice" in page and "<script" not in page


def test_submissions_given_one_by_one_are_named_by_their_folder_or_zip(small_class, tmp_path):
    done = kernelnet_cli(
        "grade", "hw3", str(small_class / "alice"), str(small_class / "carol.zip"),
        "--runs-dir", str(tmp_path), "--dry-run", *SKIP,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "submission=alice" in done.stdout and "submission=carol" in done.stdout
    assert not any(tmp_path.iterdir())


def test_a_damaged_zip_fails_its_cell_only(small_class, tmp_path):
    broken = tmp_path / "class"
    broken.mkdir()
    shutil.copytree(small_class / "alice", broken / "alice")
    (broken / "mallory.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    done = kernelnet_cli("grade", "hw3", str(broken), "--runs-dir", str(tmp_path / "runs"), *SKIP)
    assert done.returncode == 1, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    got = {r["submission"]: r for r in rows(folder / "grades.csv")}
    assert got["alice"]["status"] == "graded"
    assert got["mallory"]["status"] == "failed" and "not a readable .zip" in got["mallory"]["error"]
    assert float(got["mallory"]["score"]) == 0


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (["hw3", "@class", "--json", "r.json"], "--json is for one submission"),
        (["hw3", "@class/alice", "@class/nowhere"], "no such file or folder"),
        (["hw3", "@class", "--set", "skip=[no_such_test]"], "has no test or function"),
        (["hw3", "@class", "--manifest", "@bad.csv"], "no 'submission' or 'student' column"),
        (["nosuch", "@class"], "no assignment 'nosuch'"),
        (["hw3", "@class/alice", "@twin/alice"], "two submissions are named 'alice'"),
        (["hw3", "@empty"], "holds no submission"),
    ],
)
def test_bad_class_input_is_one_line_and_no_run_folder(arguments, fragment, small_class, tmp_path):
    (tmp_path / "bad.csv").write_text("name,id\nalice,1\n")
    shutil.copytree(small_class / "alice", tmp_path / "twin" / "alice")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing here")
    places = {"@class": str(small_class), "@": str(tmp_path) + "/"}
    resolved = [
        places["@class"] + a[len("@class") :]
        if a.startswith("@class")
        else places["@"] + a[1:]
        if a.startswith("@")
        else a
        for a in arguments
    ]
    done = kernelnet_cli("grade", *resolved, "--runs-dir", str(tmp_path / "runs"))
    one_line(done, 2, fragment)
    assert not (tmp_path / "runs").exists()


def test_runs_list_and_show_read_a_grading_run(graded):
    runs_dir = graded.parents[1]
    listed = kernelnet_cli("runs", "list", "--runs-dir", str(runs_dir))
    assert listed.returncode == 0 and graded.name in listed.stdout and "grade" in listed.stdout
    shown = kernelnet_cli("runs", "show", str(graded))
    assert shown.returncode == 0, shown.stderr
    assert "most frequent failing code" in shown.stdout


def test_runs_compare_shows_which_students_changed(graded, small_class, tmp_path):
    """A second grading run after erin fixed her relu: compare names erin's row."""
    fixed = tmp_path / "class"
    shutil.copytree(small_class, fixed)
    shutil.copy(REFERENCE / "two_layer_net.py", fixed / "erin" / "two_layer_net.py")
    again = run_folder(
        kernelnet_cli("grade", "hw3", str(fixed), "--runs-dir", str(tmp_path), *SKIP)
    )
    done = kernelnet_cli("runs", "compare", str(graded), str(again), env={"COLUMNS": "300"})
    assert done.returncode == 1, done.stderr  # the metrics differ
    changed = [line for line in done.stdout.splitlines() if "cell=submission=" in line]
    assert changed and all("submission=erin,test=relu_forward_small" in c for c in changed)


# -- notebooks ----------------------------------------------------------------------------
def with_notebook(folder: Path, cells) -> Path:
    from tests.grading.classroom import notebook_json

    copy_reference(folder)
    (folder / "hw3.ipynb").write_text(notebook_json(cells), encoding="utf-8")
    return folder


@pytest.fixture
def no_notebook_extra(monkeypatch):
    """What a machine without kernelnet[notebooks] sees."""
    import kernelnet.grading.notebooks as notebooks

    monkeypatch.setattr(notebooks, "notebooks_available", lambda: False)


def test_a_notebook_that_fails_is_code_2_with_its_cell(tmp_path):
    from tests.grading.classroom import FAILING_CELL, NOTEBOOK_FAILS, NOTEBOOK_RUNS

    root = tmp_path / "class"
    with_notebook(root / "runs", NOTEBOOK_RUNS)
    with_notebook(root / "fails", NOTEBOOK_FAILS)
    folder = run_folder(kernelnet_cli("grade", "hw3", root, "--runs-dir", tmp_path, *SKIP))
    got = {(r["cell"], r["test"]): r for r in rows(folder / "metrics.csv")}
    assert got[("submission=runs", "hw3.ipynb")]["code"] == "0"
    failed = got[("submission=fails", "hw3.ipynb")]
    assert failed["code"] == "2"
    assert failed["reason"].startswith(f"cell {FAILING_CELL}: NameError"), failed["reason"]
    log = (folder / "cells" / "submission=fails" / "grading.log").read_text()
    assert "hw3.ipynb" in log and "NameError" in log


def test_without_the_extra_a_students_check_says_notebooks_were_not_run(
    tmp_path, no_notebook_extra
):
    from tests.grading.classroom import NOTEBOOK_RUNS
    from tests.helpers import invoke

    student = with_notebook(tmp_path / "me", NOTEBOOK_RUNS)
    result = invoke("grade", "hw3", str(student))
    assert "notebooks not run" in result.stderr and "kernelnet[notebooks]" in result.stderr
    assert "hw3.ipynb" not in result.stdout  # no notebook row; the .py tests ran
    assert "gradients_at_zero" in result.stdout


def test_without_the_extra_a_class_with_notebooks_is_refused_in_one_line(
    tmp_path, no_notebook_extra
):
    from tests.grading.classroom import NOTEBOOK_RUNS
    from tests.helpers import invoke, one_error_line

    root = tmp_path / "class"
    with_notebook(root / "a", NOTEBOOK_RUNS)
    copy_reference(root / "b")
    result = invoke("grade", "hw3", str(root), "--runs-dir", str(tmp_path / "runs"))
    line = one_error_line(result)
    assert "kernelnet[notebooks]" in line and "--set notebooks=false" in line
    assert not (tmp_path / "runs").exists()
    runs = tmp_path / "runs"
    result = invoke("grade", "hw3", str(root), "--runs-dir", str(runs), "--set", "notebooks=false",
                    *SKIP)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    graded = rows(Path(result.stdout.strip().splitlines()[-1]) / "metrics.csv")
    assert graded and not any(r["test"] == "hw3.ipynb" for r in graded)
