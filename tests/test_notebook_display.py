"""kernelnet in a real Jupyter kernel (nbclient): ``kernelnet.run`` shows its progress as one
output updated in place, and a Run shows itself as an HTML table of its cells with its
figures inline. Outside a notebook the library stays quiet (no IPython import)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

nbclient = pytest.importorskip("nbclient", reason="the notebooks extra is not installed")
nbformat = pytest.importorskip("nbformat")


def execute(cells: list[str], cwd) -> list:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return [cell.outputs for cell in notebook.cells]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notebook")
    runs = folder / "runs"
    return execute(
        [
            "import os; os.environ['OPENBLAS_NUM_THREADS'] = '1'\nimport kernelnet",
            f"run = kernelnet.run('kernel-table', runs_dir={str(runs)!r}, overrides={{"
            "'data.dataset': 'moons', 'kernel.name': ['linear', 'rbf'], "
            "'plot.resolution': 20})",
            "run",
        ],
        folder,
    )


def test_a_run_shows_its_progress_as_one_updating_display(outputs):
    """nbclient applies each update to the output it names: one output remains, and it
    reads as the end of the run (it was first drawn as "starting")."""
    (shown,) = [o for o in outputs[1] if o.output_type == "display_data"]
    last = shown["data"]["text/html"]
    assert "2/2 cells" in last and "kernel-table" in last and "starting" not in last


def test_a_run_displays_as_a_table_of_its_cells_with_its_figures(outputs):
    (result,) = [o for o in outputs[2] if o.output_type == "execute_result"]
    page = result["data"]["text/html"]
    assert "<table>" in page and "complete" in page
    for cell in ("kernel=linear", "kernel=rbf"):
        assert cell in page
    assert page.count('src="data:image/png;base64,') >= 2
    assert "Run(" in result["data"]["text/plain"]


def test_outside_a_notebook_the_library_imports_no_ipython(tmp_path):
    code = (
        "import sys, kernelnet\n"
        "kernelnet.run('gradcheck', overrides={'check.name': ['affine']}, "
        f"runs_dir={str(tmp_path)!r})\n"
        "print(json.dumps('IPython' in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) is False
    assert done.stderr == ""
