"""Every reader of a run folder, given a file that never ends (a FIFO), never stops growing
(a link to /dev/zero), leaves the folder (a link out), nests without bound, declares more
than it holds (an .npz header of 10^12 elements) or inflates past the memory limit (a zip
bomb): one line, the right exit code, at once. And every writer, given a link out of its
folder, leaves the outside untouched.

Readers run as real subprocesses (the command line) or in a thread with a deadline (the
Python API), so a hang fails the test instead of hanging the suite."""

import json
import os
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

import kernelnet
from kernelnet import safe_read
from kernelnet.errors import ModelError
from kernelnet.runs import RunDir, RunFolderError
from tests.helpers import kernelnet_cli, one_line, within_deadline


def cli(*args, env=None):
    """The command line in this process (CliRunner), in a thread with a deadline: as the
    user's path but without a new interpreter per case. Returns what kernelnet_cli does."""
    from typer.testing import CliRunner

    from kernelnet.cli import app

    result = within_deadline(
        lambda: CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
    )
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """One finished svm-primal run (it stores a cell result and a LinearSVM model)."""
    runs = tmp_path_factory.mktemp("pristine")
    return kernelnet.run("svm-primal", overrides={"svm.epochs": 3}, runs_dir=runs).path


@pytest.fixture
def copy(pristine, tmp_path):
    """A fresh copy of the finished run, in its own runs dir: (runs_dir, run folder)."""
    runs = tmp_path / "runs"
    folder = runs / "svm-primal" / pristine.name
    shutil.copytree(pristine, folder, symlinks=True)
    return runs, folder


def fifo(path):
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def dev_zero(path):
    path.unlink(missing_ok=True)
    path.symlink_to("/dev/zero")


def link_out(path):
    outside = path.parent.parent.parent.parent / f"outside-{path.name}"
    outside.write_bytes(path.read_bytes() if path.is_file() else b"{}")
    path.unlink(missing_ok=True)
    path.symlink_to(outside)


def deep_json(path):
    path.write_text("[" * 200_000 + "]" * 200_000)


def sparse_huge(path):
    path.unlink(missing_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(300 * 2**20)  # 300 MB of holes: its size, not its reading, is refused


DAMAGE = {
    "fifo": fifo,
    "dev-zero": dev_zero,
    "link-out": link_out,
    "deep": deep_json,
    "huge": sparse_huge,
}


def npy_bytes(array):
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    return buffer.getvalue()


def lying_header(path, name="a0"):
    """A member whose header declares 10^12 float64 elements but holds 8 bytes."""
    header = npy_bytes(np.zeros(1))
    header = header.replace(b"(1,)", b"(1000000000000,)")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}.npy", header)


