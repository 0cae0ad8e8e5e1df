"""The child side of running a notebook in the grading sandbox: a client and its kernel.

Started by :func:`kernelnet.grading.notebooks.run_notebook` as ``python -I -B
notebook_child.py --client`` (by path; this file imports nothing of kernelnet, and loads
``child.py`` beside it by path for the sandbox's steps), in a folder only the grader's user may
enter, with its job on stdin. Two processes, two roles:

- the **client** (the grader's user, never running student code): nbclient executing the
  notebook's code cells in order, through a kernel it starts from a kernelspec of its own.
  It keeps no output but the first bytes of each stream (a cell printing gigabytes cannot
  fill its memory), refuses messages past a size bound, and writes ``result.json`` in its
  own folder, which the kernel's uid cannot reach, so a notebook cannot forge its result;
- the **kernel** (``--kernel JOB -f CONNECTION``): as the starting user, a network namespace
  (before any thread exists: a namespace is per thread), the allowed packages and the
  imports the cells and files name, then ipykernel's own start-up (its sockets, ipc files in
  the client's folder, threads); then the rlimits, the drop to the sandbox uid (every thread:
  glibc changes the ids of all of them, and the kernel checks), SIGKILL on the client's death,
  the import policy, and only then the kernel's loop, where the student's cells run.

The kernel speaks to the client over ipc (Unix sockets named by path), not TCP: the
namespace's loopback is down, and keeping it down means the student's code has no network at
all, not even to ports other processes of the namespace might open; bringing lo up would
need the namespace's own firewall to keep the student off it. Paths work across namespaces
and the socket files sit in a folder the student's uid cannot enter.

``result.json``: ``status`` ok (``cells``: code cells run), error (``cell``, 1-based among
code cells, ``ename``, ``evalue``, ``traceback``), kernel_died (``cell``, ``returncode``,
``cpu``), output_too_large (``cell``, ``stream``) or sandbox_error (``message``); always
``stdout``, ``stderr`` (the cells' streams, first bytes) and ``stdout_bytes``,
``stderr_bytes`` (all of them, counted).
"""

import importlib.util
import json
import os
import resource
import signal
import sys

KERNEL_NAME = "kernelnet-sandbox"
MAX_JOB_BYTES = 64 * 2**20
MAX_TRACEBACK_LINES = 200
# Modules ipykernel and IPython import lazily while running cells (magics, display, the
# inline backend): loaded before the uid drop, after which the interpreter's own folder may
# be unreadable. Found by running notebooks with the standard library out of reach.
KERNEL_MODULES = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.comm",
    "IPython.core.magics",
    "IPython.core.magics.execution",
    "IPython.core.magics.pylab",
    "IPython.core.magics.ast_mod",
    "IPython.core.magic_arguments",
    "IPython.core.pylabtools",
    "IPython.utils.module_paths",
    "IPython.display",
    "IPython.core.display",
    "IPython.core.formatters",
    "IPython.core.ultratb",
    "IPython.core.completer",
    "timeit",
    "difflib",
    "fractions",
    "plistlib",
    "cProfile",
    "pstats",
    "pdb",
    "encodings.idna",
    "encodings.cp437",
)
MATPLOTLIB_MODULES = (
    "matplotlib.pyplot",
    "matplotlib.backends.backend_agg",
    "matplotlib_inline.backend_inline",
    "PIL.PngImagePlugin",
)


