"""libsvm's grid search, the way a kernelnet user runs it, against scikit-learn's GridSearchCV.

The search is libsvm's ``tools/grid.py`` default: C = 2^-5, 2^-3, ..., 2^15 (11 values) x
gamma = 2^3, 2^1, ..., 2^-15 (10 values) = 110 settings of an RBF SVM (tolerance 1e-3), each
scored by 5-fold cross-validation. The data: the first 2,000 of MNIST's 60,000 training images
(pixels / 255, float64, labels 0-9), written as one ``.npz`` data file with the first 1,000 of
the 10,000 test images as its test part (kernel-table scores every cell once on it; the
cross-validation never sees it).

- kernelnet: the command line, ``kernelnet kernel-table --set data.dataset=FILE --set
  cv.folds=5 --set kernel.name=rbf --set svm.C=... --set kernel.gamma=... --set
  solver.name=auto --set solver.smo_tol=1e-3 --set psd.check=false --workers 2 --no-plots``;
  the run folder, its metrics.csv and its summary's best cell by ``cv_mean`` are the
  product's. Then ``kernelnet runs plot RUN`` draws the run's own figure of the CV accuracy
  over C x gamma (copied to benchmarks/results/grid_search_cv.png).
- scikit-learn: ``GridSearchCV(SVC(kernel="rbf", tol=1e-3), {"C": ..., "gamma": ...},
  cv=FOLDS, n_jobs=2)`` on the same training arrays (read by kernelnet's own data-file
  loader), FOLDS being the (train, test) index pairs kernelnet's cross-validation dealt
  (:func:`kernelnet.cv.stratified_folds` with :func:`kernelnet.cv.fold_rng` of the same seed
  and data), so the two score every setting on the same folds.

Each side runs in its own process, timed from start to exit (interpreter start, imports,
loading the data, the search, and for kernelnet writing its run folder and report). Rounds
alternate which side goes first; with ``--repeats 2`` the best time of each is reported. The
comparison: wall times and their ratio (goal: kernelnet at least 2x faster), both best pairs,
and every cell's fold scores side by side (max abs difference of the mean CV accuracy).
The numbers are written to benchmarks/results/grid_search.json.

``--images``, ``--folds``, ``--repeats`` and ``--workers`` change the size; ``--quick`` is a
3 x 3 grid on 200 images (what tests/test_grid_search_bench.py runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 0
TOL = 1e-3
GOAL_SPEEDUP = 2.0


def libsvm_grid() -> tuple[list[float], list[float]]:
    """grid.py's defaults: log2 C from -5 to 15 by 2, log2 gamma from 3 down to -15 by -2."""
    return [2.0**k for k in range(-5, 16, 2)], [2.0**k for k in range(3, -16, -2)]


def write_subset(path: Path, n_train: int, n_test: int) -> Path:
    """The first ``n_train`` MNIST training images and the first ``n_test`` test images,
    pixels / 255 (float64), labels 0-9 (int64), as a kernelnet .npz data file."""
    from kernelnet.data.mnist import mnist_split

    data = mnist_split(n_train, 0, n_test, normalize="scale")
    np.savez(
        path, X_train=data.X_train, y_train=data.y_train, X_test=data.X_test, y_test=data.y_test
    )
    return path


def load_data(path: Path):
    """The data file as kernel-table reads it (kernelnet's own loader): the exact arrays
    whose bytes the folds are dealt from."""
    from kernelnet.data.registry import load_labelled
    from kernelnet.experiments.kernel_table import TableData

    return load_labelled(TableData(dataset=str(path)), SEED)


def kernelnet_folds(X: np.ndarray, y: np.ndarray, k: int, seed: int = SEED):
    """The folds kernelnet's cross-validation scores every cell on."""
    from kernelnet.cv import fold_rng, stratified_folds

    return stratified_folds(y, k, fold_rng(seed, X, y))


def kernelnet_executable() -> list[str]:
    """The ``kernelnet`` script beside this interpreter (a venv's), else ``python -m``."""
    script = Path(sys.executable).with_name("kernelnet")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kernelnet"]


