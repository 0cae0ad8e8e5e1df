"""kernelnet.sweep_plot: what the figure draws equals the run's metrics (read back from the
matplotlib artists), the best cell is marked where the metric is best, one, two and three
axes; log axes for log-spaced values; hostile folders give one clear error."""

import csv
import io
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from kernelnet.runs import RunDir, RunFolderError
from kernelnet.sweep_plot import (
    BEST_GID,
    VALUES_GID,
    SweepPlotError,
    add_sweep_figure,
    draw,
    is_log_spaced,
    load_sweep,
    plot_run,
)


def make_run(folder: Path, axes: dict, metrics, experiment="kernel-table", epochs=0) -> RunDir:
    """A finished run folder whose grid sweeps ``axes`` (label -> (key, values)) and whose
    metrics.csv holds ``metrics(point) -> {column: value}`` for each cell (with rows for
    epochs 1..epochs when given, the metric of epoch e being metrics(point) - (epochs-e))."""
    folder.mkdir(parents=True)
    labels = list(axes)
    cells, rows = [], []
    for index, combo in enumerate(itertools.product(*(values for _, values in axes.values()))):
        params = dict(zip(labels, combo))
        cell_id = ",".join(f"{k}={v}" for k, v in params.items()) or "single"
        keys = {label: axes[label][0] for label in labels}
        cells.append({"index": index, "id": cell_id, "params": params, "keys": keys})
        columns = metrics(params)
        for epoch in range(1, epochs + 1) if epochs else [None]:
            row = {"cell": cell_id, **params}
            if epoch is not None:
                row["epoch"] = epoch
                row |= {k: v - (epochs - epoch) if isinstance(v, float) else v
                        for k, v in columns.items()}  # fmt: skip
            else:
                row |= columns
            rows.append(row)
    (folder / "run.json").write_text(json.dumps({"experiment": experiment, "status": "complete"}))
    (folder / "grid.json").write_text(json.dumps({"command": [], "cells": cells}))
    buffer = io.StringIO()
    header = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buffer, header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (folder / "metrics.csv").write_text(buffer.getvalue())
    return RunDir.open(folder)


def artist(figure, gid):
    found = [a for ax in figure.axes for a in ax.get_children() if a.get_gid() == gid]
    assert found, gid
    return found


C_VALUES = [0.01, 0.1, 1.0, 10.0, 100.0]


def accuracy_1d(p):
    """Peaks at C=1: the best cell is the middle one (not the first, not the last)."""
    return {"test_accuracy": 0.9 - 0.1 * abs(math.log10(p["C"])), "solver": "optimal"}


def test_one_axis_is_a_line_of_the_metric_with_the_best_marked(tmp_path):
    run = make_run(tmp_path / "r", {"C": ("svm.C", C_VALUES)}, accuracy_1d)
    sweep = load_sweep(run)
    assert sweep.metric == "test_accuracy" and sweep.spread is None
    figure = draw(sweep)
    (line,) = artist(figure, VALUES_GID)
    np.testing.assert_allclose(line.get_xdata(), C_VALUES)
    np.testing.assert_allclose(line.get_ydata(), [accuracy_1d({"C": c})["test_accuracy"]
                                                  for c in C_VALUES])  # fmt: skip
    (best,) = artist(figure, BEST_GID)
    assert list(best.get_xdata()) == [1.0] and list(best.get_ydata()) == [0.9]
    axes = figure.axes[0]
    assert axes.get_xscale() == "log"
    assert [t.get_text() for t in axes.get_xticklabels()] == ["0.01", "0.1", "1", "10", "100"]


def test_a_cv_mean_is_drawn_by_default_with_its_std_as_error_bars(tmp_path):
    def scores(p):
        return {"test_accuracy": 0.5, "cv_mean": p["gamma"] / 10, "cv_std": p["gamma"] / 100}

    run = make_run(tmp_path / "r", {"gamma": ("kernel.gamma", [1.0, 2.0, 3.0])}, scores)
    figure = draw(load_sweep(run))
    (line,) = artist(figure, VALUES_GID)
    np.testing.assert_allclose(line.get_ydata(), [0.1, 0.2, 0.3])
    assert figure.axes[0].get_xscale() == "linear"  # 1, 2, 3 are not log-spaced
    (bars,) = [c for c in figure.axes[0].collections if len(c.get_segments()) == 3]
    spans = [seg[1][1] - seg[0][1] for seg in bars.get_segments()]
    np.testing.assert_allclose(spans, [0.02, 0.04, 0.06])  # +- std: twice the std tall
    (best,) = artist(figure, BEST_GID)
    assert list(best.get_xdata()) == [3.0]


