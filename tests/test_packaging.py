"""The wheel carries every package, the shipped configs and every shipped dataset (CI's
.ci/wheel-test installs it in a fresh venv and runs experiments outside the checkout)."""

from pathlib import Path

import pytest

from kernelnet.cli.launch import configs_dir
from kernelnet.data.registry import data_root
from kernelnet.shipped import shipped

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_for_the_wheel():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    inits = (ROOT / "kernelnet").rglob("__init__.py")
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in inits}
    assert found | {"kernelnet.configs", "kernelnet.data.shipped"} == set(setuptools["packages"])
    assert setuptools["package-dir"] == {
        "kernelnet.configs": "configs",
        "kernelnet.data.shipped": "data",
    }


def test_package_data_patterns_cover_every_shipped_file():
    import fnmatch

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, folder in setuptools["package-dir"].items():
        patterns = setuptools["package-data"][package]
        for path in (ROOT / folder).rglob("*"):
            if path.is_file():
                relative = str(path.relative_to(ROOT / folder))
                assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


def test_in_a_checkout_the_shipped_folders_are_the_top_level_ones(monkeypatch):
    monkeypatch.delenv("KERNELNET_DATA", raising=False)
    assert shipped("configs") == configs_dir() == ROOT / "configs"
    assert data_root() == ROOT / "data"
    monkeypatch.setenv("KERNELNET_DATA", "/somewhere")
    assert data_root() == Path("/somewhere")
