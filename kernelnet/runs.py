"""Run folders: creation, atomic writes, the run.json manifest, ``latest``, listing.

Layout: ``<runs-dir>/<experiment>/<YYYYmmdd-HHMMSS>-<4 hex>/``. Folders are created with
``mkdir(exist_ok=False)`` so two runs started in the same second never share one, and
every file is written through a temporary file in the same folder (flush, fsync,
``os.replace``), so a reader sees either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import logging
import math
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np

from kernelnet import safe_read
from kernelnet.errors import KernelnetError
from kernelnet.safe_write import FILE_MODE, fsync_dir, write_atomic

LATEST = "latest"
log = logging.getLogger(__name__)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def to_jsonable(value: Any) -> Any:
    """NumPy scalars and arrays to plain Python, recursively; non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON has no NaN or infinity
    return value


class RunFolderError(KernelnetError):
    """A run folder, or a file in it, is missing or damaged."""

    exit_code = 2


def _read_json(path: Path, what: type, root: Path | None = None) -> Any:
    try:
        data = safe_read.read_json(path, root=root)
    except FileNotFoundError:
        raise RunFolderError(f"{path}: missing") from None
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError included
        raise RunFolderError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, what):
        raise RunFolderError(f"{path}: expected a JSON {what.__name__}")
    return data


def read_arrays(path: Path, root: Path | None = None) -> dict[str, np.ndarray]:
    """Every array of an .npz file in a run folder, through the bounded reader: declared
    sizes checked before inflating, never unpickled; anything that is not such an archive
    (or not a regular file inside ``root``) is a ValueError saying why."""
    try:
        return safe_read.read_npz(path, root=root)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ValueError(str(exc)) from None


CONFIG = "config.yaml"
GRID = "grid.json"
MANIFEST = "run.json"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
CELLS_DIR = "cells"
PLOTS_DIR = "plots"


