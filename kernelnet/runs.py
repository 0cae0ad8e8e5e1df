"""Run folders: creation, atomic writes, the run.json manifest, ``latest``, listing.

Layout: ``<runs-dir>/<experiment>/<YYYYmmdd-HHMMSS>-<4 hex>/``. Folders are created with
``mkdir(exist_ok=False)`` so two runs started in the same second never share one, and
every file is written through a temporary file in the same folder (flush, fsync,
``os.replace``), so a reader sees either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files 0600; results should get the permissions any new file would.
_FILE_MODE = 0o666 & ~_current_umask()

LATEST = "latest"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` by calling ``write(fileobj)`` on a temp file, then renaming it.

    If ``write`` raises, the old file (if any) is untouched and the temp file removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def to_jsonable(value: Any) -> Any:
    """NumPy scalars and arrays to plain Python, recursively."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


class RunDir:
    """One run's folder. Owns its manifest; every write is atomic."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.manifest: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def create(cls, runs_dir: Path, experiment: str) -> RunDir:
        """Make a fresh folder ``<runs_dir>/<experiment>/<stamp>-<4 hex>``."""
        parent = Path(runs_dir) / experiment
        parent.mkdir(parents=True, exist_ok=True)
        while True:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = parent / f"{stamp}-{secrets.token_hex(2)}"
            try:
                path.mkdir(exist_ok=False)
            except FileExistsError:
                continue
            return cls(path)

    def file(self, relative: str) -> Path:
        return self.path / relative

    def write_text(self, relative: str, text: str) -> Path:
        target = self.file(relative)
        write_text_atomic(target, text)
        return target

    def write_json(self, relative: str, data: Any) -> Path:
        return self.write_text(relative, json.dumps(to_jsonable(data), indent=2) + "\n")

    def write_with(self, relative: str, write: Callable[[IO[bytes]], None]) -> Path:
        target = self.file(relative)
        write_atomic(target, write)
        return target

    def save_npz(self, relative: str, **arrays: Any) -> Path:
        return self.write_with(relative, lambda handle: np.savez(handle, **arrays))

    def save_params(self, name: str, json_too: bool = True, **arrays: Any) -> Path:
        """``params/<name>.npz``; small parameter sets also as ``params/<name>.json``."""
        path = self.save_npz(f"params/{name}.npz", **arrays)
        if json_too and sum(np.asarray(a).size for a in arrays.values()) <= 10_000:
            self.write_json(f"params/{name}.json", {k: np.asarray(v) for k, v in arrays.items()})
        return path

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self.write_json("run.json", self.manifest)

    def link_latest(self, runs_dir: Path) -> None:
        """Point ``<runs_dir>/latest`` at this folder (atomically replaced, relative)."""
        link = Path(runs_dir) / LATEST
        target = os.path.relpath(self.path, link.parent)
        tmp = link.parent / f".{LATEST}.{secrets.token_hex(4)}"
        os.symlink(target, tmp)
        os.replace(tmp, link)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class RunInfo:
    path: Path
    manifest: dict[str, Any]

    @property
    def status(self) -> str:
        """The recorded status, except a ``running`` run whose process is gone."""
        status = self.manifest.get("status", "unknown")
        pid = self.manifest.get("pid")
        same_host = self.manifest.get("hostname") in (None, os.uname().nodename)
        if status == "running" and isinstance(pid, int) and same_host and not pid_alive(pid):
            return "interrupted"
        return status


def iter_runs(runs_dir: Path) -> Iterator[RunInfo]:
    """Every run folder under ``runs_dir`` with a readable run.json, oldest first."""
    found = []
    for manifest_path in Path(runs_dir).glob("*/*/run.json"):
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        found.append(RunInfo(manifest_path.parent, manifest))
    yield from sorted(found, key=lambda r: (r.manifest.get("started", ""), r.path.name))
