"""The child side of the grading sandbox: run one student function, write its outputs as data.

Run by the parent (:mod:`kernelnet.grading.sandbox`) as ``python -I -B child.py`` by path,
with the working directory a fresh folder holding ``job.json``, ``inputs.npz``, copies of the
submission's ``.py`` files and ``data/*.npy``. ``-I`` keeps the user's site, ``PYTHON*``
variables and the script's and working folder off ``sys.path``: nothing a student named
``numpy.py`` is imported while this process is still root. This file imports only the
standard library and NumPy (never kernelnet), so it works wherever the interpreter does.

Two ways to run: ``child.py`` does one call in the folder it is started in; ``child.py --serve
FD`` is a session's fork server (see "the fork server" below): it does steps 1-2 once and forks,
for each call, a child that does steps 3-6 as the one-call child does. Either way each call
runs in a process of its own that nothing ran in before but steps 1-2.

Order (each step before the next, for the reason given):
1. capture the functions used to save outputs, before any student code can replace them;
2. preload the allowed modules the job names, still as the starting user: once dropped to the
   sandbox uid, the interpreter's own folder may be unreadable (``/root/.pyenv`` is 0700);
3. read the inputs;
4. as root on Linux, a new network namespace (only a loopback that is down), then rlimits,
   then drop to the sandbox uid/gid with no supplementary groups, then SIGKILL on the
   parent's death (set after the drop, which clears it);
5. install the import policy, import the student module, call the function;
6. write ``outputs.npz`` (arrays ``out/<name>`` and ``in/<name>``, the inputs as the student
   left them) and ``result.json``, then ``os._exit``: no student ``atexit`` hook runs.

``result.json``: ``status`` (ok, exception, not_implemented, memory_limit, forbidden,
bad_output, sandbox_error), ``phase`` (setup, import, call, save), ``exception_type``,
``message``, ``traceback`` (the student's own frames only), ``returned`` (value, tuple, dict,
none), ``outputs`` (names in order), ``network_isolated``, ``forbidden`` (imports refused).
"""

import builtins
import ctypes
import gc
import importlib
import json
import os
import resource
import signal
import sys
import traceback
import zipfile

# Captured before the student module exists: the student can rebind numpy's attributes, not
# these references, and ndarray's own methods (tobytes) cannot be replaced from Python.
import numpy

_asarray = numpy.asarray
_ndarray = numpy.ndarray
_generic = numpy.generic
_load = numpy.load
_ZipFile = zipfile.ZipFile
_ZIP_STORED = zipfile.ZIP_STORED
_replace = os.replace
_exit = os._exit
_getpid = os.getpid
_dumps = json.dumps
_extract_tb = traceback.extract_tb
_format_list = traceback.format_list
_format_exception_only = traceback.format_exception_only
_real_import = builtins.__import__
_real_import_module = importlib.import_module

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
MAX_MESSAGE = 2000
MAX_TRACEBACK_LINES = 200
PLAIN_KINDS = "biufc"  # bool, signed, unsigned, float, complex


class ForbiddenImport(ImportError):
    """An import of a module the assignment does not allow."""


def _write_json(path, payload):
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(_dumps(payload))
    _replace(path + ".tmp", path)


