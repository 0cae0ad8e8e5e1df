"""A run's log.txt holds its own lines only, whatever runs beside it: kernelnet.run called
from several threads of one process into one runs_dir (issue 18), serially or with worker
processes; and the lines that end a run (a failed report, a folder that cannot be written)
are said once on the command line, in full in log.txt."""

import contextlib
import contextvars
import errno
import io
import json
import logging
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import kernelnet
from kernelnet.cli import app
from kernelnet.config import param
from kernelnet.experiments import REGISTRY
from kernelnet.experiments.base import CellOutput, Experiment, ExperimentConfig, Report

RUNS = 4
BARRIER = threading.Barrier(RUNS, timeout=60)


@dataclass
class Chatter:
    part: int = param(default_factory=lambda: [1, 2], ge=1, label="part")
    meet: bool = param(True, sweepable=False)  # wait for the other runs inside each cell
    helper: bool = param(False, sweepable=False)  # log from a thread the cell starts


@dataclass
class ChattyConfig(ExperimentConfig):
    cell: Chatter = field(default_factory=Chatter)


def run_cell(config, ctx):
    ctx.log.info("chatty seed=%d part=%d starts", config.seed, config.cell.part)
    if config.cell.meet:
        BARRIER.wait()  # every run is inside a cell now: their lines interleave
    if config.cell.helper:  # a thread started with the run's context logs into the run
        helper = threading.Thread(
            target=contextvars.copy_context().run,
            args=(ctx.log.warning, "chatty helper of seed=%d", config.seed),
        )
        helper.start()
        helper.join()
    ctx.log.info("chatty seed=%d part=%d ends", config.seed, config.cell.part)
    return CellOutput([{"seed": config.seed}])


def report(ctx):
    return Report([], {"cells": len(ctx.completed)})


# The registry holds the catalogued names only: the test experiment takes conv's place.
NAME = "conv"
CHATTY = Experiment(NAME, ChattyConfig, run_cell, report)


@pytest.fixture
def chatty(monkeypatch):
    monkeypatch.setitem(REGISTRY, NAME, CHATTY)
    BARRIER.reset()
    return CHATTY


def _run_in_threads(runs_dir: Path, seeds: list[int], **options) -> dict[int, Path]:
    folders: dict[int, Path] = {}
    errors: list[BaseException] = []

    def one(seed: int) -> None:
        try:
            run = kernelnet.run(NAME, config={}, seed=seed, runs_dir=runs_dir, **options)
            folders[seed] = run.path
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return folders


def test_four_runs_in_threads_each_log_only_their_own_lines(tmp_path, chatty):
    level = logging.getLogger("kernelnet").level
    seeds = list(range(1, RUNS + 1))
    folders = _run_in_threads(tmp_path, seeds)
    assert len(set(folders.values())) == RUNS
    for seed, folder in folders.items():
        text = (folder / "log.txt").read_text()
        for part in (1, 2):
            assert f"chatty seed={seed} part={part} starts" in text, text
            assert f"chatty seed={seed} part={part} ends" in text, text
        assert f"run {folder}:" in text  # the runner's own line
        assert "results:" in text or "INFO kernelnet.runner" in text
        for other, theirs in folders.items():
            if other != seed:
                assert f"seed={other} " not in text, (seed, text)
                assert str(theirs) not in text, (seed, text)
    # the runs lowered the package logger to INFO while they lasted; the last one to end
    # gave the level back (a run ending early must not silence the others' INFO lines)
    assert logging.getLogger("kernelnet").level == level


def test_runs_with_worker_processes_in_threads_keep_their_workers_lines_apart(tmp_path, chatty):
    folders = _run_in_threads(
        tmp_path, [1, 2], workers=2, overrides={"cell.meet": False, "cell.part": [1, 2, 3]}
    )
    for seed, folder in folders.items():
        text = (folder / "log.txt").read_text()
        assert "[worker " not in text  # the workers' lines come back: the run writes them
        for part in (1, 2, 3):
            assert text.count(f"chatty seed={seed} part={part} starts") == 1, text
            assert text.count(f"chatty seed={seed} part={part} ends") == 1, text
        other = 3 - seed
        assert f"seed={other} " not in text and str(folders[other]) not in text, text


