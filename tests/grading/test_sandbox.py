"""The grading sandbox: each hostile submission gets its outcome and leaves nothing behind.

Every call runs a real child process under small limits (a few hundred MB of address space,
seconds of wall clock, 20 processes), so nothing here can endanger the machine.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from kernelnet.grading import sandbox
from kernelnet.grading.sandbox import Limits, Session, Status, processes_of_uid, run_function

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root: uid drop, netns, RLIMIT_NPROC")
SMALL = Limits(
    wall_seconds=15,
    cpu_seconds=10,
    memory_bytes=512 * 2**20,
    file_bytes=4 * 2**20,
    processes=20,
    output_bytes=64 * 2**10,
)


def submit(tmp_path: Path, source: str, name: str = "student") -> Path:
    folder = tmp_path / "submission"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return folder


# The hostile submissions need os, sys and time; the forbidden-import tests use others.
HOSTILE_IMPORTS = ("numpy", "math", "os", "sys", "time")


@pytest.fixture(params=["run_function", "session"])
def run(request):
    """``run(folder, inputs, limits, data_files=..., allowed_imports=...)``: ``student.f``
    through :func:`run_function` (a new interpreter) or through a :class:`Session` (a fork
    server), so that every test here holds for both. One session per submission folder."""
    sessions: dict = {}

    def call(folder: Path, inputs=None, limits: Limits = SMALL, **kwargs):
        kwargs.setdefault("allowed_imports", HOSTILE_IMPORTS)
        if request.param == "run_function":
            return run_function(folder, "student", "f", inputs or {}, limits, **kwargs)
        key = (folder, tuple(kwargs.get("data_files", ())), tuple(kwargs["allowed_imports"]))
        if key not in sessions:
            sessions[key] = Session(folder, **kwargs).__enter__()
        return sessions[key].call("student", "f", inputs or {}, limits)

    yield call
    for session in sessions.values():
        session.close()


def assert_nothing_left(outcome) -> None:
    assert outcome.leftover_processes == 0
    if outcome.isolation.uid is not None:
        assert processes_of_uid(outcome.isolation.uid) == []


def test_correct_function_returns_the_reference(tmp_path, run):
    folder = submit(
        tmp_path,
        """
        import numpy as np
        def f(X, W, reg):
            scores = X @ W
            return scores, {"loss": 0.5 * reg * np.sum(W * W)}
        """,
    )
    rng = np.random.default_rng(0)
    X, W = rng.normal(size=(5, 3)), rng.normal(size=(3, 2))
    outcome = run(folder, {"X": X, "W": W, "reg": 0.1})
    assert outcome.status is Status.OK, outcome.message
    assert outcome.returned == "tuple"
    assert list(outcome.outputs) == ["0", "1/loss"]
    np.testing.assert_array_equal(outcome.outputs["0"], X @ W)
    assert outcome.outputs["1/loss"].shape == ()  # a scalar stays 0-d
    assert outcome.outputs["1/loss"] == 0.5 * 0.1 * np.sum(W * W)
    np.testing.assert_array_equal(outcome.inputs_after["X"], X)
    assert_nothing_left(outcome)


def test_exception_shows_the_students_own_lines_only(tmp_path, run):
    folder = submit(
        tmp_path,
        """
        def helper(x):
            return x[10]

        def f(x):
            return helper(x)
        """,
    )
    outcome = run(folder, {"x": np.zeros(3)})
    assert outcome.status is Status.EXCEPTION
    assert outcome.exception_type == "IndexError"
    text = "\n".join(outcome.traceback)
    assert 'File "student.py", line 6, in f' in text
    assert 'File "student.py", line 3, in helper' in text
    assert "return x[10]" in text
    assert "kernelnet" not in text and "child.py" not in text and "importlib" not in text


def test_syntax_error_is_an_exception_while_importing(tmp_path, run):
    folder = submit(tmp_path, "def f(:\n    pass\n")
    outcome = run(folder)
    assert outcome.status is Status.EXCEPTION
    assert outcome.exception_type == "SyntaxError"
    assert "while importing" in outcome.message
    assert outcome.traceback[0] == '  File "student.py", line 1'  # not the sandbox's folder


def test_missing_function_is_an_exception(tmp_path, run):
    outcome = run(submit(tmp_path, "def g():\n    return 1\n"))
    assert outcome.status is Status.EXCEPTION
    assert outcome.exception_type == "AttributeError" and "'f'" in outcome.message


def test_not_implemented(tmp_path, run):
    folder = submit(tmp_path, "def f(x):\n    raise NotImplementedError('todo')\n")
    outcome = run(folder, {"x": np.ones(2)})
    assert outcome.status is Status.NOT_IMPLEMENTED


def test_infinite_loop_times_out_and_its_processes_are_gone(tmp_path, run):
    folder = submit(
        tmp_path,
        """
        import os, time
        def f():
            if os.fork() == 0:  # a child in the same group, that would outlive a plain kill
                while True:
                    time.sleep(1)
            while True:
                pass
        """,
    )
    outcome = run(folder, limits=Limits(wall_seconds=2, cpu_seconds=30, processes=20))
    assert outcome.status is Status.TIMEOUT
    assert "2 s" in outcome.message
    assert_nothing_left(outcome)


def test_cpu_limit(tmp_path, run):
    folder = submit(tmp_path, "def f():\n    while True:\n        pass\n")
    outcome = run(folder, limits=Limits(wall_seconds=20, cpu_seconds=1))
    assert outcome.status is Status.CPU_LIMIT


def test_a_30_gb_allocation_hits_the_memory_limit(tmp_path, run):
    folder = submit(tmp_path, "import numpy as np\ndef f():\n    return np.ones(30 * 2**30)\n")
    outcome = run(folder)
    assert outcome.status is Status.MEMORY_LIMIT
    assert outcome.exception_type == "MemoryError"


def test_ten_megabytes_of_output_are_cut(tmp_path, run):
    folder = submit(
        tmp_path,
        """
        import sys
        def f():
            for _ in range(10 * 1024):
                sys.stdout.write("x" * 1023 + "\\n")
            return 1
        """,
    )
    outcome = run(folder)  # file_bytes 4 MiB
    assert outcome.status is Status.OUTPUT_TOO_LARGE
    assert "stdout" in outcome.message and "first 65,536" in outcome.message
    assert outcome.stdout_cut and len(outcome.stdout) == 64 * 2**10


def test_output_over_the_kept_part_is_cut_but_the_call_is_ok(tmp_path, run):
    folder = submit(tmp_path, "def f():\n    print('y' * 100_000)\n    return 2\n")
    outcome = run(folder)
    assert outcome.status is Status.OK
    assert outcome.stdout_cut and outcome.stdout == "y" * (64 * 2**10)
    assert outcome.outputs["0"] == 2


def test_os_exit_is_a_crash(tmp_path, run):
    outcome = run(submit(tmp_path, "import os\ndef f():\n    os._exit(3)\n"))
    assert outcome.status is Status.CRASHED
    assert "exited with code 3" in outcome.message


def test_closing_stdout_then_returning_is_ok(tmp_path, run):
    folder = submit(
        tmp_path,
        """
        import os, sys
        def f():
            print("before")
            sys.stdout.close()
            os.close(1)
            os.close(2)
            return 7
        """,
    )
    outcome = run(folder)
    assert outcome.status is Status.OK, outcome.message
    assert outcome.outputs["0"] == 7


def test_input_changed_in_place_is_visible(tmp_path, run):
    folder = submit(
        tmp_path,
        "import numpy as np\ndef f(x):\n    np.maximum(x, 0, out=x)\n    return x\n",
    )
    x = np.array([-1.0, 2.0, -3.0])
    outcome = run(folder, {"x": x.copy()})
    assert outcome.status is Status.OK
    np.testing.assert_array_equal(outcome.inputs_after["x"], [0.0, 2.0, 0.0])
    assert not np.array_equal(outcome.inputs_after["x"], x)


def test_monkeypatching_numpy_does_not_change_how_outputs_are_saved(tmp_path, run):
    folder = submit(
        tmp_path,
        """
        import numpy as np
        def f(x):
            np.savez = np.savez_compressed = np.save = None
            np.asarray = np.ascontiguousarray = np.array = lambda *a, **k: 0
            np.lib.format.write_array = None
            return x * 2
        """,
    )
    outcome = run(folder, {"x": np.arange(4.0)})
    assert outcome.status is Status.OK, outcome.message
    np.testing.assert_array_equal(outcome.outputs["0"], [0.0, 2.0, 4.0, 6.0])
    assert np.asarray is not None and np.savez is not None  # the grader's numpy untouched


def test_returning_text_is_bad_output(tmp_path, run):
    outcome = run(submit(tmp_path, "def f():\n    return 'hello'\n"))
    assert outcome.status is Status.BAD_OUTPUT
    assert "str" in outcome.message


def test_child_sees_only_copies_minimal_env_and_a_removed_folder(tmp_path, monkeypatch, run):
    monkeypatch.setenv("KERNELNET_TEST_SECRET", "s3cret")
    folder = submit(
        tmp_path,
        """
        import os
        def f():
            raise RuntimeError(repr((sorted(os.listdir(".")), sorted(os.listdir("data")),
                                     sorted(os.environ), os.getcwd())))
        """,
    )
    (folder / "notes.txt").write_text("not a .py file")
    data = tmp_path / "X_train.npy"
    np.save(data, np.zeros(3))
    outcome = run(folder, data_files=[data])
    listing, data_listing, env, cwd = eval(outcome.message.split(": ", 1)[1])  # noqa: S307
    assert listing == ["data", "inputs.npz", "job.json", "student.py"]
    assert data_listing == ["X_train.npy"]
    assert "KERNELNET_TEST_SECRET" not in env and env == sorted(
        [
            "HOME",
            "LANG",
            "LC_ALL",
            "MKL_NUM_THREADS",
            "MPLBACKEND",
            "MPLCONFIGDIR",
            "OMP_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "PATH",
            "TMPDIR",
        ]
    )
    assert not Path(cwd).exists()


def test_forbidden_import_at_top_level(tmp_path, run):
    outcome = run(submit(tmp_path, "import sklearn\ndef f():\n    return 1\n"))
    assert outcome.status is Status.FORBIDDEN
    assert outcome.forbidden == ("sklearn",)
    assert "'sklearn' is not allowed" in outcome.message


def test_forbidden_import_of_a_loaded_stdlib_module_inside_the_function(tmp_path, run):
    folder = submit(tmp_path, "def f():\n    import subprocess\n    return 1\n")
    outcome = run(folder)
    assert outcome.status is Status.FORBIDDEN and outcome.forbidden == ("subprocess",)


def test_allowed_imports_and_own_modules_work(tmp_path, run):
    folder = submit(tmp_path, "def twice(x):\n    return 2 * x\n", name="helpers")
    submit(
        tmp_path,
        "import math\nimport numpy as np\nfrom helpers import twice\n"
        "def f():\n    return twice(np.random.default_rng(0).random(2) + math.pi)\n",
    )
    outcome = run(folder)
    assert outcome.status is Status.OK, outcome.message
    expected = 2 * (np.random.default_rng(0).random(2) + np.pi)
    np.testing.assert_array_equal(outcome.outputs["0"], expected)


@needs_root
def test_runs_as_a_fresh_unprivileged_uid_with_the_network_isolated(tmp_path, run):
    folder = submit(tmp_path, "import os\ndef f():\n    return os.getuid(), os.getgroups()\n")
    outcome = run(folder)
    assert outcome.status is Status.OK
    assert outcome.outputs["0"] == outcome.isolation.uid != 0
    assert outcome.outputs["1"].size == 0
    assert outcome.isolation.network_isolated and outcome.isolation.caveats == ()


@needs_root
def test_writing_outside_its_folder_fails_and_tmp_is_cleaned(tmp_path, run):
    grader = tmp_path / "grader"
    grader.mkdir(mode=0o755)
    stray = Path("/tmp") / f"kernelnet-test-stray-{os.getpid()}"
    folder = submit(
        tmp_path,
        f"""
        def f():
            open({str(stray)!r}, "w").write("left behind")
            import os
            os.makedirs({str(stray)!r} + "-dir/sub")
            open({str(grader / "planted.txt")!r}, "w").write("x")
        """,
    )
    before = sorted(os.listdir(grader))
    outcome = run(folder)
    assert outcome.status is Status.EXCEPTION
    assert outcome.exception_type == "PermissionError"
    assert sorted(os.listdir(grader)) == before == []
    assert not stray.exists() and not Path(f"{stray}-dir").exists()


@needs_root
def test_reading_a_file_it_should_not_see_is_a_permission_error(tmp_path, run):
    secret = tmp_path / "expected.npy"
    np.save(secret, np.ones(3))
    secret.chmod(0o600)
    folder = submit(tmp_path, f"def f():\n    return open({str(secret)!r}, 'rb').read(1)\n")
    outcome = run(folder)
    assert outcome.status is Status.EXCEPTION
    assert outcome.exception_type == "PermissionError"


@needs_root
def test_connecting_to_a_local_port_fails_and_the_listener_sees_nothing(tmp_path, run):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(5)
        port = server.getsockname()[1]
        folder = submit(
            tmp_path,
            f"""
            import socket
            def f():
                socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"hi")
            """,
        )
        outcome = run(folder, allowed_imports=["numpy", "socket"])
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()
    assert outcome.status is Status.EXCEPTION, outcome.message
    assert outcome.exception_type in ("OSError", "ConnectionRefusedError", "TimeoutError")


@needs_root
def test_the_process_limit_binds_on_a_bounded_fork_loop(tmp_path, run):
    folder = submit(
        tmp_path,
        """
        import os, time
        def f():
            for _ in range(50):
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
            return 0
        """,
    )
    outcome = run(folder)
    assert outcome.status is Status.EXCEPTION
    assert outcome.exception_type == "BlockingIOError"  # EAGAIN from fork at RLIMIT_NPROC
    assert_nothing_left(outcome)


@needs_root
def test_a_fork_bomb_is_contained_and_fully_killed(tmp_path, run):
    folder = submit(tmp_path, "import os\ndef f():\n    while True:\n        os.fork()\n")
    outcome = run(folder, limits=Limits(wall_seconds=3, cpu_seconds=5, processes=20))
    assert outcome.status in (Status.EXCEPTION, Status.TIMEOUT), outcome.message
    assert_nothing_left(outcome)


# --- Session: a fork server per submission -------------------------------------------------


def comparable(outcome) -> dict:
    """An Outcome as plain data, without what differs from call to call by design: the
    time taken and the fresh uid (only whether there was one)."""
    fields = dataclasses.asdict(outcome)
    for name in ("outputs", "inputs_after"):
        fields[name] = {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in fields[name].items()}
    fields["seconds"] = None
    fields["isolation"]["uid"] = fields["isolation"]["uid"] is not None
    return fields


# (source of student.f, inputs, limits, allowed imports, preload): one of each ending.
EQUIVALENCE_CASES = {
    "ok": ("import numpy as np\ndef f(x):\n    return x @ x.T, {'n': np.sum(x)}\n",
           {"x": np.arange(6.0).reshape(2, 3)}, SMALL, HOSTILE_IMPORTS, ()),
    "exception": ("def g(x):\n    return x[9]\ndef f(x):\n    return g(x)\n",
                  {"x": np.zeros(2)}, SMALL, HOSTILE_IMPORTS, ()),
    "timeout": ("def f():\n    while True:\n        pass\n", {},
                Limits(wall_seconds=1, cpu_seconds=30), HOSTILE_IMPORTS, ()),
    "cpu": ("def f():\n    while True:\n        pass\n", {},
            Limits(wall_seconds=20, cpu_seconds=1), HOSTILE_IMPORTS, ()),
    "memory": ("import numpy as np\ndef f():\n    return np.ones(2**33)\n", {}, SMALL,
               HOSTILE_IMPORTS, ()),
    "forbidden": ("import json\ndef f():\n    return 1\n", {}, SMALL, HOSTILE_IMPORTS, ()),
    "crash by signal": ("import os, signal\ndef f():\n    os.kill(os.getpid(), signal.SIGSEGV)\n",
                        {}, SMALL, HOSTILE_IMPORTS + ("signal",), ()),
    "exit code": ("import os\ndef f():\n    print('bye')\n    os._exit(4)\n", {}, SMALL,
                  HOSTILE_IMPORTS, ()),
    "output": ("def f():\n    print('z' * (5 * 2**20))\n", {}, SMALL, HOSTILE_IMPORTS, ()),
    "bad output": ("def f():\n    return {'a': 'text'}\n", {}, SMALL, HOSTILE_IMPORTS, ()),
    "not implemented": ("def f():\n    raise NotImplementedError\n", {}, SMALL,
                        HOSTILE_IMPORTS, ()),
    "syntax": ("def f(:\n", {}, SMALL, HOSTILE_IMPORTS, ()),
    "missing preload": ("def f():\n    return 1\n", {}, SMALL, HOSTILE_IMPORTS,
                        ("kernelnet_no_such_module",)),
    # What the process is given: descriptors, threads, environment, limits, identity.
    "process": ("import os, resource\ndef f():\n"
                "    return (sorted(int(n) for n in os.listdir('/proc/self/fd')),\n"
                "            len(os.listdir('/proc/self/task')), len(os.environ),\n"
                "            [resource.getrlimit(r)[1] for r in (resource.RLIMIT_AS,\n"
                "             resource.RLIMIT_NOFILE, resource.RLIMIT_FSIZE,\n"
                "             resource.RLIMIT_NPROC, resource.RLIMIT_CORE)],\n"
                "            os.getuid() == os.geteuid() == os.getgid(),\n"
                "            os.getsid(0) == os.getpid() == os.getpgid(0), os.getppid() > 1)\n",
                {}, SMALL, HOSTILE_IMPORTS + ("resource",), ()),
    "inputs changed": ("def f(x, n):\n    x[0] = n\n    return type(n).__name__ == 'int'\n",
                       {"x": np.ones(3), "n": 7}, SMALL, HOSTILE_IMPORTS, ()),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(EQUIVALENCE_CASES))
def test_a_session_gives_the_outcome_run_function_gives(tmp_path, case):
    source, inputs, limits, allowed, preload = EQUIVALENCE_CASES[case]
    folder = submit(tmp_path, source)
    expected = run_function(folder, "student", "f", inputs, limits, (), allowed, preload)
    with Session(folder, allowed_imports=allowed, preload=preload) as session:
        got = [session.call("student", "f", inputs, limits) for _ in range(2)]
    assert comparable(got[0]) == comparable(expected) == comparable(got[1])
    assert expected.status is not Status.SANDBOX_ERROR or case == "missing preload"
    assert_nothing_left(got[0])


def test_each_call_is_a_fresh_process_that_sees_nothing_of_the_previous_one(tmp_path):
    folder = submit(
        tmp_path,
        """
        import os, sys, builtins
        import numpy as np
        CALLS = []
        def f():
            CALLS.append(1)
            seen = [len(CALLS), hasattr(np, "planted"), hasattr(builtins, "planted"),
                    "PLANTED" in os.environ, os.path.exists("left.txt"),
                    "planted_module" in sys.modules, float(np.random.random())]
            np.planted = builtins.planted = True
            os.environ["PLANTED"] = "1"
            open("left.txt", "w").write("x")
            sys.modules["planted_module"] = sys
            return seen, os.getpid()
        """,
    )
    with Session(folder, allowed_imports=HOSTILE_IMPORTS + ("builtins",)) as session:
        outcomes = [session.call("student", "f", {}, SMALL) for _ in range(3)]
        server = session.server_pid
    for outcome in outcomes:
        assert outcome.status is Status.OK, outcome.message
        assert outcome.outputs["0"][:6].tolist() == [1, 0, 0, 0, 0, 0]
    pids = {int(outcome.outputs["1"]) for outcome in outcomes}
    assert len(pids) == 3 and server not in pids
    # NumPy's global generator is seeded anew for each call, as in a new interpreter (not
    # the server's state copied into every call).
    assert len({float(outcome.outputs["0"][6]) for outcome in outcomes}) == 3


@needs_root
def test_a_process_or_file_left_by_one_call_is_gone_before_the_next(tmp_path):
    stray = Path("/tmp") / f"kernelnet-test-session-stray-{os.getpid()}"
    folder = submit(
        tmp_path,
        f"""
        import os, time
        def f(first):
            if not first:
                return os.path.exists({str(stray)!r}), "mine.txt" in os.listdir(".")
            open({str(stray)!r}, "w").write("left behind")
            open("mine.txt", "w").write("in my folder")
            pid = os.fork()
            if pid == 0:
                os.setsid()  # out of the group and session: only the uid kill finds it
                time.sleep(60)
                os._exit(0)
            return pid, 0
        """,
    )
    with Session(folder, allowed_imports=HOSTILE_IMPORTS) as session:
        first = session.call("student", "f", {"first": True}, SMALL)
        assert first.status is Status.OK, first.message
        assert_nothing_left(first)
        assert not stray.exists()
        escaped = int(first.outputs["0"])
        assert escaped not in processes_of_uid(first.isolation.uid)
        second = session.call("student", "f", {"first": False}, SMALL)
    assert second.status is Status.OK, second.message
    # Neither the stray file nor the first call's folder is there.
    assert (second.outputs["0"], second.outputs["1"]) == (False, False)
    assert second.isolation.uid != first.isolation.uid


def test_limits_are_each_calls_own(tmp_path):
    folder = submit(
        tmp_path,
        """
        import time
        import numpy as np
        def f(cpu, mb, sleep):
            end = time.process_time() + cpu
            while time.process_time() < end:
                pass
            time.sleep(sleep)
            return np.empty(int(mb * 2**20) // 8).size  # address space, no page touched
        """,
    )
    roomy = Limits(wall_seconds=20, cpu_seconds=2, memory_bytes=2**30)
    tight = Limits(wall_seconds=1, cpu_seconds=1, memory_bytes=2**30)
    with Session(folder, allowed_imports=HOSTILE_IMPORTS) as session:

        def call(cpu=0.0, mb=1.0, sleep=0.0, limits=roomy):
            return session.call("student", "f", {"cpu": cpu, "mb": mb, "sleep": sleep}, limits)

        # 3 x 1.2 s of CPU under a 2 s limit: each call counts its own CPU time only.
        assert [call(cpu=1.2).status for _ in range(3)] == [Status.OK] * 3
        assert call(cpu=3.0, limits=dataclasses.replace(tight, wall_seconds=20)).status is (
            Status.CPU_LIMIT
        )
        assert call(sleep=2.0, limits=tight).status is Status.TIMEOUT
        assert call(sleep=1.5).status is Status.OK  # the next call has its own wall clock
        assert call(mb=1536).status is Status.MEMORY_LIMIT
        assert call(mb=1536, limits=dataclasses.replace(roomy, memory_bytes=4 * 2**30)).status is (
            Status.OK
        )
        assert call(mb=1536).status is Status.MEMORY_LIMIT


def test_a_killed_server_is_replaced_between_and_during_calls(tmp_path):
    folder = submit(tmp_path, "import time\ndef f(t):\n    time.sleep(t)\n    return t\n")
    with Session(folder, allowed_imports=HOSTILE_IMPORTS) as session:
        assert session.call("student", "f", {"t": 0.0}, SMALL).status is Status.OK
        first = session.server_pid
        os.kill(first, signal.SIGKILL)
        between = session.call("student", "f", {"t": 0.0}, SMALL)
        second = session.server_pid
        assert between.status is Status.OK and second not in (None, first)

        killer = threading.Timer(0.5, os.kill, (second, signal.SIGKILL))
        killer.start()
        during = session.call("student", "f", {"t": 1.5}, SMALL)  # run again from scratch
        killer.join()
        assert during.status is Status.OK, during.message
        assert during.outputs["0"] == 1.5 and during.seconds > 1.5
        assert session.server_pid not in (None, first, second)
    assert_nothing_left(during)


def test_a_server_that_stops_answering_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "SERVER_REPLY_SECONDS", 1.0)
    folder = submit(tmp_path, "def f():\n    return 5\n")
    with Session(folder) as session:
        assert session.call("student", "f", {}, SMALL).status is Status.OK
        stuck = session.server_pid
        os.kill(stuck, signal.SIGSTOP)
        outcome = session.call("student", "f", {}, SMALL)
        assert outcome.status is Status.OK and outcome.outputs["0"] == 5
        assert session.server_pid not in (None, stuck)
    assert not Path(f"/proc/{stuck}").exists() or "Z" in Path(f"/proc/{stuck}/stat").read_text()


def test_a_server_that_cannot_be_forked_safely_falls_back_to_a_process_per_call(
    tmp_path, monkeypatch
):
    """With two BLAS threads the server refuses to serve (a fork copies only the forking
    thread, and the locks the others hold): every call then runs in a new interpreter."""
    minimal = sandbox._minimal_env

    def two_threads(folder):
        return {**minimal(folder), "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}

    monkeypatch.setattr(sandbox, "_minimal_env", two_threads)
    folder = submit(tmp_path, "import numpy as np\ndef f(x):\n    return np.linalg.inv(x)\n")
    x = np.array([[2.0, 0.0], [0.0, 4.0]])
    with Session(folder) as session:
        outcomes = [session.call("student", "f", {"x": x}, SMALL) for _ in range(4)]
        assert session.server_pid is None
    for outcome in outcomes:
        assert outcome.status is Status.OK, outcome.message
        np.testing.assert_array_equal(outcome.outputs["0"], np.linalg.inv(x))


@needs_root
def test_the_student_cannot_signal_the_server(tmp_path):
    folder = submit(
        tmp_path,
        "import os, signal\ndef f():\n    os.kill(os.getppid(), signal.SIGKILL)\n",
    )
    with Session(folder, allowed_imports=HOSTILE_IMPORTS + ("signal",)) as session:
        outcomes = [session.call("student", "f", {}, SMALL)]
        server = session.server_pid
        outcomes.append(session.call("student", "f", {}, SMALL))
        assert session.server_pid == server is not None  # the same server served both
    for outcome in outcomes:
        assert outcome.status is Status.EXCEPTION, outcome.message
        assert outcome.exception_type == "PermissionError"


@needs_root
def test_data_files_are_shared_read_only(tmp_path):
    data = tmp_path / "X_train.npy"
    np.save(data, np.arange(4.0))
    folder = submit(
        tmp_path,
        """
        import os
        import numpy as np
        def f(attack):
            before = np.load("data/X_train.npy")
            if attack:
                for how in (lambda: open("data/X_train.npy", "r+b").write(b"broken"),
                            lambda: os.chmod("data/X_train.npy", 0o666),
                            lambda: os.unlink("data/X_train.npy")):
                    try:
                        how()
                        return -1.0
                    except PermissionError:
                        pass
            return before
        """,
    )
    with Session(folder, data_files=[data], allowed_imports=HOSTILE_IMPORTS) as session:
        outcomes = [session.call("student", "f", {"attack": a}, SMALL) for a in (1, 0)]
    assert [o.status for o in outcomes] == [Status.OK, Status.OK], outcomes[0].message
    for outcome in outcomes:
        np.testing.assert_array_equal(outcome.outputs["0"], np.arange(4.0))
    np.testing.assert_array_equal(np.load(data), np.arange(4.0))


def test_a_session_cleans_up_and_refuses_calls_after_it(tmp_path):
    folder = submit(tmp_path, "def f():\n    return 1\n")
    session = Session(folder)
    with session:
        assert session.call("student", "f", {}, SMALL).status is Status.OK
        server, home = session.server_pid, session._folder
        assert server is not None and home.is_dir()
    assert not home.exists()
    assert not Path(f"/proc/{server}").exists() or "Z" in Path(f"/proc/{server}/stat").read_text()
    with pytest.raises(RuntimeError, match="outside its with block"):
        session.call("student", "f", {}, SMALL)
    with pytest.raises(ValueError, match="must be Python names"):
        session.call("student", "f-g", {}, SMALL)


def test_a_session_reads_the_submission_when_it_starts(tmp_path):
    folder = submit(tmp_path, "def f():\n    return 1\n")
    (folder / "big.py").write_bytes(b"#" * (sandbox.MAX_SOURCE_BYTES + 1))
    with pytest.raises(OSError, match="bound"):
        Session(folder).__enter__()


# -- a session id freed by a reaped call is never signalled --------------------------------
@pytest.mark.parametrize("as_root", [True, False], ids=["by uid", "by session"])
def test_a_reused_session_id_is_never_signalled(as_root):
    """After a call's process is reaped its pid, and the session id it led, are free: a new
    process may take them (another call's child, a Dask scheduler). Cleaning up after the
    call must not signal that process: here a live session leader stands for it."""
    import subprocess
    import sys

    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True
    )
    try:
        uid = sandbox._fresh_uid() if as_root else None
        if as_root and not sandbox._is_root():
            pytest.skip("the uid path needs root")
        assert sandbox._kill_all(uid, stranger.pid) == 0
        assert stranger.poll() is None, "an unrelated session was killed"
    finally:
        stranger.kill()
        stranger.wait()