def _npy_bytes(array):
    """An array as .npy version 1.0 bytes, built here from the dtype's descriptor and
    ``tobytes`` so that nothing the student patched in ``numpy.lib.format`` is involved."""
    shape = tuple(int(n) for n in array.shape)
    header = f"{{'descr': {array.dtype.str!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    pad = 64 - (10 + len(header) + 1) % 64
    header = (header + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + array.tobytes()


def _plain(value, name):
    """``value`` as a C-contiguous array of plain numbers, or ValueError naming it."""
    if value is None or isinstance(value, (str, bytes)):
        raise ValueError(f"output {name} is {type(value).__name__}, not numeric data")
    if not isinstance(value, (_ndarray, _generic, int, float, complex, bool, list, tuple)):
        raise ValueError(f"output {name} is a {type(value).__name__}, not numeric data")
    array = _asarray(value)
    if type(array) is not _ndarray:
        array = array.view(_ndarray)
    if array.dtype.kind not in PLAIN_KINDS or array.dtype.fields is not None:
        raise ValueError(f"output {name} has dtype {array.dtype}, not plain numbers")
    return _ndarray.copy(array, order="C")  # ascontiguousarray would make a 0-d array 1-d


def _flatten(returned):
    """``(kind, [(name, array)])`` of a return value: one value (``0``), a tuple or list of
    values or dicts (``0``, ``1/W1``), or a dict (``W1``)."""
    if returned is None:
        return "none", []
    if isinstance(returned, dict):
        return "dict", [(str(k), _plain(v, str(k))) for k, v in returned.items()]
    if isinstance(returned, tuple):
        pairs = []
        for index, item in enumerate(returned):
            if isinstance(item, dict):
                pairs += [(f"{index}/{k}", _plain(v, f"{index}/{k}")) for k, v in item.items()]
            else:
                pairs.append((str(index), _plain(item, str(index))))
        return "tuple", pairs
    return "value", [("0", _plain(returned, "0"))]


def _student_lines(exc, workdir):
    """The traceback of ``exc`` with only the frames from files in ``workdir``."""
    prefix = workdir.rstrip(os.sep) + os.sep
    frames = [f for f in _extract_tb(exc.__traceback__) if f.filename.startswith(prefix)]
    for frame in frames:  # paths relative to the submission, as the student knows them
        frame.filename = frame.filename[len(prefix) :]
    filename = getattr(exc, "filename", None)  # a SyntaxError's own line names its file
    if isinstance(exc, SyntaxError) and isinstance(filename, str) and filename.startswith(prefix):
        exc.filename = filename[len(prefix) :]
    lines = _format_list(frames) + _format_exception_only(type(exc), exc)
    return "".join(lines).splitlines()[:MAX_TRACEBACK_LINES]


def _describe(exc):
    try:
        message = str(exc)
    except BaseException:  # a student exception whose __str__ raises
        message = "(its message could not be formatted)"
    return type(exc).__name__, message[:MAX_MESSAGE]


def _forbidden_cause(exc):
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, ForbiddenImport):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _install_import_policy(allowed, own_modules, workdir, refused):
    """Refuse imports, made from the student's files, of top-level modules not in
    ``allowed`` (or the submission's own modules). A policy, not a boundary: the OS limits are
    the boundary. Imports made by allowed libraries themselves are not checked."""
    prefix = workdir.rstrip(os.sep) + os.sep

    def from_student(depth):
        frame = sys._getframe(depth + 1)  # depth counts from check(), our caller
        while frame is not None and (
            frame.f_code.co_filename.startswith("<frozen importlib")
            or frame.f_code.co_filename == importlib.__file__
        ):
            frame = frame.f_back
        return frame is not None and frame.f_code.co_filename.startswith(prefix)

    def check(name, level, depth):
        __tracebackhide__ = True  # noqa: F841
        top = name.partition(".")[0]
        if level == 0 and top not in allowed and top not in own_modules and from_student(depth):
            refused.append(top)
            raise ForbiddenImport(f"import of {top!r} is not allowed in this assignment")

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out of tracebacks
        check(name, level, 2)
        try:
            return _real_import(name, globals, locals, fromlist, level)
        except ModuleNotFoundError as exc:
            if level or name.partition(".")[0] not in allowed:
                raise
            # Once dropped, the interpreter's own folder may be unreadable (/root is 0700):
            # only what was loaded before (imports written in the files) is importable.
            raise ModuleNotFoundError(
                f"{exc}; {name!r} is allowed, but a module not imported by name in the "
                "submission's files cannot be loaded in the sandbox",
                name=exc.name,
            ) from None

    def guarded_import_module(name, package=None):
        __tracebackhide__ = True  # noqa: F841
        check(name, 1 if name.startswith(".") else 0, 2)
        return _real_import_module(name, package)

    builtins.__import__ = guarded_import
    importlib.import_module = guarded_import_module