def _non_finite(value: Any, path: str = "") -> dict[str, str]:
    """Dotted paths of the non-finite floats in a tree, and what each was."""
    if isinstance(value, dict):
        found: dict[str, str] = {}
        for key, item in value.items():
            found |= _non_finite(item, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(value, (list, tuple)):
        found = {}
        for index, item in enumerate(value):
            found |= _non_finite(item, f"{path}[{index}]")
        return found
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size <= 10_000:
        return _non_finite(value.tolist(), path)
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return {path: repr(float(value))}
    return {}


STATUSES = ("running", "complete", "failed", "interrupted", "diverged")
_MANIFEST_FIELDS: dict[str, Callable[[Any], bool]] = {
    "status": lambda v: v in STATUSES,
    "experiment": lambda v: isinstance(v, str),
    "pid": lambda v: type(v) is int and 0 < v < 2**31,
    "hostname": lambda v: isinstance(v, str),
    "started": lambda v: isinstance(v, str),
    "seconds": lambda v: v is None or (type(v) in (int, float) and math.isfinite(v)),
    "config_sha256": lambda v: isinstance(v, str),
    "resumed": lambda v: isinstance(v, list),
}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


class RunDir:
    """One run's folder. Owns its manifest; every write is atomic. Also the one place that
    knows how to read a run back (manifest, grid, metrics, summary)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.manifest: dict[str, Any] = {}
        self.final_path: Path | None = None  # set by create() until publish()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def create(cls, runs_dir: Path, experiment: str) -> RunDir:
        """Make a fresh, still hidden folder for ``<runs_dir>/<experiment>/<stamp>-<4 hex>``:
        it is filled under a temporary name and :meth:`publish` renames it, so a run folder
        is never visible without its run.json. A runs dir that cannot hold it is a
        RunFolderError naming it."""
        if not str(runs_dir).strip():
            raise RunFolderError("--runs-dir must not be empty")
        parent = Path(runs_dir) / experiment
        try:
            parent.mkdir(parents=True, exist_ok=True)
            if not safe_read.inside(parent, Path(runs_dir)):  # runs/<experiment> links out
                raise RunFolderError(
                    f"{parent}: a link out of {runs_dir} (to {os.path.realpath(parent)}); "
                    "remove it, or give that folder as --runs-dir"
                )
            while True:
                stamp = time.strftime("%Y%m%d-%H%M%S")
                name = f"{stamp}-{secrets.token_hex(2)}"
                path = parent / f".{name}.partial"
                try:
                    path.mkdir(exist_ok=False)
                except FileExistsError:
                    continue
                if not (parent / name).exists():
                    run = cls(path)
                    run.final_path = parent / name
                    return run
                path.rmdir()
        except OSError as exc:
            raise RunFolderError(
                f"--runs-dir {runs_dir}: cannot create a run folder there ({exc.strerror or exc})"
            ) from None

    def publish(self) -> None:
        """Give a folder made by :meth:`create` its real name (atomic rename)."""
        final = self.final_path
        if final is not None and final != self.path:
            os.rename(self.path, final)  # fails rather than merging into an existing folder
            self.path = final
            fsync_dir(final.parent)

    def discard(self) -> None:
        """Remove a folder that was never published (its creation failed half way)."""
        if self.final_path is not None and self.path != self.final_path:
            shutil.rmtree(self.path, ignore_errors=True)

    def file(self, relative: str) -> Path:
        return self.path / relative

    def write_text(self, relative: str, text: str) -> Path:
        return self.write_with(relative, lambda handle: handle.write(text.encode("utf-8")))

    def write_json(self, relative: str, data: Any) -> Path:
        """Strict JSON: a non-finite number is written as null, and a mapping gets a
        ``non_finite_values`` entry saying which values were what (e.g. ``"a.b": "nan"``)."""
        converted = to_jsonable(data)
        replaced = _non_finite(data)
        if replaced and isinstance(converted, dict):
            converted["non_finite_values"] = replaced
        text = json.dumps(converted, indent=2, allow_nan=False)
        return self.write_text(relative, text + "\n")

    def write_with(self, relative: str, write: Callable[[IO[bytes]], None]) -> Path:
        target = self.file(relative)
        write_atomic(target, write, root=self.path)
        return target

    def save_npz(self, relative: str, **arrays: Any) -> Path:
        return self.write_with(relative, lambda handle: np.savez(handle, **arrays))

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self.write_json(MANIFEST, self.manifest)

    def cell_files(self, cell_id: str) -> CellFiles:
        return CellFiles(self, cell_id)

    def cell_folder(self, cell_id: Any) -> Path:
        """``cells/<cell id>``, for an id that is one plain name (an id read from a tampered
        grid.json such as ``/etc`` or ``..`` is a RunFolderError, never a path elsewhere)."""
        if (
            not isinstance(cell_id, str)
            or cell_id in ("", ".", "..")
            or "/" in cell_id
            or "\x00" in cell_id
        ):
            raise RunFolderError(f"{self.file(GRID)}: damaged (cell id {_shown(cell_id)})")
        return self.file(f"{CELLS_DIR}/{cell_id}")

    def cell_file_list(self, cell_id: Any) -> list[Path]:
        """The regular files under a cell's folder, links not followed."""
        found = []
        for folder, _, names in os.walk(self.cell_folder(cell_id), followlinks=False):
            for name in names:
                path = Path(folder) / name
                if path.is_file() and not path.is_symlink():
                    found.append(path)
        return sorted(found)

    # Reading a run back.
    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run folder with its manifest read; RunFolderError if it is not one."""
        run = cls(Path(path))
        if not run.path.is_dir():
            raise RunFolderError(f"{run.path}: not a run folder (no such directory)")
        run.manifest = run.read_manifest()
        run.check_contained()
        return run

    def check_contained(self) -> None:
        """Refuse a folder whose entries link out of it (``cells/`` pointing at another run
        would have a reader show, and ``--resume`` overwrite, that run's results)."""
        folders = [self.path, self.file(CELLS_DIR), self.file(PLOTS_DIR)]
        for folder in folders:
            if folder != self.path and (folder.is_symlink() or not folder.is_dir()):
                continue  # a link is checked as an entry of the run folder itself
            for entry in _entries(folder):
                if entry.is_symlink() and not safe_read.inside(Path(entry.path), self.path):
                    raise RunFolderError(
                        f"{entry.path}: a link out of the run folder (to "
                        f"{os.path.realpath(entry.path)}); refusing to use this run"
                    )

    def read_manifest(self) -> dict[str, Any]:
        """run.json, with the fields readers act on checked (a tampered status or pid is a
        damaged folder, not an internal error later)."""
        path = self.file(MANIFEST)
        manifest = _read_json(path, dict, self.path)
        for key, check in _MANIFEST_FIELDS.items():
            if key in manifest and not check(manifest[key]):
                raise RunFolderError(f"{path}: damaged ({key}: {_shown(manifest[key])})")
        return manifest

    def read_grid(self) -> dict[str, Any]:
        return _read_json(self.file(GRID), dict, self.path)

    def read_summary(self) -> dict[str, Any]:
        return _read_json(self.file(SUMMARY), dict, self.path)

    def read_json(self, relative: str, what: type = dict) -> Any:
        """Any JSON file of the run, bounded like every other read (RunFolderError if bad)."""
        return _read_json(self.file(relative), what, self.path)

    def read_text_file(self, relative: str) -> str:
        """A text file of the run (metrics.md, log.txt), bounded; RunFolderError if bad."""
        path = self.file(relative)
        try:
            return safe_read.read_bytes(path, safe_read.RUN_FILE_BYTES, self.path).decode(
                "utf-8", errors="replace"
            )
        except FileNotFoundError:
            raise RunFolderError(f"{path}: missing") from None
        except OSError as exc:
            raise RunFolderError(f"{path}: unreadable ({exc})") from None

    def read_arrays(self, relative: str) -> dict[str, np.ndarray]:
        """An .npz file of the run (FileNotFoundError if absent, ValueError if damaged)."""
        return read_arrays(self.file(relative), self.path)

    def read_config(self) -> dict[str, Any]:
        """config.yaml through the strict loader (no tags, bounded), as a plain dict."""
        from kernelnet.config import read_config_file

        try:
            return read_config_file(self.file(CONFIG)).values
        except KernelnetError as exc:
            raise RunFolderError(str(exc)) from None

    def read_metrics(self) -> list[dict[str, str]]:
        """metrics.csv as row dicts of strings."""
        path = self.file(METRICS)
        try:
            rows = safe_read.csv_rows(path, safe_read.RUN_FILE_BYTES, self.path)
            header = next(rows, None)
            if not header:
                raise RunFolderError(f"{path}: damaged (empty: no header row)")
            found = []
            for number, row in enumerate(rows, start=2):
                if not row:
                    continue  # csv.DictReader's rule: blank lines are not rows
                if len(row) != len(header):  # the runner writes every row whole
                    raise RunFolderError(
                        f"{path}:{number}: damaged ({len(row)} fields, the header has "
                        f"{len(header)})"
                    )
                found.append(dict(zip(header, row)))
            return found
        except FileNotFoundError:
            raise RunFolderError(f"{path}: missing") from None
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise RunFolderError(f"{path}: unreadable ({exc})") from None

    def link_latest(self, runs_dir: Path) -> None:
        """Point ``<runs_dir>/latest`` at this folder (atomically replaced, relative). A
        ``latest`` that is not a symlink is left alone, with a warning: it is not ours."""
        link = Path(runs_dir) / LATEST
        if link.exists() and not link.is_symlink():
            log.warning("%s is not a symlink; left as it is (remove it to get 'latest')", link)
            return
        target = os.path.relpath(self.path, link.parent)
        tmp = link.parent / f".{LATEST}.{secrets.token_hex(4)}"
        try:
            os.symlink(target, tmp)
            os.replace(tmp, link)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            log.warning("could not point %s at the new run: %s", link, exc.strerror or exc)


_RESERVED = ("result.json", "result-arrays.npz")  # the cell store's own files


class CellFiles:
    """The files of one cell: data under ``cells/<cell id>/``, figures under
    ``plots/<cell id>/``. The only writer a cell gets, so two cells can never write the
    same path; names are plain relative paths inside those folders."""

    def __init__(self, run: RunDir, cell_id: str):
        self.run = run
        self.cell_id = cell_id

    def _relative(self, root: str, name: str) -> str:
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or ".." in parts or name in _RESERVED:
            raise ValueError(f"cell file name {name!r} must be a plain relative path")
        return f"{root}/{self.cell_id}/{name}"

    @property
    def folder(self) -> Path:
        return self.run.file(f"{CELLS_DIR}/{self.cell_id}")

    def path(self, name: str) -> Path:
        return self.run.file(self._relative(CELLS_DIR, name))

    def write_json(self, name: str, data: Any) -> Path:
        return self.run.write_json(self._relative(CELLS_DIR, name), data)

    def write_text(self, name: str, text: str) -> Path:
        return self.run.write_text(self._relative(CELLS_DIR, name), text)

    def read_json(self, name: str) -> Any:
        """A JSON file this cell wrote, through the bounded reader (FileNotFoundError if
        absent; OSError or ValueError if it is not a regular, sound JSON file in the run)."""
        return safe_read.read_json(self.path(name), root=self.run.path)

    def read_arrays(self, name: str) -> dict[str, np.ndarray]:
        """An .npz file this cell wrote (FileNotFoundError if absent, ValueError if bad)."""
        return self.run.read_arrays(self._relative(CELLS_DIR, name))

    def save_npz(self, name: str, **arrays: Any) -> Path:
        return self.run.save_npz(self._relative(CELLS_DIR, name), **arrays)

    def save_params(self, name: str = "params", json_too: bool = True, **arrays: Any) -> Path:
        """``<name>.npz``; small parameter sets also as ``<name>.json``."""
        path = self.save_npz(f"{name}.npz", **arrays)
        if json_too and sum(np.asarray(a).size for a in arrays.values()) <= 10_000:
            self.write_json(f"{name}.json", {k: np.asarray(v) for k, v in arrays.items()})
        return path

    def save_figure(self, name: str, figure: Any, dpi: int = 120) -> Path:
        """``plots/<cell id>/<name>.png``."""
        from kernelnet.plotting import save

        relative = self._relative(PLOTS_DIR, f"{name}.png")
        save(self.run, relative, figure, dpi)
        return self.run.file(relative)


LOCK = ".lock"


class RunLocked(RunFolderError):
    """Another process is executing this run."""


@contextlib.contextmanager
def run_lock(run: RunDir) -> Iterator[None]:
    """Hold an exclusive lock on the run folder while it is being executed (released by
    the kernel when the process dies, however it dies). A second process gets RunLocked
    naming the holder's pid."""
    path = run.file(LOCK)
    try:  # never through a link: the lock file is truncated and written
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, FILE_MODE)
    except OSError as exc:
        raise RunFolderError(f"{path}: cannot lock the run ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunLocked(f"{run.path}: still running, pid {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def lock_held(folder: Path) -> bool | None:
    """Whether some process holds the run's lock; None when the folder has no lock file
    (or it cannot be opened: then the pid decides)."""
    try:
        fd = os.open(Path(folder) / LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # closing releases the shared lock if it was taken
    return False


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
        """The recorded status, except a ``running`` run that nothing runs any more: its
        lock is free (its process ended, or could not write its final status), or, for a
        folder without a lock, its process is gone."""
        status = self.manifest.get("status", "unknown")
        if status != "running":
            return status
        held = lock_held(self.path)
        if held is not None:
            return "running" if held else "interrupted"
        pid = self.manifest.get("pid")
        same_host = self.manifest.get("hostname") in (None, os.uname().nodename)
        if isinstance(pid, int) and same_host and not pid_alive(pid):
            return "interrupted"
        return status


def _run_folders(runs_dir: Path) -> list[Path]:
    """``<runs_dir>/<experiment>/<id>`` folders, sorted, without following links (``latest``
    is a link into one of them) and without hidden ones (a run still being created)."""
    found = []
    for experiment in _entries(runs_dir):
        if experiment.is_dir(follow_symlinks=False):
            found += [
                Path(run.path)
                for run in _entries(Path(experiment.path))
                if run.is_dir(follow_symlinks=False) and not run.name.startswith(".")
            ]
    return sorted(found)


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return [entry for entry in entries if not entry.name.startswith(".")]
    except OSError:  # no such folder, not a folder, unreadable: no runs there
        return []


def iter_runs(runs_dir: Path, warn: Callable[[str], None] | None = None) -> Iterator[RunInfo]:
    """Every run folder under ``runs_dir`` with a readable run.json, oldest first; a
    damaged or foreign one is skipped, with one line to ``warn`` saying why."""
    found = []
    for folder in _run_folders(Path(runs_dir)):
        try:
            manifest = RunDir(folder).read_manifest()
        except RunFolderError as exc:
            if warn is not None:
                warn(f"skipped {exc}")
            continue
        found.append(RunInfo(folder, manifest))
    yield from sorted(found, key=lambda r: (str(r.manifest.get("started", "")), r.path.name))


def resolve_run(name: str | Path, runs_dir: Path) -> RunDir:
    """A run named by its folder path, ``latest``, its id (``20261123-101500-ab12``) or a
    unique prefix of the id; RunFolderError saying what matched otherwise."""
    text = str(name)
    try:
        return _resolve(text, Path(runs_dir))
    except OSError as exc:  # a name too long for the file system, a folder we cannot read
        shown = text if len(text) <= 60 else f"{text[:40]}… ({len(text):,} characters)"
        raise RunFolderError(f"{shown}: not a run ({exc.strerror or exc})") from None


def _resolve(text: str, runs_dir: Path) -> RunDir:
    path = Path(text)
    if path.is_dir():
        return RunDir.open(path)
    if text == LATEST:
        link = Path(runs_dir) / LATEST
        if not link.exists():
            raise RunFolderError(f"no run is 'latest' in {runs_dir}")
        return RunDir.open(link.resolve())
    matches = [folder for folder in _run_folders(Path(runs_dir)) if folder.name.startswith(text)]
    exact = [folder for folder in matches if folder.name == text]
    if exact or len(matches) == 1:
        return RunDir.open((exact or matches)[0])
    if not matches:
        raise RunFolderError(f"{text}: no such run folder, and no run id in {runs_dir} starts so")
    shown = ", ".join(sorted(m.name for m in matches)[:5])
    raise RunFolderError(f"{text}: matches {len(matches)} runs ({shown}); give more of the id")