def _sandbox_child():
    """child.py (beside this file), loaded by path: ``python -I`` puts no folder of ours on
    sys.path, and this file must not depend on kernelnet being importable."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")
    spec = importlib.util.spec_from_file_location("kernelnet_sandbox_child", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_json(path, payload):
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(json.dumps(payload))
    os.replace(path + ".tmp", path)


# --- the kernel ---------------------------------------------------------------------------


def kernel(job_text, argv):
    child = _sandbox_child()
    job = json.loads(job_text)
    uid = job["uid"]
    if job["isolate_network"]:
        child._isolate_network()  # first: threads made later inherit the namespace
    for name in KERNEL_MODULES + tuple(job["preload"]):
        try:
            importlib.import_module(name)
        except Exception:  # absent here, or not a module ("from numpy import pi")
            pass
    from ipykernel.kernelapp import IPKernelApp

    os.chdir(job["workdir"])
    app = IPKernelApp.instance()
    app.initialize(argv)
    child._set_limits(job["limits"], uid is not None)
    if uid is not None:
        child._drop(uid, uid)
        if not child._all_threads_are(uid):
            raise OSError(f"a thread of the kernel did not drop to uid {uid}")
    child._libc().prctl(child.PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != job["client"]:
        raise OSError("the notebook client ended before the kernel started")
    child._install_import_policy(
        frozenset(job["allowed_imports"]), frozenset(job["own_modules"]), job["workdir"], []
    )
    sys.path.insert(0, job["workdir"])  # the submission's own modules, as Jupyter's cwd gives
    app.start()


# --- the client ---------------------------------------------------------------------------


class _Streams:
    """The cells' stdout and stderr: the first ``keep`` characters of each, and how many
    bytes there were in all."""

    def __init__(self, keep):
        self.keep = keep
        self.text = {"stdout": [], "stderr": []}
        self.kept = {"stdout": 0, "stderr": 0}
        self.total = {"stdout": 0, "stderr": 0}

    def add(self, name, text):
        if name not in self.text or not isinstance(text, str):
            return
        self.total[name] += len(text.encode("utf-8", errors="replace"))
        room = self.keep - self.kept[name]
        if room > 0:
            self.text[name].append(text[:room])
            self.kept[name] += min(room, len(text))

    def fields(self):
        return {
            "stdout": "".join(self.text["stdout"]),
            "stderr": "".join(self.text["stderr"]),
            "stdout_bytes": self.total["stdout"],
            "stderr_bytes": self.total["stderr"],
        }


class _OutputTooLarge(Exception):
    def __init__(self, stream):
        super().__init__(stream)
        self.stream = stream


def _client_class(NotebookClient):
    class BoundedClient(NotebookClient):
        """nbclient's client keeping no output in the notebook: streams are counted and
        their first bytes kept; the failing cell's error is taken from its reply."""

        def __init__(self, *args, streams, file_bytes, **kwargs):
            super().__init__(*args, **kwargs)
            self.streams, self.file_bytes = streams, file_bytes
            self.current, self.failure = 0, None
            self.on_cell_start = self._started
            self.on_cell_error = self._failed

        def _started(self, cell, cell_index):
            self.current = cell_index + 1

        def _failed(self, cell, cell_index, execute_reply):
            self.failure = (cell_index + 1, execute_reply.get("content", {}))

        def output(self, outs, msg, display_id, cell_index):
            if msg.get("msg_type") == "stream":
                content = msg.get("content", {})
                self.streams.add(content.get("name"), content.get("text"))
                for name, size in self.streams.total.items():
                    if size >= self.file_bytes:
                        raise _OutputTooLarge(name)
            return None

    return BoundedClient


def _kernelspec(folder, job):
    kernel_job = {key: job[key] for key in ("workdir", "uid", "isolate_network", "limits")}
    kernel_job.update(
        allowed_imports=job["allowed_imports"],
        own_modules=job["own_modules"],
        preload=job["preload"] + (list(MATPLOTLIB_MODULES) if job["matplotlib"] else []),
        client=os.getpid(),
    )
    spec_folder = os.path.join(folder, "kernels", KERNEL_NAME)
    os.makedirs(spec_folder, mode=0o700)
    argv = [sys.executable, "-I", "-B", os.path.abspath(__file__), "--kernel"]
    argv += [json.dumps(kernel_job), "-f", "{connection_file}", "--HistoryManager.enabled=False"]
    argv += ["--transport=ipc", f"--ip={os.path.join(folder, 'kernel')}"]
    spec = {"argv": argv, "display_name": "kernelnet sandbox", "language": "python"}
    _write_json(os.path.join(spec_folder, "kernel.json"), spec)
    return os.path.join(folder, "kernels")


