"""What produced a run: versions, platform and the git state of the source tree."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

import kernelnet


def _git(*args: str, cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_state(source: Path | None = None) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` for the tree holding kernelnet, if it is one."""
    source = source or Path(kernelnet.__file__).resolve().parent.parent
    commit = _git("rev-parse", "HEAD", cwd=source)
    if not commit:
        return None
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=source)
    return {"commit": commit, "dirty": bool(status)}


def versions() -> dict[str, str]:
    import cvxopt

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cvxopt": cvxopt.__version__,
        "kernelnet": kernelnet.__version__,
    }


def environment() -> dict[str, Any]:
    return {
        "versions": versions(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "executable": sys.executable,
        "git": git_state(),
    }
