import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.config import resolve
from kernelnet.executors import ProcessExecutor, SerialExecutor
from kernelnet.runner import execute
from tests.experiments import crashing

runner = CliRunner()


def rows_without_timing(folder: Path) -> list[dict]:
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    for row in rows:
        row.pop("fit_seconds", None)
    return rows


def folder_of(result) -> Path:
    return Path(result.stdout.strip().splitlines()[-1])


def test_workers_give_identical_metrics(tmp_path):
    args = ["kernel-table", "--runs-dir", str(tmp_path), "--quiet", "--no-plots",
            "--set", "svm.C=0.5,2"]  # fmt: skip
    serial = runner.invoke(app, args)
    parallel = runner.invoke(app, [*args, "--workers", "2"])
    assert serial.exit_code == parallel.exit_code == 0, parallel.stderr
    assert rows_without_timing(folder_of(serial)) == rows_without_timing(folder_of(parallel))
    summary = json.loads((folder_of(parallel) / "summary.json").read_text())
    assert len(summary["test_accuracy"]) == 32


def test_stochastic_cells_draw_the_same_numbers_in_any_executor(tmp_path):
    resolved = resolve(crashing.CrashingConfig, {"cell": {"mode": ["ok", "ok2"]}}, {})
    resolved["experiment"] = "crashing"
    draws = []
    for executor in (SerialExecutor(), ProcessExecutor(2)):
        outcome = execute(crashing.EXPERIMENT, resolved, tmp_path, [], executor=executor)
        draws.append([r.row["draw"] for r in outcome.results])
    assert draws[0] == draws[1]


def test_a_worker_killed_mid_cell_fails_only_that_cell(tmp_path):
    resolved = resolve(crashing.CrashingConfig, {}, {})
    resolved["experiment"] = "crashing"
    outcome = execute(crashing.EXPERIMENT, resolved, tmp_path, [], executor=ProcessExecutor(2))
    statuses = {r.cell.id: (r.status, r.error) for r in outcome.results}
    assert statuses["mode=ok"][0] == statuses["mode=ok2"][0] == "complete"
    assert statuses["mode=die"] == (
        "failed",
        "worker process died while running this cell (twice)",
    )
    log = (outcome.run.path / "log.txt").read_text()
    assert "cell mode=die: its worker process died; retrying it once, alone" in log
    assert statuses["mode=fail"] == ("failed", "asked to fail")
    assert outcome.exit_code == 1
    assert json.loads((outcome.run.path / "run.json").read_text())["status"] == "failed"


def test_dry_run_lists_cells_and_writes_nothing(tmp_path):
    result = runner.invoke(
        app,
        [
            "kernel-table",
            "--dry-run",
            "--runs-dir",
            str(tmp_path),
            "--set",
            "kernel.gamma=0.05,0.2,1",
        ],
    )
    assert result.exit_code == 0
    assert "48 cell(s)" in result.stdout
    assert "dataset=xor,kernel=rbf,gamma=1" in result.stdout
    assert not tmp_path.joinpath("kernel-table").exists()


def test_grid_and_command_are_saved(tmp_path):
    result = runner.invoke(
        app, ["svm-primal", "--epochs", "1,2", "--runs-dir", str(tmp_path), "--quiet"]
    )
    grid = json.loads((folder_of(result) / "grid.json").read_text())
    assert [c["id"] for c in grid["cells"]] == ["epochs=1", "epochs=2"]
    assert isinstance(grid["command"], list)


def long_primal(tmp_path, *extra, epochs=50_000):
    return [
        sys.executable,
        "-m",
        "kernelnet",
        "svm-primal",
        "--epochs",
        ",".join(str(epochs + i) for i in range(4)),
        "--runs-dir",
        str(tmp_path),
        "--quiet",
        *extra,
    ]