def _values(values: list[float]) -> str:
    return ",".join(repr(float(v)) for v in values)  # powers of two: exact in decimal


def kernelnet_command(
    data: Path, Cs: list[float], gammas: list[float], folds: int, workers: int, runs_dir: Path
) -> list[str]:
    """The command a user types, after ``kernelnet`` (run with the kernelnet of the same
    environment as this script)."""
    return [
        "kernel-table",
        "--set", f"data.dataset={data}",
        "--set", f"cv.folds={folds}",
        "--set", "kernel.name=rbf",
        "--set", f"kernel.gamma={_values(gammas)}",
        "--set", f"svm.C={_values(Cs)}",
        "--set", "solver.name=auto",
        "--set", f"solver.smo_tol={TOL!r}",
        "--set", "psd.check=false",
        "--seed", str(SEED),
        "--workers", str(workers),
        "--runs-dir", str(runs_dir),
        "--no-plots",
    ]  # fmt: skip


@dataclass
class Side:
    """One side's search: wall seconds (process start to exit), every cell's fold scores
    keyed by (C, gamma), the best pair the side chose and its test accuracy."""

    seconds: float
    scores: dict[tuple[float, float], list[float]]
    best: tuple[float, float]
    best_test_accuracy: float
    extra: dict[str, Any]


def run_kernelnet(
    data: Path, Cs: list[float], gammas: list[float], folds: int, workers: int, runs_dir: Path
) -> Side:
    argv = [*kernelnet_executable(), *kernelnet_command(data, Cs, gammas, folds, workers, runs_dir)]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"kernelnet exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return read_kernelnet_run(Path(done.stdout.strip().splitlines()[-1]), seconds)


def read_kernelnet_run(path: Path, seconds: float) -> Side:
    """The run folder's metrics.csv (cv_mean, test accuracy), each cell's stored fold scores
    (cells/<id>/result.json) and its summary's best cell by cv_mean."""
    import kernelnet

    run = kernelnet.load_run(path)
    if run.status != "complete":
        raise RuntimeError(f"{path}: status {run.status}")
    scores, means, tests = {}, {}, {}
    for row in run.metrics:
        key = (float(row["C"]), float(row["gamma"]))
        stored = json.loads((path / "cells" / row["cell"] / "result.json").read_text())
        scores[key] = [float(s) for s in stored["artifacts"]["cv_scores"]]
        means[key], tests[key] = float(row["cv_mean"]), float(row["test_accuracy"])
    best = run.summary["best_by_cv"]
    pair = (float(best["params"]["C"]), float(best["params"]["gamma"]))
    extra = {
        "run": str(path),
        "cv_mean_column": means,
        "best_cell": best["cell"],
        "order": [(float(c["params"]["C"]), float(c["params"]["gamma"])) for c in run.cells],
        "fit_seconds_per_cell": [float(r["fit_seconds"]) for r in run.metrics],
    }
    return Side(seconds, scores, pair, tests[pair], extra)


