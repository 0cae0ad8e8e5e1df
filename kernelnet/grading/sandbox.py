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

Two ways in, one outcome: :func:`run_function` starts a new interpreter per call (~0.3 s with
NumPy and cvxopt to import); :class:`Session` keeps one fork server per submission that has
done those imports and forks a fresh child per call (tens of ms), the child then doing all of
the above exactly as the one-call child does.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
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

logger = logging.getLogger(__name__)
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


def _uid_and_state(pid: str) -> tuple[bytes, bytes]:
    """(real uid, state letter) of a process from /proc/PID/status, as bytes; empty if gone.
    Raw reads and a bytes scan: a call scans every process of the machine twice."""
    try:
        fd = os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # gone meanwhile
        return b"", b""
    try:
        data = os.read(fd, 4096)  # Uid is the 9th line; Name is escaped, one line
    except OSError:
        return b"", b""
    finally:
        os.close(fd)
    uid = state = b""
    for line in data.split(b"\n", 12):
        if line.startswith(b"State:"):
            state = line[6:].strip()[:1]
        elif line.startswith(b"Uid:"):
            uid = line[4:].split(None, 1)[0] if line[4:].split() else b""
            break
    return uid, state


def processes_of_uid(uid: int) -> list[int]:
    """Live (not zombie) processes whose real uid is ``uid``, from /proc."""
    wanted = str(uid).encode()
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            real, state = _uid_and_state(entry.name)
            if real == wanted and state != b"Z":
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


def _kill_all(uid: int | None, sid: int | None) -> int:
    """Kill what is left of a call once its own process (``sid``, the leader of its session)
    has been killed and reaped; the number of processes that survived.

    As root every process of the call runs as its fresh ``uid``: those are killed, and the
    session is not used, since its id is free again and may already name a new session of
    someone else's (a signal to a reused id would kill an unrelated process, another call's
    or a Dask scheduler). Without a uid, the session's processes are killed by its id,
    unless a live process now holds that id (the call's own leader is gone, so that is a new
    process and the id a new session's: its members cannot be told from the call's, and
    none is signalled). ``sid`` None and no uid: nothing is known to kill."""
    if sid is not None and sid <= 1:
        raise ValueError(f"session {sid}: not a call's")  # killpg(0) would be our own group
    if uid is not None:
        sid = None
    elif sid is None or not _ended(sid):
        return 0
    for _ in range(50):
        left = processes_of_uid(uid) if uid is not None else processes_of_session(sid)
        if not left:
            return 0
        if uid is None and not _ended(sid):  # the id was taken meanwhile
            return len(left)
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


def _read_sources(submission_dir: Path) -> dict[str, bytes]:
    """The top-level .py files (regular, bounded, not links out of the folder) by file name."""
    return {
        path.name: safe_read.read_bytes(path, MAX_SOURCE_BYTES, root=submission_dir)
        for path in sorted(submission_dir.glob("*.py"))
    }


def _write_sources(sources: Mapping[str, bytes], folder: Path) -> list[str]:
    """Copies of the submission's files in ``folder``; their module names."""
    for name, source in sources.items():
        (folder / name).write_bytes(source)
    return [Path(name).stem for name in sources]


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


def _caveats(uid: int | None) -> list[str]:
    if uid is not None:
        return []
    return [
        "not run as root: the student's code runs as kernelnet's own user",
        "network not isolated (needs root for a network namespace)",
        "process count not limited (RLIMIT_NPROC counts all of this user's processes)",
        "a process that calls setsid() escapes the cleanup",
    ]


def _check_names(module: str, function: str) -> None:
    if not module.isidentifier() or not function.isidentifier():
        raise ValueError(f"module {module!r} and function {function!r} must be Python names")


def _preloads(allowed: list[str], preload: Iterable[str]) -> list[str]:
    return list(preload) + [name for package in allowed for name in PRELOADS.get(package, ())]


