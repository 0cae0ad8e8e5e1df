"""cv.folds in svm-primal and knn: svm-primal's fold scores are those of kernelnet.svm.primal
fitted by hand on each fold's indices (class weights, update rule and, for minibatches, each
fold's own spawned Generator included); knn's per-k fold scores are scikit-learn's
cross_val_score on the same folds; a cell's CV scores are the same alone, in a grid, serially
and with --workers 2 (real processes); knn chooses k by the CV mean and says so; CV off writes
byte for byte what the experiments wrote before CV existed."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from kernelnet.config import expand, read_config_file, resolve
from kernelnet.cv import cross_val_scores, fold_rng, stratified_folds
from kernelnet.data.registry import load_binary_data
from kernelnet.experiments import get_experiment
from kernelnet.knn import KNeighborsClassifier, distances
from kernelnet.runs import read_arrays
from kernelnet.seeding import cell_rng
from kernelnet.shipped import shipped
from kernelnet.svm.primal import fit_gradient_descent
from tests.helpers import invoke, kernelnet_cli, one_error_line

# svm-primal's default config (iris_binary, C=5, learning rate 1e-3, batch) as written by
# kernelnet before cross-validation existed: with cv.folds=0 not one byte may change.
PRIMAL_DEFAULT_CSV = """\
cell,epochs,train_accuracy,test_accuracy,objective,b,w_0,w_1,w_2,w_3
epochs=1,1,0.5131578947368421,0.5416666666666666,498.0497236250001,0.01,0.224,-0.0855,0.545,0.20600000000000002
epochs=3,3,0.5131578947368421,0.5416666666666666,812.2108583486136,0.020000000000000018,0.448481224,-0.17019758549999997,1.0891810450000001,0.411634206
epochs=10,10,0.9868421052631579,0.9583333333333334,19.54887460946787,-0.13999999999999996,-0.1648025964150461,-0.8060644744332041,1.3781646152329572,0.5744509570660514
epochs=30,30,0.9868421052631579,0.9583333333333334,18.469713706108266,-0.175,-0.20885861320563295,-0.6997948288661208,1.3048900921692932,0.5660515093284038
epochs=100,100,0.9868421052631579,0.9583333333333334,21.328905658323187,-0.31499999999999995,-0.28240917086411155,-0.7752918804882725,1.7585671505379323,0.8244165180200507
"""  # noqa: E501
# knn's moons cell of its default config, the same way (k chosen on validation: 3)
KNN_MOONS_CSV = """\
cell,dataset,metric,k,train_accuracy,val_accuracy,chosen,test_accuracy
dataset=moons,moons,euclidean,1,1.0,0.9333333333333333,False,
dataset=moons,moons,euclidean,3,0.9777777777777777,1.0,True,0.9
dataset=moons,moons,euclidean,5,0.8888888888888888,1.0,False,
dataset=moons,moons,euclidean,7,0.9111111111111111,0.9333333333333333,False,
dataset=moons,moons,euclidean,9,0.9111111111111111,0.9333333333333333,False,
dataset=moons,moons,euclidean,11,0.8666666666666667,0.9333333333333333,False,
dataset=moons,moons,euclidean,15,0.7777777777777778,0.9333333333333333,False,
dataset=moons,moons,euclidean,21,0.7333333333333333,0.9333333333333333,False,
dataset=moons,moons,euclidean,31,0.6888888888888889,1.0,False,
"""
SGD = ["--set", "svm.method=stochastic", "--set", "svm.batch_size=16", "--set", "cv.folds=4"]


def folder_of(done) -> Path:
    """The run folder a finished command printed last (a subprocess or a CliRunner result)."""
    code = getattr(done, "returncode", getattr(done, "exit_code", None))
    assert code == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


def rows_of(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def artifacts(folder: Path, cell: str) -> dict:
    return json.loads((folder / "cells" / cell / "result.json").read_text())["artifacts"]


def cells_of(experiment: str, *overrides: str):
    """The cells kernelnet expands from the shipped config with these --set overrides."""
    schema = get_experiment(experiment).schema
    raw = read_config_file(shipped("configs") / f"{experiment}.yaml")
    for item in overrides:
        raw.override(item)
    return {c.id: c for c in expand(schema, resolve(schema, raw.values, raw.locations))}


# -- svm-primal ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def primal_runs(tmp_path_factory):
    """Minibatch descent, 4 folds: one cell alone, the grid it sits in serially and with
    two worker processes."""
    runs = tmp_path_factory.mktemp("primal-cv")
    common = ["svm-primal", "--runs-dir", runs, "--quiet", "--no-plots", *SGD]
    alone = kernelnet_cli(*common, "--set", "svm.epochs=10", "--set", "svm.update=coordinate")
    grid = [*common, "--set", "svm.epochs=3,10", "--set", "svm.update=simultaneous,coordinate"]
    serial, parallel = kernelnet_cli(*grid), kernelnet_cli(*grid, "--workers", "2")
    return tuple(folder_of(done) for done in (alone, serial, parallel))


def primal_cv(folder: Path, cell: str) -> tuple[str, str, list[float]]:
    row = next(r for r in rows_of(folder) if r["cell"] == cell)
    return row["cv_mean"], row["cv_std"], artifacts(folder, cell)["cv_scores"]


def test_svm_primal_cv_is_the_same_alone_in_a_grid_serially_and_with_two_workers(primal_runs):
    alone, serial, parallel = primal_runs
    single = primal_cv(alone, "single")
    assert len(single[2]) == 4 and float(single[0]) == pytest.approx(np.mean(single[2]))
    assert primal_cv(serial, "epochs=10,update=coordinate") == single
    assert primal_cv(parallel, "epochs=10,update=coordinate") == single
    for cell in ("epochs=3,update=simultaneous", "epochs=10,update=simultaneous"):
        assert primal_cv(serial, cell) == primal_cv(parallel, cell)
    assert primal_cv(serial, "epochs=3,update=simultaneous")[2] != single[2]  # it can fail


def by_hand(split, folds, costs, epochs, update, generators=None, batch_size=None):
    """Each fold's accuracy of kernelnet.svm.primal fitted on that fold's training indices."""
    scores = []
    for f, (train, test) in enumerate(folds):
        fit = fit_gradient_descent(
            split.X_train[train], split.y_train[train], costs[train], 1e-3, epochs,
            batch_size=batch_size, rng=None if generators is None else generators[f],
            history=False, update=update,
        )  # fmt: skip
        predicted = np.where(split.X_train[test] @ fit.w + fit.b > 0, 1.0, -1.0)
        scores.append(float(np.mean(predicted == split.y_train[test])))
    return scores


def test_svm_primal_fold_scores_are_primal_fitted_by_hand_on_each_folds_indices(tmp_path):
    """Full batch, 10 epochs, swept over the +1 class's C multiplier and the update rule:
    each sample keeps its C_i in its fold, and the update reaches the fold fits (on
    iris_binary both change some fold's accuracy, so dropping either would fail here)."""
    sweep = ["svm.epochs=10", "svm.positive_weight=1,2", "svm.update=simultaneous,coordinate"]
    sets = [item for value in ["cv.folds=4", *sweep] for item in ("--set", value)]
    folder = folder_of(invoke("svm-primal", "--runs-dir", tmp_path, "--quiet", "--no-plots", *sets))
    split = load_binary_data(get_experiment("svm-primal").schema().data, 0)  # iris_binary
    X, y = split.X_train, split.y_train
    folds = stratified_folds(y, 4, fold_rng(0, X, y))
    seen = set()
    for cell_id, cell in cells_of("svm-primal", "cv.folds=4", *sweep).items():
        svm = cell.config.svm
        costs = 5.0 * np.where(y > 0, svm.positive_weight, 1.0)
        stored = artifacts(folder, cell_id)["cv_scores"]
        assert stored == by_hand(split, folds, costs, 10, svm.update), cell_id
        seen.add(tuple(stored))
    assert len(seen) == 3  # weight 1: each update its own scores; weight 2: the same


def test_svm_primal_minibatch_folds_each_draw_from_a_generator_spawned_from_the_cells(
    primal_runs,
):
    _, serial, _ = primal_runs
    cells = cells_of("svm-primal", "svm.method=stochastic", "svm.batch_size=16", "cv.folds=4",
                     "svm.epochs=3,10", "svm.update=simultaneous,coordinate")  # fmt: skip
    split = load_binary_data(get_experiment("svm-primal").schema().data, 0)  # iris_binary
    X, y = split.X_train, split.y_train
    folds = stratified_folds(y, 4, fold_rng(0, X, y))
    for cell_id in ("epochs=10,update=coordinate", "epochs=3,update=simultaneous"):
        cell = cells[cell_id]
        generators = cell_rng(0, cell.digest).spawn(4)
        update = cell.config.svm.update
        expected = by_hand(split, folds, np.full(len(y), 5.0), cell.config.svm.epochs, update,
                           generators, batch_size=16)  # fmt: skip
        assert artifacts(serial, cell_id)["cv_scores"] == expected


def test_svm_primal_with_cv_off_writes_what_it_wrote_before_cv_and_on_only_adds(tmp_path):
    off = folder_of(invoke("svm-primal", "--runs-dir", tmp_path / "off", "--quiet", "--no-plots"))
    assert (off / "metrics.csv").read_text() == PRIMAL_DEFAULT_CSV
    on = folder_of(
        invoke("svm-primal", "--runs-dir", tmp_path / "on", "--quiet", "--no-plots",
               "--set", "cv.folds=5")
    )  # fmt: skip
    for before, after in zip(rows_of(off), rows_of(on), strict=True):
        assert {k: v for k, v in after.items() if k not in ("cv_mean", "cv_std")} == before
        assert after["cv_mean"] and after["cv_std"]
    summary = json.loads((on / "summary.json").read_text())
    best = max(rows_of(on), key=lambda r: (float(r["cv_mean"]), -float(r["cv_std"])))
    assert summary["best_by_cv"]["cell"] == best["cell"] == "epochs=10"  # 98.67% ± 2.67
    assert summary["best_by_cv"]["test_accuracy"] == float(best["test_accuracy"])  # a number
    assert "best_by_cv" not in json.loads((off / "summary.json").read_text())
    assert "5-fold cross-validation on the training set" in (on / "metrics.md").read_text()


def test_a_svm_primal_fold_whose_weights_stop_being_finite_is_divergence_naming_it():
    import dataclasses

    from kernelnet.errors import Diverged
    from kernelnet.experiments.svm_primal import cross_validate

    config = get_experiment("svm-primal").schema()
    config.svm.learning_rate, config.svm.epochs, config.cv.folds = 1e306, 50, 4
    split = load_binary_data(config.data, 0)
    split = dataclasses.replace(split, X_train=split.X_train * 1e3)
    with pytest.raises(Diverged, match=r"cross-validation fold 1 of 4 .* lower learning rate"):
        cross_validate(config, split, np.random.default_rng(0))


def test_svm_primal_refuses_more_folds_than_a_class_has_before_a_folder_exists(tmp_path):
    line = one_error_line(
        invoke("svm-primal", "--runs-dir", tmp_path, "--set", "cv.folds=60")  # 76 training points
    )
    assert "svm-primal cell epochs=1: cv.folds=60: class -1.0 has only 37 training" in line
    assert "use at most 37 folds" in line
    assert not (tmp_path / "svm-primal").exists()


# -- knn ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def knn_runs(tmp_path_factory):
    """5-fold CV: the moons cell alone, in a three-dataset grid serially and with two
    workers."""
    runs = tmp_path_factory.mktemp("knn-cv")
    common = ["knn", "--runs-dir", runs, "--quiet", "--no-plots", "--set", "cv.folds=5"]
    alone = kernelnet_cli(*common, "--set", "data.dataset=moons")
    grid = [*common, "--set", "data.dataset=moons,circles,xor"]
    serial, parallel = kernelnet_cli(*grid), kernelnet_cli(*grid, "--workers", "2")
    return tuple(folder_of(done) for done in (alone, serial, parallel))


def knn_cv(folder: Path, cell: str):
    """Each k's (k_cv_mean, k_cv_std) as metrics.csv writes them, the stored fold scores."""
    rows = [r for r in rows_of(folder) if r["cell"] == cell]
    columns = [(r["k"], r["k_cv_mean"], r["k_cv_std"]) for r in rows]
    return columns, artifacts(folder, cell)["cv_scores_by_k"]


def test_knn_cv_is_the_same_alone_in_a_grid_serially_and_with_two_workers(knn_runs):
    alone, serial, parallel = knn_runs
    single = knn_cv(alone, "single")
    assert len(single[0]) == 9 and all(len(s) == 5 for s in single[1].values())
    assert knn_cv(serial, "dataset=moons") == single
    assert knn_cv(parallel, "dataset=moons") == single
    for cell in ("dataset=circles", "dataset=xor"):
        assert knn_cv(serial, cell) == knn_cv(parallel, cell)
    assert knn_cv(serial, "dataset=xor") != single


def training_part(folder: Path, cell: str):
    """The points a 2-D cell's neighbours are taken from (its boundaries.npz keeps them)."""
    grid = read_arrays(folder / "cells" / cell / "boundaries.npz")
    return grid["X_train"], grid["y_train"]


def test_knn_per_k_fold_scores_equal_scikit_learn_on_the_same_folds(knn_runs):
    """Two classes and odd k: no tied vote; every distance from a held-out point to the
    training points distinct: no tie at the k-th neighbour. So scikit-learn's tie rules
    (the smallest label; the order its sort leaves) never come into play."""
    pytest.importorskip("sklearn")
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier as Theirs

    _, serial, _ = knn_runs
    for cell in ("dataset=moons", "dataset=circles", "dataset=xor"):
        X, y = training_part(serial, cell)
        assert np.unique(y).size == 2
        folds = stratified_folds(y, 5, fold_rng(0, X, y))
        for train, test in folds:
            D = distances(X[test], X[train])
            assert all(np.unique(row).size == row.size for row in D)  # no distance ties
        stored = artifacts(serial, cell)["cv_scores_by_k"]
        assert sorted(map(int, stored)) == [1, 3, 5, 7, 9, 11, 15, 21, 31]
        for k, scores in stored.items():
            theirs = cross_val_score(Theirs(int(k), algorithm="brute"), X, y, cv=folds)
            assert scores == theirs.tolist(), (cell, k)


def test_knn_chooses_k_by_the_cv_mean_and_says_so(knn_runs):
    _, serial, _ = knn_runs
    summary = json.loads((serial / "summary.json").read_text())
    for dataset in ("moons", "circles", "xor"):
        rows = [r for r in rows_of(serial) if r["cell"] == f"dataset={dataset}"]
        best = max(float(r["k_cv_mean"]) for r in rows)
        (chosen,) = [r for r in rows if r["chosen"] == "True"]
        assert int(chosen["k"]) == min(int(r["k"]) for r in rows if float(r["k_cv_mean"]) == best)
        # the cell's score, like its test score, is on the chosen k's row only
        for r in rows:
            on = r is chosen
            assert [bool(r["test_accuracy"]), bool(r["cv_mean"]), bool(r["cv_std"])] == [on] * 3
        assert (chosen["cv_mean"], chosen["cv_std"]) == (chosen["k_cv_mean"], chosen["k_cv_std"])
        entry = summary["by_dataset"][dataset]
        assert entry["chosen_by"] == "5-fold cross-validation"
        assert entry["chosen_k"] == int(chosen["k"])
        assert entry["cv_mean"] == float(chosen["cv_mean"])
        assert entry["test_accuracy"] == float(chosen["test_accuracy"])
        # the cell's fold scores (what a resumed run checks) are the chosen k's
        stored = artifacts(serial, f"dataset={dataset}")
        assert stored["cv_scores"] == stored["cv_scores_by_k"][chosen["k"]]
    # moons: validation picks k = 3 (100%), 5-fold CV k = 1 (86.7%): the choice is CV's
    assert summary["by_dataset"]["moons"]["chosen_k"] == 1
    # across cells, each cell is ranked by its chosen k's CV score
    scores = {d: summary["by_dataset"][d]["cv_mean"] for d in ("moons", "circles", "xor")}
    assert summary["best_by_cv"]["cell"] == f"dataset={max(scores, key=scores.get)}"
    text = (serial / "metrics.md").read_text()
    assert "← chosen by 5-fold CV" in text and "chooses nothing" in text
    assert "chosen on validation" not in text


def test_knn_with_cv_off_writes_what_it_wrote_before_cv(tmp_path):
    folder = folder_of(
        invoke(
            "knn", "--runs-dir", tmp_path, "--quiet", "--no-plots", "--set", "data.dataset=moons"
        )
    )
    expected = KNN_MOONS_CSV.replace("dataset=moons,moons", "single,moons")
    assert (folder / "metrics.csv").read_text() == expected
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["by_dataset"]["moons"] == {"chosen_k": 3, "test_accuracy": 0.9}
    assert "chosen on validation" in (folder / "metrics.md").read_text()


def test_knn_cv_on_a_three_class_file_equals_kernelnets_estimator_fold_by_fold(tmp_path):
    """Even k and three classes tie votes, where kernelnet gives the tie to
    the nearest tied neighbour's class and scikit-learn to the smallest label; so the
    reference here is kernelnet's own KNeighborsClassifier, fitted per fold by
    kernelnet.cv.cross_val_scores, against the all-k path of the experiment."""
    rng = np.random.default_rng(7)
    centres = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.7]])
    labels = np.repeat(["a", "b", "c"], 30)
    X = centres[np.searchsorted(["a", "b", "c"], labels)] + rng.normal(0, 0.8, (90, 2))
    path = tmp_path / "three.csv"
    path.write_text(
        "x1,x2,label\n"
        + "".join(f"{float(a)!r},{float(b)!r},{c}\n" for (a, b), c in zip(X, labels))
    )
    folder = folder_of(
        invoke("knn", "--runs-dir", tmp_path, "--quiet", "--no-plots", "--set", "cv.folds=3",
               "--set", f"data.dataset={path}", "--set", "knn.k=[1,2,3,4,6,9]")
    )  # fmt: skip
    X_train, y_train = training_part(folder, "single")
    assert np.unique(y_train).tolist() == [0, 1, 2]
    folds = stratified_folds(y_train, 3, fold_rng(0, X_train, y_train))
    stored = artifacts(folder, "single")["cv_scores_by_k"]
    for k in (1, 2, 3, 4, 6, 9):
        mine = cross_val_scores(KNeighborsClassifier(k), X_train, y_train, folds)
        assert stored[str(k)] == mine.tolist(), k
    # and tied votes really are decided in the folds (else this test checks no tie rule)
    tied = 0
    for train, test in folds:
        order = np.argsort(distances(X_train[test], X_train[train]), axis=1, kind="stable")
        for k in (2, 3, 4, 6):
            for neighbours in y_train[train][order[:, :k]]:
                counts = np.bincount(neighbours, minlength=3)
                tied += int(np.sum(counts == counts.max()) > 1)
    assert tied > 0
    try:  # where ties decide, scikit-learn's rule really gives other scores (k = 2, 6 here)
        from sklearn.model_selection import cross_val_score
        from sklearn.neighbors import KNeighborsClassifier as Theirs
    except ImportError:
        return
    for k, same in ((1, True), (2, False), (6, False)):
        theirs = cross_val_score(Theirs(k, algorithm="brute"), X_train, y_train, cv=folds)
        assert (stored[str(k)] == theirs.tolist()) == same, k


