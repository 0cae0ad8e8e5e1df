"""Run one untrusted student function in a limited child process; outputs come back as data.

The parent side of the sandbox (the child side is :mod:`kernelnet.grading.child`):

- a fresh folder (mode 0700) holds copies of the submission's top-level ``.py`` files, the
  data files under ``data/``, ``inputs.npz`` and ``job.json``, and nothing else; the child's
  stdout/stderr go to files in a second folder the child cannot reach; both are removed after;
- the child gets a minimal environment (no inherited variable, so no secret), its own session
  (process group), and, when kernelnet runs as root, a fresh uid/gid of its own with no
  groups and a network namespace with only a loopback that is down;
- rlimits (address space, CPU time, file size, open files, processes, no core) are set in the
  child after it has loaded the allowed libraries and before the student's module is imported;
- the wall clock is kept here: past it the whole process group is killed, and afterwards every
  process of the sandbox uid (children that escaped the group by ``setsid`` too) is killed and
  files it left in the world-writable folders (/tmp, /var/tmp, /dev/shm) are removed. Without
  root the group and the session are killed, but a process that called ``setsid`` escapes:
  :attr:`Isolation.caveats` says so;
- everything the child wrote is read with bounds (``safe_read``) and validated: a missing or
  damaged ``result.json`` is a crash, never an exception here; nothing is unpickled.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import secrets
import select
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernelnet import safe_read

KiB, MiB = 2**10, 2**20
CHILD = Path(__file__).with_name("child.py")
MAX_SOURCE_BYTES = 2 * MiB  # one submitted .py file
RESULT_JSON_BYTES = 1 * MiB
# Unused by any account: a fresh uid per run, so that "every process of the uid" and "every
# file of the uid" are this run's and nothing else's, and RLIMIT_NPROC counts only them.
UID_RANGE = (2_000_000_000, 2_100_000_000)
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")
# Submodules an allowed package imports lazily, loaded before the uid drop: after it, an
# interpreter installed in a folder only root may read (a venv under /root, a 0700 temporary
# folder) can import nothing more.
PRELOADS = {
    "numpy": ("numpy.random", "numpy.fft", "numpy.linalg", "numpy.polynomial"),
    "cvxopt": (
        "cvxopt.base", "cvxopt.blas", "cvxopt.lapack", "cvxopt.misc", "cvxopt.misc_solvers",
        "cvxopt.coneprog", "cvxopt.cvxprog", "cvxopt.solvers", "cvxopt.printing",
    ),
}  # fmt: skip


class Status(str, enum.Enum):
    """How a call ended. A grader maps these to the assignment's codes."""

    OK = "ok"
    EXCEPTION = "exception"  # the student's code raised (type, message, own traceback)
    NOT_IMPLEMENTED = "not_implemented"  # NotImplementedError: code 40
    TIMEOUT = "timeout"  # wall clock: the process group was killed
    CPU_LIMIT = "cpu_limit"
    MEMORY_LIMIT = "memory_limit"  # MemoryError under the address-space limit
    OUTPUT_TOO_LARGE = "output_too_large"  # stdout or stderr reached the file-size limit
    FORBIDDEN = "forbidden"  # an import the assignment does not allow
    CRASHED = "crashed"  # ended without a result: os._exit, a signal, a damaged result
    BAD_OUTPUT = "bad_output"  # returned something that is not plain numeric data
    SANDBOX_ERROR = "sandbox_error"  # the sandbox itself failed (not the student's fault)


_CHILD_STATUSES = {
    "ok",
    "exception",
    "not_implemented",
    "memory_limit",
    "forbidden",
    "bad_output",
    "sandbox_error",
}


@dataclass(frozen=True)
class Limits:
    """Per-call limits. ``memory_bytes`` bounds the whole address space of the child (the
    interpreter and NumPy take ~150 MB of it before the student's code runs)."""

    wall_seconds: float = 30.0
    cpu_seconds: int = 30
    memory_bytes: int = 2 * 2**30
    file_bytes: int = 64 * MiB  # any one file the child writes, stdout and stderr included
    processes: int = 32  # RLIMIT_NPROC of the sandbox uid (binds only when run as root)
    open_files: int = 64
    output_bytes: int = 64 * KiB  # of stdout and of stderr kept in the Outcome


