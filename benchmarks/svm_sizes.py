"""Kernel SVMs at every size with the defaults: kernelnet's KernelSVM against scikit-learn's
SVC (libsvm) and oneDAL's SVC (scikit-learn-intelex, in the benchmark's own environment);
the same data, C, gamma and tol for all three.

Problems: scikit-learn's digits (pixels / 16, C = 10, gamma = 0.05; the first 1,347 images
to fit, the other 450 to test); MNIST 10-class on the first 2,500, 5,000 and 10,000
training images and MNIST even/odd (two classes) on 10,000 (pixels / 255, C = 10,
gamma = 0.05), tested on the 10,000 test images (``--test`` fewer). ``--full`` adds MNIST
10-class at 20,000, 40,000 and 60,000, even/odd at 20,000 and 60,000, and the generated
two-class set of 200,000 (:func:`generated`; kernelnet and oneDAL only). libsvm runs up to
``--libsvm-max`` training samples (20,000 by default: at 60,000 one fit takes minutes);
``--only`` picks problems by name, ``--solvers`` the solvers.

oneDAL: a venv (``--onedal-venv``, by default ~/.cache/kernelnet-bench/onedal-venv, outside
the repository) is created once with ``pip install scikit-learn-intelex`` and its python
runs oneDAL's fits; when it cannot be created or does not import, oneDAL is skipped with
one line. Each problem's arrays are written once to a scratch folder and every solver's
child process loads the same files.

Each fit runs in its own child process; its peak memory is the child's ru_maxrss, shown with
what the process held before the fit (interpreter, libraries, data), so fit memory = peak -
before; "worker MB" is the largest peak of the processes the fit started (KernelSVM's
``n_jobs`` workers, one per CPU by default when there are several large pairs; 0: none),
each of which also holds its own ``cache_size`` (a forked worker's peak counts the pages it
shares with the fitting process too, so it overstates what the worker adds). Agreement: the
fraction of test predictions identical to libsvm's. ``--threads N`` sets the BLAS threads of
every child (oneDAL's: daal4py.daalinit; default: the environment's). Fit time is wall time
on a machine that may be shared: the solvers of one problem run one after the other, so
their ratios are measured side by side.

The floor: the kernel rows the solution needs, n_SV x n x features multiply-adds summed
over the one-vs-one pairs (kernelnet's support vectors; each pair's n), at this process's
float32 matrix-product rate (a 2048 x 2048 sgemm, timed here with the children's BLAS
threads). The figure (fit time and peak memory against n for the three solvers, with the
floor) and the measurements as JSON are written to ``--out`` (benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

C, GAMMA, TOL = 10.0, 0.05, 1e-3
# the generated two-class set: C = 1 (its classes overlap: with C = 10 a third of the
# samples would sit at the bound for longer), gamma = 1 / (d var X) (scikit-learn's "scale")
GENERATED_C = 1.0
GENERATED_N, GENERATED_TEST = 200_000, 20_000
DEFAULT_SIZES, FULL_SIZES = (2500, 5000, 10000), (20000, 40000, 60000)
DEFAULT_EVEN_ODD, FULL_EVEN_ODD = (10000,), (20000, 60000)
ONEDAL_VENV = Path.home() / ".cache" / "kernelnet-bench" / "onedal-venv"
RESULTS = Path(__file__).resolve().parent / "results"
SOLVERS = ("kernelnet", "libsvm", "oneDAL")

CHILD = """
import json, resource, sys, time
import numpy as np
which, folder, out = sys.argv[1], sys.argv[2], sys.argv[3]
C, GAMMA, TOL = map(float, sys.argv[4:7])
threads = int(sys.argv[7])  # 0: the environment's
X_train, y_train = np.load(folder + "/X_train.npy"), np.load(folder + "/y_train.npy")
X_test, y_test = np.load(folder + "/X_test.npy"), np.load(folder + "/y_test.npy")
if which == "kernelnet":
    from kernelnet import KernelSVM
    model = KernelSVM(C=C, gamma=GAMMA, tol=TOL)
elif which == "libsvm":
    from sklearn.svm import SVC
    model = SVC(C=C, gamma=GAMMA, tol=TOL)
else:
    from sklearnex.svm import SVC
    if threads:  # oneDAL's threads are TBB's, not the BLAS variables'
        import daal4py
        daal4py.daalinit(threads)
    model = SVC(C=C, gamma=GAMMA, tol=TOL)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