def test_knn_refuses_folds_it_cannot_deal_before_a_folder_exists(tmp_path):
    moons = ["knn", "--runs-dir", tmp_path, "--set", "data.dataset=moons"]
    line = one_error_line(invoke(*moons, "--set", "cv.folds=30"))  # 45 training points
    assert "knn: cv.folds=30: class 0 has only 22 training sample(s)" in line
    line = one_error_line(invoke(*moons, "--set", "cv.folds=5", "--set", "knn.k=[41,43]"))
    assert "a fold trains on only 36 of the 45 training points" in line
    assert "smallest k of knn.k (41)" in line
    assert not (tmp_path / "knn").exists()


@pytest.mark.parametrize("experiment", ["svm-primal", "knn"])
def test_the_cv_section_enters_no_cell_digest(experiment):
    """Every existing cell keeps its digest (its Generator, its stored result) and turning
    CV on changes it not: the per-fold Generators of svm-primal and knn's validation split
    are those of CV off."""
    from kernelnet.config.schema import outcome_values
    from kernelnet.config.sweep import canonical_digest, data_identity

    schema = get_experiment(experiment).schema
    off, on = cells_of(experiment), cells_of(experiment, "cv.folds=5")
    assert [c.values["cv"] for c in off.values()] == [{"folds": 0}] * len(off)
    assert [c.values["cv"] for c in on.values()] == [{"folds": 5}] * len(on)
    for cell in off.values():
        outcome = outcome_values(schema, cell.values)
        assert "cv" not in outcome
        assert cell.digest == canonical_digest(data_identity(outcome))
    assert [c.digest for c in on.values()] == [c.digest for c in off.values()]