def test_a_thread_the_run_starts_with_its_context_logs_into_the_run(tmp_path, chatty):
    run = kernelnet.run(
        NAME,
        config={},
        seed=5,
        runs_dir=tmp_path,
        overrides={"cell.meet": False, "cell.helper": True, "cell.part": 1},
    )
    assert "chatty helper of seed=5" in (run.path / "log.txt").read_text()


def test_a_thread_that_runs_nothing_does_not_log_into_a_run(tmp_path, monkeypatch):
    inside, done = threading.Event(), threading.Event()

    def waiting(config, ctx):
        inside.set()
        assert done.wait(30)
        return CellOutput([{}])

    monkeypatch.setitem(REGISTRY, NAME, replace(CHATTY, run_cell=waiting))
    runner = threading.Thread(
        target=lambda: kernelnet.run(NAME, config={"cell.part": 1}, runs_dir=tmp_path)
    )
    runner.start()
    assert inside.wait(30)
    logging.getLogger("kernelnet.somewhere").warning("a line from a thread that runs nothing")
    done.set()
    runner.join(30)
    (folder,) = (tmp_path / NAME).iterdir()
    text = (folder / "log.txt").read_text()
    assert f"run {folder}:" in text and "runs nothing" not in text


# The lines that end a run: said once on the command line, in full in log.txt.
def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


PROGRESS = re.compile(r"^\S+ \[\d+/\d+\] \S+ \w+")  # a finished cell, off a terminal


def _error_lines(result) -> list[str]:
    """stderr's lines but the progress lines (one per finished cell of a grid)."""
    return [
        line for line in result.stderr.splitlines() if line.strip() and not PROGRESS.match(line)
    ]


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "chatty.yaml"
    path.write_text(f"experiment: {NAME}\ncell:\n  meet: false\n")
    return path


def test_a_failing_report_is_said_once(tmp_path, monkeypatch):
    def broken(ctx):
        raise RuntimeError("the table could not be built")

    monkeypatch.setitem(REGISTRY, NAME, replace(CHATTY, report=broken))
    result = _cli("run", _config(tmp_path), "--runs-dir", tmp_path / "runs", "--quiet")
    assert result.exit_code == 1, result.stderr
    lines = _error_lines(result)
    assert len(lines) == 1, result.stderr
    assert "the report failed: RuntimeError: the table could not be built" in lines[0]
    folder = Path(result.stdout.strip().splitlines()[-1])
    log = (folder / "log.txt").read_text()
    assert "the report failed" in log and "Traceback" in log
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"


def _full_disk(monkeypatch, refuse):
    """Every run-folder write goes through runs.write_atomic: refuse the ones ``refuse``
    picks (given the path and the bytes that would be written) with ENOSPC."""
    import kernelnet.runs as runs

    real = runs.write_atomic

    def write_atomic(path, write, root=None):
        buffer = io.BytesIO()
        write(buffer)
        if refuse(Path(path), buffer.getvalue()):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, write, root)

    monkeypatch.setattr(runs, "write_atomic", write_atomic)


