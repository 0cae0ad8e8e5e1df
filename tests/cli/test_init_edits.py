"""`kernelnet init` as a new user meets it: it writes my-configs/ (not configs/, which the
commands never read), says how to run an edited config, and an edited config run that way
is the one used; the command alone keeps the shipped config. The README's install line is
the one CI's wheel test runs."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.helpers import kernelnet_cli

ROOT = Path(__file__).resolve().parents[2]


def epochs(run: Path):
    return yaml.safe_load((run / "config.yaml").read_text())["svm"]["epochs"]


def test_an_edited_config_is_used_by_run_and_never_by_the_command_alone(tmp_path):
    done = kernelnet_cli("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config = tmp_path / "my-configs" / "svm-primal.yaml"
    assert config.is_file() and not (tmp_path / "configs").exists()
    assert "kernelnet run my-configs/svm-primal.yaml" in done.stderr
    text = config.read_text()
    edited = text.replace("epochs:", "epochs: 7 #", 1)
    assert edited != text
    config.write_text(edited)
    ran = kernelnet_cli("run", config, "--quiet", "--runs-dir", "runs", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert epochs(Path(tmp_path, ran.stdout.strip().splitlines()[-1])) == 7
    alone = kernelnet_cli("svm-primal", "--quiet", "--runs-dir", "runs", cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    assert epochs(Path(tmp_path, alone.stdout.strip().splitlines()[-1])) != 7


def test_the_readme_install_commands_are_the_ones_ci_runs():
    readme = (ROOT / "README.md").read_text()
    assert "pip wheel . --no-deps -w dist" in readme
    assert "is not on the package index" in readme
    wheel_test = (ROOT / ".ci" / "wheel-test").read_text()
    assert "pip wheel . --no-deps --quiet --wheel-dir" in wheel_test
