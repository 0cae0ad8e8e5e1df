"""Grading speed, measured side by side in this one run:

1. one correct hw3 submission (the reference solution the tests use), every test hidden
   ones included, MNIST training among them, through the command line (goal: under 15 s);
2. the sandbox's overhead per test: a trivial function called through the sandbox against
   the same function called in this process (the floor), best of several.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kernelnet.grading.sandbox import Limits, run_function

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "grading" / "submissions" / "reference"
KERNELNET = [str(Path(sys.executable).with_name("kernelnet"))]


def grade_reference() -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [*KERNELNET, "grade", "hw3", str(REFERENCE), "--all"], capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the reference submission did not pass:\n{done.stdout}\n{done.stderr}")
    return seconds


def sandbox_overhead(repeats: int = 5) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "trivial.py").write_text("def f(x):\n    return x + 1\n", encoding="utf-8")
        sandboxed = min(
            _timed(lambda: run_function(Path(folder), "trivial", "f", {"x": 1.0}, Limits()))
            for _ in range(repeats)
        )

    def f(x):
        return x + 1

    in_process = min(_timed(lambda: f(1.0)) for _ in range(1000))
    return sandboxed, in_process


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    if not REFERENCE.is_dir():
        sys.exit(f"{REFERENCE}: the reference submission is missing")
    seconds = grade_reference()
    sandboxed, in_process = sandbox_overhead()
    goal = "met" if seconds < 15 else "MISSED"
    print("| measure | time | goal |")
    print("| :--- | ---: | :--- |")
    print(f"| grade one correct hw3 submission (--all) | {seconds:.1f} s | < 15 s ({goal}) |")
    print(
        f"| sandbox per test (trivial function) | {sandboxed * 1e3:.0f} ms | "
        f"{sandboxed / in_process:,.0f}x the in-process call ({in_process * 1e6:.1f} µs) |"
    )


if __name__ == "__main__":
    main()
