"""--resume trusts nothing it reads: cells are data, a damaged or planted cell is re-run and
never executed, other code is refused unless --force, and a run still going is refused."""

import csv
import json
import os
import pickle
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.runs import RunDir, run_lock

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def primal_run(tmp_path: Path) -> Path:
    result = invoke("svm-primal", "--runs-dir", tmp_path, "--quiet", "--epochs", "1,3")
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def rows(folder: Path) -> list[dict]:
    return list(csv.DictReader(open(folder / "metrics.csv")))


class Planted:
    """Unpickling this runs a shell command: what a hostile run folder would carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_is_never_executed_and_its_cell_runs_again(tmp_path):
    folder = primal_run(tmp_path)
    before = rows(folder)
    marker = tmp_path / "owned"
    cell = folder / "cells" / "epochs=1"
    np.save(cell / "evil.npy", np.array([Planted(marker)], dtype=object), allow_pickle=True)
    os.replace(cell / "evil.npy", cell / "result-arrays.npz")  # an object array, pickled
    (folder / "cells" / "00000.pkl").write_bytes(pickle.dumps(Planted(marker)))  # old format
    json.loads((folder / "run.json").read_text())  # still a valid run
    resumed = invoke("run", "--resume", folder, "--quiet")
    assert resumed.exit_code == 0, resumed.stderr
    assert not marker.exists()
    manifest = json.loads((folder / "run.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["resumed"][-1]["skipped_cells"] == 1  # epochs=3 kept, epochs=1 re-run
    assert "stored result ignored" in (folder / "log.txt").read_text()
    assert rows(folder) == before


def test_tampered_results_are_re_run_not_trusted(tmp_path):
    folder = primal_run(tmp_path)
    before = rows(folder)
    stored = folder / "cells" / "epochs=3" / "result.json"
    document = json.loads(stored.read_text())
    document["rows"][0]["test_accuracy"] = 1.0
    document["config_digest"] = "0" * 64  # claims other settings: not this cell's result
    stored.write_text(json.dumps(document))
    (folder / "cells" / "epochs=1" / "result.json").write_text("{not json")
    resumed = invoke("run", "--resume", folder, "--quiet")
    assert resumed.exit_code == 0, resumed.stderr
    assert json.loads((folder / "run.json").read_text())["resumed"][-1]["skipped_cells"] == 0
    assert rows(folder) == before


def test_resume_refuses_other_code_unless_forced(tmp_path):
    folder = primal_run(tmp_path)
    manifest = json.loads((folder / "run.json").read_text())
    manifest["versions"]["kernelnet"] = "0.0.1"
    manifest["status"] = "interrupted"
    (folder / "run.json").write_text(json.dumps(manifest))
    refused = invoke("run", "--resume", folder)
    assert refused.exit_code == 2
    assert "made by other code (kernelnet 0.0.1 (run)" in refused.stderr
    assert "--force" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    forced = invoke("run", "--resume", folder, "--force", "--quiet")
    assert forced.exit_code == 0, forced.stderr
    entry = json.loads((folder / "run.json").read_text())["resumed"][-1]
    assert entry["forced_despite"][0].startswith("kernelnet 0.0.1 (run)")


def test_resume_refuses_a_run_that_is_still_going(tmp_path):
    folder = primal_run(tmp_path)
    with run_lock(RunDir(folder)):
        refused = invoke("run", "--resume", folder)
    assert refused.exit_code == 2
    assert f"still running, pid {os.getpid()}" in refused.stderr
    assert invoke("run", "--resume", folder, "--quiet").exit_code == 0  # lock released
