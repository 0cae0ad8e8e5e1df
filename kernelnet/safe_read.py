"""The one way kernelnet reads a file it did not just create: run-folder files, saved models,
users' data, configs, scheduler files.

Every read here
- opens without blocking and refuses anything but a regular file (a FIFO, device, socket or
  directory is refused at once, so ``mkfifo run.json`` cannot hang a reader and a link to
  ``/dev/zero`` cannot be read forever);
- refuses, when a ``root`` folder is given, a path whose real location is outside it (a
  symlink out of a run folder);
- checks the size against a bound before reading, and reads at most that bound (a file
  that grows while it is read is refused, not followed);
- for JSON, bounds the nesting depth before parsing (no RecursionError, no deep trees for
  the recursive code that walks the result);
- for ``.npz``, checks every member's declared shape and dtype against its declared size
  and the bound before a byte is inflated (a zip bomb or a header declaring 10^12 elements
  is refused in microseconds), never unpickles;
- for CSV, streams rows.

Refusals are :class:`ReadRefused`, an ``OSError``, so callers that already turn an
unreadable file into one line (``except OSError``) say these too.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from tokenize import TokenError
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# NumPy is imported where arrays are read: a config read must not pay for it.

MiB = 2**20
RUN_FILE_BYTES = 64 * MiB  # run.json, grid.json, summary.json, metrics.csv, a cell's JSON
MAX_JSON_DEPTH = 64
MAX_NPZ_MEMBERS = 10_000
MAX_LINE = 16 * MiB  # characters in one line of a CSV file


class ReadRefused(OSError):
    """A file kernelnet will not read (not a regular file, outside its folder, too large,
    too deep, or an archive whose members are not plain arrays of their declared size)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _check_regular(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise ReadRefused(f"{path}: {_kind(mode)}, not a regular file")


def inside(path: Path, root: Path) -> bool:
    """Whether ``path``'s real location (every symlink followed) is within ``root``'s."""
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def check_inside(path: Path, root: Path | None) -> None:
    if root is not None and not inside(path, root):
        raise ReadRefused(f"{path}: a link out of {root} (to {os.path.realpath(path)})")


@contextlib.contextmanager
def open_regular(
    path: Path | str, max_bytes: int, root: Path | None = None
) -> Iterator[tuple[IO[bytes], int]]:
    """``(binary file, size)`` of a regular file no larger than ``max_bytes``.

    FileNotFoundError when there is none; ReadRefused for anything else kernelnet will not
    read. The file is opened with O_NONBLOCK (a FIFO's open would wait for a writer) and
    checked with fstat on the descriptor actually read, so a swap after the check is moot.
    """
    path = Path(path)
    check_inside(path, root)
    _check_regular(path, os.stat(path).st_mode)  # a socket cannot even be opened
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        _check_regular(path, info.st_mode)
        if info.st_size > max_bytes:
            raise ReadRefused(
                f"{path}: {info.st_size:,} bytes, over the {max_bytes:,}-byte bound for it"
            )
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle, info.st_size


def read_bytes(path: Path | str, max_bytes: int, root: Path | None = None) -> bytes:
    """The whole file, at most ``max_bytes`` (one that grows past it while read is refused)."""
    with open_regular(path, max_bytes, root) as (handle, _):
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ReadRefused(f"{path}: grew past the {max_bytes:,}-byte bound while being read")
    return data


def read_text(path: Path | str, max_bytes: int, root: Path | None = None) -> str:
    """UTF-8 text (a byte-order mark is dropped); UnicodeDecodeError if it is not."""
    return read_bytes(path, max_bytes, root).decode("utf-8-sig")


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text (strings skipped), in C-speed
    passes: no parser recursion is needed to know it."""
    import numpy as np

    structure = np.frombuffer(_JSON_STRING.sub(b'""', data), np.uint8)
    steps = np.zeros(structure.shape, np.int32)
    steps[(structure == ord("[")) | (structure == ord("{"))] = 1
    steps[(structure == ord("]")) | (structure == ord("}"))] = -1
    return int(np.cumsum(steps).max(initial=0))


def parse_json(data: bytes, where: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON from bytes with its depth bounded; ValueError (json.JSONDecodeError or one
    saying the depth) otherwise. NaN and infinities are not JSON and are refused."""
    depth = json_depth(data)
    if depth > max_depth:
        raise ValueError(f"{where}: JSON nested {depth:,} deep (at most {max_depth})")

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{where}: {name} is not JSON")

    return json.loads(data.decode("utf-8-sig"), parse_constant=refuse_constant)


def read_json(
    path: Path | str,
    max_bytes: int = RUN_FILE_BYTES,
    root: Path | None = None,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """A JSON file, bounded in size and depth (UnicodeDecodeError or ValueError if bad)."""
    return parse_json(read_bytes(path, max_bytes, root), str(path), max_depth)


def _member_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> np.ndarray:
    """One .npy member, its header checked against its declared size before inflating."""
    import numpy as np

    fmt = np.lib.format
    with archive.open(info) as member:
        version = fmt.read_magic(member)
        if version == (1, 0):
            read_header = fmt.read_array_header_1_0
        elif version in ((2, 0), (3, 0)):
            read_header = fmt.read_array_header_2_0
        else:
            raise ValueError(f"{where}: .npy format version {version} is not supported")
        try:
            shape, fortran, dtype = read_header(member, max_header_size=10_000)
        except (SyntaxError, TokenError, TypeError, MemoryError, RecursionError) as exc:
            # NumPy parses the header as a Python literal: a damaged one fails in these ways
            raise ValueError(f"{where}: a damaged .npy header ({type(exc).__name__})") from None
        if dtype.hasobject or dtype.kind not in "biufcUS":
            raise ValueError(f"{where}: holds {dtype} values, not plain numbers or text")
        count = 1
        for extent in shape:
            count *= int(extent)
        needed = count * dtype.itemsize
        header = member.tell()
        if needed != info.file_size - header:
            raise ValueError(
                f"{where}: declares {tuple(shape)} {dtype} ({needed:,} bytes) but holds "
                f"{info.file_size - header:,}"
            )
        data = bytearray(needed)
        view = memoryview(data)
        filled = 0
        while filled < needed:
            got = member.readinto(view[filled:])
            if not got:
                raise ValueError(f"{where}: truncated")
            filled += got
    array = np.frombuffer(data, dtype=dtype)
    if fortran:
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def read_npz(
    path: Path | str, max_bytes: int | None = None, root: Path | None = None
) -> dict[str, np.ndarray]:
    """Every array of an .npz archive, with the archive's declared inflated size bounded by
    ``max_bytes`` (default: the memory limit, ``KERNELNET_MEMORY_LIMIT``) and each member's
    .npy header consistent with its size, checked before inflating. ValueError for anything
    that is not such an archive (a truncated file, a bare .npy, object arrays); ReadRefused
    for a file that is not regular or too large."""
    if max_bytes is None:
        from kernelnet.footprint import memory_limit

        max_bytes = memory_limit()
    with open_regular(path, max_bytes, root) as (handle, _):
        try:
            with zipfile.ZipFile(handle) as archive:
                infos = archive.infolist()
                if len(infos) > MAX_NPZ_MEMBERS:
                    raise ValueError(
                        f"{path}: {len(infos):,} members (at most {MAX_NPZ_MEMBERS:,})"
                    )
                declared = sum(info.file_size for info in infos)
                if declared > max_bytes:
                    raise ReadRefused(
                        f"{path}: inflates to {declared:,} bytes, over the {max_bytes:,}-byte "
                        "bound for it"
                    )
                arrays = {}
                for info in infos:
                    name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                    arrays[name] = _member_array(archive, info, f"{path}: {name}")
                return arrays
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: not an .npz archive ({exc})") from None
        except (NotImplementedError, RuntimeError) as exc:  # other compression; encrypted
            raise ValueError(f"{path}: not an .npz archive kernelnet reads ({exc})") from None


def csv_rows(
    path: Path | str,
    max_bytes: int,
    root: Path | None = None,
    delimiter: str = ",",
) -> Iterator[list[str]]:
    """The rows of a CSV file, streamed (UTF-8, a byte-order mark dropped); UnicodeDecodeError
    or csv.Error when it is not such a file."""
    with open_regular(path, max_bytes, root) as (handle, _):
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
        yield from csv.reader(_bounded_lines(text, path), delimiter=delimiter)


def _bounded_lines(text: IO[str], path: Path | str) -> Iterator[str]:
    """Lines of at most MAX_LINE characters: a file with no newline cannot be read whole
    into one line (csv's field limit alone would only stop it after the whole line)."""
    number = 0
    while line := text.readline(MAX_LINE + 1):
        number += 1
        if len(line) > MAX_LINE:
            raise ReadRefused(f"{path}: line {number:,} is over {MAX_LINE:,} characters")
        yield line
