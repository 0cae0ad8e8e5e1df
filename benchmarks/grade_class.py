"""Grading a whole class, measured: 200 generated hw3 submissions (tests/grading/classroom.py:
references, untouched handouts, every non-hostile planted bug, copies, near copies, notebooks,
a third of them as .zip files) graded through the command line with two workers, every test
but the MNIST training one. Goal: 200 submissions in under 5 minutes.

Prints the submissions, the wall time, submissions per minute, seconds per test, and the
sandbox's cost per test (a trivial function through kernelnet.grading.sandbox, against the
same call in this process). The grades are checked against what the generator knows for
sure (the reference gets the maximum, a handout 0, each file's points where every one of its
test codes is known; each test's code in metrics.csv; every copy found beside its source):
a disagreement ends the benchmark with exit 1.

    python benchmarks/grade_class.py [--size 200] [--seed 0] [--workers 2]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.grading.classroom, from a checkout

from kernelnet.grading import sandbox  # noqa: E402
from kernelnet.grading.roster import submission_name  # noqa: E402
from kernelnet.grading.spec import load_assignment  # noqa: E402
from kernelnet.safe_read import read_text  # noqa: E402
from tests.grading.classroom import Student, same_code_groups, write_class  # noqa: E402

KERNELNET = str(Path(sys.executable).with_name("kernelnet"))
SKIP = ("mnist_two_layer_net",)
GOAL_SUBMISSIONS, GOAL_SECONDS = 200, 300.0
RUN_FILE_BYTES = 64 * 2**20


class Disagreement(Exception):
    """The grading run's results contradict what the generated class says they must be."""


def grade_help() -> str:
    done = subprocess.run([KERNELNET, "grade", "--help"], capture_output=True, text=True)
    return done.stdout


def notebooks_runnable() -> bool:
    try:
        from kernelnet.grading.notebooks import notebooks_available
    except ImportError:
        return False
    return bool(notebooks_available())


def grade_class(folder: Path, runs: Path, workers: int) -> tuple[float, Path]:
    """Seconds of ``kernelnet grade hw3 FOLDER`` and the run folder (its last line)."""
    command = [
        KERNELNET, "grade", "hw3", str(folder), "--workers", str(workers),
        "--runs-dir", str(runs), "--quiet", "--set", f"skip=[{','.join(SKIP)}]",
    ]  # fmt: skip
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        sys.exit(
            f"grading the class failed (exit {done.returncode}): {' '.join(command)}\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )
    return seconds, Path(lines[-1])


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read_text(path, RUN_FILE_BYTES))))


def check(run: Path, students: list[Student]) -> list[str]:
    """What was checked; Disagreement at the first contradiction."""
    spec = load_assignment("hw3")
    chosen = [(file.name, case) for file, fn in spec.functions() for case in fn.cases
              if case.name not in SKIP and fn.name not in SKIP]  # fmt: skip
    max_score = sum(case.points for _, case in chosen)
    per_file: dict[str, list] = {}
    for file, case in chosen:
        per_file.setdefault(file, []).append(case)
    by_name = {s.name: s for s in students}

    grades = {row["submission"]: row for row in read_csv(run / "grades.csv")}
    if sorted(grades) != sorted(by_name):
        missing, extra = set(by_name) - set(grades), set(grades) - set(by_name)
        raise Disagreement(f"grades.csv: missing {sorted(missing)}, unexpected {sorted(extra)}")
    files_checked = 0
    for name, row in grades.items():
        student = by_name[name]
        if row["status"] != "graded":
            raise Disagreement(f"{name} ({student.kind}): {row['status']}: {row['error']}")
        if float(row["max_score"]) != max_score:
            raise Disagreement(f"{name}: max_score {row['max_score']}, expected {max_score:g}")
        if student.kind == "reference" and float(row["score"]) != max_score:
            raise Disagreement(f"{name} (the reference): {row['score']} of {max_score:g}")
        if student.kind == "handout" and float(row["score"]) != 0:
            raise Disagreement(f"{name} (an untouched handout): {row['score']} points, not 0")
        for file, cases in per_file.items():
            if all(case.name in student.expected for case in cases):
                points = sum(c.points for c in cases if student.expected[c.name] == 0)
                if float(row[f"points {file}"]) != points:
                    raise Disagreement(
                        f"{name} ({student.kind}): {row[f'points {file}']} points for {file}, "
                        f"expected {points:g}"
                    )
                files_checked += 1

    codes_checked = 0
    for row in read_csv(run / "metrics.csv"):
        name = submission_name(row["submission"])
        expected = by_name[name].expected.get(row["test"])
        if expected is not None:
            if int(row["code"]) != expected:
                raise Disagreement(
                    f"{name} ({by_name[name].kind}): {row['test']} got code {row['code']}, "
                    f"expected {expected}: {row['reason']}"
                )
            codes_checked += 1

    summary = json.loads(read_text(run / "summary.json", RUN_FILE_BYTES))
    found = [set(group) for group in summary.get("duplicates", [])]
    copies = [s for s in students if s.kind.startswith(("copy:", "near-copy:"))]
    for student in copies:
        source = student.kind.partition(":")[2]
        if not any({student.name, source} <= group for group in found):
            raise Disagreement(f"{student.name} ({student.kind}) not found beside {source}")
    truth = {frozenset(group) for group in same_code_groups(students)}
    merged = sum(frozenset(group) not in truth for group in found)
    return [
        f"{len(grades)} rows of grades.csv (reference {max_score:g}, handouts 0; "
        f"{files_checked} file totals)",
        f"{codes_checked} test codes of metrics.csv",
        f"{len(copies)} copies found beside their sources; {len(found)} duplicate groups "
        f"({merged} not exactly a group of the generator's)",
    ]