model.fit(X_train, y_train)
fit = time.perf_counter() - started
started = time.perf_counter()
predicted = model.predict(X_test)
predict = time.perf_counter() - started
np.save(out, predicted)
result = {"fit": fit, "predict": predict, "n_train": len(X_train), "n_test": len(X_test),
          "accuracy": float(np.mean(predicted == y_test)), "before_mb": before,
          "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
          # the largest worker process's peak (KernelSVM's n_jobs workers; 0: none)
          "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
          "n_sv": int(len(model.support_vectors_))}
if which == "kernelnet":  # the rows the solution needs: each pair's n_SV x n_pair x d
    result["floor_madds"] = float(sum(len(m.support_) * len(m.alpha_) for m in
                                      model.estimators_) * X_train.shape[1])
print(json.dumps(result))
"""


def generated(n: int, n_test: int, seed: int = 0, d: int = 30, noise: float = 1.5):
    """A two-class problem with a nontrivial boundary: 16 Gaussian clusters in ``d``
    dimensions (centers N(0, I), fixed by ``seed``), the clusters alternately of class 0
    and 1, every point its cluster's center plus N(0, noise^2 I). With noise 1.5 the
    classes overlap (libsvm: 94% test accuracy, 29% of the samples support vectors at
    10,000), so the solver works through many bounded and free support vectors.
    Returns X (n, d), y (n,), X_test, y_test."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((16, d))
    cluster = rng.integers(len(centers), size=n + n_test)
    X = centers[cluster] + noise * rng.standard_normal((n + n_test, d))
    y = cluster % 2
    return X[:n], y[:n], X[n:], y[n:]


def problem_data(problem: str, n: int, n_test: int):
    """(X_train, y_train, X_test, y_test, C, gamma) of a problem."""
    if problem == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        return X[:1347], y[:1347], X[1347:], y[1347:], C, GAMMA
    if problem == "generated":
        X, y, X_test, y_test = generated(n, GENERATED_TEST)
        return X, y, X_test, y_test, GENERATED_C, 1.0 / (X.shape[1] * X.var())
    from kernelnet.data.mnist import mnist_split

    data = mnist_split(n, 0, n_test, normalize="scale")
    X, y, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
    if problem == "even-odd":
        y, y_test = y % 2, y_test % 2
    return X, y, X_test, y_test, C, GAMMA


def onedal_python(venv: Path, say) -> str | None:
    """The python of a venv with scikit-learn-intelex, created there once; None (and one
    line said) when it cannot be created or does not import."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import sklearnex.svm"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return str(python)
    say(f"oneDAL: creating {venv} (pip install scikit-learn-intelex, once)")
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "scikit-learn-intelex"],
        check,
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True)
        except OSError as exc:
            done = subprocess.CompletedProcess(step, 1, "", str(exc))
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            say(f"oneDAL (scikit-learn-intelex) skipped: {' '.join(step[-2:])} failed: {tail}")
            return None
    return str(python)


def sgemm_rate(threads: int | None) -> float:
    """Multiply-adds per second of a 2048 x 2048 float32 product (best of 5), with the
    children's BLAS threads."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((2048, 2048), dtype=np.float32)
    b = rng.standard_normal((2048, 2048), dtype=np.float32)
    with threadpool_limits(threads):
        a @ b  # warm-up
        best = min(_timed(lambda: a @ b) for _ in range(5))
    return 2048**3 / best


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def measure(python: str, which: str, folder: Path, C_: float, gamma: float, threads):
    out = folder / f"{which}.npy"
    argv = [python, "-c", CHILD, which, str(folder), str(out), str(C_), str(gamma), str(TOL)]
    argv.append(str(threads or 0))
    env = dict(os.environ)
    if threads is not None:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(threads)
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail}, None
    return json.loads(done.stdout.strip().splitlines()[-1]), np.load(out)


