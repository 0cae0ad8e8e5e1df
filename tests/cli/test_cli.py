import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import kernelnet
from kernelnet.cli import app

REPO = Path(kernelnet.__file__).resolve().parent.parent
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def run_folder(result) -> Path:
    return Path(result.stdout.strip().splitlines()[-1])


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and kernelnet.__version__ in result.stdout


def test_svm_primal_default_run(tmp_path):
    result = invoke("svm-primal", "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    folder = run_folder(result)
    assert folder.parent == tmp_path / "svm-primal"
    assert (tmp_path / "latest").resolve() == folder.resolve()
    with open(folder / "metrics.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [
        "cell",
        "epochs",
        "train_accuracy",
        "test_accuracy",
        "objective",
        "b",
        "w_0",
        "w_1",
        "w_2",
        "w_3",
    ]
    assert [r[0] for r in rows[1:]] == [f"epochs={e}" for e in (1, 3, 10, 30, 100)]
    assert [r[1] for r in rows[1:]] == ["1", "3", "10", "30", "100"]
    manifest = json.loads((folder / "run.json").read_text())
    assert manifest["status"] == "complete" and manifest["seed"] == 0
    assert set(manifest["versions"]) == {"python", "numpy", "cvxopt", "kernelnet"}
    for name in (
        "config.yaml",
        "metrics.md",
        "summary.json",
        "log.txt",
        "cells/epochs=100/params.npz",
        "cells/epochs=100/params.json",
        "plots/training_history.png",
        "plots/weights.png",
    ):
        assert (folder / name).is_file(), name
    with np.load(folder / "cells" / "epochs=1" / "params.npz") as saved:
        w = saved["w"]
    assert [float(v) for v in rows[1][6:]] == w.tolist()
    assert "Primal soft-margin SVM" in result.stdout


def test_epochs_flag_overrides_the_sweep(tmp_path):
    result = invoke("svm-primal", "--epochs", "1,3", "--runs-dir", tmp_path, "--quiet")
    assert result.exit_code == 0
    assert result.stdout.strip().count("\n") == 0  # quiet: only the path
    rows = list(csv.DictReader(open(run_folder(result) / "metrics.csv")))
    assert [r["epochs"] for r in rows] == ["1", "3"]


def test_precedence_defaults_file_set_flags(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("experiment: svm-primal\nseed: 4\nsvm:\n  C: 2\n  epochs: [5]\n")
    result = invoke(
        "svm-primal",
        "--config",
        config,
        "--set",
        "svm.C=3",
        "--set",
        "svm.epochs=7",
        "--epochs",
        "9",
        "--seed",
        "11",
        "--print-config",
    )
    assert result.exit_code == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert resolved["seed"] == 11 and resolved["svm"]["C"] == 3.0
    assert resolved["svm"]["epochs"] == 9
    assert resolved["svm"]["learning_rate"] == 0.001  # built-in default
    assert not (tmp_path / "runs").exists()


def test_config_error_is_one_line_exit_2_no_traceback(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("experiment: svm-primal\nsvm:\n  C: -1\n")
    result = invoke("svm-primal", "--config", config, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {config}:3:3: svm.C: must be > 0 (got -1)"
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "runs").exists()


def test_config_for_another_experiment_is_refused(tmp_path):
    result = invoke("svm-primal", "--config", REPO / "configs" / "kernel-table.yaml")
    assert result.exit_code == 2
    assert "this config is for 'kernel-table', not 'svm-primal'" in result.stderr


def test_run_accepts_shipped_configs_and_common_options(tmp_path):
    result = invoke(
        "run",
        REPO / "configs" / "svm-primal.yaml",
        "--runs-dir",
        tmp_path,
        "--set",
        "svm.epochs=2",
        "--quiet",
    )
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(open(run_folder(result) / "metrics.csv")))
    assert [r["epochs"] for r in rows] == ["2"]


def test_run_with_unknown_experiment_lists_valid_ones(tmp_path):
    config = tmp_path / "x.yaml"
    config.write_text("experiment: svm-primall\n")
    result = invoke("run", config)
    assert result.exit_code == 2
    expected = f"{config}:1:1: experiment: unknown experiment 'svm-primall'; valid: svm-primal"
    assert expected in result.stderr


def test_run_without_experiment_key(tmp_path):
    config = tmp_path / "x.yaml"
    config.write_text("seed: 1\n")
    result = invoke("run", config)
    assert result.exit_code == 2 and "experiment: is required" in result.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("experiment: svm-primal\nseed: 1\nseed: 2\n", "seed: duplicate key (lines 2 and 3)"),
        ("experiment: svm-primal\nsvm:\n  C: yes\n", "use true/false or quote it"),
        ("", "config must be a mapping"),
        (
            "experiment: svm-primal\nsvm:\n  learning_rat: 1\n",
            "svm.learning_rat: unknown key; did you mean 'learning_rate'?",
        ),
    ],
)
def test_bad_configs_exit_2(tmp_path, text, message):
    config = tmp_path / "x.yaml"
    config.write_text(text)
    result = invoke("run", config)
    assert result.exit_code == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_data_is_exit_2_before_any_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNELNET_DATA", str(tmp_path / "nowhere"))
    result = invoke("svm-primal", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert (
        f"dataset file not found: {tmp_path}/nowhere/iris_binary/iris_binary.npz" in result.stderr
    )
    assert not (tmp_path / "runs").exists()


def test_kernel_table_default_grid(tmp_path):
    result = invoke("kernel-table", "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    folder = run_folder(result)
    rows = list(csv.reader(open(folder / "metrics.csv")))
    assert rows[0] == [
        "cell",
        "dataset",
        "kernel",
        "C",
        "gamma",
        "degree",
        "coef0",
        "train_accuracy",
        "test_accuracy",
        "n_support",
        "solver_status",
        "iterations",
        "fit_seconds",
    ]
    assert [r[0] for r in rows[1:]] == [f"dataset={r[1]},kernel={r[2]}" for r in rows[1:]]
    assert [(r[1], r[2]) for r in rows[1:]] == [
        (d, k)
        for d in ("moons", "circles", "linear", "xor")
        for k in ("linear", "poly", "sigmoid", "rbf")
    ]
    markdown = (folder / "metrics.md").read_text()
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert lines[0] == "| dataset | linear | poly | sigmoid | rbf |"
    assert [line.split(" | ")[0] for line in lines[2:6]] == [
        "| moons",
        "| circles",
        "| linear",
        "| xor",
    ]
    assert "not positive semidefinite" in markdown
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["non_psd_cells"]) == {
        f"dataset={d},kernel=sigmoid" for d in ("moons", "circles", "linear", "xor")
    }
    for name in ("decision_grid.png", "moons.png", "xor.png"):
        assert (folder / "plots" / name).is_file()
    with np.load(folder / "cells" / "dataset=moons,kernel=rbf" / "params.npz") as saved:
        assert set(saved.files) == {"alpha", "bias", "support"}


def test_failing_cell_does_not_stop_the_grid_and_exits_1(tmp_path):
    # Without the SMO fallback cvxopt cannot solve the indefinite sigmoid problem on circles.
    result = invoke(
        "kernel-table",
        "--datasets",
        "circles",
        "--kernels",
        "sigmoid,rbf",
        "--set",
        "solver.fallback=none",
        "--runs-dir",
        tmp_path,
    )
    assert result.exit_code == 1
    folder = run_folder(result)
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert [r["kernel"] for r in rows] == ["sigmoid", "rbf"]
    assert rows[0]["solver_status"] == "unknown" and rows[0]["test_accuracy"] == ""
    assert rows[1]["solver_status"] == "optimal" and float(rows[1]["test_accuracy"]) == 0.9
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"
    failed = json.loads((folder / "summary.json").read_text())["failed_cells"]
    assert [f["cell"] for f in failed] == ["kernel=sigmoid"]
    assert "1 of 2 cell(s) failed" in result.stderr


def test_runs_list_shows_runs(tmp_path):
    invoke("svm-primal", "--epochs", "1", "--runs-dir", tmp_path, "--quiet")
    result = invoke("runs", "list", "--runs-dir", tmp_path, "--json")
    listed = json.loads(result.stdout)
    assert [(r["experiment"], r["status"]) for r in listed] == [("svm-primal", "complete")]


def _start_long_run(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kernelnet",
            "svm-primal",
            "--epochs",
            "3000000",
            "--runs-dir",
            str(tmp_path),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        manifests = list(tmp_path.glob("svm-primal/[!.]*/run.json"))  # not one being made
        if manifests and json.loads(manifests[0].read_text()).get("status") == "running":
            time.sleep(0.5)
            return process, manifests[0]
        time.sleep(0.05)
    process.kill()
    pytest.fail("run did not start")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_marks_the_run_interrupted_and_exits_130(tmp_path, signum):
    process, manifest = _start_long_run(tmp_path)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert json.loads(manifest.read_text())["status"] == "interrupted"
    assert (manifest.parent / "config.yaml").is_file()
    assert "Traceback" not in stderr
    assert not [p for p in manifest.parent.iterdir() if p.name.endswith(".tmp")]


def test_python_dash_m_works():
    done = subprocess.run(
        [sys.executable, "-m", "kernelnet", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert done.returncode == 0 and "svm-primal" in done.stdout


@pytest.mark.parametrize(
    "argv",
    [["--version"], ["--help"], ["svm-primal", "--help"], ["runs", "--help"], ["data", "--help"]],
)
def test_listing_and_describing_commands_imports_nothing_heavy(argv):
    """Start-up cost is import cost: help, version and completion must not load NumPy,
    cvxopt, matplotlib, scikit-learn, Dask or any experiment (timed in make bench)."""
    code = (
        "import sys\n"
        f"sys.argv = ['kernelnet', *{argv!r}]\n"
        "from kernelnet.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "heavy = ('numpy', 'cvxopt', 'matplotlib', 'sklearn', 'dask', 'distributed',\n"
        "         'kernelnet.experiments.')\n"
        "print(sorted({m for m in sys.modules if m.startswith(heavy)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['kernelnet.experiments.catalog']"


def test_completion_lists_experiments_without_importing_them():
    env = {**os.environ, "_KERNELNET_COMPLETE": "complete_bash",
           "COMP_WORDS": "kernelnet kernel-", "COMP_CWORD": "1"}  # fmt: skip
    code = (
        "import sys\nfrom kernelnet.cli import app\n"
        "try:\n    app(prog_name='kernelnet')\nexcept SystemExit:\n    pass\n"
        "print('numpy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.split() == ["kernel-table", "kernel-check", "False"], done.stderr
