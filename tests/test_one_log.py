"""One run, one log, whatever the executor (issue 21): what a cell logs (its context's
logger, a package logger, the runner's "cell ... failed") reaches stderr and log.txt
once each, serially, with `--workers 2` and on a Dask cluster of separate `dask
scheduler` / `dask worker` processes; a line that does not name its cell gets the cell's
id where the cell ran in another process."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_worker_death import DRIVER, PROGRESS, ROOT

CELLS = 4
FAILING = 2
EXECUTORS = ["serial", "workers", "dask"]


@pytest.fixture(scope="module")
def scheduler_file(tmp_path_factory):
    """A cluster whose workers import this checkout's tests (for the test experiment)."""
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    from tests.test_dask_cluster import start_cluster, stop

    processes, found = start_cluster(
        tmp_path_factory.mktemp("cluster"), env={"PYTHONPATH": str(ROOT)}
    )
    yield found
    stop(processes, found)


def _where(executor: str, request) -> list[str]:
    if executor == "workers":
        return ["--workers", "2"]
    if executor == "dask":
        return ["--scheduler-file", str(request.getfixturevalue("scheduler_file"))]
    return []


def _chatty_run(tmp_path: Path, where: list[str]):
    config = tmp_path / "chatty.yaml"
    config.write_text(
        f"experiment: conv\ncell:\n  n: {list(range(CELLS))}\n  chatty: true\n  fail: {FAILING}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(ROOT), "run", str(config),
         "--runs-dir", str(tmp_path / "runs"), *where],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return done, Path(done.stdout.strip().splitlines()[-1])


def _log_messages(folder: Path) -> list[str]:
    """log.txt's lines without their time stamps: ``LEVEL logger: message``."""
    text = (folder / "log.txt").read_text()
    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
    return [stamp.sub("", line) for line in text.splitlines() if stamp.match(line)]


def _cell_of(line: str) -> int:
    return int(re.search(r"(?:n=|#)(\d+)", line).group(1))


@pytest.mark.parametrize("executor", EXECUTORS)
def test_what_cells_log_is_said_once_on_stderr_and_once_in_log_txt(tmp_path, executor, request):
    done, folder = _chatty_run(tmp_path, _where(executor, request))
    assert done.returncode == 1, done.stderr  # the failing cell
    stderr = [line for line in done.stderr.splitlines() if not PROGRESS.match(line)]
    logged = _log_messages(folder)
    expected_stderr, expected_log = [], []
    for n in range(CELLS):
        cell = f"n={n}"
        # Wherever the cell ran (here, a worker, Dask), a line that does not name it is led
        # by its id: the same text on every executor.
        unnamed = f"cell {cell}: a warning that names no cell, #{n}"
        expected_stderr += [f"warning: {cell}: a warning from the cell", f"warning: {unnamed}"]
        expected_log += [
            f"INFO kernelnet.experiments.conv: {cell}: an info line from the cell",
            f"WARNING kernelnet.experiments.conv: {cell}: a warning from the cell",
            f"WARNING kernelnet.tests.worker_killer: {unnamed}",
        ]
        if n == FAILING:
            expected_stderr.append(f"error: cell {cell} failed: asked to fail")
            expected_log.append(f"ERROR kernelnet.executors: cell {cell} failed: asked to fail")
    expected_stderr.append(
        f"1 of {CELLS} cell(s) failed; the other cells' results are in the run folder"
    )
    # Each line once: the cells' lines in the order each cell logged them, whatever order
    # the cells finished in.
    assert sorted(stderr) == sorted(expected_stderr), done.stderr
    from_cells = [line for line in logged if "kernelnet.runner" not in line]
    assert sorted(from_cells) == sorted(expected_log), logged
    for n in range(CELLS):
        mine = [line for line in from_cells if _cell_of(line) == n]
        assert mine == [line for line in expected_log if _cell_of(line) == n]
    assert not any("[worker " in line for line in logged)  # one writer: this process


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_non_psd_gram_matrix_warning_is_said_once_by_every_executor(tmp_path, executor, request):
    done = subprocess.run(
        [sys.executable, "-m", "kernelnet", "kernel-table", "--no-plots",
         "--set", "data.dataset=circles,moons", "--set", "kernel.name=sigmoid",
         "--runs-dir", str(tmp_path), *_where(executor, request)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    log = (folder / "log.txt").read_text()
    for dataset in ("circles", "moons"):
        said = [
            line
            for line in done.stderr.splitlines()
            if line.startswith(f"warning: dataset={dataset}: Gram matrix is not PSD")
        ]
        assert len(said) == 1, done.stderr
        assert log.count(said[0].removeprefix("warning: ")) == 1, log


def _buggy(config, ctx):
    raise ValueError(f"a bug in cell {ctx.cell.id}")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_crashed_cells_traceback_reaches_log_txt_once(tmp_path, workers):
    """Records carry their traceback as text across processes (a traceback does not
    pickle): the error line once, with the cell's own frames, in log.txt."""
    from dataclasses import replace

    from kernelnet.config import resolve
    from kernelnet.executors import make_executor
    from kernelnet.runner import execute
    from tests.experiments import worker_killer

    experiment = replace(worker_killer.EXPERIMENT, run_cell=_buggy)
    resolved = resolve(worker_killer.WorkerKillerConfig, {"cell": {"n": [0, 1]}}, {})
    resolved["experiment"] = experiment.name
    outcome = execute(experiment, resolved, tmp_path, [], executor=make_executor(workers))
    assert [r.status for r in outcome.results] == ["failed", "failed"]
    log = (outcome.run.path / "log.txt").read_text()
    for n in (0, 1):
        line = f"cell n={n} crashed: ValueError: a bug in cell n={n}"
        assert log.count(line) == 1, log
        assert log.count(f"ValueError: a bug in cell n={n}\n") == 2  # the line, the traceback
    assert log.count('raise ValueError(f"a bug in cell {ctx.cell.id}")') == 2, log  # its frame
