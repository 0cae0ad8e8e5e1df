"""Estimated footprints before big work (issue 18, "small inputs that ask for huge work").

Through the command line: the issue's examples (a 20,000 x 2 CSV for kernel-table's cvxopt,
a 30 x 10,000 CSV for svm-primal, a LIBSVM file with index 10^6 for mlp) are refused with
one line, or done within a bounded footprint, in seconds. Unit tests: each estimate is
within a factor of the footprint measured on small sizes (tracemalloc's peak for the NumPy
parts, a child process's peak RSS for cvxopt, whose matrices tracemalloc does not see).
Refusals come from the estimate, before anything big is allocated.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import kernelnet
from kernelnet.errors import ConfigError, Diverged, ResourceError
from kernelnet.experiments import kernel_table, knn, mlp, svm_primal
from kernelnet.kernels import RBF
from kernelnet.nn.estimator import MLPClassifier
from kernelnet.nn.models import MLP
from kernelnet.svm import blocked, dual
from kernelnet.svm.dual import BinaryKernelSVM
from kernelnet.svm.estimator import KernelSVM
from kernelnet.svm.primal import descent_path, fit_gradient_descent

TIMEOUT = 120  # seconds: proves a refusal did not start minutes of work (not a timing test)


def kernelnet_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "kernelnet", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1", **(env or {})},
    )


def refused(done, *fragments):
    """Exit 2 and one line on stderr holding every fragment, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def two_column_csv(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    np.savetxt(
        path, np.column_stack([X, y]), delimiter=",", header="a,b,label", comments="",
        fmt=["%.5f", "%.5f", "%d"],
    )  # fmt: skip
    return path


def wide_csv(path: Path, rows: int = 30, columns: int = 10_000) -> Path:
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"x{i}" for i in range(columns)] + ["label"])
        for i in range(rows):
            writer.writerow([f"{v:.3f}" for v in rng.normal(size=columns)] + [i % 2])
    return path


# -- kernel-table and asym-svm: cvxopt on 20,000 rows ---------------------------------------


def test_kernel_table_refuses_cvxopt_on_20000_rows_before_a_run_folder(tmp_path):
    data = two_column_csv(tmp_path / "big.csv", 20_000)
    runs = tmp_path / "runs"
    done = kernelnet_cli("kernel-table", "--set", f"data.dataset={data}", "--runs-dir", runs)
    refused(
        done,
        "solver cvxopt on 15,000 samples would take roughly",  # the training part (75%)
        "use solver.name=smo",
        "KERNELNET_CVXOPT_MAX_N",
    )
    assert not runs.exists()


def test_kernel_table_cvxopt_memory_is_estimated_when_the_sample_bound_is_raised(tmp_path):
    data = two_column_csv(tmp_path / "big.csv", 20_000)
    env = {"KERNELNET_CVXOPT_MAX_N": "100000", "KERNELNET_MEMORY_LIMIT": "1G"}
    done = kernelnet_cli(
        "kernel-table", "--set", f"data.dataset={data}", "--runs-dir", tmp_path, env=env
    )
    line = refused(done, "solver cvxopt on 15,000 samples needs about", "1.0 GB limit")
    assert "KERNELNET_MEMORY_LIMIT" in line and "solver.name=smo" in line


def test_asym_svm_refuses_cvxopt_on_20000_rows(tmp_path):
    data = two_column_csv(tmp_path / "big.csv", 20_000)
    done = kernelnet_cli(
        "asym-svm", "--set", f"data.dataset={data}", "--set", "svm.cost_ratio=2", "--runs-dir",
        tmp_path,
    )  # fmt: skip
    refused(done, "asym-svm: solver cvxopt on 15,000 samples", "use solver.name=smo")


def test_kernel_table_checks_its_psd_on_a_subset_beyond_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel_table, "PSD_MAX_N", 20)
    run = kernelnet.run(
        "kernel-table",
        overrides={"data.dataset": "moons", "kernel.name": "rbf", "plots": False},
        runs_dir=tmp_path,
    )
    assert run.status == "complete"
    log = (run.path / "log.txt").read_text()
    assert "PSD check on 20 of the 60 training samples" in log
    result = json.loads((run.path / "cells" / "single" / "result.json").read_text())
    assert result["artifacts"]["psd_samples"] == 20
    assert "λmin of the Gram matrix of 20 training samples" in (run.path / "metrics.md").read_text()


def test_auto_never_meets_cvxopts_bounds_and_the_row_says_which_solver_ran(tmp_path, monkeypatch):
    """auto is the working-set solver at every size (kernel rows on demand, no QP), so
    cvxopt's bound never refuses it; the row names the solver that ran."""
    monkeypatch.setenv("KERNELNET_CVXOPT_MAX_N", "10")
    overrides = {"data.dataset": "moons", "kernel.name": "rbf", "solver.name": "auto"}
    run = kernelnet.run("kernel-table", overrides={**overrides, "plots": False}, runs_dir=tmp_path)
    assert run.status == "complete" and run.metrics[0]["solver"] == "workingset"


