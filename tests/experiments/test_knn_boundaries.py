"""knn's decision-boundary figure: drawn for two-dimensional data only, from a grid whose
every prediction is kernelnet.knn's at that point (checked through the estimator and
against a loop written from the documented rule), one figure per dataset."""

import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.data.registry import load_binary
from kernelnet.experiments.knn import BOUNDARY_FILE, boundary_ks, decision_boundaries
from kernelnet.knn import KNeighborsClassifier
from kernelnet.runs import read_arrays


def run_knn(tmp_path, *sets):
    args = ["knn", "--runs-dir", str(tmp_path), "--quiet"]
    for item in sets:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_knn(
        tmp_path_factory.mktemp("runs"),
        "data.dataset=moons,iris_binary,mnist",
        "knn.k=[1,5,15,31]",
        "data.mnist_train=200",
        "data.mnist_val=50",
        "data.mnist_test=50",
    )


def test_the_figure_is_drawn_for_2d_sets_only(run):
    plots = {p.name for p in (run / "plots").iterdir()}
    assert "decision_boundaries_moons.png" in plots
    assert not any("iris" in p or "mnist" in p for p in plots), plots  # 4-D and 784-D
    assert (run / "plots" / "decision_boundaries_moons.png").stat().st_size > 20_000
    assert (run / "cells" / "dataset=moons" / BOUNDARY_FILE).is_file()
    for cell in ("dataset=iris_binary", "dataset=mnist"):
        assert not (run / "cells" / cell / BOUNDARY_FILE).exists()


def loop_knn(X_train, y_train, point, k):
    """The documented rule, one query at a time: sort by (distance, index), count the k
    nearest labels, a tie to the tied class met first among the neighbours."""
    d = [float(np.sqrt(((x - point) ** 2).sum())) for x in X_train]
    nearest = sorted(range(len(d)), key=lambda i: (d[i], i))[:k]
    counts: dict[int, int] = {}
    for i in nearest:
        counts[int(y_train[i])] = counts.get(int(y_train[i]), 0) + 1
    best = max(counts.values())
    return next(int(y_train[i]) for i in nearest if counts[int(y_train[i])] == best)


def test_the_grid_holds_kernelnet_knn_predictions_at_its_points(run):
    grid = read_arrays(run / "cells" / "dataset=moons" / BOUNDARY_FILE)
    assert grid["k"].tolist() == [1, 5, 15, 31]
    size = grid["xs"].size
    assert grid["predictions"].shape == (4, size, size)
    # the training points are 45 of the shipped 60 (15 held out for validation)
    shipped = load_binary("moons").X_train
    X_train, y_train = grid["X_train"], grid["y_train"]
    assert len(X_train) == 45
    assert all(any(np.array_equal(x, s) for s in shipped) for x in X_train)
    points = np.column_stack([np.tile(grid["xs"], size), np.repeat(grid["ys"], size)])
    for k, predicted in zip(grid["k"], grid["predictions"]):
        model = KNeighborsClassifier(n_neighbors=int(k)).fit(X_train, y_train)
        np.testing.assert_array_equal(predicted.ravel(), model.predict(points))
        # the cell at row i, column j is the point (xs[j], ys[i])
        i, j = 7, size - 3
        point = np.array([grid["xs"][j], grid["ys"][i]])
        assert predicted[i, j] == model.predict(point[None])[0]
    rng = np.random.default_rng(0)
    for index in rng.choice(size * size, 150, replace=False):
        for slot in (0, 1):  # k = 1 and 5 by the loop
            k = int(grid["k"][slot])
            expected = loop_knn(X_train, y_train, points[index], k)
            assert grid["predictions"][slot].ravel()[index] == expected
    # the grid covers every point of the data, padded
    for axis, values in ((0, grid["xs"]), (1, grid["ys"])):
        assert values[0] < X_train[:, axis].min() and values[-1] > X_train[:, axis].max()
    # k = 1 regions change: more than one class on the grid, and k = 31 differs from k = 1
    assert set(np.unique(grid["predictions"][0])) == {0, 1}
    assert (grid["predictions"][0] != grid["predictions"][3]).any()


def test_the_figure_draws_the_stored_grid(run):
    grid = read_arrays(run / "cells" / "dataset=moons" / BOUNDARY_FILE)
    figure = decision_boundaries(grid, {1: 0.9, 5: 1.0}, 5, "moons")
    panels = [a for a in figure.axes if a.get_visible()]
    assert [a.get_title() for a in panels][:2] == [
        "k = 1 (val 90.0%)",
        "k = 5 (val 100.0%) ← chosen",
    ]
    assert len(panels) == 4
    for axes, predicted in zip(panels, grid["predictions"]):
        mesh = axes.collections[0]
        np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(predicted.shape),
                                      predicted)  # fmt: skip


def test_at_most_nine_panels_spread_from_the_smallest_to_the_largest_k():
    assert boundary_ks([1, 3, 5]) == [1, 3, 5]
    ks = list(range(1, 40, 3))  # 14 values
    drawn = boundary_ks(ks)
    assert len(drawn) == 9 and drawn[0] == 1 and drawn[-1] == ks[-1]
    assert drawn == sorted(set(drawn))


def test_a_three_class_2d_file_gets_its_figure(tmp_path):
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [3, 0], [0, 3]])
    data = tmp_path / "three.csv"
    with open(data, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["a", "b", "label"])
        for c in range(3):
            for x in centres[c] + rng.normal(size=(20, 2)):
                out.writerow([*x, "abc"[c]])
    run = run_knn(tmp_path, f"data.dataset={data}", "knn.k=[1,3,7]")
    (figure,) = [p for p in (run / "plots").iterdir() if p.name.startswith("decision_")]
    assert "three.csv" in figure.name
    (cell,) = (run / "cells").iterdir()
    grid = read_arrays(cell / BOUNDARY_FILE)
    assert set(np.unique(grid["predictions"])) == {0, 1, 2}