@dataclass(frozen=True)
class Isolation:
    """What this call's sandbox could and could not enforce."""

    uid: int | None  # the uid the student's code ran as; None: kernelnet's own
    network_isolated: bool
    caveats: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """The result of one call.

    ``outputs``: the returned values as arrays, by name: ``"0"`` for a single value
    (``returned == "value"``), ``"0", "1", ...`` for a tuple, ``"1/W1"`` for a dict inside a
    tuple, the keys for a dict. ``inputs_after``: each array input as the student's code left
    it (compare with what was sent to detect an input changed in place).
    """

    status: Status
    message: str  # one line
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    returned: str | None = None  # value, tuple, dict, none
    inputs_after: dict[str, np.ndarray] = field(default_factory=dict)
    exception_type: str | None = None
    traceback: tuple[str, ...] = ()  # the student's own frames only
    forbidden: tuple[str, ...] = ()  # imports refused (even if the student caught them)
    stdout: str = ""
    stderr: str = ""
    stdout_cut: bool = False  # more was printed than Limits.output_bytes
    stderr_cut: bool = False
    seconds: float = 0.0
    isolation: Isolation = Isolation(None, False)
    leftover_processes: int = 0  # processes of the sandbox that could not be killed


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


# --- processes ------------------------------------------------------------------------


def _proc_status(pid: str) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as handle:
            return dict(line.split(":\t", 1) for line in handle if ":\t" in line)
    except OSError:  # gone meanwhile
        return {}


def processes_of_uid(uid: int) -> list[int]:
    """Live (not zombie) processes whose real uid is ``uid``, from /proc."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            status = _proc_status(entry.name)
            if status.get("Uid", "").split()[:1] == [str(uid)] and not status.get(
                "State", ""
            ).startswith("Z"):
                found.append(int(entry.name))
    return found


def processes_of_session(sid: int) -> list[int]:
    """Live processes of session ``sid`` (field 6 of /proc/PID/stat)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8", errors="replace") as handle:
                fields = handle.read().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 3 and fields[3] == str(sid) and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _kill_uid_once(uid: int) -> None:
    """``kill(-1, SIGKILL)`` from a child that has become ``uid``: every process of the uid
    dies in one call, however fast a fork bomb forks. The helper checks its ids before
    signalling: as root, kill(-1) would end the machine."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked helper
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            if os.getresuid() == (uid, uid, uid):
                os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _kill_all(uid: int | None, sid: int) -> int:
    """Kill what is left of a call; the number of processes that survived."""
    for _ in range(50):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(sid, signal.SIGKILL)
        left = processes_of_uid(uid) if uid is not None else processes_of_session(sid)
        if not left:
            return 0
        if uid is not None:
            _kill_uid_once(uid)
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    return len(processes_of_uid(uid) if uid is not None else processes_of_session(sid))


def _fresh_uid() -> int:
    while True:
        uid = UID_RANGE[0] + secrets.randbelow(UID_RANGE[1] - UID_RANGE[0])
        if not processes_of_uid(uid):
            return uid


def _remove_files_of(uid: int, workdir: Path) -> None:
    """Remove what the sandbox uid left in the world-writable folders (the uid is fresh, so
    everything it owns there is this call's), except its working folder, read after."""
    for folder in WORLD_WRITABLE:
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    if info.st_uid != uid or os.path.samefile(entry.path, workdir):
                        continue
                    if stat.S_ISDIR(info.st_mode):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)


def _wait(process, seconds: float) -> bool:
    """Wait for ``process`` to end without reaping it (its pid and group stay reserved for the
    kill that follows); False on timeout."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # no pidfd: reaping wait, the group kill is best effort
        try:
            process.wait(seconds)
            return True
        except Exception:  # subprocess.TimeoutExpired
            return False
    try:
        return bool(select.select([pidfd], [], [], seconds)[0])
    finally:
        os.close(pidfd)


# --- files ------------------------------------------------------------------------------


def _copy_submission(submission_dir: Path, workdir: Path) -> list[str]:
    """Copy the top-level .py files (regular, bounded, not links out of the folder); their
    module names."""
    names = []
    for path in sorted(submission_dir.glob("*.py")):
        source = safe_read.read_bytes(path, MAX_SOURCE_BYTES, root=submission_dir)
        (workdir / path.name).write_bytes(source)
        names.append(path.stem)
    return names


def _copy_data(data_files: Iterable[Path], workdir: Path, max_bytes: int) -> None:
    data = workdir / "data"
    data.mkdir()
    for path in data_files:
        with safe_read.open_regular(path, max_bytes) as (source, _):
            with open(data / Path(path).name, "wb") as target:
                shutil.copyfileobj(source, target)


def _write_inputs(inputs: Mapping[str, object], workdir: Path) -> list[str]:
    """``inputs.npz`` (plain numeric arrays; no pickle); the names of the Python scalars."""
    arrays, scalars = {}, []
    for name, value in inputs.items():
        if not name.isidentifier():
            raise ValueError(f"input {name!r}: not a Python argument name")
        if isinstance(value, (bool, int, float)):
            scalars.append(name)
        array = np.asarray(value)
        if array.dtype.kind not in "biuf" and not isinstance(value, complex):
            raise ValueError(f"input {name!r}: dtype {array.dtype}, not plain numbers")
        arrays[name] = array
    np.savez(workdir / "inputs.npz", **arrays)
    return scalars


def _read_capped(path: Path, cap: int) -> tuple[str, bool, int]:
    """(the first ``cap`` bytes as text, whether more was there, the file's size)."""
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as handle:
            data = handle.read(cap)
    except OSError:
        return "", False, 0
    return data.decode("utf-8", errors="replace"), size > cap, size


def _minimal_env(workdir: Path) -> dict[str, str]:
    threads = "1"  # one BLAS thread: limits are per process, and timings comparable
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": threads,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(workdir / ".matplotlib"),
    }


