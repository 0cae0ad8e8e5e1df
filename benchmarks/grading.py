"""Grading speed, measured side by side in this one run:

1. one correct hw3 submission (the reference solution the tests use), every test hidden
   ones included, MNIST training among them, through the command line (goal: under 15 s);
2. the sandbox's overhead per test: a trivial function called through :func:`run_function`
   (a new interpreter per call), through :meth:`Session.call` (a fork server per
   submission; goal: a few tens of ms) and in this process (the floor), median of several,
   with hw3's allowed imports (NumPy, matplotlib, cvxopt) and its data files.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kernelnet.grading.sandbox import Limits, Session, run_function

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "grading" / "submissions" / "reference"
KERNELNET = [str(Path(sys.executable).with_name("kernelnet"))]
ALLOWED = ("numpy", "matplotlib", "cvxopt")
TRIVIAL = "import numpy as np\nimport cvxopt\n\ndef f(x):\n    return x + 1\n"


def grade_reference() -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [*KERNELNET, "grade", "hw3", str(REFERENCE), "--all"], capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the reference submission did not pass:\n{done.stdout}\n{done.stderr}")
    return seconds


def sandbox_overhead(repeats: int = 5, session_calls: int = 40) -> dict[str, float]:
    """Median seconds per call of each way (the session's first call, which starts the
    server, is timed apart)."""
    from kernelnet.grading.spec import load_assignment, write_data

    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as data:
        Path(folder, "trivial.py").write_text(TRIVIAL, encoding="utf-8")
        data_files = write_data(load_assignment("hw3"), Path(data), handout_only=True)

        def once() -> None:
            run_function(Path(folder), "trivial", "f", {"x": 1.0}, Limits(), data_files, ALLOWED)

        per_process = statistics.median(_timed(once) for _ in range(repeats))
        with Session(Path(folder), data_files, ALLOWED) as session:
            first = _timed(lambda: session.call("trivial", "f", {"x": 1.0}))
            served = statistics.median(
                _timed(lambda: session.call("trivial", "f", {"x": 1.0}))
                for _ in range(session_calls)
            )

    def f(x):
        return x + 1

    in_process = statistics.median(_timed(lambda: f(1.0)) for _ in range(1000))
    return {"run_function": per_process, "session": served, "first": first, "floor": in_process}


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    if not REFERENCE.is_dir():
        sys.exit(f"{REFERENCE}: the reference submission is missing")
    seconds = grade_reference()
    cost = sandbox_overhead()
    goal = "met" if seconds < 15 else "MISSED"
    floor = cost["floor"]
    print("| measure | time | against |")
    print("| :--- | ---: | :--- |")
    print(f"| grade one correct hw3 submission (--all) | {seconds:.1f} s | < 15 s ({goal}) |")
    print(
        f"| run_function per test (trivial function) | {cost['run_function'] * 1e3:.0f} ms | "
        f"{cost['run_function'] / floor:,.0f}x the in-process call ({floor * 1e6:.1f} µs) |"
    )
    print(
        f"| Session.call per test (trivial function) | {cost['session'] * 1e3:.0f} ms | "
        f"{cost['run_function'] / cost['session']:.1f}x faster than run_function; "
        f"{cost['session'] / floor:,.0f}x the in-process call |"
    )
    print(
        f"| Session start (first call: the server's imports) | {cost['first'] * 1e3:.0f} ms | "
        "once per submission |"
    )


if __name__ == "__main__":
    main()