def sandbox_overhead(repeats: int = 20) -> dict[str, float]:
    """Seconds per call of ``f(x) = x + 1``: through a Session (its first call starts the
    fork server), through run_function (a new interpreter), and in this process."""
    timings: dict[str, float] = {}
    limits = sandbox.Limits()
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "trivial.py").write_text("def f(x):\n    return x + 1\n", encoding="utf-8")
        if hasattr(sandbox, "Session"):
            with sandbox.Session(Path(folder), (), ("numpy",)) as session:
                timings["session first call"] = timed(
                    lambda: session.call("trivial", "f", {"x": 1.0}, limits)
                )
                timings["session"] = min(
                    timed(lambda: session.call("trivial", "f", {"x": 1.0}, limits))
                    for _ in range(repeats)
                )
        timings["run_function"] = min(
            timed(lambda: sandbox.run_function(Path(folder), "trivial", "f", {"x": 1.0}, limits))
            for _ in range(3)
        )

    def f(x):
        return x + 1

    timings["in process"] = min(timed(lambda: f(1.0)) for _ in range(1000))
    return timings


def timed(call) -> float:
    started = time.perf_counter()
    outcome = call()
    seconds = time.perf_counter() - started
    status = getattr(outcome, "status", sandbox.Status.OK)
    if status is not sandbox.Status.OK:
        sys.exit(f"the trivial function did not run in the sandbox: {outcome}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=GOAL_SUBMISSIONS, help="submissions")
    parser.add_argument("--seed", type=int, default=0, help="the class generator's seed")
    parser.add_argument("--workers", type=int, default=2, help="grading worker processes")
    args = parser.parse_args()
    if args.size < 7:
        parser.error("--size: at least 7 (one submission of each kind)")
    if "--workers" not in grade_help():
        sys.exit("kernelnet grade has no --workers here: it cannot grade a class yet")

    scratch = Path(tempfile.mkdtemp(prefix="kernelnet-bench-class-"))
    folder, runs = scratch / "class", scratch / "runs"
    notebooks = notebooks_runnable()
    started = time.perf_counter()
    students = write_class(folder, args.size, seed=args.seed, notebooks=notebooks)
    generated = time.perf_counter() - started
    seconds, run = grade_class(folder, runs, args.workers)
    try:
        checked = check(run, students)
    except Disagreement as exc:  # the class and the run are kept, to look at
        sys.exit(f"the grades disagree with the class's known codes: {exc} (run: {run})")
    shutil.rmtree(scratch, ignore_errors=True)
    timings = sandbox_overhead()

    spec = load_assignment("hw3")
    tests = sum(c.name not in SKIP for _, fn in spec.functions() for c in fn.cases)
    books = "graded" if notebooks else "left out (kernelnet[notebooks] is not installed)"
    print(
        f"hw3 class: {args.size} submissions (generated in {generated:.1f} s), {tests} tests "
        f"each (all but {', '.join(SKIP)}), --workers {args.workers}, notebooks {books}"
    )
    print(table(results(args.size, seconds, tests, args.workers, timings)))
    for line in checked:
        print(f"checked: {line}")


def results(size: int, seconds: float, tests: int, workers: int, timings: dict[str, float]):
    """``(measure, value, goal)`` rows."""
    per_minute = size / seconds * 60
    goal_rate = GOAL_SUBMISSIONS / GOAL_SECONDS * 60
    met = "met" if per_minute >= goal_rate else "MISSED"
    if size != GOAL_SUBMISSIONS:
        met += f", projected from {size}"
    goal = f">= {goal_rate:.0f}: {GOAL_SUBMISSIONS} in < {GOAL_SECONDS / 60:.0f} min ({met})"
    in_process = timings["in process"]
    sandboxed = timings.get("session", timings["run_function"])
    rows = [
        ("submissions", f"{size}", ""),
        ("wall time", f"{seconds:.1f} s", ""),
        ("submissions per minute", f"{per_minute:.1f}", goal),
        ("seconds per test (wall / tests)", f"{seconds / (size * tests) * 1e3:.0f} ms", ""),
        ("seconds per test per worker", f"{seconds * workers / (size * tests) * 1e3:.0f} ms", ""),
    ]
    labels = {
        "session": "sandbox per test, one Session",
        "session first call": "sandbox's first call (starts the fork server)",
        "run_function": "sandbox per test, run_function (a new interpreter)",
    }
    for key, label in labels.items():
        if key in timings:
            ratio = f"{timings[key] / in_process:,.0f}x the in-process call"
            rows.append((label, f"{timings[key] * 1e3:.1f} ms", ratio))
    rows.append(("in-process call", f"{in_process * 1e6:.2f} µs", ""))
    rows.append(("sandbox overhead per test", f"{(sandboxed - in_process) * 1e3:.1f} ms", ""))
    return rows


def table(rows) -> str:
    lines = ["| measure | value | goal |", "| :--- | ---: | :--- |"]
    return "\n".join(lines + [f"| {m} | {v} | {g} |" for m, v, g in rows])


if __name__ == "__main__":
    main()