def test_two_axes_are_a_heat_map_with_every_value_annotated_and_the_best_framed(tmp_path):
    gammas, Cs = [8.0, 2.0, 0.5, 0.125], [0.25, 1.0, 4.0, 16.0, 64.0]

    def score(p):  # best at gamma=0.5, C=16
        return {"cv_mean": round(0.95 - 0.05 * abs(math.log2(p["gamma"]) + 1)
                                 - 0.02 * abs(math.log2(p["C"]) - 4), 6),
                "cv_std": 0.01}  # fmt: skip

    run = make_run(tmp_path / "r", {"gamma": ("kernel.gamma", gammas), "C": ("svm.C", Cs)}, score)
    figure = draw(load_sweep(run))
    (mesh,) = artist(figure, VALUES_GID)
    shown = np.asarray(mesh.get_array()).reshape(len(gammas), len(Cs))
    # rows are laid out in increasing gamma (pcolormesh's edges increase)
    expected = np.array([[score({"gamma": g, "C": c})["cv_mean"] for c in Cs]
                         for g in sorted(gammas)])  # fmt: skip
    np.testing.assert_allclose(shown, expected)
    axes = figure.axes[0]
    assert axes.get_xscale() == "log" and axes.get_yscale() == "log"
    texts = {(round(t.get_position()[0], 9), round(t.get_position()[1], 9)): t.get_text()
             for t in axes.texts}  # fmt: skip
    assert len(texts) == len(gammas) * len(Cs)
    assert texts[(16.0, 0.5)] == f"{expected.max():.3f}"  # fractions: three decimals
    (frame,) = artist(figure, BEST_GID)
    x0, y0 = frame.get_xy()
    assert x0 < 16.0 < x0 + frame.get_width() and y0 < 0.5 < y0 + frame.get_height()
    # powers of two spanning 2^6 or more are labelled 2^k, as libsvm's grid.py draws them
    assert [t.get_text() for t in axes.get_xticklabels()] == [
        "$2^{-2}$", "$2^{0}$", "$2^{2}$", "$2^{4}$", "$2^{6}$"
    ]  # fmt: skip
    assert [t.get_text() for t in axes.get_yticklabels()][0] == "$2^{3}$"  # gammas' order


def test_tied_cv_means_mark_the_smaller_spread_the_cell_the_summary_names(tmp_path):
    """Many cells of a C x gamma grid tie (every C past the one where no alpha reaches C
    gives the same model): the frame goes where kernelnet.cv.best_by_cv puts the summary's
    best (larger mean, then smaller std, then grid order), not on the first of the tie."""
    from types import SimpleNamespace

    from kernelnet.cv import best_by_cv

    gammas, Cs = [0.5, 0.125], [1.0, 4.0, 16.0]
    spreads = {(0.125, 4.0): 0.03, (0.125, 16.0): 0.01, (0.5, 16.0): 0.02}

    def score(p):
        key = (p["gamma"], p["C"])
        return {"cv_mean": 0.9 if key in spreads else 0.8, "cv_std": spreads.get(key, 0.0)}

    axes = {"gamma": ("kernel.gamma", gammas), "C": ("svm.C", Cs)}
    run = make_run(tmp_path / "r", axes, score)
    sweep = load_sweep(run)
    assert sweep.cells[sweep.best] == "gamma=0.125,C=16.0"
    results = [
        SimpleNamespace(ok=True, rows=[score(dict(zip(("gamma", "C"), point)))], cell=cell)
        for cell, point in zip(sweep.cells, sweep.points)
    ]
    assert best_by_cv(results).cell == sweep.cells[sweep.best]
    (frame,) = artist(draw(sweep), BEST_GID)
    x0, y0 = frame.get_xy()
    assert x0 < 16.0 < x0 + frame.get_width() and y0 < 0.125 < y0 + frame.get_height()
    # without a spread column, the first in grid order among equals
    run = make_run(tmp_path / "s", axes, lambda p: {"test_accuracy": score(p)["cv_mean"]})
    sweep = load_sweep(run)
    assert sweep.spread is None and sweep.cells[sweep.best] == "gamma=0.5,C=16.0"


def test_an_error_metric_marks_its_smallest_value(tmp_path):
    run = make_run(
        tmp_path / "r",
        {"method": ("method", ["knn", "linear", "rbf-svm"])},
        lambda p: {"test_error": {"knn": 3.0, "linear": 8.0, "rbf-svm": 1.5}[p["method"]]},
        experiment="mnist-table",
    )
    sweep = load_sweep(run)
    assert sweep.metric == "test_error" and sweep.lower_is_better
    figure = draw(sweep)
    (best,) = artist(figure, BEST_GID)
    assert list(best.get_xdata()) == [2.0] and list(best.get_ydata()) == [1.5]
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert labels == ["knn", "linear", "rbf-svm"]
    # values that are not fractions (a percentage) keep three significant digits
    assert [t.get_text() for t in figure.axes[0].texts] == ["best 1.5"]