# --- the result ---------------------------------------------------------------------------


def _text(value: object, limit: int = 4000) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _read_result(workdir: Path) -> dict | None:
    """``result.json`` if present and well formed, else None (the parent then says crashed)."""
    try:
        result = safe_read.read_json(workdir / "result.json", RESULT_JSON_BYTES, root=workdir)
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or result.get("status") not in _CHILD_STATUSES:
        return None
    return result


def _read_outputs(workdir: Path, result: dict, max_bytes: int):
    """``(outputs, inputs_after)`` from outputs.npz, checked against result.json's names;
    ValueError or OSError if it is damaged or does not match."""
    arrays = safe_read.read_npz(workdir / "outputs.npz", max_bytes, root=workdir)
    outputs = {k[4:]: v for k, v in arrays.items() if k.startswith("out/")}
    inputs_after = {k[3:]: v for k, v in arrays.items() if k.startswith("in/")}
    names = result.get("outputs")
    if not isinstance(names, list) or list(outputs) != names:
        raise ValueError("outputs.npz does not hold the outputs result.json names")
    if len(outputs) + len(inputs_after) != len(arrays):
        raise ValueError("outputs.npz holds arrays that are neither outputs nor inputs")
    return outputs, inputs_after


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def run_function(
    submission_dir: Path,
    module: str,
    function: str,
    inputs: Mapping[str, object],
    limits: Limits = Limits(),
    data_files: Iterable[Path] = (),
    allowed_imports: Iterable[str] = ("numpy", "math"),
    preload: Iterable[str] = (),
) -> Outcome:
    """Call ``module.function(**inputs)`` from the submission in a sandboxed child.

    ``inputs``: argument name -> ndarray or Python scalar (plain numbers only).
    ``allowed_imports``: top-level modules the student's files may import (the submission's
    own modules always may); those the files import, ``preload`` and NumPy's subpackages are
    imported before the student's code runs. Raises ValueError for a bad call (a name that is
    not an identifier, inputs that are not numbers) and OSError for an unreadable
    submission; everything the student's code does ends in the Outcome.
    """
    if not module.isidentifier() or not function.isidentifier():
        raise ValueError(f"module {module!r} and function {function!r} must be Python names")
    allowed = sorted(set(allowed_imports))
    preload = list(preload) + [name for package in allowed for name in PRELOADS.get(package, ())]
    root = _is_root()
    uid = _fresh_uid() if root else None
    caveats = []
    if uid is None:
        caveats += [
            "not run as root: the student's code runs as kernelnet's own user",
            "network not isolated (needs root for a network namespace)",
            "process count not limited (RLIMIT_NPROC counts all of this user's processes)",
            "a process that calls setsid() escapes the cleanup",
        ]
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="kernelnet-sandbox-"))
    logs = Path(tempfile.mkdtemp(prefix="kernelnet-sandbox-logs-"))  # 0700: child can't reach
    try:
        own = _copy_submission(Path(submission_dir), workdir)
        _copy_data(data_files, workdir, limits.file_bytes)
        scalars = _write_inputs(inputs, workdir)
        job = {
            "module": module,
            "function": function,
            "input_names": list(inputs),
            "scalar_inputs": scalars,
            "allowed_imports": allowed,
            "own_modules": own,
            "preload": preload,
            "isolate_network": root and sys.platform.startswith("linux"),
            "uid": uid,
            "gid": uid,
            "limits": {
                "cpu_seconds": limits.cpu_seconds,
                "memory_bytes": limits.memory_bytes,
                "file_bytes": limits.file_bytes,
                "processes": limits.processes,
                "open_files": limits.open_files,
            },
        }
        (workdir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        if uid is not None:
            os.chown(workdir, uid, uid)
        return _supervise(workdir, logs, job, limits, started, caveats)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)


