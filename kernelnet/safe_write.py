"""The one way kernelnet writes a file: atomically, and never through a link out of the
folder it writes into.

A file is written to a temporary file beside it (flush, fsync) and renamed over the target,
so a reader sees the old file or the new one, never half of one; a symlink at the target
name is replaced, not written through. With ``root`` (a run folder, the folder given to
``kernelnet init``, ``data fetch --dest``), the target's folder must really be inside it: a
folder inside that is a symlink elsewhere (``cells/`` pointing at another run) is refused
with :class:`WriteRefused` before anything is created.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from kernelnet.errors import ConfigError
from kernelnet.safe_read import RUN_FILE_BYTES, inside, read_bytes


class WriteRefused(OSError):
    """A write that would leave its folder through a symlink."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files 0600; results should get the permissions any new file would.
FILE_MODE = 0o666 & ~_current_umask()


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def contained_parent(path: Path, root: Path | None) -> Path:
    """``path``'s folder, created if needed, after checking that neither it nor any folder
    on the way from ``root`` is a link out of ``root``."""
    parent = path.parent
    if root is not None:
        # Check the deepest existing ancestor first, so mkdir never creates anything
        # through a link that leaves root.
        existing, root = parent, Path(root)
        while existing != root and not os.path.lexists(existing) and existing != existing.parent:
            existing = existing.parent
        if existing != root and not inside(existing, root):  # root itself is trusted
            raise WriteRefused(f"{path}: {existing} is a link out of {root}; not written")
    parent.mkdir(parents=True, exist_ok=True)
    if root is not None and not inside(parent, root):
        raise WriteRefused(f"{path}: {parent} is a link out of {root}; not written")
    return parent


def write_atomic(path: Path, write: Callable[[IO[bytes]], None], root: Path | None = None) -> None:
    """Write ``path`` by calling ``write(fileobj)`` on a temp file, then renaming it.

    If ``write`` raises, the old file (if any) is untouched and the temp file removed.
    """
    path = Path(path)
    parent = contained_parent(path, root)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(parent)


def write_text_atomic(path: Path, text: str, root: Path | None = None) -> None:
    write_atomic(path, lambda handle: handle.write(text.encode("utf-8")), root)


def open_for_appending(path: Path) -> IO[str]:
    """A log file (a run's log.txt) opened to append, never through a link: whatever is at
    the name that is not a plain file of its own (a symlink planted in a folder being
    resumed, a FIFO, a device, a hard link to a file elsewhere) is first replaced by a
    regular file (holding the old lines when it was a hard-linked log), and the open
    refuses a link (O_NOFOLLOW)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None and not (stat.S_ISREG(info.st_mode) and info.st_nlink == 1):
        kept = b""
        if stat.S_ISREG(info.st_mode):
            with contextlib.suppress(OSError):
                kept = read_bytes(path, RUN_FILE_BYTES, path.parent)
        write_atomic(path, lambda handle: handle.write(kept), root=path.parent)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(path, flags, FILE_MODE)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise WriteRefused(f"{path}: not a regular file; not written")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def shown(path: Path | str) -> str:
    """A path as a one-line message shows it: whole, or its start and its length."""
    text = str(path)
    return text if len(text) <= 80 else f"{text[:60]}… ({len(text):,} characters)"


def cannot_write(folder: Path, exc: OSError, what: str) -> ConfigError:
    """The one line for a user's folder that ``what`` ("configs", "the handout") cannot be
    written into: a name too long, a refused link, or the OS's reason and the file."""
    if exc.errno == errno.ENAMETOOLONG:
        return ConfigError(
            f"{shown(folder)}: the name is too long for the file system (ENAMETOOLONG); "
            "choose a shorter folder name"
        )
    why = exc.strerror or str(exc)  # a WriteRefused carries its own sentence
    where = f": {exc.filename}" if exc.strerror and exc.filename else ""
    return ConfigError(f"{shown(folder)}: cannot write {what} there ({why}{where})")