def test_three_axes_are_small_multiples_one_heat_map_per_further_value(tmp_path):
    axes = {
        "dataset": ("data.dataset", ["moons", "xor"]),
        "gamma": ("kernel.gamma", [0.1, 1.0, 10.0]),
        "C": ("svm.C", [1.0, 10.0]),
    }

    def score(p):  # the best cell is dataset=xor, gamma=1, C=10
        bonus = 0.3 if (p["dataset"], p["gamma"], p["C"]) == ("xor", 1.0, 10.0) else 0.0
        return {"test_accuracy": 0.5 + 0.01 * p["gamma"] + bonus}

    figure = draw(load_sweep(make_run(tmp_path / "r", axes, score)))
    meshes = artist(figure, VALUES_GID)
    assert len(meshes) == 2  # one per C
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == ["svm.C=1", "svm.C=10"]
    for mesh, C in zip(meshes, [1.0, 10.0]):
        shown = np.asarray(mesh.get_array()).reshape(2, 3)
        expected = [[score({"dataset": d, "gamma": g, "C": C})["test_accuracy"]
                     for g in (0.1, 1.0, 10.0)] for d in ("moons", "xor")]  # fmt: skip
        np.testing.assert_allclose(shown, expected)
    (frame,) = artist(figure, BEST_GID)
    assert frame.axes.get_title() == "svm.C=10"
    limits = [m.norm.vmin for m in meshes], [m.norm.vmax for m in meshes]
    assert len(set(limits[0])) == 1 and len(set(limits[1])) == 1  # one colour scale


def test_per_epoch_rows_use_each_cells_last_epoch(tmp_path):
    run = make_run(
        tmp_path / "r",
        {"hidden": ("model.hidden", [[8], [16], [32]])},
        lambda p: {"val_accuracy": 0.5 + p["hidden"][0] / 100},
        experiment="mlp",
        epochs=3,
    )
    sweep = load_sweep(run)
    assert sweep.metric == "val_accuracy"
    np.testing.assert_allclose(sweep.values, [0.58, 0.66, 0.82])  # epoch 3's, not epoch 1's
    figure = draw(sweep)
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert labels == ["[8]", "[16]", "[32]"]


def test_a_failed_cell_is_a_gap_and_the_best_is_among_the_others(tmp_path):
    def score(p):
        return {"test_accuracy": "" if p["C"] == 100.0 else p["C"] / 1000}

    run = make_run(tmp_path / "r", {"C": ("svm.C", C_VALUES)}, score)
    sweep = load_sweep(run)
    assert np.isnan(sweep.values[-1]) and sweep.cells[sweep.best] == "C=10.0"


def test_plot_run_writes_into_the_runs_plots_or_out_and_the_hook_skips_unswept_runs(tmp_path):
    run = make_run(tmp_path / "r", {"C": ("svm.C", C_VALUES)}, accuracy_1d)
    written = plot_run(run)
    assert written == run.file("plots/sweep_test_accuracy.png")
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = plot_run(run, "test_accuracy", tmp_path / "elsewhere.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert add_sweep_figure(run) == written
    single = make_run(tmp_path / "s", {}, lambda p: {"test_accuracy": 0.5})
    assert add_sweep_figure(single) is None
    assert not single.file("plots").exists()


def test_nothing_swept_unknown_and_non_numeric_metrics_are_one_line(tmp_path):
    single = make_run(tmp_path / "s", {"C": ("svm.C", [1.0])}, lambda p: {"test_accuracy": 0.5})
    with pytest.raises(SweepPlotError, match=r"^nothing was swept in s$"):
        load_sweep(single)
    run = make_run(tmp_path / "r", {"C": ("svm.C", C_VALUES)}, accuracy_1d)
    with pytest.raises(SweepPlotError, match="the metrics are: test_accuracy$"):
        load_sweep(run, "accuracy")
    with pytest.raises(SweepPlotError, match="'solver' is not numeric"):
        load_sweep(run, "solver")


def test_empty_metrics_and_a_folder_without_grid_json_are_refused(tmp_path):
    run = make_run(tmp_path / "r", {"C": ("svm.C", C_VALUES)}, accuracy_1d)
    run.file("metrics.csv").write_text("cell,C,test_accuracy\n")
    with pytest.raises(SweepPlotError, match="metrics.csv has no rows"):
        load_sweep(run)
    run.file("metrics.csv").write_text("")
    with pytest.raises(RunFolderError, match="metrics.csv: damaged"):
        load_sweep(run)
    run.file("metrics.csv").write_text("cell,C,test_accuracy\nC=0.01,0.01,oops\n")
    with pytest.raises(SweepPlotError, match="no numeric column"):
        load_sweep(run)
    run.file("grid.json").unlink()
    with pytest.raises(RunFolderError, match="grid.json: missing"):
        load_sweep(run)
    run.file("grid.json").write_text(json.dumps({"cells": "everything"}))
    with pytest.raises(SweepPlotError, match="grid.json: damaged"):
        load_sweep(run)


@pytest.mark.parametrize(
    ("values", "log"),
    [
        ([0.1, 1, 10], True),
        ([2.0**e for e in range(-5, 16, 2)], True),
        ([0.1, 0.25, 0.5, 1, 2, 4, 10], True),  # asym-svm's cost ratios
        ([1, 2, 3, 4], False),
        ([1, 2], False),
        ([0, 1, 10], False),
        ([1, 10, 11], False),
    ],
)
def test_log_spacing(values, log):
    assert is_log_spaced(values) is log