# The scikit-learn side, run by this file in a child process (--sklearn-child).
def sklearn_search(data: Path, Cs: list[float], gammas: list[float], folds: int, jobs: int):
    """GridSearchCV(SVC) on kernelnet's folds: per cell its fold scores, the best pair and
    its test accuracy (the refitted best_estimator_), and the seconds of fit()."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    split = load_data(data)
    cv = kernelnet_folds(split.X_train, split.y_train, folds)
    search = GridSearchCV(
        SVC(kernel="rbf", tol=TOL), {"C": Cs, "gamma": gammas}, cv=cv, n_jobs=jobs
    )
    started = time.perf_counter()
    search.fit(split.X_train, split.y_train)
    fit_seconds = time.perf_counter() - started
    results = search.cv_results_
    cells = [
        {
            "C": float(p["C"]),
            "gamma": float(p["gamma"]),
            "scores": [float(results[f"split{f}_test_score"][i]) for f in range(folds)],
            "mean": float(results["mean_test_score"][i]),
        }
        for i, p in enumerate(results["params"])
    ]
    best = search.best_params_
    return {
        "cells": cells,
        "best": [float(best["C"]), float(best["gamma"])],
        "best_test_accuracy": float(search.score(split.X_test, split.y_test)),
        "fit_seconds": fit_seconds,
    }


def run_sklearn(data: Path, Cs: list[float], gammas: list[float], folds: int, jobs: int) -> Side:
    request = json.dumps({"data": str(data), "Cs": Cs, "gammas": gammas, "folds": folds})
    argv = [sys.executable, str(Path(__file__).resolve()), "--sklearn-child", request, str(jobs)]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"scikit-learn side exited {done.returncode}: {done.stderr[-2000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    scores = {(c["C"], c["gamma"]): c["scores"] for c in answer["cells"]}
    means = {(c["C"], c["gamma"]): c["mean"] for c in answer["cells"]}
    extra = {"fit_seconds": answer["fit_seconds"], "mean_test_score": means}
    return Side(seconds, scores, tuple(answer["best"]), answer["best_test_accuracy"], extra)


# -- comparing --------------------------------------------------------------------------


def best_by_kernelnet_rule(scores, order) -> tuple[float, float]:
    """kernelnet.cv.best_by_cv's rule: the highest mean, then the smaller std, then the
    first in ``order``."""
    return max(
        enumerate(order),
        key=lambda p: (np.mean(scores[p[1]]), -np.std(scores[p[1]]), -p[0]),
    )[1]


def best_by_sklearn_rule(scores, order) -> tuple[float, float]:
    """GridSearchCV's rule: the highest mean, then the first in its parameter order."""
    return max(enumerate(order), key=lambda p: (np.mean(scores[p[1]]), -p[0]))[1]


def compare(ours: Side, theirs: Side, Cs: list[float], gammas: list[float]) -> dict[str, Any]:
    """Fold-by-fold agreement, both best pairs and each side's best under the other's rule."""
    if set(ours.scores) != set(theirs.scores):
        raise RuntimeError("the two sides scored different cells")
    cells = sorted(ours.scores)
    ours_folds = np.array([ours.scores[c] for c in cells])
    theirs_folds = np.array([theirs.scores[c] for c in cells])
    mean_difference = np.abs(ours_folds.mean(axis=1) - theirs_folds.mean(axis=1))
    fold_difference = np.abs(ours_folds - theirs_folds)
    kernelnet_order = ours.extra["order"]  # grid.json's order
    sklearn_order = [(C, g) for C in Cs for g in gammas]  # ParameterGrid: sorted keys, C outer
    differing = [
        {"C": c[0], "gamma": c[1], "kernelnet": ours.scores[c], "sklearn": theirs.scores[c]}
        for c, d in zip(cells, fold_difference.max(axis=1))
        if d > 0
    ]
    return {
        "cells": len(cells),
        "folds_per_cell": ours_folds.shape[1],
        "max_abs_mean_cv_difference": float(mean_difference.max()),
        "cells_with_different_mean": int(np.count_nonzero(mean_difference > 1e-12)),
        "max_abs_fold_difference": float(fold_difference.max()),
        "folds_that_differ": int(np.count_nonzero(fold_difference > 1e-12)),
        "differing_cells": differing,
        "kernelnet_best": list(ours.best),
        "sklearn_best": list(theirs.best),
        "same_best_pair": ours.best == theirs.best,
        "kernelnet_best_cv": float(np.mean(ours.scores[ours.best])),
        "sklearn_best_cv": float(np.mean(theirs.scores[theirs.best])),
        "sklearn_score_of_kernelnet_best": float(np.mean(theirs.scores[ours.best])),
        "kernelnet_score_of_sklearn_best": float(np.mean(ours.scores[theirs.best])),
        "best_by_kernelnet_rule_on_sklearn_scores": list(
            best_by_kernelnet_rule(theirs.scores, kernelnet_order)
        ),
        "best_by_sklearn_rule_on_kernelnet_scores": list(
            best_by_sklearn_rule(ours.scores, sklearn_order)
        ),
        "cells_tied_at_best": int(
            np.count_nonzero(ours_folds.mean(axis=1) == ours_folds.mean(axis=1).max())
        ),
    }