def test_a_full_disk_mid_run_is_one_line_and_the_run_is_marked_failed(
    tmp_path, monkeypatch, chatty
):
    _full_disk(monkeypatch, lambda p, _: p.name == "result.json" and p.parent.name == "part=2")
    result = _cli("run", _config(tmp_path), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.stderr
    lines = _error_lines(result)
    assert len(lines) == 1, result.stderr
    assert "cannot write the run folder (No space left on device" in lines[0]
    assert "the run is marked failed" in lines[0] and "kernelnet run --resume" in lines[0]
    (folder,) = (tmp_path / "runs" / NAME).iterdir()
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"
    assert (folder / "cells" / "part=1" / "result.json").is_file()  # kept
    log = (folder / "log.txt").read_text()
    assert "run failed: cannot write the run folder" in log and "Traceback" in log


def test_a_run_json_that_cannot_take_the_final_status_is_one_line(tmp_path, monkeypatch, chatty):
    _full_disk(monkeypatch, lambda p, data: p.name == "run.json" and b'"running"' not in data)
    result = _cli("run", _config(tmp_path), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.stderr
    lines = _error_lines(result)
    assert len(lines) == 1, result.stderr
    assert "run.json could not record that the run completed" in lines[0]
    assert "No space left on device" in lines[0]


def test_a_full_disk_when_interrupted_still_says_the_folder(tmp_path, monkeypatch, chatty):
    def interrupt(config, ctx):
        raise KeyboardInterrupt

    monkeypatch.setitem(REGISTRY, NAME, replace(CHATTY, run_cell=interrupt))
    _full_disk(monkeypatch, lambda p, data: p.name == "run.json" and b'"running"' not in data)
    result = _cli("run", _config(tmp_path), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 130, result.stderr
    lines = _error_lines(result)
    assert len(lines) == 1, result.stderr
    (folder,) = (tmp_path / "runs" / NAME).iterdir()
    assert f"{folder} could not be marked interrupted (No space left on device" in lines[0]
    assert f"kernelnet run --resume {folder}" in lines[0]


# Real processes: a signal mid-run or before a folder exists, and a folder that really
# cannot be written (chmod where it binds, chattr +i as root).
def _kernelnet_process(*args, driver: str | None = None) -> subprocess.Popen:
    command = ["-c", driver, *args] if driver else ["-m", "kernelnet", *args]
    return subprocess.Popen(
        [sys.executable, *map(str, command)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate, process: subprocess.Popen, what: str) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if predicate():
            time.sleep(0.3)
            return
        if process.poll() is not None:
            pytest.fail(f"{what}: the process ended first: {process.communicate()}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"{what}: not within 60 s")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_names_its_folder_and_the_command_to_finish_it(tmp_path, signum):
    runs = tmp_path / "my runs"  # a space: the command shown must survive a shell
    process = _kernelnet_process(
        "svm-primal", "--epochs", "1,3000000", "--runs-dir", runs, "--quiet"
    )
    _wait_for(lambda: list(runs.glob("svm-primal/*/cells/epochs=1/result.json")), process, "run")
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    (folder,) = (runs / "svm-primal").iterdir()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == [
        f"interrupted: the run folder {folder} is marked interrupted; finish it with: "
        f"kernelnet run --resume {shlex.quote(str(folder))}"
    ], stderr
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    listed = subprocess.run(
        [sys.executable, "-m", "kernelnet", *shlex.split(lines[0].split(": ")[-1])[1:],
         "--dry-run"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr  # the command shown is one that works
    assert "epochs=3000000" in listed.stdout


SLOW_PREFLIGHT = """
import sys, time
from dataclasses import replace
from pathlib import Path
from kernelnet.experiments import REGISTRY

marker, runs = sys.argv[1:3]

def slow(cells):  # as a Dask connection or a large data check would be
    Path(marker).touch()
    time.sleep(60)

REGISTRY["svm-primal"] = replace(REGISTRY["svm-primal"], preflight=slow)
sys.argv = ["kernelnet", "svm-primal", "--epochs", "1", "--runs-dir", runs]
from kernelnet.cli import app
app()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_before_a_folder_exists_says_no_folder_was_made(tmp_path, signum):
    marker, runs = tmp_path / "preflight", tmp_path / "runs"
    process = _kernelnet_process(marker, runs, driver=SLOW_PREFLIGHT)
    _wait_for(marker.exists, process, "preflight")
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == ["interrupted: stopped before a run folder was made; nothing to resume"]
    assert not list(runs.glob("svm-primal/*"))


def _unwritable_mode(tmp_path: Path) -> str:
    """How this test process can make a folder really unwritable: chmod binds for a user;
    root ignores permissions, so as root only an immutable folder (chattr +i) does."""
    if os.geteuid() != 0:
        return "chmod"
    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        done = subprocess.run(["chattr", "+i", probe], capture_output=True)
    except FileNotFoundError:
        pytest.skip("running as root without chattr: no folder can be made unwritable")
    if done.returncode != 0:
        pytest.skip(f"running as root and chattr +i is refused here: {done.stderr!r}")
    try:
        (probe / "x").touch()
        pytest.skip("chattr +i does not bind on this file system")
    except OSError:
        pass
    finally:
        subprocess.run(["chattr", "-i", probe], check=True)
    return "chattr"


def _lock(paths, mode: str) -> None:
    for path in paths:
        if mode == "chmod":
            os.chmod(path, 0o555)
        else:
            subprocess.run(["chattr", "+i", str(path)], check=True)


def _unlock_all(folder: Path, mode: str) -> None:
    if mode == "chmod":
        subprocess.run(["chmod", "-R", "u+w", str(folder)], check=False)
    else:
        subprocess.run(["chattr", "-R", "-i", str(folder)], check=False, capture_output=True)


LOCKED_MID_RUN = """
import os, subprocess, sys
from dataclasses import replace
from kernelnet.experiments import REGISTRY

base = REGISTRY["svm-primal"]
mode = sys.argv[1]

def run_cell(config, ctx):
    output = base.run_cell(config, ctx)
    if config.svm.epochs == 3:  # the disk turns read-only under the second cell
        run = ctx.files.run.path
        for path in (run, run / "cells", ctx.files.folder):
            if mode == "chmod":
                os.chmod(path, 0o555)
            else:
                subprocess.run(["chattr", "+i", str(path)], check=True)
    return output

REGISTRY["svm-primal"] = replace(base, run_cell=run_cell)
sys.argv = ["kernelnet", "svm-primal", "--epochs", "1,3", "--runs-dir", sys.argv[2], "-q"]
from kernelnet.cli import app
app()
"""


def test_a_folder_that_turns_read_only_mid_run_is_one_line_and_not_left_running(tmp_path):
    mode = _unwritable_mode(tmp_path)
    runs = tmp_path / "runs"
    process = _kernelnet_process(mode, runs, driver=LOCKED_MID_RUN)
    try:
        _, stderr = process.communicate(timeout=120)
        (folder,) = (runs / "svm-primal").iterdir()
        assert process.returncode == 2, stderr
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1, stderr
        assert f"{folder}: cannot write the run folder (" in lines[0]
        assert "run.json could not be updated" in lines[0]
        assert "1 finished cell(s) are kept" in lines[0]
        # run.json still says running, but nothing runs it: readers say so
        assert json.loads((folder / "run.json").read_text())["status"] == "running"
        listed = subprocess.run(
            [sys.executable, "-m", "kernelnet", "runs", "list", "--runs-dir", runs, "--json"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert [r["status"] for r in json.loads(listed.stdout)] == ["interrupted"]
        assert "run failed: cannot write the run folder" in (folder / "log.txt").read_text()
    finally:
        for folder in runs.glob("svm-primal/*"):
            _unlock_all(folder, mode)


def test_resuming_a_read_only_run_folder_is_one_line_and_changes_nothing(tmp_path):
    mode = _unwritable_mode(tmp_path)
    runs = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "kernelnet", "svm-primal", "--epochs", "1", "--runs-dir", runs,
         "--quiet"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    before = (folder / "run.json").read_bytes()
    _lock([folder], mode)
    try:
        resumed = subprocess.run(
            [sys.executable, "-m", "kernelnet", "run", "--resume", folder],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        _unlock_all(folder, mode)
    assert resumed.returncode == 2, resumed.stderr
    lines = [line for line in resumed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in resumed.stderr, resumed.stderr
    assert f"error: {folder}: cannot write the run folder (" in lines[0]
    assert (folder / "run.json").read_bytes() == before


# log.txt is written into the run folder only: what is planted at its name is replaced.
def _finished_run(tmp_path: Path) -> Path:
    result = _cli("run", _config(tmp_path), "--runs-dir", tmp_path / "runs", "--quiet")
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def _plant(log: Path, plant: str, outside: Path, first: str) -> None:
    log.unlink()
    if plant == "symlink out":
        log.symlink_to(outside)
    elif plant == "symlink to /dev/full":
        log.symlink_to("/dev/full")
    elif plant == "fifo":
        os.mkfifo(log)
        _unblock_later(log)
    else:
        log.write_text(first)
        os.link(log, outside.parent / "hard-linked.txt")


def _unblock_later(fifo: Path, seconds: float = 20) -> None:
    """Should a writer block opening the FIFO (the defect tested for), open it for reading
    after a while, so that the test fails instead of hanging the suite."""

    def unblock() -> None:
        with contextlib.suppress(OSError):
            if stat.S_ISFIFO(os.lstat(fifo).st_mode):
                os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))

    timer = threading.Timer(seconds, unblock)
    timer.daemon = True
    timer.start()


def _check_replaced(log: Path, plant: str, outside: Path, first: str, folder: Path) -> None:
    assert outside.read_text() == "the user's own file\n"
    assert log.is_file() and not log.is_symlink() and os.stat(log).st_nlink == 1
    text = log.read_text()
    assert f"run {folder}: 2 cell(s) of {NAME}, 0 to run" in text
    assert text.startswith(first) == (plant == "hard link")  # a log of its own is kept
    if plant == "hard link":
        assert (outside.parent / "hard-linked.txt").read_text() == first


@pytest.fixture
def planted(tmp_path, chatty):
    folder = _finished_run(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("the user's own file\n")
    return folder, outside, (folder / "log.txt").read_text()


@pytest.mark.parametrize("plant", ["fifo", "hard link"])
def test_resuming_never_writes_log_lines_through_what_is_planted_at_log_txt(planted, plant):
    folder, outside, first = planted
    _plant(folder / "log.txt", plant, outside, first)
    result = _cli("run", "--resume", folder, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip() == ""
    _check_replaced(folder / "log.txt", plant, outside, first, folder)


@pytest.mark.parametrize("plant", ["symlink out", "symlink to /dev/full", "fifo", "hard link"])
def test_the_runner_replaces_what_is_planted_at_log_txt(planted, plant):
    """Beneath RunDir.open's own refusal of links out of a folder (what the command line
    meets first), the runner never appends through one either."""
    from kernelnet.config import RawConfig
    from kernelnet.runner import execute, resolve_experiment_config
    from kernelnet.runs import RunDir

    folder, outside, first = planted
    _plant(folder / "log.txt", plant, outside, first)
    resolved = resolve_experiment_config(CHATTY, RawConfig({"cell": {"meet": False}}))
    outcome = execute(CHATTY, resolved, folder.parent.parent, [], resume=RunDir(folder))
    assert outcome.status == "complete"
    _check_replaced(folder / "log.txt", plant, outside, first, folder)


def test_a_log_line_that_cannot_be_written_is_dropped_without_a_report(tmp_path, capfd):
    from kernelnet.runner import RunLog

    run_log = RunLog(tmp_path / "log.txt")
    run_log.handler.setStream(open("/dev/full", "w"))  # every flush: ENOSPC
    run_log.note(logging.ERROR, "a line on a full disk")
    run_log.handler.close()
    assert capfd.readouterr().err == ""
