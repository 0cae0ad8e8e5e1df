"""Notebooks run top to bottom in the sandbox: a real Jupyter kernel per run, under the
sandbox's uid, network namespace and limits; each ending gets its outcome and leaves nothing.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

from kernelnet.errors import ConfigError
from kernelnet.grading import notebooks
from kernelnet.grading.notebooks import NotebooksUnavailable, notebooks_available, run_notebook
from kernelnet.grading.sandbox import Limits, Status, processes_of_uid

pytestmark = pytest.mark.skipif(not notebooks_available(), reason="needs kernelnet[notebooks]")
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root: uid drop, netns")
LIMITS = Limits(wall_seconds=60, cpu_seconds=30, memory_bytes=3 * 2**30, file_bytes=4 * 2**20)
ALLOWED = ("numpy", "math", "os", "sys", "time", "matplotlib")


def write_notebook(folder: Path, name: str, cells: list[str]) -> Path:
    """A notebook as Jupyter saves it (nbformat 4): a markdown cell first, then the code
    cells, so that code-cell numbers differ from cell positions."""
    cell = {"metadata": {}, "outputs": [], "execution_count": None}
    content = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Homework\n"]}]
        + [{**cell, "cell_type": "code", "id": f"c{i}", "source": s} for i, s in enumerate(cells)],
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def run(folder: Path, name: str = "hw.ipynb", limits: Limits = LIMITS, **kwargs):
    kwargs.setdefault("allowed_imports", ALLOWED)
    return run_notebook(folder, name, limits, **kwargs)


def no_folder(*args, **kwargs):
    raise AssertionError("a sandbox folder was made: something was about to run")


def assert_nothing_left(outcome) -> None:
    assert outcome.leftover_processes == 0
    if outcome.isolation.uid is not None:
        assert processes_of_uid(outcome.isolation.uid) == []


def test_a_good_notebook_runs_every_cell_with_the_submissions_files_and_data(tmp_path):
    folder = tmp_path / "submission"
    data = tmp_path / "X_train.npy"
    np.save(data, np.arange(5.0))
    write_notebook(
        folder,
        "hw.ipynb",
        [
            "%matplotlib inline\nimport numpy as np\nfrom helpers import twice",
            "X = np.load('data/X_train.npy')\nprint('total', twice(X).sum())",
            "",  # an empty code cell still counts
            "import matplotlib.pyplot as plt\nplt.plot(X)\nplt.show()",
            "import os\nprint('uid', os.getuid())",
        ],
    )
    (folder / "helpers.py").write_text("def twice(x):\n    return 2 * x\n", encoding="utf-8")
    outcome = run(folder, data_files=[data])
    assert outcome.status is Status.OK, (outcome.message, outcome.traceback)
    assert outcome.message == "ran its 5 code cells"
    assert "total 20.0\n" in outcome.stdout
    if outcome.isolation.uid is not None:
        assert f"uid {outcome.isolation.uid}\n" in outcome.stdout
        assert outcome.isolation.network_isolated
    assert_nothing_left(outcome)


def test_a_failing_cell_is_named_with_its_error_and_lines(tmp_path):
    folder = tmp_path / "submission"
    write_notebook(
        folder,
        "hw.ipynb",
        [
            "x = 1",
            "from helpers import inverse",
            "y = inverse(0)  # cell 3 fails",
            "print('never printed')",
        ],
    )
    (folder / "helpers.py").write_text("def inverse(x):\n    return 1 / x\n", encoding="utf-8")
    outcome = run(folder)
    assert outcome.status is Status.EXCEPTION
    assert outcome.message == "cell 3: ZeroDivisionError: division by zero"
    assert outcome.exception_type == "ZeroDivisionError"
    text = "\n".join(outcome.traceback)
    assert "y = inverse(0)  # cell 3 fails" in text and "return 1 / x" in text
    assert "helpers.py" in text and "kernelnet-notebook" not in text  # the folder is hidden
    assert "\x1b[" not in text and "never printed" not in outcome.stdout


def test_an_infinite_loop_times_out_and_leaves_no_process(tmp_path):
    folder = tmp_path / "submission"
    write_notebook(
        folder,
        "hw.ipynb",
        [
            "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(120)",
            "while True:\n    pass",
        ],
    )
    outcome = run(folder, limits=Limits(wall_seconds=8, cpu_seconds=60, memory_bytes=3 * 2**30))
    assert outcome.status is Status.TIMEOUT
    assert outcome.message == "still running after 8 s: killed"
    assert_nothing_left(outcome)


def test_cpu_and_memory_limits_bind_in_the_kernel(tmp_path):
    folder = tmp_path / "submission"
    write_notebook(folder, "cpu.ipynb", ["x = 0", "while True:\n    x += 1"])
    write_notebook(folder, "memory.ipynb", ["import numpy as np\nbig = np.ones(2**33)"])
    cpu = run(folder, "cpu.ipynb", Limits(wall_seconds=60, cpu_seconds=2, memory_bytes=3 * 2**30))
    assert cpu.status is Status.CPU_LIMIT, cpu.message
    assert cpu.message == "cell 2: used more than 2 s of CPU time"
    memory = run(folder, "memory.ipynb")
    assert memory.status is Status.MEMORY_LIMIT, memory.message
    assert memory.message.startswith("cell 1: MemoryError:")
    assert_nothing_left(cpu)


def test_a_forbidden_import_fails_its_cell(tmp_path):
    folder = tmp_path / "submission"
    write_notebook(folder, "hw.ipynb", ["import numpy as np", "import socket"])
    outcome = run(folder)
    assert outcome.status is Status.FORBIDDEN
    assert outcome.message.startswith("cell 2: ForbiddenImport: import of 'socket' is not allowed")
    assert outcome.forbidden == ("socket",)
    assert not any("child.py" in line for line in outcome.traceback)  # the policy's frames


@needs_root
def test_a_socket_reaches_nothing_and_the_kernel_runs_as_the_sandbox_uid(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(5)
        port = server.getsockname()[1]
        folder = tmp_path / "submission"
        write_notebook(
            folder,
            "hw.ipynb",
            [
                "import os\nuids = set()\nfor tid in os.listdir('/proc/self/task'):\n"
                "    for line in open(f'/proc/self/task/{tid}/status'):\n"
                "        if line.startswith('Uid:'):\n            uids.add(line.split()[1])\n"
                "print('uids', sorted(uids), len(os.listdir('/proc/self/task')) > 1)",
                f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)",
            ],
        )
        outcome = run(folder, allowed_imports=ALLOWED + ("socket",))
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()
    assert outcome.status is Status.EXCEPTION, outcome.message
    assert outcome.message.startswith("cell 2: OSError:") or "Connection" in outcome.message
    # Every thread of the kernel (it has several) dropped to the one sandbox uid.
    assert f"uids ['{outcome.isolation.uid}'] True" in outcome.stdout
    assert_nothing_left(outcome)


def test_printing_past_the_file_size_limit_is_output_too_large(tmp_path):
    folder = tmp_path / "submission"
    write_notebook(folder, "hw.ipynb", ["for _ in range(80):\n    print('z' * 2**16)"])
    outcome = run(folder)  # file_bytes 4 MiB, 5 MiB printed
    assert outcome.status is Status.OUTPUT_TOO_LARGE, outcome.message
    assert outcome.message.startswith("cell 1: printed 4,194,304 bytes or more to stdout")
    assert outcome.stdout_cut and len(outcome.stdout) == LIMITS.output_bytes


@pytest.mark.parametrize(
    "content, says",
    [
        (b'{"nbformat": 4, "cells": [{"cell_type": "code", "sou', "not a notebook"),
        (b"[1, 2, 3]", "not a notebook"),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "nested"),
        (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                     "cells": [{"cell_type": "code", "source": 7}]}).encode(), "not a notebook"),
    ],
)  # fmt: skip
def test_a_damaged_notebook_is_one_clear_line(tmp_path, content, says, monkeypatch):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "hw.ipynb").write_bytes(content)
    monkeypatch.setattr(notebooks.tempfile, "mkdtemp", no_folder)  # refused before any
    outcome = run(folder)
    assert outcome.status is Status.EXCEPTION and outcome.exception_type == "InvalidNotebook"
    assert outcome.message.startswith("hw.ipynb: ") and says in outcome.message
    assert "\n" not in outcome.message and str(tmp_path) not in outcome.message
    assert outcome.traceback == ()


def test_an_oversized_notebook_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(notebooks, "MAX_NOTEBOOK_BYTES", 1000)
    folder = tmp_path / "submission"
    write_notebook(folder, "hw.ipynb", ["x = '" + "y" * 2000 + "'"])
    outcome = run(folder)
    assert outcome.status is Status.EXCEPTION
    assert outcome.message.startswith("hw.ipynb: ") and "1,000-byte bound" in outcome.message


def test_a_name_that_is_not_a_notebook_of_the_folder_is_refused(tmp_path):
    folder = tmp_path / "submission"
    write_notebook(folder, "hw.ipynb", ["x = 1"])
    for name in ("../hw.ipynb", "hw.py", "sub/hw.ipynb"):
        with pytest.raises(ValueError, match="not the name of a .ipynb file"):
            run(folder, name)
    with pytest.raises(FileNotFoundError):
        run(folder, "other.ipynb")


def test_without_the_extra_nothing_runs_and_the_error_says_how_to_install(tmp_path, monkeypatch):
    folder = tmp_path / "submission"
    write_notebook(folder, "hw.ipynb", ["x = 1"])
    monkeypatch.setitem(sys.modules, "nbclient", None)  # as if it were not installed
    monkeypatch.setattr(notebooks.tempfile, "mkdtemp", no_folder)
    assert not notebooks_available()
    with pytest.raises(NotebooksUnavailable) as raised:
        run(folder)
    message = str(raised.value)
    assert isinstance(raised.value, ConfigError) and raised.value.exit_code == 2
    assert message == "running notebooks needs nbclient: pip install 'kernelnet[notebooks]'"
    assert "\n" not in str(NotebooksUnavailable())


def test_a_kernel_that_cannot_start_is_a_sandbox_error_saying_why(tmp_path, monkeypatch):
    folder = tmp_path / "submission"
    write_notebook(folder, "hw.ipynb", ["x = 1"])
    # Limits the kernel cannot set (a negative descriptor count): kernelnet's fault, not the
    # student's, and the kernel's own last words are in the message.
    monkeypatch.setattr(notebooks, "KERNEL_FILES", -10_000)
    outcome = run(folder)
    assert outcome.status is Status.SANDBOX_ERROR, outcome.message
    assert outcome.message.startswith("the notebook could not be run: ")
    assert "ValueError" in outcome.message and "\n" not in outcome.message
    assert_nothing_left(outcome)