def power(value: float) -> str:
    exponent = np.log2(value)
    return f"2^{int(exponent)}" if exponent == int(exponent) else f"{value:g}"


def pair_text(pair) -> str:
    return f"C = {power(pair[0])}, gamma = {power(pair[1])}"


# -- the benchmark --------------------------------------------------------------------------


def benchmark(
    images: int,
    test_images: int,
    Cs: list[float],
    gammas: list[float],
    folds: int,
    repeats: int,
    workers: int,
    runs_dir: Path,
    say=print,
) -> dict[str, Any]:
    """Both sides ``repeats`` times, alternating which goes first; the best time of each,
    the comparison of the last round of each and the kernelnet run that holds it."""
    # Beside the runs (a file there is no run), so the run's argv and rerun command hold.
    runs_dir.mkdir(parents=True, exist_ok=True)
    data = runs_dir.resolve() / f"grid_search-mnist-{images}-{test_images}.npz"
    write_subset(data, images, test_images)
    timings: dict[str, list[float]] = {"kernelnet": [], "scikit-learn": []}
    sides: dict[str, Side] = {}
    for round_ in range(repeats):
        order = ["kernelnet", "scikit-learn"] if round_ % 2 == 0 else ["scikit-learn", "kernelnet"]
        for name in order:
            if name == "kernelnet":
                side = run_kernelnet(data, Cs, gammas, folds, workers, runs_dir)
            else:
                side = run_sklearn(data, Cs, gammas, folds, workers)
            timings[name].append(side.seconds)
            sides[name] = side
            say(f"  round {round_ + 1}: {name:<12} {side.seconds:7.1f} s")
    ours, theirs = sides["kernelnet"], sides["scikit-learn"]
    best_ours, best_theirs = min(timings["kernelnet"]), min(timings["scikit-learn"])
    return {
        "images": images,
        "test_images": test_images,
        "grid": {"C": Cs, "gamma": gammas},
        "folds": folds,
        "seed": SEED,
        "workers": workers,
        "tol": TOL,
        "seconds": timings,
        "best_seconds": {"kernelnet": best_ours, "scikit-learn": best_theirs},
        "speedup": best_theirs / best_ours,
        "sklearn_fit_seconds": theirs.extra["fit_seconds"],
        "kernelnet_command": shlex.join(
            ["kernelnet", *kernelnet_command(data, Cs, gammas, folds, workers, runs_dir)]
        ),
        "kernelnet_run": ours.extra["run"],
        "kernelnet_best_cell": ours.extra["best_cell"],
        "test_accuracy_of_best": {
            "kernelnet": ours.best_test_accuracy,
            "scikit-learn": theirs.best_test_accuracy,
        },
        "agreement": compare(ours, theirs, Cs, gammas),
        "load": os.getloadavg(),
    }


def plot(run: str, out: Path) -> Path:
    """The run's own sweep figure (``kernelnet runs plot RUN``), copied to ``out``."""
    done = subprocess.run(
        [*kernelnet_executable(), "runs", "plot", run], capture_output=True, text=True, check=True
    )
    written = Path(done.stdout.strip().splitlines()[-1])
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(written, out)
    return written