def _kernel_ending(km):
    """(exit code, CPU seconds of reaped children) of a kernel that died."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    code = None
    if process is not None:
        try:
            code = process.wait(5)
        except Exception:  # still not gone: it is killed with the uid afterwards
            code = process.poll()
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return code, used.ru_utime + used.ru_stime


def _ansi_free(lines, workdir):
    """IPython's traceback (one entry per frame) as plain lines: colours removed, paths
    relative to the submission, the import policy's own frames left out."""
    import re

    escape = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
    prefix = workdir.rstrip(os.sep) + os.sep
    policy = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")
    out = []
    for entry in lines if isinstance(lines, list) else []:
        if isinstance(entry, str):
            plain = escape.sub("", entry)
            if policy in plain and "Traceback (most recent call last)" not in plain:
                continue
            out += plain.replace(prefix, "").splitlines()
    return [line[:500] for line in out[:MAX_TRACEBACK_LINES]]


def client():
    folder = os.getcwd()
    job = json.loads(sys.stdin.buffer.read(MAX_JOB_BYTES + 1)[:MAX_JOB_BYTES])
    result_path = os.path.join(folder, "result.json")
    streams = _Streams(job["output_bytes"])
    result = {"status": "sandbox_error", "message": "the notebook client did not finish"}
    try:
        if job["isolate_network"]:
            _sandbox_child()._isolate_network()  # before zmq's threads: none needs a network
        resource.setrlimit(resource.RLIMIT_AS, (job["client_bytes"],) * 2)
        import nbformat
        import zmq
        from jupyter_client import AsyncKernelManager
        from jupyter_client.kernelspec import KernelSpecManager
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, DeadKernelError

        # Every socket made from here on refuses a message larger than this.
        zmq.Context.instance().setsockopt(zmq.MAXMSGSIZE, job["max_message_bytes"])
        cells = [nbformat.v4.new_code_cell(source) for source in job["cells"]]
        notebook = nbformat.v4.new_notebook(cells=cells)
        specs = KernelSpecManager(kernel_dirs=[_kernelspec(folder, job)])
        km = AsyncKernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=specs,
            transport="ipc",
            ip=os.path.join(folder, "kernel"),
        )
        km.connection_file = os.path.join(folder, "connection.json")
        runner = _client_class(NotebookClient)(
            notebook,
            km=km,
            streams=streams,
            file_bytes=job["file_bytes"],
            timeout=None,  # the parent keeps the wall clock
            startup_timeout=max(1, int(job["wall_seconds"])),
            kernel_name=KERNEL_NAME,
            allow_errors=False,
            record_timing=False,
            resources={"metadata": {"path": job["workdir"]}},
        )
        try:
            runner.execute()
            result = {"status": "ok", "cells": len(cells)}
        except CellExecutionError:
            cell, content = runner.failure or (runner.current, {})
            result = {
                "status": "error",
                "cell": cell,
                "ename": str(content.get("ename", "Error"))[:200],
                "evalue": str(content.get("evalue", ""))[:2000],
                "traceback": _ansi_free(content.get("traceback"), job["workdir"]),
            }
        except DeadKernelError:
            code, cpu = _kernel_ending(km)
            result = {"status": "kernel_died", "cell": runner.current, "returncode": code}
            result["cpu"] = cpu
        except _OutputTooLarge as too_large:
            result = {"status": "output_too_large", "cell": runner.current}
            result["stream"] = too_large.stream
    except BaseException as exc:  # the kernel did not start, or this client failed
        result = {"status": "sandbox_error", "message": f"{type(exc).__name__}: {exc}"[:2000]}
    result.update(streams.fields())
    _write_json(result_path, result)
    os._exit(0)  # nothing left to tidy: the parent kills the uid and removes the folders


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--kernel":
        kernel(sys.argv[2], sys.argv[3:])
    elif sys.argv[1:] == ["--client"]:
        client()
    else:
        sys.exit("usage: notebook_child.py --client (job on stdin)")
