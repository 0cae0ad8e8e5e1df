"""The child side of the grading sandbox: run one student function, write its outputs as data.

Run by the parent (:mod:`kernelnet.grading.sandbox`) as ``python -I -B child.py`` by path,
with the working directory a fresh folder holding ``job.json``, ``inputs.npz``, copies of the
submission's ``.py`` files and ``data/*.npy``. ``-I`` keeps the user's site, ``PYTHON*``
variables and the script's and working folder off ``sys.path``: nothing a student named
``numpy.py`` is imported while this process is still root. This file imports only the
standard library and NumPy (never kernelnet), so it works wherever the interpreter does.

Order (each step before the next, for the reason given):
1. capture the functions used to save outputs, before any student code can replace them;
2. preload the allowed modules the job names, still as the starting user: once dropped to the
   sandbox uid, the interpreter's own folder may be unreadable (``/root/.pyenv`` is 0700);
3. read the inputs;
4. as root on Linux, a new network namespace (only a loopback that is down), then rlimits,
   then drop to the sandbox uid/gid with no supplementary groups;
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
        top = name.partition(".")[0]
        if level == 0 and top not in allowed and top not in own_modules and from_student(depth):
            refused.append(top)
            raise ForbiddenImport(f"import of {top!r} is not allowed in this assignment")

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
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


def _isolate_network():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
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


def main():
    workdir = os.getcwd()
    main_pid = _getpid()
    result = {"status": "sandbox_error", "phase": "setup", "network_isolated": False}
    refused = []
    result_path = os.path.join(workdir, "result.json")
    try:
        with open("job.json", encoding="utf-8") as handle:
            job = json.load(handle)
        # Codecs the standard library loads lazily (socket host names use idna).
        for name in ["encodings.idna", *job["preload"]]:
            importlib.import_module(name)
        allowed = frozenset(job["allowed_imports"]) - frozenset(job["own_modules"])
        _preload(_imports_of(job["own_modules"], allowed))
        inputs = _load_inputs(job)
        if job["isolate_network"]:
            _isolate_network()
            result["network_isolated"] = True
        dropping = job["uid"] is not None
        _set_limits(job["limits"], dropping)
        if dropping:
            _drop(job["uid"], job["gid"])
    except BaseException as exc:
        result["exception_type"], result["message"] = _describe(exc)
        _write_json(result_path, result)
        _exit(0)

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


if __name__ == "__main__":
    main()