def _supervise(workdir, logs, job, limits, started, caveats) -> Outcome:
    import subprocess

    uid = job["uid"]
    with open(logs / "stdout.txt", "wb") as out, open(logs / "stderr.txt", "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-I", "-B", str(CHILD)],
            cwd=workdir,
            env=_minimal_env(workdir),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
        )
    ended = _wait(process, limits.wall_seconds)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # the group, while its leader's pid is held
    usage = None
    if process.returncode is None:
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    leftover = _kill_all(uid, process.pid)
    if uid is not None:
        _remove_files_of(uid, workdir)
    seconds = time.monotonic() - started

    stdout, stdout_cut, stdout_size = _read_capped(logs / "stdout.txt", limits.output_bytes)
    stderr, stderr_cut, stderr_size = _read_capped(logs / "stderr.txt", limits.output_bytes)
    result = _read_result(workdir) if ended else None
    network = bool(result and result.get("network_isolated") is True)
    if uid is not None and not network:
        caveats = caveats + ["network not isolated (the network namespace was not created)"]
    common = dict(
        stdout=stdout,
        stderr=stderr,
        stdout_cut=stdout_cut,
        stderr_cut=stderr_cut,
        seconds=seconds,
        isolation=Isolation(uid, network, tuple(caveats)),
        leftover_processes=leftover,
    )
    if max(stdout_size, stderr_size) >= limits.file_bytes:
        which = "stdout" if stdout_size >= limits.file_bytes else "stderr"
        return Outcome(
            Status.OUTPUT_TOO_LARGE,
            f"printed {limits.file_bytes:,} bytes or more to {which} (the file-size limit); "
            f"the first {limits.output_bytes:,} are kept",
            **common,
        )
    if not ended:
        return Outcome(
            Status.TIMEOUT, f"still running after {limits.wall_seconds:g} s: killed", **common
        )
    code = process.returncode
    cpu_used = usage.ru_utime + usage.ru_stime if usage is not None else 0.0
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and cpu_used >= limits.cpu_seconds):
        return Outcome(
            Status.CPU_LIMIT, f"used more than {limits.cpu_seconds} s of CPU time", **common
        )
    if code != 0 or result is None:
        how = (
            f"killed by {_signal_name(-code)}"
            if code < 0
            else f"exited with code {code}"
            if code != 0
            else "ended without writing a valid result"
        )
        return Outcome(Status.CRASHED, f"the student's code {how} before returning", **common)
    return _from_result(workdir, result, limits, common)


def _from_result(workdir: Path, result: dict, limits: Limits, common: dict) -> Outcome:
    status = Status(result["status"])
    traceback = result.get("traceback")
    lines = tuple(_text(x, 500) for x in traceback[:200]) if isinstance(traceback, list) else ()
    forbidden = result.get("forbidden")
    refused = tuple(_text(x, 100) for x in forbidden[:20]) if isinstance(forbidden, list) else ()
    kind, message = _text(result.get("exception_type"), 200), _text(result.get("message"))
    details = dict(exception_type=kind or None, traceback=lines, forbidden=refused, **common)
    if status is not Status.OK:
        phase = _text(result.get("phase"), 20)
        where = {"import": " while importing the module", "save": " in its return value"}
        text = f"{kind}: {message}" if message else kind
        return Outcome(status, _one_line(f"{text}{where.get(phase, '')}"), **details)
    try:
        outputs, inputs_after = _read_outputs(workdir, result, limits.file_bytes * 2)
    except (OSError, ValueError) as exc:
        return Outcome(Status.CRASHED, _one_line(f"damaged outputs: {exc}"), **details)
    returned = result.get("returned")
    return Outcome(
        Status.OK,
        "returned",
        outputs=outputs,
        returned=returned if returned in ("value", "tuple", "dict", "none") else None,
        inputs_after=inputs_after,
        **details,
    )


def capabilities() -> Isolation:
    """What the sandbox enforces on this machine, found by running a trivial call."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "probe.py").write_text("def probe():\n    return 0\n", encoding="utf-8")
        return run_function(Path(folder), "probe", "probe", {}, Limits(wall_seconds=30)).isolation