def zip_bomb(path, name="a0", megabytes=64):
    """A real deflated member of zeros: small on disk, ``megabytes`` when inflated."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
            zeros = np.zeros(megabytes * 2**17)
            np.lib.format.write_array(member, zeros)


def not_a_zip(path):
    path.write_bytes(npy_bytes(np.arange(3.0)))  # a bare .npy named .npz


def truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


NPZ_DAMAGE = {
    "lying-header": lying_header,
    "zip-bomb": zip_bomb,
    "npy-not-npz": not_a_zip,
    "truncated": truncated,
    "fifo": fifo,
    "dev-zero": dev_zero,
}
SMALL_LIMIT = {"KERNELNET_MEMORY_LIMIT": "16M"}  # the zip bomb inflates to 64 MB


# -- the bounded reader itself ----------------------------------------------------------------


def test_json_depth_ignores_brackets_inside_strings():
    assert safe_read.json_depth(b'{"a": ["[[[[", {"b": "}}}]]]"}]}') == 3
    assert safe_read.json_depth(b'"[\\"[[["') == 0
    assert safe_read.json_depth(b"[" * 65 + b"]" * 65) == 65


def test_json_is_read_to_64_levels_and_refused_beyond():
    nested: list = []
    for _ in range(63):
        nested = [nested]
    assert safe_read.parse_json(b"[" * 64 + b"]" * 64, "f") == nested
    with pytest.raises(ValueError, match="nested 65 deep"):
        safe_read.parse_json(b"[" * 65 + b"]" * 65, "f")
    with pytest.raises(ValueError, match="NaN is not JSON"):
        safe_read.parse_json(b'{"a": NaN}', "f")


def test_npz_round_trip_matches_numpy_for_every_kind_of_array(tmp_path):
    arrays = {
        "f": np.arange(12.0).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(6).reshape(2, 3)),
        "b": np.array([True, False]),
        "u": np.array(["ab", "ü"]),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 5), np.float32),
        "c": np.array([1 + 2j]),
    }
    for save in (np.savez, np.savez_compressed):
        path = tmp_path / f"{save.__name__}.npz"
        save(path, **arrays)
        got = safe_read.read_npz(path)
        assert got.keys() == arrays.keys()
        for key, value in arrays.items():
            assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
            np.testing.assert_array_equal(got[key], value)


def test_npz_refusals_are_said_before_inflating(tmp_path, monkeypatch):
    lying_header(tmp_path / "lie.npz")
    with pytest.raises(ValueError, match=r"declares \(1000000000000,\) float64"):
        safe_read.read_npz(tmp_path / "lie.npz")
    zip_bomb(tmp_path / "bomb.npz", megabytes=64)
    monkeypatch.setenv("KERNELNET_MEMORY_LIMIT", "16M")
    with pytest.raises(safe_read.ReadRefused, match="inflates to 67,108,992 bytes"):
        safe_read.read_npz(tmp_path / "bomb.npz")
    not_a_zip(tmp_path / "bare.npz")
    with pytest.raises(ValueError, match="not an .npz archive"):
        safe_read.read_npz(tmp_path / "bare.npz")
    np.savez(tmp_path / "objects.npz", o=np.array([{}, 1], dtype=object))
    with pytest.raises(ValueError, match="holds object values"):
        safe_read.read_npz(tmp_path / "objects.npz")


def test_a_file_that_grows_past_its_bound_while_read_is_refused(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    assert safe_read.read_bytes(path, 10) == b"x" * 10
    with pytest.raises(safe_read.ReadRefused, match="over the 9-byte bound"):
        safe_read.read_bytes(path, 9)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "socket"])
def test_special_files_are_refused_without_blocking(tmp_path, kind):
    import socket

    path = tmp_path / "special"
    if kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
    else:
        DAMAGE[kind](path)
    with pytest.raises(safe_read.ReadRefused, match="not a regular file"):
        within_deadline(lambda: safe_read.read_bytes(path, 1000))


# -- the command line's readers -------------------------------------------------------------

RUN_FILES = ["run.json", "summary.json", "metrics.csv", "grid.json", "metrics.md"]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("name", RUN_FILES)
def test_runs_show_and_list_refuse_a_damaged_run_file_in_one_line(copy, damage, name):
    runs, folder = copy
    DAMAGE[damage](folder / name)
    show = cli("runs", "show", folder, "--runs-dir", runs)
    listed = cli("runs", "list", "--runs-dir", runs)
    if name == "run.json":
        one_line(show, 2, "run.json")
        one_line(listed, 0, "skipped", "run.json")
    elif damage in ("dev-zero", "link-out"):  # a run folder with a link out is not used at all
        one_line(show, 2, name, "a link out of the run folder")
        assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    else:
        assert show.returncode == 0 and "Traceback" not in show.stderr, show.stderr
        assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
        if name == "summary.json" or (name == "metrics.md" and damage != "deep"):
            one_line(show, 0, name)  # the rest of the run is shown, with one warning


@pytest.mark.parametrize("name", ["run.json", "metrics.csv"])
def test_a_fifo_does_not_hang_the_real_command_line(copy, pristine, name):
    runs, folder = copy
    fifo(folder / name)
    one_line(kernelnet_cli("runs", "compare", pristine, folder, "--runs-dir", runs), 2, name)
    listed = kernelnet_cli("runs", "list", "--runs-dir", runs)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_compare_and_rerun_refuse_a_damaged_metrics_csv(copy, pristine, damage):
    runs, folder = copy
    DAMAGE[damage](folder / "metrics.csv")
    one_line(cli("runs", "compare", pristine, folder, "--runs-dir", runs), 2, "metrics")
    one_line(cli("rerun", folder, "--runs-dir", runs, "-q"), 2, "metrics.csv")


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_resume_reruns_a_cell_whose_stored_result_is_damaged(copy, damage):
    runs, folder = copy
    stored = folder / "cells" / "single" / "result.json"
    DAMAGE[damage](stored)
    done = cli("svm-primal", "--resume", folder, "--runs-dir", runs, "-q")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "stored result ignored" in (folder / "log.txt").read_text()
    assert stored.is_file() and not stored.is_symlink()  # replaced by a real result
    assert json.loads(stored.read_text())["status"] == "complete"
    outside = list(folder.parents[2].glob("outside-*"))
    for path in outside:
        assert path.read_bytes() != stored.read_bytes()  # the link's target was not written


@pytest.mark.parametrize("damage", sorted(NPZ_DAMAGE))
def test_resume_reruns_a_cell_whose_stored_arrays_are_damaged(copy, damage):
    runs, folder = copy
    NPZ_DAMAGE[damage](folder / "cells" / "single" / "result-arrays.npz")
    done = cli("svm-primal", "--resume", folder, "--runs-dir", runs, "-q", env=SMALL_LIMIT)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "stored result ignored" in (folder / "log.txt").read_text()


# -- the Python API's readers ---------------------------------------------------------------


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_load_run_refuses_a_damaged_manifest(copy, damage):
    runs, folder = copy
    DAMAGE[damage](folder / "run.json")
    with pytest.raises(RunFolderError, match="run.json"):
        within_deadline(lambda: kernelnet.load_run(folder))


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("name", ["summary.json", "metrics.csv", "grid.json"])
def test_run_properties_refuse_a_damaged_file(copy, damage, name):
    runs, folder = copy
    run = kernelnet.load_run(folder)
    DAMAGE[damage](folder / name)
    read = {"summary.json": "summary", "metrics.csv": "metrics", "grid.json": "cells"}[name]
    with pytest.raises(RunFolderError, match=name):
        within_deadline(lambda: getattr(run, read))


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_run_model_refuses_a_damaged_model_json(copy, damage):
    runs, folder = copy
    DAMAGE[damage](folder / "cells" / "single" / "model.json")
    with pytest.raises(ModelError, match="model"):
        within_deadline(lambda: kernelnet.load_run(folder).model())


@pytest.mark.parametrize("damage", sorted(NPZ_DAMAGE))
def test_run_model_refuses_damaged_model_arrays(copy, damage, monkeypatch):
    runs, folder = copy
    monkeypatch.setenv("KERNELNET_MEMORY_LIMIT", SMALL_LIMIT["KERNELNET_MEMORY_LIMIT"])
    NPZ_DAMAGE[damage](folder / "cells" / "single" / "model-arrays.npz")
    with pytest.raises(ModelError, match="model-arrays.npz"):
        within_deadline(lambda: kernelnet.load_run(folder).model())


def test_a_cell_id_that_names_another_folder_is_refused(copy):
    runs, folder = copy
    grid = json.loads((folder / "grid.json").read_text())
    for bad in ("/etc", "..", "../..", "a/../../b"):
        grid["cells"][0]["id"] = bad
        (folder / "grid.json").write_text(json.dumps(grid))
        run = kernelnet.load_run(folder)
        with pytest.raises(RunFolderError, match="cell id"):
            run.files(bad)
        with pytest.raises(RunFolderError, match="cell id"):
            run.model(bad)


@pytest.mark.parametrize(
    "field, value", [("pid", 2**70), ("pid", -1), ("pid", True), ("status", [1]), ("status", "x")]
)
def test_a_tampered_manifest_field_is_one_line(copy, field, value):
    runs, folder = copy
    manifest = json.loads((folder / "run.json").read_text())
    manifest[field] = value
    (folder / "run.json").write_text(json.dumps(manifest))
    one_line(cli("runs", "list", "--runs-dir", runs), 0, "skipped", field)
    one_line(cli("runs", "show", folder), 2, "damaged", field)


def test_runs_list_does_not_walk_into_latest(tmp_path):
    runs = tmp_path / "runs"
    kernelnet_cli("svm-primal", "-q", "--set", "svm.epochs=1", "--runs-dir", runs)
    assert (runs / "latest").is_symlink()
    done = kernelnet_cli("runs", "list", "--runs-dir", runs)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_the_api_refuses_an_empty_runs_dir(tmp_path, monkeypatch):
    from kernelnet.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="runs_dir must not be empty"):
        kernelnet.run("svm-primal", runs_dir="")
    assert list(tmp_path.iterdir()) == []


# -- writers never follow a link out of their folder ------------------------------------------


@pytest.mark.parametrize("entry", ["cells", "plots", "cells/single", "metrics.csv"])
def test_resume_refuses_a_run_whose_entries_link_to_another_run(copy, pristine, entry):
    runs, folder = copy
    before = {p: p.read_bytes() for p in pristine.rglob("*") if p.is_file()}
    shutil.rmtree(folder / entry) if (folder / entry).is_dir() else (folder / entry).unlink()
    (folder / entry).symlink_to(pristine / entry)
    done = cli("svm-primal", "--resume", folder, "--runs-dir", runs, "-q")
    one_line(done, 2, "a link out of the run folder")
    assert {p: p.read_bytes() for p in pristine.rglob("*") if p.is_file()} == before


def test_a_file_link_inside_a_cell_is_replaced_not_written_through(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    (run.path / "cells" / "c").mkdir(parents=True)
    (run.path / "cells" / "c" / "x.json").symlink_to(outside)
    run.cell_files("c").write_json("x.json", {"a": 1})
    assert outside.read_text() == "precious"
    assert json.loads((run.path / "cells" / "c" / "x.json").read_text()) == {"a": 1}


def test_a_folder_link_out_of_the_run_is_refused_for_every_writer(tmp_path):
    from kernelnet.safe_write import WriteRefused

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = RunDir(tmp_path / "run")
    (run.path / "cells").mkdir(parents=True)
    (run.path / "cells" / "c").symlink_to(elsewhere)
    (run.path / "plots").symlink_to(elsewhere)
    files = run.cell_files("c")
    writers = [
        lambda: files.write_json("x.json", {}),
        lambda: files.save_npz("x.npz", a=np.zeros(2)),
        lambda: run.write_text("plots/x.txt", "x"),
        lambda: run.write_json("cells/c/sub/x.json", {}),
    ]
    for write in writers:
        with pytest.raises(WriteRefused, match="link out of"):
            write()
    assert list(elsewhere.iterdir()) == []


def test_the_run_lock_does_not_follow_a_link(tmp_path):
    from kernelnet.runs import run_lock

    outside = tmp_path / "outside"
    outside.write_text("precious")
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    (run.path / ".lock").symlink_to(outside)
    with pytest.raises(RunFolderError, match="cannot lock"):
        with run_lock(run):
            pass
    assert outside.read_text() == "precious"