# -- the cvxopt estimate in the library -----------------------------------------------------


def test_cvxopt_refusal_comes_before_the_gram_matrix(monkeypatch):
    X = np.random.default_rng(0).normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)
    monkeypatch.setenv("KERNELNET_CVXOPT_MAX_N", "50")

    def no_gram(*args):
        raise AssertionError("the Gram matrix was computed before the refusal")

    svm = BinaryKernelSVM(RBF(0.5), solver="cvxopt")
    monkeypatch.setattr(svm, "kernel", no_gram)
    with pytest.raises(ResourceError, match=r"60 samples .* bound is 50 samples\); use solver="):
        svm.fit(X, y)
    with pytest.raises(ResourceError, match="solver cvxopt on 60 samples"):
        KernelSVM(solver="cvxopt").fit(X, y)
    assert BinaryKernelSVM(RBF(0.5), solver="smo").fit(X, y).solver_.status == "optimal"
    # auto is never refused: beyond cvxopt's bounds BinaryKernelSVM takes SMO
    assert BinaryKernelSVM(RBF(0.5), solver="auto").fit(X, y).solver_.solver == "smo"
    assert KernelSVM(solver="auto").fit(X, y).score(X, y) > 0.9


def test_cvxopt_memory_refusal_and_a_bad_bound(monkeypatch):
    X = np.random.default_rng(0).normal(size=(400, 2))
    y = (X[:, 0] > 0).astype(int)
    monkeypatch.setenv("KERNELNET_MEMORY_LIMIT", "4M")
    with pytest.raises(ResourceError, match=r"400 samples needs about 1\d\.\d MB .* 4\.0 MB limit"):
        BinaryKernelSVM(RBF(0.5), solver="cvxopt").fit(X, y)
    monkeypatch.delenv("KERNELNET_MEMORY_LIMIT")
    monkeypatch.setenv("KERNELNET_CVXOPT_MAX_N", "many")
    with pytest.raises(ConfigError, match="KERNELNET_CVXOPT_MAX_N='many'"):
        BinaryKernelSVM(RBF(0.5), solver="cvxopt").fit(X, y)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_cvxopt_estimate_is_within_a_factor_of_the_measured_peak():
    n = 1000
    child = textwrap.dedent(
        f"""
        import re
        import numpy as np
        import cvxopt.solvers
        from kernelnet.kernels import RBF
        from kernelnet.svm.dual import BinaryKernelSVM

        def peak_rss():  # this process's own high-water mark (ru_maxrss carries the parent's)
            with open("/proc/self/status") as status:
                return int(re.search(r"VmHWM:\\s*(\\d+) kB", status.read())[1]) * 1024

        X = np.random.default_rng(0).normal(size=({n}, 2))
        y = (X[:, 0] * X[:, 1] > 0).astype(int)
        before = peak_rss()
        BinaryKernelSVM(RBF(0.2), solver="cvxopt").fit(X, y)
        print(peak_rss() - before)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    measured = int(done.stdout.split()[-1])
    assert 0.5 < dual.cvxopt_bytes(n) / measured < 2, (dual.cvxopt_bytes(n), measured)


# -- Gram matrices against support vectors, the blocked solver's pairs ----------------------


def peak_of(work):
    tracemalloc.start()
    try:
        result = work()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_kernel_dot_estimate_whole_and_in_blocks(monkeypatch):
    rng = np.random.default_rng(0)
    X, Y, coef = rng.normal(size=(3000, 2)), rng.normal(size=(500, 2)), rng.normal(size=500)
    whole, peak = peak_of(lambda: dual.kernel_dot(RBF(0.5), X, Y, coef))
    assert 0.5 < dual.kernel_dot_bytes(3000, 500) / peak < 2
    monkeypatch.setattr(dual, "KERNEL_BLOCK_BYTES", 2**18)  # 65 rows of 500 at a time
    blocks, peak = peak_of(lambda: dual.kernel_dot(RBF(0.5), X, Y, coef))
    np.testing.assert_allclose(blocks, whole, rtol=1e-12, atol=1e-12)
    assert peak < 8 * 3000 * 500 / 4  # far below the (3000, 500) matrix
    assert 0.5 < dual.kernel_dot_bytes(3000, 500) / peak < 2


def test_decision_function_never_forms_the_whole_kernel_matrix(monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    svm = BinaryKernelSVM(RBF(0.5), C=1.0, solver="smo").fit(X, (X[:, 0] > 0).astype(int))
    grid = rng.normal(size=(40_000, 2))  # a decision panel's grid: 40,000 points
    whole = svm.decision_function(grid)
    monkeypatch.setattr(dual, "KERNEL_BLOCK_BYTES", 2**18)
    blocks, peak = peak_of(lambda: svm.decision_function(grid))
    np.testing.assert_allclose(blocks, whole, rtol=1e-12, atol=1e-12)
    assert peak < 8 * len(grid) * len(svm.support_) / 4


def test_blocked_pair_estimate_and_refusal(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 2))
    X[600:] += 1.0
    groups = [np.arange(600), np.arange(600, 1200)]
    blocks = blocked.ClassBlocks(X, groups, RBF(0.5), cache_mb=500)
    _, peak = peak_of(lambda: blocked.fit_pair(blocks, 0, 1, 1.0, 1.0, 1e-3, 256, 1e-5))
    assert 0.5 < blocked.pair_bytes(1200) / peak < 2
    monkeypatch.setenv("KERNELNET_MEMORY_LIMIT", "4M")
    with pytest.raises(ResourceError, match="blocked solver on a pair of 1,200 samples"):
        KernelSVM(solver="blocked", gamma=0.5).fit(X, np.repeat([0, 1], 600))


# -- svm-primal: a bounded trajectory -------------------------------------------------------


def test_svm_primal_on_30_by_10000_is_bounded(tmp_path):
    data = wide_csv(tmp_path / "wide.csv")
    runs = tmp_path / "runs"
    # the estimate of what is left (a block of weights, the curves) fits in 64 MB
    done = kernelnet_cli(
        "svm-primal", "--set", f"data.dataset={data}", "--runs-dir", runs, "-q",
        env={"KERNELNET_MEMORY_LIMIT": "64M"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    header = (folder / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "w_norm" in header and "n_weights" in header and len(header) < 20
    assert np.load(folder / "cells" / "epochs=100" / "params.npz")["w"].shape == (10_000,)
    plots = {p.name for p in (folder / "plots").iterdir()}
    assert "training_history.png" in plots and "weights.png" not in plots


def test_svm_primal_refuses_curves_over_the_limit(tmp_path):
    done = kernelnet_cli(
        "svm-primal", "--epochs", "1000000000", "--runs-dir", tmp_path,
        env={"KERNELNET_MEMORY_LIMIT": "1G"},
    )  # fmt: skip
    refused(done, "svm-primal: 1,000,000,000 epochs on 4 features needs about", "fewer svm.epochs")
    assert not (tmp_path / "svm-primal").exists()


def iris_like(rng, n=40, d=5):
    X = rng.normal(size=(n, d))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=n) > 0, 1.0, -1.0)
    return X, y


@pytest.mark.parametrize("method", [None, 4])
def test_blocks_give_the_whole_trajectory_curves(monkeypatch, method):
    from kernelnet.data.registry import BinarySplit

    rng = np.random.default_rng(0)
    X, y = iris_like(rng)
    split = BinarySplit("toy", X[:30], y[:30], X[30:], y[30:])
    costs, epochs = np.full(30, 2.0), 23

    def trajectory():
        path = descent_path(
            split.X_train, y[:30], costs, 1e-2, epochs, batch_size=method,
            rng=np.random.default_rng(5),
        )  # fmt: skip
        return svm_primal.follow(path, split, costs, epochs, 1e-2)

    whole = trajectory()
    monkeypatch.setattr(svm_primal, "BLOCK_BYTES", 8 * (5 + 1 + 40) * 4)  # 4 epochs a block
    assert svm_primal.block_epochs(epochs, 5, 40) == 4
    blocks = trajectory()
    for name in ("objective", "train_accuracy", "test_accuracy"):
        np.testing.assert_allclose(getattr(blocks, name), getattr(whole, name), rtol=1e-12)
        assert getattr(blocks, name).shape == (epochs + 1,)
    np.testing.assert_array_equal(blocks.w, whole.w)
    reference = fit_gradient_descent(
        split.X_train, y[:30], costs, 1e-2, epochs, batch_size=method,
        rng=np.random.default_rng(5),
    )  # fmt: skip
    np.testing.assert_array_equal(reference.w, whole.w)
    assert reference.b == whole.b


def test_divergence_in_a_later_block_names_its_epoch(monkeypatch):
    from kernelnet.data.registry import BinarySplit

    X, y = iris_like(np.random.default_rng(0))
    split = BinarySplit("toy", X[:30], y[:30], X[30:], y[30:])
    costs, epochs, lr = np.full(30, 5.0), 40, 2.0  # diverges at epoch 13

    def first_bad_epoch():
        path = descent_path(split.X_train, split.y_train, costs, lr, epochs)
        with np.errstate(over="ignore", invalid="ignore"), pytest.raises(Diverged) as caught:
            svm_primal.follow(path, split, costs, epochs, lr)
        return caught.value.details["epoch"]

    whole = first_bad_epoch()
    monkeypatch.setattr(svm_primal, "BLOCK_BYTES", 8 * (5 + 1 + 40) * 3)  # 3 epochs a block
    assert whole > 3 and first_bad_epoch() == whole


def test_weight_history_is_estimated_and_optional(monkeypatch):
    X, y = iris_like(np.random.default_rng(0))
    kept = fit_gradient_descent(X, y, 1.0, 1e-2, 7)
    bare = fit_gradient_descent(X, y, 1.0, 1e-2, 7, history=False)
    np.testing.assert_array_equal(bare.w, kept.w)
    assert bare.b == kept.b and bare.w_history is None and kept.w_history.shape == (8, 5)
    monkeypatch.setenv("KERNELNET_MEMORY_LIMIT", "1G")
    with pytest.raises(ResourceError, match="weight history of 1,000,000,000 epochs"):
        fit_gradient_descent(X, y, 1.0, 1e-2, 10**9)


# -- mlp: the first layer and the optimizer's state -----------------------------------------


def test_mlp_refuses_a_libsvm_index_of_a_million(tmp_path):
    data = tmp_path / "wide.libsvm"
    data.write_text("".join(f"{i % 2} 1:{i + 1} 1000000:1\n" for i in range(8)))
    runs = tmp_path / "runs"
    done = kernelnet_cli(
        "mlp", "--set", f"data.dataset={data}", "--runs-dir", runs,
        env={"KERNELNET_MEMORY_LIMIT": "1G"},
    )  # fmt: skip
    refused(
        done,
        "mlp: a network of 64,004,354 parameters (1,000,000 inputs, hidden [64, 64])",
        "trained with adam needs about",
        "train.optimizer=sgd",
    )
    assert not runs.exists()


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_mlp_estimate_is_within_a_factor_of_the_measured_peak(optimizer):
    from kernelnet.data.registry import LabelledSplit

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5000)), rng.integers(0, 3, 40)
    config = mlp.MlpConfig()
    config.model.hidden, config.train.optimizer, config.train.batch_size = [128], optimizer, 16
    split = LabelledSplit("wide", X, y, X[:4], y[:4], {})
    model = MLPClassifier(  # 2 epochs of 2 steps: the optimizer's state exists from step 2
        [128], optimizer=optimizer, epochs=2, batch_size=16, validation_fraction=0.2,
        standardize=True, random_state=0,
    )  # fmt: skip
    _, peak = peak_of(lambda: model.fit(X, y))
    assert 0.6 < mlp.cell_bytes(config, split) / peak < 1.6


def test_training_and_creation_are_refused_before_allocating(monkeypatch):
    X, y = np.random.default_rng(0).normal(size=(20, 2000)), np.arange(20) % 2
    monkeypatch.setenv("KERNELNET_MEMORY_LIMIT", "16M")
    with pytest.raises(ResourceError, match=r"training 512,770 parameters \(3\.9 MB\) with Adam"):
        MLPClassifier([256], epochs=1).fit(X, y)
    MLPClassifier([256], optimizer="sgd", epochs=1).fit(X, y)  # 3 copies fit in 16 MB
    with pytest.raises(ResourceError, match="1,000,000,000 inputs"):
        MLP.create(10**9, [64], 2, np.random.default_rng(0))


# -- knn --------------------------------------------------------------------------------------


def test_knn_estimate_is_within_a_factor_of_the_measured_peak():
    from kernelnet.knn import knn_predict_all_k

    rng = np.random.default_rng(0)
    for n_train, n_query, k in ((3000, 3000, 31), (1500, 6000, 1500)):
        X_train, X_query = rng.normal(size=(n_train, 4)), rng.normal(size=(n_query, 4))
        y_train = rng.integers(0, 3, n_train)
        _, peak = peak_of(lambda: knn_predict_all_k(X_train, y_train, X_query, [1, k]))  # noqa: B023
        assert 0.5 < knn.knn_bytes(n_train, n_query, k) / peak < 2, (n_train, n_query, k)


def test_knn_refuses_neighbour_lists_over_the_limit(tmp_path):
    data = two_column_csv(tmp_path / "points.csv", 400)
    runs = tmp_path / "runs"
    done = kernelnet_cli(
        "knn", "--set", f"data.dataset={data}", "--set", "knn.k=1,200", "--runs-dir", runs,
        env={"KERNELNET_MEMORY_LIMIT": "1M"},
    )  # fmt: skip
    refused(done, "knn (225 training points, k up to 200) needs about", "smaller knn.k")
    assert not runs.exists()
