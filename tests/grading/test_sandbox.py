"""The grading sandbox: each hostile submission gets its outcome and leaves nothing behind.

Every call runs a real child process under small limits (a few hundred MB of address space,
seconds of wall clock, 20 processes), so nothing here can endanger the machine.
"""

from __future__ import annotations

import os
import socket
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kernelnet.grading.sandbox import Limits, Status, processes_of_uid, run_function

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


def run(folder: Path, inputs=None, limits: Limits = SMALL, **kwargs):
    kwargs.setdefault("allowed_imports", HOSTILE_IMPORTS)
    return run_function(folder, "student", "f", inputs or {}, limits, **kwargs)


def assert_nothing_left(outcome) -> None:
    assert outcome.leftover_processes == 0
    if outcome.isolation.uid is not None:
        assert processes_of_uid(outcome.isolation.uid) == []


def test_correct_function_returns_the_reference(tmp_path):
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


def test_exception_shows_the_students_own_lines_only(tmp_path):
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


def test_syntax_error_is_an_exception_while_importing(tmp_path):
    folder = submit(tmp_path, "def f(:\n    pass\n")
    outcome = run(folder)
    assert outcome.status is Status.EXCEPTION
    assert outcome.exception_type == "SyntaxError"
    assert "while importing" in outcome.message
    assert any("student.py" in line for line in outcome.traceback)


def test_missing_function_is_an_exception(tmp_path):
    outcome = run(submit(tmp_path, "def g():\n    return 1\n"))
    assert outcome.status is Status.EXCEPTION
    assert outcome.exception_type == "AttributeError" and "'f'" in outcome.message


def test_not_implemented(tmp_path):
    folder = submit(tmp_path, "def f(x):\n    raise NotImplementedError('todo')\n")
    outcome = run(folder, {"x": np.ones(2)})
    assert outcome.status is Status.NOT_IMPLEMENTED


def test_infinite_loop_times_out_and_its_processes_are_gone(tmp_path):
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


def test_cpu_limit(tmp_path):
    folder = submit(tmp_path, "def f():\n    while True:\n        pass\n")
    outcome = run(folder, limits=Limits(wall_seconds=20, cpu_seconds=1))
    assert outcome.status is Status.CPU_LIMIT


def test_a_30_gb_allocation_hits_the_memory_limit(tmp_path):
    folder = submit(tmp_path, "import numpy as np\ndef f():\n    return np.ones(30 * 2**30)\n")
    outcome = run(folder)
    assert outcome.status is Status.MEMORY_LIMIT
    assert outcome.exception_type == "MemoryError"


def test_ten_megabytes_of_output_are_cut(tmp_path):
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


def test_output_over_the_kept_part_is_cut_but_the_call_is_ok(tmp_path):
    folder = submit(tmp_path, "def f():\n    print('y' * 100_000)\n    return 2\n")
    outcome = run(folder)
    assert outcome.status is Status.OK
    assert outcome.stdout_cut and outcome.stdout == "y" * (64 * 2**10)
    assert outcome.outputs["0"] == 2


def test_os_exit_is_a_crash(tmp_path):
    outcome = run(submit(tmp_path, "import os\ndef f():\n    os._exit(3)\n"))
    assert outcome.status is Status.CRASHED
    assert "exited with code 3" in outcome.message


def test_closing_stdout_then_returning_is_ok(tmp_path):
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


def test_input_changed_in_place_is_visible(tmp_path):
    folder = submit(
        tmp_path,
        "import numpy as np\ndef f(x):\n    np.maximum(x, 0, out=x)\n    return x\n",
    )
    x = np.array([-1.0, 2.0, -3.0])
    outcome = run(folder, {"x": x.copy()})
    assert outcome.status is Status.OK
    np.testing.assert_array_equal(outcome.inputs_after["x"], [0.0, 2.0, 0.0])
    assert not np.array_equal(outcome.inputs_after["x"], x)


def test_monkeypatching_numpy_does_not_change_how_outputs_are_saved(tmp_path):
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


def test_returning_text_is_bad_output(tmp_path):
    outcome = run(submit(tmp_path, "def f():\n    return 'hello'\n"))
    assert outcome.status is Status.BAD_OUTPUT
    assert "str" in outcome.message


def test_child_sees_only_copies_minimal_env_and_a_removed_folder(tmp_path, monkeypatch):
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


def test_forbidden_import_at_top_level(tmp_path):
    outcome = run(submit(tmp_path, "import sklearn\ndef f():\n    return 1\n"))
    assert outcome.status is Status.FORBIDDEN
    assert outcome.forbidden == ("sklearn",)
    assert "'sklearn' is not allowed" in outcome.message


def test_forbidden_import_of_a_loaded_stdlib_module_inside_the_function(tmp_path):
    folder = submit(tmp_path, "def f():\n    import subprocess\n    return 1\n")
    outcome = run(folder)
    assert outcome.status is Status.FORBIDDEN and outcome.forbidden == ("subprocess",)


def test_allowed_imports_and_own_modules_work(tmp_path):
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
def test_runs_as_a_fresh_unprivileged_uid_with_the_network_isolated(tmp_path):
    folder = submit(tmp_path, "import os\ndef f():\n    return os.getuid(), os.getgroups()\n")
    outcome = run(folder)
    assert outcome.status is Status.OK
    assert outcome.outputs["0"] == outcome.isolation.uid != 0
    assert outcome.outputs["1"].size == 0
    assert outcome.isolation.network_isolated and outcome.isolation.caveats == ()


@needs_root
def test_writing_outside_its_folder_fails_and_tmp_is_cleaned(tmp_path):
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
def test_reading_a_file_it_should_not_see_is_a_permission_error(tmp_path):
    secret = tmp_path / "expected.npy"
    np.save(secret, np.ones(3))
    secret.chmod(0o600)
    folder = submit(tmp_path, f"def f():\n    return open({str(secret)!r}, 'rb').read(1)\n")
    outcome = run(folder)
    assert outcome.status is Status.EXCEPTION
    assert outcome.exception_type == "PermissionError"


@needs_root
def test_connecting_to_a_local_port_fails_and_the_listener_sees_nothing(tmp_path):
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
def test_the_process_limit_binds_on_a_bounded_fork_loop(tmp_path):
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
def test_a_fork_bomb_is_contained_and_fully_killed(tmp_path):
    folder = submit(tmp_path, "import os\ndef f():\n    while True:\n        os.fork()\n")
    outcome = run(folder, limits=Limits(wall_seconds=3, cpu_seconds=5, processes=20))
    assert outcome.status in (Status.EXCEPTION, Status.TIMEOUT), outcome.message
    assert_nothing_left(outcome)