def _imports_of(own_modules, allowed):
    """Dotted names of allowed modules the submission's files import, found by parsing
    (never running) them: these are loaded while the interpreter's files are still readable."""
    import ast

    found = []
    for own in own_modules:
        try:
            with open(own + ".py", "rb") as handle:
                tree = ast.parse(handle.read())
        except (SyntaxError, ValueError, RecursionError, MemoryError, OSError):
            continue  # the student sees the error when the module is imported
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append(node.module)
                found += [node.module + "." + alias.name for alias in node.names]
    return [name for name in found if name.partition(".")[0] in allowed]


def _preload(names):
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # e.g. "from numpy import pi": not a module; or absent
            pass


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _isolate_network():
    if _libc().unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")


def _set_limits(limits, dropping):
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime) + int(limits["cpu_seconds"])
    settings = [
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_FSIZE, int(limits["file_bytes"])),
        (resource.RLIMIT_NOFILE, int(limits["open_files"])),
        (resource.RLIMIT_AS, int(limits["memory_bytes"])),
    ]
    for which, value in settings:
        resource.setrlimit(which, (value, value))
    # SIGXCPU at the soft limit; SIGKILL one second later if the student ignores it.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    if dropping:  # counts every process of the real uid: only meaningful for a dedicated uid
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"], limits["processes"]))
    # A write past RLIMIT_FSIZE fails with EFBIG instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _all_threads_are(uid):
    """Whether every thread of this process has ``uid`` as its real, effective and saved
    uid (a kernel drops with its threads already running)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/status", encoding="utf-8") as handle:
                ids = [line.split()[1:4] for line in handle if line.startswith("Uid:")]
        except OSError:
            return False
        if ids != [[str(uid)] * 3]:
            return False
    return True


def _drop(uid, gid):
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise OSError(f"could not drop to uid {uid} gid {gid}")


def _load_inputs(job):
    with _load("inputs.npz", allow_pickle=False) as archive:
        arrays = {name: numpy.array(archive[name]) for name in archive.files}
    inputs = {}
    for name in job["input_names"]:
        value = arrays[name]
        # A Python scalar in the job stays a Python scalar for the student (range(n) etc.).
        inputs[name] = value.item() if name in job["scalar_inputs"] else value
    return inputs


def _save(workdir, kind, pairs, inputs):
    members = [("out/" + name, array) for name, array in pairs]
    for name, value in inputs.items():
        if isinstance(value, _ndarray):
            members.append(("in/" + name, _ndarray.copy(value, order="C")))
    path = os.path.join(workdir, "outputs.npz")
    with _ZipFile(path + ".tmp", "w", _ZIP_STORED, allowZip64=True) as archive:
        for name, array in members:
            archive.writestr(name + ".npy", _npy_bytes(array))
    _replace(path + ".tmp", path)
    return [name for name, _ in pairs], kind


def _prepare(job):
    """Step 2: load the allowed modules the job names, as the starting user. Raises if one of
    ``job["preload"]`` cannot be imported (the sandbox's fault, reported as sandbox_error)."""
    # Codecs the standard library loads lazily (socket host names use idna; zip member
    # names, read from inputs.npz, cp437).
    for name in ["encodings.idna", "encodings.cp437", *job["preload"]]:
        importlib.import_module(name)
    allowed = frozenset(job["allowed_imports"]) - frozenset(job["own_modules"])
    _preload(_imports_of(job["own_modules"], allowed))


def _confine(job, result, parent):
    """Steps 3-4: the inputs, then the network namespace, rlimits and the uid drop; the
    inputs. ``parent``: the pid that must still be our parent (None: not checked)."""
    inputs = _load_inputs(job)
    if job["isolate_network"]:
        _isolate_network()
        result["network_isolated"] = True
    dropping = job["uid"] is not None
    _set_limits(job["limits"], dropping)
    if dropping:
        _drop(job["uid"], job["gid"])
    # After the drop (a change of credentials clears it): killed with our parent, so a
    # student's process cannot outlive a grader that died; checked against a parent that
    # died before the call.
    if sys.platform.startswith("linux"):
        _libc().prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        raise OSError("the sandbox's parent ended before the call")
    return inputs


def _setup_failed(result, result_path, exc_info):
    result["exception_type"], result["message"] = exc_info
    _write_json(result_path, result)
    _exit(0)


def _run(workdir, setup=None, parent=None):
    """Steps 2-6 in ``workdir`` (the current folder). ``setup``: None to do step 2 here,
    else what the fork server's step 2 left, ``(type, message)`` if it failed or ``()``."""
    main_pid = _getpid()
    result = {"status": "sandbox_error", "phase": "setup", "network_isolated": False}
    refused = []
    result_path = os.path.join(workdir, "result.json")
    try:
        with open("job.json", encoding="utf-8") as handle:
            job = json.load(handle)
        if setup is None:
            _prepare(job)
        elif setup:
            _setup_failed(result, result_path, tuple(setup))
        inputs = _confine(job, result, parent)
    except BaseException as exc:
        _setup_failed(result, result_path, _describe(exc))

    _install_import_policy(
        frozenset(job["allowed_imports"]), frozenset(job["own_modules"]), workdir, refused
    )
    sys.path.insert(0, workdir)
    phase = "import"
    try:
        module = importlib.import_module(job["module"])
        phase = "call"
        function = getattr(module, job["function"], None)
        if not callable(function):
            raise AttributeError(f"module {job['module']!r} has no function {job['function']!r}")
        returned = function(**inputs)
        phase = "save"
        kind, pairs = _flatten(returned)
        if sum(array.nbytes for _, array in pairs) > job["limits"]["file_bytes"]:
            raise ValueError("the outputs are larger than the file-size limit")
        names, kind = _save(workdir, kind, pairs, inputs)
        result.update(status="ok", returned=kind, outputs=names)
    except BaseException as exc:
        if _getpid() != main_pid:  # a forked copy of the student's code: it reports nothing
            _exit(0)
        result["exception_type"], result["message"] = _describe(exc)
        result["traceback"] = _student_lines(exc, workdir)
        if _forbidden_cause(exc) is not None:
            result["status"] = "forbidden"
        elif isinstance(exc, MemoryError):
            result["status"] = "memory_limit"
        elif isinstance(exc, NotImplementedError):
            result["status"] = "not_implemented"
        elif phase == "save" and isinstance(exc, ValueError):
            result["status"] = "bad_output"
        else:
            result["status"] = "exception"
    if _getpid() != main_pid:
        _exit(0)
    result["phase"] = phase
    result["forbidden"] = refused[:20]
    for stream in (sys.stdout, sys.stderr):  # the student's buffered prints, if still open
        try:
            stream.flush()
        except BaseException:
            pass
    try:
        _write_json(result_path, result)
    except BaseException:
        _exit(3)
    _exit(0)


def main():
    _run(os.getcwd())


# --- the fork server ----------------------------------------------------------------------
# One per grading session (kernelnet.grading.sandbox.Session), run as the starting user and
# never running student code: it does step 2 once, then for each call forks a child that
# does the rest exactly as main() does. Protocol, one JSON object per line on the socket
# inherited as SERVE_FD (the parent keeps the wall clock, so the server only forks and reaps):
#   server -> parent  {"ready": true, "threads": N}                      once, after step 2
#   parent -> server  {"workdir", "stdout", "stderr", "env", "uid"}      a call
#   server -> parent  {"pid": P}                                         forked
#   parent -> server  {"reap": true}                  once P has ended or the parent killed it
#   server -> parent  {"status": wait status, "cpu": seconds of CPU of P and its reaped children}
# End of file from the parent: the call's processes are killed and the server exits.

MAX_MESSAGE_BYTES = 1 << 16


class _Channel:
    def __init__(self, fd):
        self.fd, self.pending = fd, b""

    def send(self, payload):
        data = (_dumps(payload) + "\n").encode("utf-8")
        while data:
            data = data[os.write(self.fd, data) :]

    def receive(self):
        """The next message, or None at end of file or on a message past the bound."""
        while b"\n" not in self.pending:
            chunk = os.read(self.fd, MAX_MESSAGE_BYTES)
            if not chunk or len(self.pending) > MAX_MESSAGE_BYTES:
                return None
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return json.loads(line)


def _threads():
    return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1


def _kill_call(pid, uid):
    """Kill a call's process, its group and, as root, every process of its uid (kill(-1)
    from a helper that has become the uid: it checks its ids first). The parent's
    sandbox._kill_uid_once does the same; this file imports no kernelnet, so it has its own."""
    for kill, target in ((os.kill, pid), (os.killpg, pid)):
        try:
            kill(target, signal.SIGKILL)
        except OSError:
            pass
    if uid is not None and os.getuid() == 0:
        for _ in range(3):
            helper = os.fork()
            if helper == 0:
                try:
                    os.setgroups([])
                    os.setresgid(uid, uid, uid)
                    os.setresuid(uid, uid, uid)
                    if os.getresuid() == (uid, uid, uid):
                        os.kill(-1, signal.SIGKILL)
                finally:
                    _exit(0)
            os.waitpid(helper, 0)


def _serve_one(request, setup, server_pid):
    """In the forked child: what Popen and ``python -I`` gave the one-call child (a new
    session, the folder, stdin /dev/null, stdout/stderr to the parent's files, no other
    descriptor, the minimal environment), then the same steps 3-6."""
    try:
        os.setsid()
        os.chdir(request["workdir"])
        streams = [
            os.open(os.devnull, os.O_RDONLY),
            os.open(request["stdout"], os.O_WRONLY | os.O_TRUNC),
            os.open(request["stderr"], os.O_WRONLY | os.O_TRUNC),
        ]
        for target, fd in enumerate(streams):
            os.dup2(fd, target)
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv[1:] = []
        if "tempfile" in sys.modules:
            sys.modules["tempfile"].tempdir = None  # $TMPDIR is this call's
        if "numpy.random" in sys.modules:
            # A fresh interpreter seeds NumPy's global generator from the OS; a forked one
            # would share the server's state with every other call.
            numpy.random.seed()
    except BaseException:
        _exit(3)
    _run(request["workdir"], setup, server_pid)


def serve(fd):
    os.set_inheritable(fd, False)
    channel = _Channel(fd)
    with open("session.json", encoding="utf-8") as handle:
        session = json.load(handle)
    try:
        _prepare(session)
        setup = ()
    except BaseException as exc:
        setup = _describe(exc)
    # Everything loaded so far lives as long as the server: out of the collector's sight, a
    # child's collections do not write to (and so copy) every page the server's objects use.
    gc.freeze()
    channel.send({"ready": True, "threads": _threads()})
    server_pid = _getpid()
    while True:
        request = channel.receive()
        if request is None:
            _exit(0)
        pid = os.fork()
        if pid == 0:
            _serve_one(request, setup, server_pid)
            _exit(3)  # not reached
        channel.send({"pid": pid})
        if channel.receive() is None:  # the parent is gone: so is the call
            _kill_call(pid, request.get("uid"))
            os.waitpid(pid, 0)
            _exit(0)
        _, status, usage = os.wait4(pid, 0)
        channel.send({"status": status, "cpu": usage.ru_utime + usage.ru_stime})


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    else:
        main()
