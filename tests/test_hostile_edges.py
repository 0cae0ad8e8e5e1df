"""Hostile inputs found by trying issue 18's classes again on the hardened tree: each a
refusal in one line (or an error type of kernelnet's), never an internal error, a traceback,
a MemoryError or a write outside the folder given."""

import json
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import kernelnet
from kernelnet import safe_read
from kernelnet.errors import ConfigError, DataError
from kernelnet.knn import KNeighborsClassifier
from kernelnet.nn.estimator import MLPClassifier
from kernelnet.runs import RunFolderError
from kernelnet.svm.estimator import KernelSVM
from kernelnet.svm.linear import LinearSVM
from tests.helpers import kernelnet_cli, one_line


def test_the_memory_limit_never_exceeds_what_the_address_space_limit_leaves():
    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))\n"
        "from kernelnet import footprint\n"
        "print(footprint.memory_limit())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"KERNELNET_MEMORY_LIMIT": "16G", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert 0 < int(done.stdout) < 3 * 2**30


def test_an_npz_under_an_address_space_limit_is_refused_by_the_estimate(tmp_path):
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("X.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, np.zeros((2**17, 512)))  # 512 MB inflated
        with archive.open("y.npy", "w") as member:
            np.lib.format.write_array(member, np.zeros(2**17))
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
        "from kernelnet.cli import main\n"
        f"sys.argv = ['kernelnet', 'mlp', '-q', '--set', 'data.dataset={bomb}',"
        f" '--runs-dir', '{tmp_path / 'runs'}']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    one_line(done, 2, "memory")
    assert "MemoryError" not in done.stderr


@pytest.mark.parametrize(
    "header", [b"{'descr': '<f8', 'fortran_order': False, 'shape': (2,)", b"((((("]
)
def test_a_damaged_npy_header_is_a_value_error(tmp_path, header):
    padded = header.ljust(118) + b"\n"
    member = b"\x93NUMPY\x01\x00" + len(padded).to_bytes(2, "little") + padded
    with zipfile.ZipFile(tmp_path / "a.npz", "w") as archive:
        archive.writestr("a.npy", member)
    with pytest.raises(ValueError, match="damaged .npy header"):
        safe_read.read_npz(tmp_path / "a.npz")


def test_a_run_name_too_long_for_the_file_system_is_one_line():
    name = "x" * 5000
    one_line(kernelnet_cli("runs", "show", name), 2, "File name too long")
    with pytest.raises(RunFolderError, match="5,000 characters"):
        kernelnet.load_run(name)


@pytest.mark.parametrize(
    "arguments",
    [
        {"runs_dir": 5},
        {"runs_dir": None},
        {"config": 5},
        {"config": [1, 2]},
        {"overrides": 5},
        {"workers": "2"},
        {"workers": 1.5},
        {"workers": 0},
        {"workers": True},
        {"seed": 1.5},
    ],
)
def test_the_api_checks_its_arguments_before_making_a_folder(tmp_path, monkeypatch, arguments):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=next(iter(arguments))):
        kernelnet.run("svm-primal", **arguments)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="experiment must be"):
        kernelnet.run(["svm-primal"])


@pytest.mark.parametrize("estimator", [KernelSVM, LinearSVM, MLPClassifier, KNeighborsClassifier])
def test_labels_mixing_text_and_numbers_are_refused(estimator):
    X = np.random.default_rng(0).normal(size=(40, 2))
    # kernelnet's own check says scikit-learn's words; with scikit-learn loaded (as in this
    # suite, by other tests), its own validation refuses them first
    with pytest.raises(ValueError, match=r"Mix of label input types|Unknown label type"):
        estimator().fit(X, np.array([1, "a"] * 20, dtype=object))


@pytest.mark.parametrize("estimator", [LinearSVM, MLPClassifier])
def test_epochs_beyond_the_bound_are_refused(estimator):
    with pytest.raises(ValueError, match=r"'epochs' parameter .* range \[1, 1000000000\]"):
        estimator(epochs=2**70).fit(np.zeros((4, 2)), [0, 0, 1, 1])


def test_empty_folder_and_scheduler_arguments_are_one_line(tmp_path):
    one_line(kernelnet_cli("init", "", cwd=tmp_path), 2, "must not be empty")
    assert list(tmp_path.iterdir()) == []
    done = kernelnet_cli("svm-primal", "-q", "--scheduler", "", "--runs-dir", tmp_path / "r")
    one_line(done, 2, "--scheduler must not be empty")
    assert not (tmp_path / "r").exists()


def test_a_new_run_never_follows_a_linked_experiment_folder_out(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "svm-primal").symlink_to(elsewhere)
    done = kernelnet_cli(
        "svm-primal", "-q", "--set", "svm.epochs=1", "--runs-dir", tmp_path / "runs"
    )
    one_line(done, 2, "a link out of")
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["svm-primal", "--seed", "x"], "Invalid value for '--seed'"),
        (["svm-primal", "--workers", "0"], "Invalid value for '--workers'"),
        (["bogus"], "No such command 'bogus'"),
        (["runs", "show"], "Missing argument"),
        (["svm-primal", "--no-such-option"], "No such option"),
    ],
)
def test_a_usage_error_is_one_line_naming_the_help(argv, fragment):
    done = kernelnet_cli(*argv)
    one_line(done, 2, fragment, "--help)")
    assert "Usage:" not in done.stderr


def test_bare_kernelnet_still_shows_its_help():
    done = kernelnet_cli()
    assert done.returncode == 2 and "Usage:" in done.stdout + done.stderr


def test_an_empty_or_truncated_metrics_csv_is_named(tmp_path):
    runs = tmp_path / "runs"
    first = kernelnet.run("svm-primal", overrides={"svm.epochs": 1}, runs_dir=runs).path
    second = runs / "svm-primal" / "copy"
    shutil.copytree(first, second)
    (second / "metrics.csv").write_text("")
    one_line(kernelnet_cli("runs", "compare", first, second), 2, "metrics.csv", "empty")
    header, row = (first / "metrics.csv").read_text().splitlines()[:2]
    (second / "metrics.csv").write_text(f"{header}\n{row.rsplit(',', 2)[0]}\n")
    one_line(kernelnet_cli("runs", "compare", first, second), 2, "metrics.csv:2: damaged")


def test_a_number_with_underscores_is_not_a_number_in_a_csv(tmp_path):
    from kernelnet.data.files import read_labelled

    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n" + "1_000,2,x\n3,4,y\n" * 5)
    with pytest.raises(DataError, match="'1_000' is not a number"):
        read_labelled(path)


def test_the_grid_json_of_a_damaged_run_is_refused_not_an_internal_error(tmp_path):
    run = kernelnet.run("svm-primal", overrides={"svm.epochs": 1}, runs_dir=tmp_path)
    (run.path / "grid.json").write_text(json.dumps({"cells": [{"id": 5}]}))
    with pytest.raises(RunFolderError, match="damaged"):
        assert run.cells


def test_labels_mixing_text_and_numbers_say_so_without_scikit_learn():
    code = (
        "import sys, numpy as np\n"
        "from kernelnet.svm.estimator import KernelSVM\n"
        "try:\n"
        "    KernelSVM().fit(np.zeros((4, 2)), np.array([1, 'a', 1, 'a'], dtype=object))\n"
        "except ValueError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        "assert 'sklearn' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "DataError y: Mix of label input types (string and number)"
