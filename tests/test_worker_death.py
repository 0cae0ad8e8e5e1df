"""A worker killed with SIGKILL in `kernelnet run -w 2` costs only the cell it was running:
that cell is retried once, alone, in a fresh worker; the other worker goes on, and the
rest of the grid runs at full parallelism (issue 21). Real processes throughout: the
command line in a subprocess, its forked workers, and `kill -9` from outside."""

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CELLS = 8
VICTIM = 1  # the cell n=1 waits in its worker to be killed; every cell n > 1 after that

# The command line with the test-only experiment registered under a catalogued name.
DRIVER = """
import sys
from dataclasses import replace
sys.path.insert(0, sys.argv[1])
from kernelnet.experiments import REGISTRY
from tests.experiments import worker_killer
REGISTRY["conv"] = replace(worker_killer.EXPERIMENT, name="conv")
sys.argv = ["kernelnet", *sys.argv[2:]]
from kernelnet.cli import app
app()
"""

PROGRESS = re.compile(r"^conv \[\d+/\d+\] (\S+) (\w+)")


def _command(tmp_path: Path, name: str, *extra: str) -> list[str]:
    config = tmp_path / "worker-killer.yaml"
    config.write_text("experiment: conv\n")
    return [sys.executable, "-c", DRIVER, str(ROOT), "run", str(config),
            "--runs-dir", str(tmp_path / name), *extra]  # fmt: skip


def _serial_rows(tmp_path: Path) -> dict[str, dict]:
    done = subprocess.run(_command(tmp_path, "serial"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return _rows(Path(done.stdout.strip().splitlines()[-1]))


def _rows(folder: Path) -> dict[str, dict]:
    return {row["cell"]: row for row in csv.DictReader(open(folder / "metrics.csv"))}


def _wait_for_file(path: Path, process: subprocess.Popen) -> str:
    deadline = time.time() + 60
    while time.time() < deadline:
        if path.exists():
            return path.read_text()
        if process.poll() is not None:
            pytest.fail(f"the run ended before {path.name}: {process.communicate()}")
        time.sleep(0.01)
    process.kill()
    pytest.fail(f"no {path.name} within 60 s")


def _kill_minus_9(pid: str) -> None:
    done = subprocess.run(["kill", "-9", pid], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _killed_run(tmp_path: Path, again: bool):
    """A 2-worker run whose cell n=1 waits in its worker: kill that worker (and, with
    ``again``, the fresh worker its retry runs in), then let the run finish."""
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {**os.environ, "WORKER_KILLER_DIR": str(markers), "WORKER_KILLER_VICTIM": str(VICTIM)}
    if again:
        env["WORKER_KILLER_AGAIN"] = "1"
    process = subprocess.Popen(
        _command(tmp_path, "killed", "--workers", "2"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = [_wait_for_file(markers / "attempt-1.pid", process)]
    assert int(killed[0]) != process.pid  # a worker, not the run's own process
    _kill_minus_9(killed[0])
    (markers / "killed-1").touch()  # the cells after the victim may run now
    if again:
        killed.append(_wait_for_file(markers / "attempt-2.pid", process))
        assert killed[1] != killed[0]  # the retry runs in a fresh worker
        _kill_minus_9(killed[1])
    stdout, stderr = process.communicate(timeout=120)
    folder = Path(stdout.strip().splitlines()[-1])
    return process.returncode, stderr, folder, [int(pid) for pid in killed]


def _finished(stderr: str) -> list[tuple[str, str]]:
    """(cell, status) of each progress line: one per finished cell, off a terminal."""
    return [m.groups() for m in map(PROGRESS.match, stderr.splitlines()) if m]


def _diagnostics(stderr: str) -> list[str]:
    """stderr's lines but the progress lines."""
    return [line for line in stderr.splitlines() if not PROGRESS.match(line)]


def _without_pid(rows: dict[str, dict]) -> dict[str, dict]:
    return {cell: {k: v for k, v in row.items() if k != "pid"} for cell, row in rows.items()}


def test_only_the_killed_workers_cell_is_retried_and_the_other_worker_goes_on(tmp_path):
    serial = _serial_rows(tmp_path)
    code, stderr, folder, (killed,) = _killed_run(tmp_path, again=False)
    assert code == 0, stderr
    assert json.loads((folder / "run.json").read_text())["status"] == "complete"
    victim = f"n={VICTIM}"

    retried = [line for line in _diagnostics(stderr) if "worker process died" in line]
    assert retried == [f"warning: cell {victim}: its worker process died; retrying it once, alone"]
    log = (folder / "log.txt").read_text()
    assert log.count("worker process died") == 1
    assert f"cell {victim}: its worker process died; retrying it once, alone" in log

    finished = _finished(stderr)  # every cell finished once, each complete
    assert sorted(finished) == sorted((f"n={n}", "complete") for n in range(CELLS))
    assert len(list((folder / "cells").glob("*/result.json"))) == CELLS

    rows = _rows(folder)
    assert _without_pid(rows) == _without_pid(serial)  # the numbers of a serial run
    pids = {cell: int(row["pid"]) for cell, row in rows.items()}
    replacement = pids[victim]
    assert replacement != killed  # the retry ran in a fresh worker
    after = {pids[f"n={n}"] for n in range(VICTIM + 1, CELLS)}  # all ran after the kill
    assert killed not in after
    # Two workers ran the cells after the kill: the fresh one and the one that was never
    # killed (before this fix the pool broke, and each remaining cell got a pool of its own).
    assert set(pids.values()) - {killed} == after | {replacement}
    survivors = after - {replacement}
    assert len(survivors) == 1


def test_a_cell_that_kills_its_worker_again_fails_alone(tmp_path):
    serial = _serial_rows(tmp_path)
    code, stderr, folder, killed = _killed_run(tmp_path, again=True)
    assert code == 1, stderr
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"
    victim = f"n={VICTIM}"

    died = [line for line in _diagnostics(stderr) if "worker process died" in line]
    assert died == [
        f"warning: cell {victim}: its worker process died; retrying it once, alone",
        f"error: cell {victim}: its worker process died again; the cell fails",
    ]
    finished = sorted(_finished(stderr))
    others = [(f"n={n}", "complete") for n in range(CELLS) if n != VICTIM]
    assert finished == sorted([*others, (victim, "failed")])

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["failed_cells"] == [
        {
            "cell": victim,
            "status": "failed",
            "error": "worker process died while running this cell (twice)",
        }
    ]
    rows = _rows(folder)
    assert rows[victim]["draw"] == ""  # a failed cell has no numbers
    del rows[victim], serial[victim]
    assert _without_pid(rows) == _without_pid(serial)
    after = {int(rows[f"n={n}"]["pid"]) for n in range(VICTIM + 1, CELLS)}
    assert not after & set(killed)  # all ran after the first kill, none in a killed worker
