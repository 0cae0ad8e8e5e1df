import json
import os
import threading
from pathlib import Path

import pytest

from kernelnet.runs import RunDir, RunInfo, iter_runs
from kernelnet.safe_write import write_atomic, write_text_atomic


def new_run(runs_dir, experiment) -> RunDir:
    run = RunDir.create(runs_dir, experiment)
    run.update_manifest(status="running")
    run.publish()
    return run


def test_eight_runs_started_at_once_get_eight_folders(tmp_path):
    made, barrier = [], threading.Barrier(8)

    def start():
        barrier.wait()
        made.append(new_run(tmp_path, "exp").path)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 8
    assert all(p.parent == tmp_path / "exp" and p.is_dir() for p in made)
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == sorted(p.name for p in made)


def test_a_folder_is_visible_only_once_published_with_its_manifest(tmp_path):
    run = RunDir.create(tmp_path, "exp")
    assert [p.name.startswith(".") for p in (tmp_path / "exp").iterdir()] == [True]
    assert list(iter_runs(tmp_path)) == []
    run.update_manifest(status="running")
    run.publish()
    assert [p.name for p in (tmp_path / "exp").iterdir()] == [run.path.name]
    assert (run.path / "run.json").is_file()


def test_folder_name_is_timestamp_and_four_hex(tmp_path):
    name = new_run(tmp_path, "exp").path.name
    stamp, token = name.rsplit("-", 1)
    assert len(stamp) == 15 and stamp[8] == "-" and stamp.replace("-", "").isdigit()
    assert len(token) == 4 and int(token, 16) >= 0


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "metrics.csv"
    write_text_atomic(target, "old\n")

    def half_then_fail(handle):
        handle.write(b"new but incomplete")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half_then_fail)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]


def test_interrupt_mid_write_also_cleans_up(tmp_path):
    target = tmp_path / "x.json"

    def interrupted(handle):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, interrupted)
    assert list(tmp_path.iterdir()) == []


def test_latest_points_at_the_newest_run(tmp_path):
    first = new_run(tmp_path, "a")
    first.link_latest(tmp_path)
    second = new_run(tmp_path, "b")
    second.link_latest(tmp_path)
    latest = tmp_path / "latest"
    assert latest.is_symlink() and latest.resolve() == second.path.resolve()
    assert not os.path.isabs(os.readlink(latest))


def test_manifest_updates_are_whole_json(tmp_path):
    run = new_run(tmp_path, "exp")
    run.update_manifest(status="running", pid=1)
    run.update_manifest(status="complete")
    assert json.loads((run.path / "run.json").read_text()) == {"status": "complete", "pid": 1}


def test_running_run_with_dead_pid_shows_interrupted(tmp_path):
    dead = new_run(tmp_path, "exp")
    dead.update_manifest(experiment="exp", status="running", pid=2**22 + 12345, started="1")
    alive = new_run(tmp_path, "exp")
    alive.update_manifest(experiment="exp", status="running", pid=os.getpid(), started="2")
    statuses = {r.path: r.status for r in iter_runs(tmp_path)}
    assert statuses == {dead.path: "interrupted", alive.path: "running"}


def test_run_info_keeps_final_statuses():
    assert RunInfo(Path("x"), {"status": "complete", "pid": 2**22 + 1}).status == "complete"