def show(result: dict[str, Any]) -> None:
    a = result["agreement"]
    n_c, n_g = len(result["grid"]["C"]), len(result["grid"]["gamma"])
    print(
        f"grid search: {n_c} C x {n_g} gamma = {a['cells']} RBF SVMs (tol {result['tol']:g}), "
        f"{result['folds']}-fold CV, the first {result['images']:,} MNIST training images "
        f"(pixels / 255), {result['workers']} workers; load average at the end "
        f"{result['load'][0]:.1f} (a shared machine)"
    )
    print(f"  $ {result['kernelnet_command']}")
    rounds = len(result["seconds"]["kernelnet"])
    for name in ("kernelnet", "scikit-learn"):
        times = ", ".join(f"{s:.1f}" for s in result["seconds"][name])
        print(f"  {name:<13} best of {rounds}: {result['best_seconds'][name]:7.1f} s  ({times})")
    print(f"  ratio scikit-learn / kernelnet: {result['speedup']:.2f}x")
    print(f"  kernelnet best:    {pair_text(a['kernelnet_best'])}  CV {a['kernelnet_best_cv']:.4f}"
          f"  test {result['test_accuracy_of_best']['kernelnet']:.4f}")  # fmt: skip
    print(f"  GridSearchCV best: {pair_text(a['sklearn_best'])}  CV {a['sklearn_best_cv']:.4f}"
          f"  test {result['test_accuracy_of_best']['scikit-learn']:.4f}")  # fmt: skip
    if not a["same_best_pair"]:
        ours_there = a["sklearn_score_of_kernelnet_best"]
        theirs_here = a["kernelnet_score_of_sklearn_best"]
        print(
            f"  the best pairs differ: {a['cells_tied_at_best']} cells tie at kernelnet's best "
            f"CV score; GridSearchCV scores kernelnet's best {ours_there:.4f}, kernelnet "
            f"scores GridSearchCV's best {theirs_here:.4f}; kernelnet's rule (ties: smaller "
            "std) on GridSearchCV's scores picks "
            f"{pair_text(a['best_by_kernelnet_rule_on_sklearn_scores'])}, GridSearchCV's rule "
            "(ties: first in its order) on kernelnet's scores picks "
            f"{pair_text(a['best_by_sklearn_rule_on_kernelnet_scores'])}"
        )
    print(
        f"  fold scores: max |difference| of the mean CV accuracy over {a['cells']} cells "
        f"{a['max_abs_mean_cv_difference']:.2g} ({a['cells_with_different_mean']} cells differ); "
        f"{a['folds_that_differ']} of {a['cells'] * a['folds_per_cell']} fold scores differ, "
        f"by at most {a['max_abs_fold_difference']:.4f}"
    )
    for cell in a["differing_cells"]:
        print(
            f"    {pair_text((cell['C'], cell['gamma']))}: kernelnet {cell['kernelnet']}, "
            f"scikit-learn {cell['sklearn']}"
        )
    met = result["speedup"] >= GOAL_SPEEDUP
    print(f"  goal: kernelnet at least {GOAL_SPEEDUP:g}x faster: {'met' if met else 'NOT met'}")
    print(f"  goal: the same best pair: {'met' if a['same_best_pair'] else 'NOT met'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="MNIST training images")
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1, help="rounds; the best time is kept")
    parser.add_argument("--workers", type=int, default=2, help="--workers and n_jobs")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--quick", action="store_true", help="a 3 x 3 grid on 200 images")
    parser.add_argument("--no-figure", action="store_true")
    args = parser.parse_args(argv)
    Cs, gammas = libsvm_grid()
    if args.quick:
        Cs, gammas, args.images, args.folds = [0.5, 2.0, 8.0], [2.0**-7, 2.0**-5, 2.0**-3], 200, 3
    result = benchmark(
        args.images, args.test_images, Cs, gammas, args.folds, args.repeats, args.workers,
        args.runs_dir,
    )  # fmt: skip
    show(result)
    if not args.quick:
        if not args.no_figure:
            written = plot(result["kernelnet_run"], RESULTS / "grid_search_cv.png")
            print(f"  figure: {written} (copied to {RESULTS / 'grid_search_cv.png'})")
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "grid_search.json").write_text(json.dumps(result, indent=1) + "\n")
        print(f"  numbers: {RESULTS / 'grid_search.json'}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--sklearn-child":
        request = json.loads(sys.argv[2])
        answer = sklearn_search(
            Path(request["data"]), request["Cs"], request["gammas"], request["folds"],
            int(sys.argv[3]),
        )  # fmt: skip
        print(json.dumps(answer))
    else:
        main()