def test_resume_after_sigkill_gives_the_uninterrupted_metrics(tmp_path):
    process = subprocess.Popen(
        long_primal(tmp_path / "killed", epochs=20_000),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(
        (tmp_path / "killed").glob("svm-primal/*/cells/epochs=20000/result.json")
    ):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    folder = next((tmp_path / "killed").glob("svm-primal/*"))
    assert json.loads((folder / "run.json").read_text())["status"] == "running"
    listed = runner.invoke(app, ["runs", "list", "--runs-dir", str(tmp_path / "killed"), "--json"])
    assert json.loads(listed.stdout)[0]["status"] == "interrupted"
    done_before = len(list((folder / "cells").glob("*/result.json")))
    assert 1 <= done_before < 4

    resumed = runner.invoke(app, ["run", "--resume", str(folder), "--quiet"])
    assert resumed.exit_code == 0, resumed.stderr
    manifest = json.loads((folder / "run.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["resumed"][0]["skipped_cells"] == done_before

    fresh = subprocess.run(
        long_primal(tmp_path / "fresh", epochs=20_000), capture_output=True, text=True
    )
    assert fresh.returncode == 0
    fresh_folder = Path(fresh.stdout.strip().splitlines()[-1])
    assert rows_without_timing(folder) == rows_without_timing(fresh_folder)


def test_resume_refuses_a_changed_config(tmp_path):
    first = runner.invoke(
        app, ["svm-primal", "--epochs", "1,2", "--runs-dir", str(tmp_path), "--quiet"]
    )
    folder = folder_of(first)
    changed = runner.invoke(app, ["svm-primal", "--resume", str(folder), "--set", "svm.C=9"])
    assert changed.exit_code == 2
    assert "no longer matches the run's config" in changed.stderr
    same = runner.invoke(app, ["svm-primal", "--resume", str(folder), "--quiet"])
    assert same.exit_code == 0 and folder_of(same) == folder


def test_resume_of_the_wrong_experiment_is_refused(tmp_path):
    first = runner.invoke(
        app, ["svm-primal", "--epochs", "1", "--runs-dir", str(tmp_path), "--quiet"]
    )
    result = runner.invoke(app, ["kernel-table", "--resume", str(folder_of(first))])
    assert result.exit_code == 2 and "a 'svm-primal' run, not 'kernel-table'" in result.stderr


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_workers_must_be_positive(workers):
    result = runner.invoke(app, ["svm-primal", "--workers", workers])
    assert result.exit_code == 2


def test_dask_local_cluster_gives_identical_metrics(tmp_path):
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    from kernelnet.executors import DaskExecutor
    from kernelnet.experiments import REGISTRY

    experiment = REGISTRY["kernel-table"]
    resolved = resolve(experiment.schema, {"data": {"dataset": ["moons", "xor"]}}, {})
    resolved["experiment"] = experiment.name
    serial = execute(experiment, resolved, tmp_path / "serial", [])
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True
    ) as cluster:
        with distributed.Client(cluster) as client:
            on_cluster = execute(
                experiment, resolved, tmp_path / "dask", [], executor=DaskExecutor(client=client)
            )
    assert on_cluster.status == "complete"
    assert rows_without_timing(serial.run.path) == rows_without_timing(on_cluster.run.path)
    # parameters written by the workers arrive in the client's run folder
    assert (on_cluster.run.path / "cells" / "dataset=xor,kernel=rbf" / "params.npz").is_file()


@pytest.mark.parametrize("threads", [1, 2])
def test_every_executor_runs_cells_with_the_runs_blas_threads(tmp_path, threads):
    resolved = resolve(crashing.CrashingConfig, {"cell": {"mode": ["ok", "ok2"]}}, {})
    resolved["experiment"] = "crashing"
    for executor in (SerialExecutor(threads), ProcessExecutor(2, threads)):
        outcome = execute(crashing.EXPERIMENT, resolved, tmp_path, [], executor=executor)
        assert [r.row["blas_threads"] for r in outcome.results] == [threads] * 2
        manifest = json.loads((outcome.run.path / "run.json").read_text())
        assert manifest["blas_threads_per_cell"] == threads


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _start_pool_run(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    """A --workers 2 run whose first cell finishes at once and whose second runs long."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kernelnet", "svm-primal", "--epochs", "1,3000000",
         "--workers", "2", "--runs-dir", str(tmp_path), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 90
    while time.time() < deadline:
        if list(tmp_path.glob("svm-primal/*/cells/epochs=1/result.json")):
            time.sleep(0.3)  # the long cell is running in its worker
            return process, _children(process.pid)
        time.sleep(0.05)
    process.kill()
    pytest.fail("the run did not start")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_pool_stops_within_seconds_and_keeps_finished_cells(tmp_path, signum):
    process, children = _start_pool_run(tmp_path)
    assert children, "no worker processes"
    started = time.time()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert time.time() - started < 10
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    folder = next(tmp_path.glob("svm-primal/*"))
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    assert (folder / "cells" / "epochs=1" / "result.json").is_file()
    deadline = time.time() + 10
    while any(_alive(pid) for pid in children) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in children)


def test_workers_die_with_their_parent(tmp_path):
    process, children = _start_pool_run(tmp_path)
    workers = [pid for pid in children if "resource_tracker" not in Path(
        f"/proc/{pid}/cmdline").read_text(errors="replace")]  # fmt: skip
    assert workers
    process.kill()  # SIGKILL: no handler runs in the parent
    process.wait(timeout=30)
    deadline = time.time() + 10
    while any(_alive(pid) for pid in children) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in children), "processes outlived their parent"


def test_every_executor_implements_the_one_protocol():
    from kernelnet.executors import DaskExecutor, Executor

    for executor in (SerialExecutor(), ProcessExecutor(2)):
        assert isinstance(executor, Executor)
    for name in ("prepare", "run"):
        assert callable(getattr(DaskExecutor, name))
    assert {"workers", "threads"} <= set(vars(DaskExecutor(client=_FakeClient())))


class _FakeClient:
    def scheduler_info(self):
        return {"workers": {"a": {}, "b": {}}}