def problems(args) -> list[tuple[str, str, int]]:
    """(label, problem, n) in the order they run."""
    sizes = list(DEFAULT_SIZES) + (list(FULL_SIZES) if args.full else [])
    even_odd = list(DEFAULT_EVEN_ODD) + (list(FULL_EVEN_ODD) if args.full else [])
    chosen = [("digits", "digits", 1347)]
    chosen += [(f"MNIST {n / 1000:g}k 10-class", "mnist", n) for n in sizes]
    chosen += [(f"MNIST {n / 1000:g}k even/odd", "even-odd", n) for n in even_odd]
    if args.full:
        chosen.append((f"generated {GENERATED_N // 1000}k 2-class", "generated", GENERATED_N))
    if args.only:
        chosen = [c for c in chosen if any(o.lower() in c[0].lower() for o in args.only)]
    return chosen


def figure(records: list[dict], rate: float, path: Path) -> None:
    """Fit time and peak memory against n (log axes) per solver and problem family, with
    the floor under the fit times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = {
        "digits": "digits",
        "mnist": "MNIST 10-class",
        "even-odd": "MNIST even/odd",
        "generated": f"generated two-class (C={GENERATED_C:g})",
    }
    colors = {"kernelnet": "C0", "libsvm": "C1", "oneDAL": "C2", "floor": "0.4"}
    styles = {
        "digits": ("", "D"),
        "mnist": ("-", "o"),
        "even-odd": ("--", "s"),
        "generated": (":", "^"),
    }
    from matplotlib.lines import Line2D

    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(12, 5))
    for family in families:
        line, marker = styles[family]
        mine = [r for r in records if r["problem"] == family and "fit" in r]
        for which in SOLVERS:
            points = sorted(
                (r["n_train"], r["fit"], r["peak_mb"]) for r in mine if r["solver"] == which
            )
            if points:
                n, fit, peak = zip(*points)
                ax_time.plot(n, fit, line, marker=marker, color=colors[which])
                ax_mem.plot(n, peak, line, marker=marker, color=colors[which])
        floor = sorted((r["n_train"], r["floor_madds"] / rate) for r in mine if "floor_madds" in r)
        if floor:
            n, seconds = zip(*floor)
            ax_time.plot(n, seconds, line, marker=marker, color=colors["floor"])
        before = sorted((r["n_train"], r["before_mb"]) for r in mine if r["solver"] == "kernelnet")
        if before:
            n, mb = zip(*before)
            ax_mem.plot(n, mb, line, marker=marker, color=colors["floor"], alpha=0.5)
    for ax, ylabel in ((ax_time, "fit seconds"), (ax_mem, "peak memory of the fit process, MB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training samples n")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    solver_keys = [Line2D([], [], color=colors[w], label=w) for w in SOLVERS]
    solver_keys.append(
        Line2D([], [], color=colors["floor"], label="floor: n_SV x n x d at the sgemm rate")
    )
    family_keys = [
        Line2D([], [], color="k", linestyle=styles[f][0] or "none", marker=styles[f][1], label=name)
        for f, name in families.items()
    ]
    ax_time.legend(handles=solver_keys + family_keys, fontsize=8)
    memory_keys = [Line2D([], [], color=colors[w], label=w) for w in SOLVERS]
    memory_keys.append(
        Line2D([], [], color=colors["floor"], alpha=0.5, label="before the fit (data, libraries)")
    )
    ax_mem.legend(handles=memory_keys, fontsize=8)
    ax_time.set_title(f"fit time (float32 sgemm: {rate / 1e9:.1f} G multiply-adds/s)")
    ax_mem.set_title("peak memory (ru_maxrss)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="add 20k-60k and the 200k set")
    parser.add_argument("--test", type=int, default=10000, help="MNIST test images")
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads per child")
    parser.add_argument("--only", action="append", help="problems whose label contains this")
    parser.add_argument("--solvers", default=",".join(SOLVERS), help="comma-separated")
    parser.add_argument("--libsvm-max", type=int, default=20000, help="largest n for libsvm")
    parser.add_argument("--onedal-venv", type=Path, default=ONEDAL_VENV)
    parser.add_argument("--out", type=Path, default=RESULTS, help="figure and JSON folder")
    parser.add_argument(
        "--figure-from", type=Path, nargs="+", help="only draw the figure from saved JSON files"
    )
    args = parser.parse_args()
    if args.figure_from:
        saved = [json.loads(path.read_text()) for path in args.figure_from]
        records = [record for one in saved for record in one["records"]]
        path = args.out / f"{stem(args)}.png"
        figure(records, saved[0]["sgemm_madds_per_s"], path)
        print(f"figure: {path}")
        return
    console = Console(width=170)
    wanted = [s for s in args.solvers.split(",") if s]
    unknown = sorted(set(wanted) - set(SOLVERS))
    if unknown:
        parser.error(f"unknown solvers {unknown}; known: {', '.join(SOLVERS)}")
    pythons = {"kernelnet": sys.executable, "libsvm": sys.executable}
    if "oneDAL" in wanted:
        python = onedal_python(args.onedal_venv, console.print)
        if python is not None:
            pythons["oneDAL"] = python
    solvers = [s for s in wanted if s in pythons]
    rate = sgemm_rate(args.threads)
    console.print(f"float32 sgemm 2048^3: {rate / 1e9:.1f} G multiply-adds/s")
    table = Table(
        title=f"Kernel SVM, defaults (tol={TOL:g}), each fit in its own process; BLAS threads: "
        f"{args.threads or 'environment'}"
    )
    for column in (
        "problem (train / test)",
        "C / gamma",
        "solver",
        "fit s",
        "predict s",
        "peak MB",
        "before MB",
        "worker MB",
    ):
        table.add_column(column, justify="right" if column != "solver" else "left")
    for column in ("accuracy", "same as libsvm", "libsvm / fit", "oneDAL / fit", "floor s"):
        table.add_column(column, justify="right")
    records = []
    with tempfile.TemporaryDirectory() as scratch:
        for label, problem, n in problems(args):
            folder = Path(scratch) / f"{problem}-{n}"
            folder.mkdir()
            X, y, X_test, y_test, C_, gamma = problem_data(problem, n, args.test)
            for name, array in (("X_train", X), ("y_train", y), ("X_test", X_test),
                                ("y_test", y_test)):  # fmt: skip
                np.save(folder / f"{name}.npy", array)
            del X, y, X_test, y_test
            results = {}
            for which in solvers:
                if which == "libsvm" and n > args.libsvm_max:
                    continue
                if which == "libsvm" and problem == "generated":
                    continue
                results[which] = measure(pythons[which], which, folder, C_, gamma, args.threads)
                console.print(f"{label}: {which}: {results[which][0]}", style="dim")
            reference = results.get("libsvm", ({}, None))
            for which, (r, predicted) in results.items():
                records.append({"label": label, "problem": problem, "solver": which,
                                "C": C_, "gamma": gamma, **r})  # fmt: skip
                if "error" in r:
                    table.add_row(label, which, "failed: " + r["error"][:60])
                    continue
                same = "-"
                if reference[1] is not None:
                    same = f"{100 * np.mean(predicted == reference[1]):.2f}%"
                floor = f"{r['floor_madds'] / rate:.2f}" if "floor_madds" in r else ""
                table.add_row(
                    f"{label} ({r['n_train']:,} / {r['n_test']:,})",
                    f"{C_:g} / {gamma:.3g}",
                    which,
                    f"{r['fit']:.2f}",
                    f"{r['predict']:.2f}",
                    f"{r['peak_mb']:,.0f}",
                    f"{r['before_mb']:,.0f}",
                    f"{r.get('worker_peak_mb', 0):,.0f}",
                    f"{100 * r['accuracy']:.2f}%",
                    same,
                    speedup(results, "libsvm", r["fit"]),
                    speedup(results, "oneDAL", r["fit"]),
                    floor,
                )
            table.add_section()
            save(records, rate, args)  # after every problem: a long run stopped keeps its part
    console.print(table)
    console.print(f"figure: {args.out / f'{stem(args)}.png'}; measurements: "
                  f"{args.out / f'{stem(args)}.json'}")  # fmt: skip


def speedup(results: dict, other: str, fit: float) -> str:
    """How many times faster than ``other`` a fit of ``fit`` seconds was ("-": not run)."""
    theirs = results.get(other, ({}, None))[0].get("fit")
    return f"{theirs / fit:.1f}x" if theirs else "-"


def stem(args) -> str:
    return "svm_sizes_full" if args.full else "svm_sizes"


def save(records: list[dict], rate: float, args) -> None:
    """The measurements as JSON and the figure, in ``args.out``."""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem(args)}.json").write_text(
        json.dumps(
            {"sgemm_madds_per_s": rate, "threads": args.threads, "records": records}, indent=1
        )  # fmt: skip
    )
    figure(records, rate, args.out / f"{stem(args)}.png")


if __name__ == "__main__":
    main()
