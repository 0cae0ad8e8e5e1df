"""Kernel SVM fits under load: each solver's fit quiet and beside two busy processes (two
CPU hogs: ``while True: pass``, as many as this machine has cores up to two), with the
defaults, side by side in one run. Issue 24's goal: under two hogs a kernelnet fit takes at
most 2x its quiet time, and degrades no more than libsvm's does.

Problems and children are those of ``svm_sizes.py`` (MNIST 10k 10-class and even/odd by
default, C = 10, gamma = 0.05, tol 1e-3; ``--only`` picks); each fit runs in its own child
process, in the environment this script runs in (no BLAS thread variable is set for the
children unless ``--threads``: the defaults are what is measured). For each problem the
order is: quiet fits (every solver), then the hogs start and the loaded fits run, then the
hogs stop; ``--rounds`` repeats that and the best time of each is kept. Results: a table and
benchmarks/results/svm_load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from svm_sizes import ONEDAL_VENV, RESULTS, measure, onedal_python, problem_data

HOG = "while True:\n    pass\n"
PROBLEMS = {
    "MNIST 10k 10-class": ("mnist", 10000),
    "MNIST 10k even/odd": ("even-odd", 10000),
    "MNIST 5k 10-class": ("mnist", 5000),
}
DEFAULT_PROBLEMS = ("MNIST 10k 10-class", "MNIST 10k even/odd")


def hogs(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(count)]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(DEFAULT_PROBLEMS), choices=PROBLEMS)
    parser.add_argument("--solvers", nargs="*", default=["kernelnet", "libsvm"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hogs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads of children")
    parser.add_argument("--test", type=int, default=2000, help="test images predicted")
    parser.add_argument("--out", type=Path, default=RESULTS / "svm_load.json")
    args = parser.parse_args()
    pythons = {"kernelnet": sys.executable, "libsvm": sys.executable}
    if "oneDAL" in args.solvers:
        python = onedal_python(ONEDAL_VENV, print)
        if python is None:
            args.solvers.remove("oneDAL")
        else:
            pythons["oneDAL"] = python
    print(f"{args.hogs} CPU hogs beside each loaded fit; {os.cpu_count()} CPUs; best of "
          f"{args.rounds} rounds")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix="kernelnet-load-") as scratch:
        for label in args.only:
            problem, n = PROBLEMS[label]
            folder = Path(scratch) / problem / str(n)
            folder.mkdir(parents=True)
            X, y, X_test, y_test, C_, gamma = problem_data(problem, n, args.test)
            for name, array in (("X_train", X), ("y_train", y), ("X_test", X_test)):
                np.save(folder / f"{name}.npy", array)
            np.save(folder / "y_test.npy", y_test)
            times = {w: {"quiet": [], "loaded": []} for w in args.solvers}
            for _ in range(args.rounds):
                for state in ("quiet", "loaded"):
                    running = hogs(args.hogs) if state == "loaded" else []
                    try:
                        for which in args.solvers:
                            result, _ = measure(
                                pythons[which], which, folder, C_, gamma, args.threads
                            )
                            if "error" in result:
                                print(f"{label} {which} {state}: failed: {result['error']}")
                                return 1
                            times[which][state].append(result["fit"])
                            print(f"{label} {which} {state}: fit {result['fit']:.2f} s")
                    finally:
                        stop(running)
            for which in args.solvers:
                quiet, loaded = min(times[which]["quiet"]), min(times[which]["loaded"])
                rows.append({"problem": label, "solver": which, "quiet": quiet,
                             "loaded": loaded, "ratio": loaded / quiet,
                             "all": times[which]})  # fmt: skip
    print()
    print(f"| problem | solver | quiet fit | fit beside {args.hogs} hogs | loaded / quiet |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['problem']} | {r['solver']} | {r['quiet']:.2f} s | {r['loaded']:.2f} s "
              f"| {r['ratio']:.2f}x |")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"hogs": args.hogs, "rounds": args.rounds, "rows": rows},
                                   indent=1) + "\n")  # fmt: skip
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
