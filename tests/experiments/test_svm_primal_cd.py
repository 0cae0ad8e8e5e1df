"""svm-primal's two updates: the simultaneous step of the assignment's Algorithm 1 and the
coordinate descent it warns against (b's gradient taken at the already updated w), each
against a loop written from its rule, then told apart on the shipped data and shown side by
side by the command line."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kernelnet.data.registry import load_binary
from kernelnet.svm.primal import descent_path, fit_gradient_descent, hinge_objective

C, LR = 5.0, 1e-3


def loop_descent(X, y, C, lr, epochs, coordinate):
    """Either rule with plain loops, one sample and one feature at a time; the objective
    after each epoch (epoch 0 the start) and the final (w, b)."""
    n, d = X.shape

    def violators(w, b):
        return [i for i in range(n) if y[i] * (sum(w[k] * X[i, k] for k in range(d)) + b) < 1]

    def objective(w, b):
        slack = [max(0.0, 1 - y[i] * (sum(w[k] * X[i, k] for k in range(d)) + b)) for i in range(n)]
        return 0.5 * sum(v * v for v in w) + C * sum(slack)

    w, b = [0.0] * d, 0.0
    curve = [objective(w, b)]
    for _ in range(epochs):
        active = violators(w, b)
        grad_w = [w[k] - sum(C * y[i] * X[i, k] for i in active) for k in range(d)]
        grad_b = -sum(C * y[i] for i in active)
        new_w = [w[k] - lr * grad_w[k] for k in range(d)]
        if coordinate:  # b's gradient from the margins under the new w
            grad_b = -sum(C * y[i] for i in violators(new_w, b))
        w, b = new_w, b - lr * grad_b
        curve.append(objective(w, b))
    return np.array(curve), np.array(w), b


@pytest.fixture(scope="module")
def iris():
    return load_binary("iris_binary")


def curve(split, epochs, update):
    return np.array(
        [
            hinge_objective(w, b, split.X_train, split.y_train, C)
            for w, b in descent_path(split.X_train, split.y_train, C, LR, epochs, update=update)
        ]
    )


@pytest.mark.parametrize("update", ["simultaneous", "coordinate"])
def test_each_update_equals_the_loop_written_from_its_rule(iris, update):
    epochs = 40
    expected, w, b = loop_descent(iris.X_train, iris.y_train, C, LR, epochs, update == "coordinate")
    fit = fit_gradient_descent(iris.X_train, iris.y_train, C, LR, epochs, update=update)
    # the same arithmetic in another summation order: equal to rounding (1e-12 relative),
    # a million times tighter than the gap between the two algorithms asserted below
    np.testing.assert_allclose(curve(iris, epochs, update), expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(fit.w, w, rtol=1e-12, atol=1e-14)
    assert fit.b == pytest.approx(b, abs=1e-14)


def test_the_two_updates_part_after_the_first_b_step_on_the_shipped_data(iris):
    simultaneous, coordinate = curve(iris, 100, "simultaneous"), curve(iris, 100, "coordinate")
    assert simultaneous[0] == coordinate[0]  # the same start, w = 0, b = 0
    gap = np.abs(coordinate - simultaneous) / simultaneous
    assert gap[1] > 1e-2  # 498.05 against 461.97: b moved the other way in epoch 1
    assert np.all(gap[1:6] > 1e-6), gap[1:6]  # far beyond rounding at every early epoch
    # the first w step is the same (w = 0 has no violator of either kind); b is not:
    # simultaneous b = lr C sum y_i, coordinate counts the violators under the new w
    fit_s = fit_gradient_descent(iris.X_train, iris.y_train, C, LR, 1)
    fit_c = fit_gradient_descent(iris.X_train, iris.y_train, C, LR, 1, update="coordinate")
    np.testing.assert_array_equal(fit_s.w, fit_c.w)
    violating = iris.y_train * (iris.X_train @ fit_c.w) < 1
    assert fit_c.b == pytest.approx(LR * C * iris.y_train[violating].sum(), abs=1e-15)
    assert fit_s.b == pytest.approx(LR * C * iris.y_train.sum(), abs=1e-15)
    assert fit_s.b != pytest.approx(fit_c.b, abs=1e-3)


def test_the_default_is_algorithm_1(iris):
    default = fit_gradient_descent(iris.X_train, iris.y_train, C, LR, 30)
    named = fit_gradient_descent(iris.X_train, iris.y_train, C, LR, 30, update="simultaneous")
    np.testing.assert_array_equal(default.w, named.w)
    with pytest.raises(ValueError, match="unknown update 'both'"):
        fit_gradient_descent(iris.X_train, iris.y_train, C, LR, 3, update="both")


def kernelnet(tmp_path, *args):
    return subprocess.run(
        [sys.executable, "-m", "kernelnet", "svm-primal", "--runs-dir", str(tmp_path), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_command_line_sweeps_both_and_shows_them_side_by_side(tmp_path, iris):
    done = kernelnet(tmp_path, "--set", "svm.update=simultaneous,coordinate",
                     "--set", "svm.epochs=3,30")  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = Path(done.stdout.strip().splitlines()[-1])
    with open(run / "metrics.csv") as handle:
        rows = {(r["update"], int(r["epochs"])): r for r in csv.DictReader(handle)}
    assert set(rows) == {(u, e) for u in ("simultaneous", "coordinate") for e in (3, 30)}
    for (update, epochs), row in rows.items():
        expected = loop_descent(iris.X_train, iris.y_train, C, LR, epochs, update == "coordinate")[
            0
        ][-1]
        assert float(row["objective"]) == pytest.approx(expected, rel=1e-12)
    assert "Simultaneous update against coordinate descent" in done.stdout
    # the comparison row for 3 epochs: both objectives and their difference, as printed
    s, c = float(rows["simultaneous", 3]["objective"]), float(rows["coordinate", 3]["objective"])
    line = next(x for x in done.stdout.splitlines() if x.split()[:1] == ["3"] and "+" in x
                and len(x.split()) == 8)  # fmt: skip
    assert line.split()[1:4] == [f"{s:.6g}", f"{c:.6g}", f"{c - s:+.6g}"]
    assert (run / "plots" / "update_comparison.png").stat().st_size > 10_000


def test_today_s_default_run_has_no_comparison_and_the_same_numbers(tmp_path, iris):
    done = kernelnet(tmp_path, "--set", "svm.epochs=100")
    assert done.returncode == 0, done.stderr
    assert "coordinate" not in done.stdout
    run = Path(done.stdout.strip().splitlines()[-1])
    assert not (run / "plots" / "update_comparison.png").exists()
    with open(run / "metrics.csv") as handle:
        (row,) = csv.DictReader(handle)
    expected = loop_descent(iris.X_train, iris.y_train, C, LR, 100, False)[0][-1]
    assert float(row["objective"]) == pytest.approx(expected, rel=1e-12)
    assert float(row["objective"]) == pytest.approx(21.3289, abs=5e-5)  # the README's figure


def test_an_unknown_update_is_one_line_exit_2(tmp_path):
    done = kernelnet(tmp_path, "--set", "svm.update=both")
    assert done.returncode == 2
    assert "svm.update" in done.stderr and "coordinate" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_run_model_of_a_coordinate_cell_is_a_coordinate_linear_svm(tmp_path, iris):
    """The estimator a coordinate-descent cell saves carries update="coordinate": its
    weights are the cell's, and refitting it (what a user does with Run.model on new data)
    runs coordinate descent again, not Algorithm 1."""
    import kernelnet as api

    run = api.run(
        "svm-primal",
        overrides={"svm.update": ["simultaneous", "coordinate"], "svm.epochs": 30},
        runs_dir=tmp_path,
    )
    for update in ("simultaneous", "coordinate"):
        model = run.model(f"update={update}")
        assert model.get_params()["update"] == update
        expected = fit_gradient_descent(iris.X_train, iris.y_train, C, LR, 30, update=update)
        np.testing.assert_array_equal(model.coef_, expected.w)
        refit = model.fit(iris.X_train, np.where(iris.y_train > 0, "pos", "neg"))
        np.testing.assert_array_equal(refit.coef_, expected.w)
        assert refit.intercept_ == expected.b
    assert not np.array_equal(
        run.model("update=coordinate").coef_, run.model("update=simultaneous").coef_
    )