def _job(call: tuple[str, str], inputs, scalars, allowed, own, preload, uid, limits) -> dict:
    """``job.json``: everything the child needs to know about one call."""
    return {
        "module": call[0],
        "function": call[1],
        "input_names": list(inputs),
        "scalar_inputs": scalars,
        "allowed_imports": allowed,
        "own_modules": own,
        "preload": preload,
        "isolate_network": uid is not None and sys.platform.startswith("linux"),
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

    A new interpreter per call (~0.3 s with NumPy and cvxopt to import): for many calls on
    one submission use :class:`Session`, which gives the same outcomes in a few ms each.
    """
    _check_names(module, function)
    allowed = sorted(set(allowed_imports))
    preload = _preloads(allowed, preload)
    uid = _fresh_uid() if _is_root() else None
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="kernelnet-sandbox-"))
    logs = Path(tempfile.mkdtemp(prefix="kernelnet-sandbox-logs-"))  # 0700: child can't reach
    try:
        sources = _read_sources(Path(submission_dir))
        _copy_data(data_files, workdir, limits.file_bytes)
        return _prepare_and_run(
            workdir, logs, sources, (module, function), inputs, allowed, preload, uid, limits,
            started, _launch,
        )  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)


def _prepare_and_run(
    workdir, logs, sources, call, inputs, allowed, preload, uid, limits, started, launch
) -> Outcome:
    """A call's folder (its data already in ``workdir/data``) filled with the submission's
    sources, the inputs and ``job.json``, handed to the sandbox uid, then run and judged."""
    own = _write_sources(sources, workdir)
    scalars = _write_inputs(inputs, workdir)
    job = _job(call, inputs, scalars, allowed, own, preload, uid, limits)
    (workdir / "job.json").write_text(json.dumps(job), encoding="utf-8")
    if uid is not None:
        os.chown(workdir, uid, uid)
    return _supervise(workdir, logs, job, limits, started, _caveats(uid), launch)


def _launch(workdir: Path, logs: Path, job: dict, limits: Limits):
    """Run the one-call child (a new interpreter) and keep its wall clock:
    ``(ended in time, exit code, CPU seconds, pid)``, its group killed and it reaped."""
    import subprocess

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
    cpu = usage.ru_utime + usage.ru_stime if usage is not None else 0.0
    return ended, process.returncode, cpu, process.pid


def _supervise(workdir, logs, job, limits, started, caveats, launch) -> Outcome:
    """Run the call with ``launch`` (:func:`_launch`, or a session's fork server), kill what
    is left of it, and make the Outcome from what it left."""
    uid = job["uid"]
    try:
        ended, code, cpu_used, pid = launch(workdir, logs, job, limits)
    except _ServerLost as lost:  # the caller retries: first nothing of this call may be left
        _kill_all(uid, lost.pid)
        if uid is not None:
            _remove_files_of(uid, workdir)
        raise
    leftover = _kill_all(uid, pid)
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


# --- sessions: a fork server per submission ------------------------------------------------

SERVER_START_SECONDS = 60.0  # the server's imports (NumPy, cvxopt) on a loaded machine
SERVER_REPLY_SECONDS = 10.0  # a fork, or a reap of a process already killed
SERVER_LOSSES = 3  # servers a session may lose before it runs each call in a new interpreter
SERVER_MESSAGE_BYTES = 64 * KiB


class _ServerLost(Exception):
    """The fork server died, broke the protocol or did not answer in time. ``pid``: the
    call's process if one was forked (killed, with its uid or session, before the retry)."""

    def __init__(self, why: str, pid: int | None = None):
        super().__init__(why)
        self.pid = pid


class _ForkServer:
    """The parent's end of ``child.py --serve``: one interpreter that has imported what the
    session's calls need and forks a fresh child per call (see child.py for the protocol).

    It runs as kernelnet's own user in a session of its own, so the sandbox uid can neither
    signal nor trace it; it holds one end of a socket pair, which every call's child closes
    before anything else. The wall clock stays here: the server only forks and reaps."""

    def __init__(self, home: Path, session_job: dict, sources: Mapping[str, bytes]):
        import socket
        import subprocess

        home.mkdir(mode=0o700)
        _write_sources(sources, home)  # parsed (never run) by the server for its imports
        (home / "session.json").write_text(json.dumps(session_job), encoding="utf-8")
        mine, theirs = socket.socketpair()
        try:
            with open(home.with_name(home.name + "-stderr.txt"), "wb") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-I", "-B", str(CHILD), "--serve", str(theirs.fileno())],
                    cwd=home,
                    env=_minimal_env(home),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,
                    pass_fds=(theirs.fileno(),),
                )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        self.socket, self.pending = mine, b""
        try:
            ready = self._receive(SERVER_START_SECONDS)
            threads = ready.get("threads")
            if ready.get("ready") is not True or threads != 1:
                # Forking a process with other threads copies locks they may hold.
                raise _ServerLost(f"the fork server runs {threads!r} threads, not 1")
        except _ServerLost as lost:
            self.stop()
            said = _read_capped(home.with_name(home.name + "-stderr.txt"), 4 * KiB)[0]
            last = said.strip().splitlines()[-1:]  # its traceback's last line, if it had one
            raise _ServerLost(f"{lost}{': ' + last[0] if last else ''}") from None
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def _send(self, payload: dict, pid: int | None = None) -> None:
        try:
            self.socket.settimeout(SERVER_REPLY_SECONDS)
            self.socket.sendall((json.dumps(payload) + "\n").encode("utf-8"))
        except OSError as exc:
            raise _ServerLost(f"the fork server cannot be reached: {exc}", pid) from None

    def _receive(self, seconds: float, pid: int | None = None) -> dict:
        deadline = time.monotonic() + seconds
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or len(self.pending) > SERVER_MESSAGE_BYTES:
                raise _ServerLost(f"the fork server did not answer within {seconds:g} s", pid)
            try:
                self.socket.settimeout(left)
                chunk = self.socket.recv(SERVER_MESSAGE_BYTES)
            except TimeoutError:
                continue
            except OSError as exc:
                raise _ServerLost(f"the fork server cannot be reached: {exc}", pid) from None
            if not chunk:
                raise _ServerLost("the fork server ended", pid)
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            raise _ServerLost("the fork server sent a damaged message", pid)
        return message

    def launch(self, workdir: Path, logs: Path, job: dict, limits: Limits):
        """As :func:`_launch`, with a child forked by the server."""
        for name in ("stdout.txt", "stderr.txt"):
            (logs / name).write_bytes(b"")
        request = {
            "workdir": str(workdir),
            "stdout": str(logs / "stdout.txt"),
            "stderr": str(logs / "stderr.txt"),
            "env": _minimal_env(workdir),
            "uid": job["uid"],
        }
        self._send(request)
        pid = self._receive(SERVER_REPLY_SECONDS).get("pid")
        if type(pid) is not int or pid <= 1:
            raise _ServerLost(f"the fork server sent {pid!r} for a pid")
        try:
            ended = self._wait(pid, limits.wall_seconds)
        except _ServerLost:
            raise
        except BaseException:  # an interrupt mid-call: the server, told nothing, must go
            self.stop()  # (it kills the call when its socket closes)
            raise
        finally:
            for kill, target in ((os.kill, pid), (os.killpg, pid)):  # its pid is held
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(target, signal.SIGKILL)
        self._send({"reap": True}, pid)
        reply = self._receive(SERVER_REPLY_SECONDS, pid)
        status, cpu = reply.get("status"), reply.get("cpu")
        if type(status) is not int or not isinstance(cpu, (int, float)):
            raise _ServerLost("the fork server sent a damaged exit status", pid)
        try:
            code = os.waitstatus_to_exitcode(status)
        except ValueError:
            raise _ServerLost(f"the fork server sent {status} for a wait status", pid) from None
        return ended, code, float(cpu), pid

    def _wait(self, pid: int, seconds: float) -> bool:
        """Whether ``pid`` (the server's child, not ours: the server holds it until told to
        reap) ended within ``seconds``; _ServerLost if the server spoke or died meanwhile."""
        deadline = time.monotonic() + seconds
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = None  # polled through /proc instead
        try:
            while True:
                left = max(0.0, deadline - time.monotonic())
                if pidfd is None:
                    ready = select.select([self.socket], [], [], min(left, 0.005))[0]
                    ended = _ended(pid)
                else:
                    ready = select.select([self.socket, pidfd], [], [], left)[0]
                    ended = pidfd in ready
                if ended:
                    return True
                if ready:
                    raise _ServerLost("the fork server spoke or ended during a call", pid)
                if left <= 0:
                    return False
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def stop(self) -> None:
        """End the server (end of file on its socket; SIGKILL if it does not exit)."""
        with contextlib.suppress(OSError):
            self.socket.close()
        try:
            self.process.wait(2.0)
        except Exception:  # subprocess.TimeoutExpired: stopped or stuck
            with contextlib.suppress(OSError):
                self.process.kill()
            self.process.wait()


def _ended(pid: int) -> bool:
    """A process that has exited (a zombie) or is gone, from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            return handle.read().rpartition(")")[2].split()[:1] in (["Z"], ["X"])
    except OSError:
        return True


class Session:
    """Many calls into one submission at a few ms each, every call as isolated as
    :func:`run_function`'s: ``with Session(folder, data, allowed) as s: s.call(...)``.

    :meth:`call` gives the Outcome :func:`run_function` gives for the same arguments (same
    statuses, messages, limits, isolation, traceback lines, inputs_after; only ``seconds``
    and the fresh uid differ). What is shared between calls is what a fresh interpreter would
    do identically each time: a fork server (``child.py --serve``), started on the first
    call, imports the allowed packages and ``preload`` once, as kernelnet's own user, and for
    each call forks a child that does all the rest as the one-call child does: a fresh
    folder, a new session, a network namespace, rlimits (so CPU time and memory are this
    call's only), a fresh uid, the import policy, the student's module imported anew, the call,
    outputs as data, ``os._exit``. No call sees anything of another: the student's code never
    runs in the server, and every process and file of a call's uid is gone before the next.

    The server holds no student state, but it is kernelnet's: it must be single-threaded to be
    forked (the children's environment pins BLAS to one thread; the server checks), it is
    restarted if it dies or does not answer (the call then runs again from scratch), and after
    :data:`SERVER_LOSSES` losses the session runs each call in a new interpreter instead. Only
    when neither can run is the Outcome ``sandbox_error``. Without root, the student's code
    runs as kernelnet's user and could kill the server (as it could kill kernelnet itself):
    :attr:`Isolation.caveats` already says the student is not contained there.

    Two departures from a new interpreter per call, both invisible to a test's outcome:
    warnings printed while importing the allowed packages go to the server's log, not to the
    call's stderr; and a package that caches a path at import (matplotlib's config folder)
    keeps the server's, which the student cannot write (matplotlib then uses a temporary one).

    The submission's files are read once, when the session starts (OSError if they cannot
    be); the data files on the first call, copied once and, when the student runs as a fresh
    uid, hard-linked read-only into each call's folder.
    """

    def __init__(
        self,
        submission_dir: Path,
        data_files: Iterable[Path] = (),
        allowed_imports: Iterable[str] = ("numpy", "math"),
        preload: Iterable[str] = (),
    ):
        import threading

        self.submission_dir = Path(submission_dir)
        self.data_files = tuple(Path(path) for path in data_files)
        self.allowed_imports = sorted(set(allowed_imports))
        self.preload = _preloads(self.allowed_imports, preload)
        self._lock = threading.Lock()
        self._folder: Path | None = None
        self._sources: dict[str, bytes] = {}
        self._data: list[tuple[Path, Path, int]] | None = None
        self._server: _ForkServer | None = None
        self._servers_started = 0
        self._losses = 0

    def __enter__(self) -> Session:
        folder = Path(tempfile.mkdtemp(prefix="kernelnet-session-"))  # 0700
        try:
            (folder / "logs").mkdir(mode=0o700)
            self._sources = _read_sources(self.submission_dir)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._folder, self._data, self._losses = folder, None, 0
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server and remove the session's folder (the copies of the data)."""
        with self._lock:
            self._stop_server()
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None

    @property
    def server_pid(self) -> int | None:
        """The fork server's pid while one runs (for monitoring and tests)."""
        server = self._server
        return server.pid if server is not None and server.alive() else None

    def call(
        self,
        module: str,
        function: str,
        inputs: Mapping[str, object],
        limits: Limits = Limits(),
    ) -> Outcome:
        """Call ``module.function(**inputs)`` in a fresh sandboxed process; as
        :func:`run_function` (ValueError for a bad call, OSError for a data file that cannot
        be read; everything the student's code does ends in the Outcome)."""
        _check_names(module, function)
        with self._lock:
            if self._folder is None:
                raise RuntimeError("Session.call outside its with block")
            data = self._stored_data(limits.file_bytes)
            while self._losses < SERVER_LOSSES:
                server = self._running_server()
                if server is None:
                    break
                try:
                    return self._call(server.launch, data, module, function, inputs, limits)
                except _ServerLost as lost:
                    logger.warning("sandbox fork server lost (%s): restarting it", lost)
                    self._losses += 1
                    self._stop_server()
                except OSError as exc:  # this machine's (a full disk): try a new interpreter
                    logger.warning("sandbox call through the fork server failed (%s)", exc)
                    break
            try:
                return self._call(_launch, data, module, function, inputs, limits)
            except OSError as exc:
                return Outcome(Status.SANDBOX_ERROR, _one_line(f"the sandbox cannot run: {exc}"))

    def _call(self, launch, data, module, function, inputs, limits) -> Outcome:
        uid = _fresh_uid() if _is_root() else None
        started = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix="kernelnet-sandbox-"))
        assert self._folder is not None
        logs = self._folder / "logs"  # in the session's 0700 folder: the child can't reach
        for name in ("stdout.txt", "stderr.txt"):
            # New files, not truncated ones: a process of an earlier call that could not be
            # killed keeps writing to its own.
            with contextlib.suppress(FileNotFoundError):
                (logs / name).unlink()
        try:
            _link_data(data, workdir, hard=uid is not None)
            return _prepare_and_run(
                workdir, logs, self._sources, (module, function), inputs, self.allowed_imports,
                self.preload, uid, limits, started, launch,
            )  # fmt: skip
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _stored_data(self, max_bytes: int) -> list[tuple[Path, Path, int]]:
        """``(given path, stored copy, size)`` of each data file, copied on first use with
        the bound :func:`run_function` applies to each call's copy (and that bound checked
        again on every call)."""
        assert self._folder is not None
        if self._data is None:
            store = self._folder / "data"
            shutil.rmtree(store, ignore_errors=True)
            store.mkdir(mode=0o700)
            stored = []
            for path in self.data_files:
                with safe_read.open_regular(path, max_bytes) as (source, size):
                    with open(store / path.name, "wb") as target:
                        shutil.copyfileobj(source, target)
                os.chmod(store / path.name, 0o444)  # linked into calls: nobody may write it
                stored.append((path, store / path.name, size))
            self._data = stored
        for path, _, size in self._data:
            if size > max_bytes:
                raise safe_read.ReadRefused(
                    f"{path}: {size:,} bytes, over the {max_bytes:,}-byte bound for it"
                )
        return self._data

    def _running_server(self) -> _ForkServer | None:
        if self._server is not None and self._server.alive():
            return self._server
        self._stop_server()
        assert self._folder is not None
        self._servers_started += 1
        session_job = {
            "preload": self.preload,
            "allowed_imports": self.allowed_imports,
            "own_modules": [Path(name).stem for name in self._sources],
        }
        home = self._folder / f"server-{self._servers_started}"
        try:
            self._server = _ForkServer(home, session_job, self._sources)
        except (_ServerLost, OSError) as exc:
            logger.warning("sandbox fork server cannot start (%s)", exc)
            self._losses += 1
            return None
        return self._server

    def _stop_server(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def _link_data(data: list[tuple[Path, Path, int]], workdir: Path, hard: bool) -> None:
    """The session's stored data files in ``workdir/data``: hard links when the student
    runs as another uid (the files are root's and read-only to it), else copies (the student
    is their owner and could change them for the calls that follow)."""
    folder = workdir / "data"
    folder.mkdir()
    for path, stored, _ in data:
        target = folder / path.name
        with contextlib.suppress(FileNotFoundError):
            target.unlink()  # two data files of one name: the last one wins, as in a copy
        if hard:
            try:
                os.link(stored, target)
                continue
            except OSError:  # another file system: copy
                pass
        shutil.copyfile(stored, target)


def capabilities() -> Isolation:
    """What the sandbox enforces on this machine, found by running a trivial call."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "probe.py").write_text("def probe():\n    return 0\n", encoding="utf-8")
        return run_function(Path(folder), "probe", "probe", {}, Limits(wall_seconds=30)).isolation
