"""The Dask path a user takes: a cluster started as separate `dask scheduler` and `dask
worker` processes on loopback, used through the command line."""

import contextlib
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed")

DASK = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]
MNIST_SWEEP = [
    "mnist", "--epochs", "1", "--set", "train.learning_rate=0.001,0.002",
    "--set", "data.train_size=2000", "--set", "data.val_size=500", "--set", "data.test_size=500",
]  # fmt: skip


def start_cluster(folder: Path, env: dict | None = None):
    """A scheduler and one worker process with two worker subprocesses; returns the
    processes and the scheduler file once both workers have registered."""
    scheduler_file = folder / "scheduler.json"
    folder.mkdir(parents=True, exist_ok=True)
    logs = {name: open(folder / f"{name}.log", "wb") for name in ("scheduler", "worker")}
    scheduler = subprocess.Popen(
        [*DASK, "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(scheduler_file)],
        stdout=logs["scheduler"], stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.time() + 60
    while not scheduler_file.is_file() and time.time() < deadline:
        time.sleep(0.1)
    worker = subprocess.Popen(
        [*WORKER, "--scheduler-file", str(scheduler_file), "--nworkers", "2", "--nthreads", "1",
         "--no-dashboard", "--local-directory", str(folder / "work")],
        env={**os.environ, **(env or {})},
        stdout=logs["worker"], stderr=subprocess.STDOUT,
    )  # fmt: skip
    for log in logs.values():
        log.close()  # the processes hold their own copies
    from distributed import Client

    with Client(scheduler_file=str(scheduler_file), timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
    return [scheduler, worker], scheduler_file


def stop(processes, scheduler_file: Path | None = None):
    """Shut the cluster down through its scheduler (about 2 s; SIGTERM to a `dask worker`
    takes 8), falling back to terminating and killing the processes."""
    if scheduler_file is not None:
        from distributed import Client

        with (
            contextlib.suppress(Exception),
            Client(scheduler_file=str(scheduler_file), timeout="10s") as client,
        ):
            client.shutdown()
    for process in reversed(processes):
        if process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5 if scheduler_file else 0)
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    processes, scheduler_file = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield scheduler_file
    stop(processes, scheduler_file)


def kernelnet(*args, env=None, timeout=300):
    done = subprocess.run(
        [sys.executable, "-m", "kernelnet", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    return done


def rows(folder: Path) -> list[dict]:
    found = list(csv.DictReader(open(folder / "metrics.csv")))
    for row in found:
        row.pop("seconds", None)
        row.pop("fit_seconds", None)
    return found


def folder_of(done) -> Path:
    return Path(done.stdout.strip().splitlines()[-1])


def test_the_same_float32_numbers_serially_in_processes_and_on_the_cluster(cluster, tmp_path):
    __import__("json").loads(cluster.read_text())["address"]
    serial = kernelnet(*MNIST_SWEEP, "--runs-dir", tmp_path / "s", "--quiet")
    workers = kernelnet(*MNIST_SWEEP, "--runs-dir", tmp_path / "w", "--quiet", "--workers", 2)
    by_file = kernelnet(*MNIST_SWEEP, "--runs-dir", tmp_path / "d", "--quiet",
                        "--scheduler-file", cluster)  # fmt: skip
    for done in (serial, workers, by_file):
        assert done.returncode == 0, done.stderr
    reference = rows(folder_of(serial))
    trained = [row for row in reference if row["epoch"] != "0"]  # epoch 0: before training
    assert len(trained) == 2 and trained[0]["loss"] != trained[1]["loss"]
    for done in (workers, by_file):
        assert rows(folder_of(done)) == reference  # bit-identical: same text of every float
    # files the cells wrote on the workers arrive in the client's run folder
    assert len(list((folder_of(by_file) / "cells").glob("*/model.npz"))) == 2


def test_the_cluster_is_found_by_address_and_by_environment_variable(cluster, tmp_path):
    address = __import__("json").loads(cluster.read_text())["address"]
    sweep = ["gradcheck", "--quiet", "--set", "check.name=affine,relu"]
    by_address = kernelnet(*sweep, "--runs-dir", tmp_path / "a", "--scheduler", address)
    by_env = kernelnet(*sweep, "--runs-dir", tmp_path / "e",
                       env={"DASK_SCHEDULER_ADDRESS": address})  # fmt: skip
    for done in (by_address, by_env):
        assert done.returncode == 0, done.stderr
        log = (folder_of(done) / "log.txt").read_text()
        assert "2 to run, 2 worker(s)" in log  # the cluster's two workers, not this process


def test_workers_that_cannot_see_the_data_are_refused_before_any_cell(tmp_path):
    processes, scheduler_file = start_cluster(tmp_path, env={"KERNELNET_DATA": "/nonexistent"})
    try:
        started = time.time()
        done = kernelnet("kernel-table", "--scheduler-file", scheduler_file,
                         "--runs-dir", tmp_path / "runs")  # fmt: skip
    finally:
        stop(processes, scheduler_file)
    assert done.returncode == 2
    assert "cannot load the data" in done.stderr and "KERNELNET_DATA" in done.stderr
    assert "Dask worker tcp://127.0.0.1:" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
    assert time.time() - started < 60


@pytest.mark.parametrize(
    "option, message",
    [
        (["--scheduler", "not a url"], "not a scheduler address"),
        (["--scheduler-file", "/nonexistent.json"], "no such file"),
        (["--scheduler", "tcp://127.0.0.1:9"], "cannot connect to the Dask scheduler"),
    ],
)
def test_a_bad_scheduler_fails_within_seconds_with_one_line(tmp_path, option, message):
    started = time.time()
    done = kernelnet("kernel-table", *option, "--runs-dir", tmp_path, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert time.time() - started < 20
    assert shutil.which("true")  # nothing else to clean up
