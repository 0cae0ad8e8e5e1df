"""The speed a user feels, each figure a ratio measured side by side in this one run
(the machine is shared and noisy: every time is the best of several, interleaved):

1. start-up: `kernelnet --version`, `--help` and a TAB completion against
   `python -c "import numpy"` (goal: within 2x);
2. end to end: `kernelnet mnist`'s time outside training against its training time
   (goal: at most 1x);
3. under load: an MNIST epoch beside two CPU-bound processes against the same epoch on a
   quiet machine, with the default one BLAS thread per cell (goal: at most 1.5x);
4. workers: each shipped grid with `--workers 2` against serially (goal: never slower).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KERNELNET = [str(Path(sys.executable).with_name("kernelnet"))]  # the installed command
COMPLETION = {"_KERNELNET_COMPLETE": "complete_bash", "COMP_WORDS": "kernelnet ker",
              "COMP_CWORD": "1"}  # fmt: skip
BUSY = "while True: pass"
rows: list[tuple[str, float, str, bool]] = []


def wall(argv: list[str], env: dict | None = None, cwd: str | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env={**os.environ, **(env or {})}, cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def best_interleaved(commands: dict[str, tuple], repeats: int) -> dict[str, float]:
    best = {name: float("inf") for name in commands}
    for _ in range(repeats):
        for name, (argv, env) in commands.items():
            best[name] = min(best[name], wall(argv, env))
    return best


def record(what: str, ratio: float, goal: str, met: bool) -> None:
    rows.append((what, ratio, goal, met))


def startup() -> None:
    times = best_interleaved(
        {
            "numpy": ([sys.executable, "-c", "import numpy"], None),
            "--version": ([*KERNELNET, "--version"], None),
            "--help": ([*KERNELNET, "--help"], None),
            "completion": ([*KERNELNET], COMPLETION),
        },
        repeats=7,
    )
    print(f"start-up (best of 7): import numpy {times['numpy']:.3f} s")
    for name in ("--version", "--help", "completion"):
        ratio = times[name] / times["numpy"]
        print(f"  kernelnet {name:<11} {times[name]:.3f} s = {ratio:.2f}x numpy")
        record(f"start-up: {name} / import numpy", ratio, "<= 2", ratio <= 2)


def end_to_end(runs: Path) -> None:
    outside, training = [], []
    for _ in range(3):
        seconds = wall([*KERNELNET, "mnist", "--quiet", "--runs-dir", str(runs)])
        folder = max((runs / "mnist").iterdir(), key=lambda p: p.stat().st_mtime)
        summary = json.loads((folder / "summary.json").read_text())
        trained = summary["seconds_per_epoch"] * summary["epochs"]
        outside.append(seconds - trained)
        training.append(trained)
    best = min(range(3), key=lambda i: outside[i] / training[i])
    ratio = outside[best] / training[best]
    total = outside[best] + training[best]
    print(
        f"kernelnet mnist: {total:.2f} s end to end, training {training[best]:.2f} s, "
        f"outside training {outside[best]:.2f} s = {ratio:.2f}x"
    )
    record("mnist: outside training / training", ratio, "<= 1", ratio <= 1)


EPOCH = """
import time, numpy as np
from kernelnet import blas
from kernelnet.nn.models import MLP
from kernelnet.nn.optim import make_optimizer
from kernelnet.nn.trainer import TrainSettings, train_classifier
from kernelnet.data.mnist import mnist_split
data = mnist_split(55000, 5000, 10000, normalize="none", dtype=np.float32)
best = float("inf")
with blas.blas_threads(blas.DEFAULT_THREADS):
    for repeat in range(3):
        rng = np.random.default_rng(0)
        model = MLP.create(784, [100], 10, rng, weight_scale=1e-3, dtype=np.float32)
        started = time.perf_counter()
        train_classifier(model, make_optimizer("sgd", lr=1e-3), data.X_train, data.y_train,
                         data.X_val, data.y_val, TrainSettings(1, 100, log_epochs=False), rng)
        best = min(best, time.perf_counter() - started)
print(best)
"""


def epoch_seconds() -> float:
    done = subprocess.run([sys.executable, "-c", EPOCH], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def under_load() -> None:
    quiet = epoch_seconds()
    hogs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(2)]
    try:
        time.sleep(0.5)
        loaded = epoch_seconds()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    quiet = min(quiet, epoch_seconds())
    ratio = loaded / quiet
    print(f"MNIST epoch: quiet {quiet:.3f} s, beside two busy processes {loaded:.3f} s "
          f"= {ratio:.2f}x")  # fmt: skip
    record("epoch beside 2 busy processes / quiet", ratio, "<= 1.5", ratio <= 1.5)


GRIDS = ["svm-primal", "kernel-table", "kernel-check", "asym-svm", "gradcheck", "knn", "fit"]


def workers(runs: Path) -> None:
    print("shipped grids, serial against --workers 2 (best of 2, interleaved):")
    for name in GRIDS:
        times = best_interleaved(
            {
                w: ([*KERNELNET, name, "--quiet", "--runs-dir", str(runs), "--workers", w], None)
                for w in ("1", "2")
            },
            repeats=2,
        )
        ratio = times["2"] / times["1"]
        print(f"  {name:<13} serial {times['1']:6.2f} s, 2 workers {times['2']:6.2f} s "
              f"= {ratio:.2f}x")  # fmt: skip
        record(f"{name}: --workers 2 / serial", ratio, "<= 1", ratio <= 1.0)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        runs = Path(scratch)
        startup()
        end_to_end(runs)
        under_load()
        workers(runs)
    print("\ngoal summary (ratios measured in this run):")
    for what, ratio, goal, met in rows:
        print(f"  {what:<42} {ratio:5.2f}x  goal {goal:<5} {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
