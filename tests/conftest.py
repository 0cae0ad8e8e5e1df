"""Fixtures more than one test module uses."""

import os
import subprocess
from pathlib import Path

import pytest


@pytest.fixture
def unwritable(tmp_path):
    """Make a folder really unwritable: chmod binds for a user; root ignores permissions, so
    as root only an immutable folder (chattr +i) does. Undone at the end."""
    locked: list[tuple[Path, str]] = []

    def lock(folder: Path) -> None:
        if os.geteuid() != 0:
            folder.chmod(0o555)
            locked.append((folder, "chmod"))
            return
        try:
            done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
        except FileNotFoundError:
            pytest.skip("running as root without chattr: no folder can be made unwritable")
        if done.returncode != 0:
            pytest.skip(f"running as root and chattr +i is refused here: {done.stderr!r}")
        locked.append((folder, "chattr"))
        try:
            (folder / ".probe").touch()
            pytest.skip("chattr +i does not bind on this file system")
        except OSError:
            pass

    yield lock
    for folder, how in locked:
        if how == "chmod":
            folder.chmod(0o755)
        else:
            subprocess.run(["chattr", "-i", str(folder)], check=False)
