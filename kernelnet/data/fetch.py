"""Download MNIST from a public mirror into the data folder, with the same verification
as the loader (sha256 of the decompressed bytes, IDX header checks).

A download cannot hang or blow up: each file has an overall deadline (not only a per-read
timeout, which a server sending one byte every few seconds never trips), the compressed
and the decompressed sizes are capped while streaming, the sha256 is computed as the data
arrives, and the copy in the data folder is replaced only by a file that passed every
check. Every network failure is a DataError (one line, exit 2).

The mirror URL and the destination are checked before anything is downloaded (a URL that
is not http(s)://HOST/..., a destination that is a file or cannot be written: one line).
Files already there are read through :mod:`kernelnet.safe_read` (regular files inside the
destination, bounded) and written through :mod:`kernelnet.safe_write` with the destination
as root: a symlink at a file's name is replaced, never written through.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
import zlib
from pathlib import Path

from kernelnet.errors import ConfigError, DataError

DEFAULT_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist"
DEADLINE = 300.0  # seconds per file, start to end
MAX_COMPRESSED = 32 * 2**20  # the largest MNIST .gz is 9.5 MB
MAX_DECOMPRESSED = 64 * 2**20  # the largest MNIST file is 47 MB
CHUNK = 64 * 2**10


def fetch_mnist(
    destination: Path,
    base_url: str = DEFAULT_MIRROR,
    timeout: float = 30.0,
    force: bool = False,
    deadline: float = DEADLINE,
) -> list[Path]:
    """Download the four ``.gz`` files into ``destination/mnist``; returns what was written.

    Files already present and matching their pins are kept unless ``force``. Each file is
    verified before it replaces anything, and written atomically.
    """
    from kernelnet.data.mnist import FILES, IMAGES_MAGIC, LABELS_MAGIC, parse_idx

    check_mirror(base_url)
    destination = Path(destination)
    folder = _writable_folder(destination)
    written = []
    for key, (name, pin) in FILES.items():
        target = folder / f"{name}.gz"
        if not force and _present(target, pin, destination):
            continue
        url = f"{base_url.rstrip('/')}/{name}.gz"
        compressed, decompressed, digest = download(url, timeout, deadline)
        if digest != pin:
            raise DataError(f"{url}: sha256 of the decompressed data is {digest}, expected {pin}")
        parse_idx(decompressed, url, IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC)
        _write(target, compressed, destination)
        written.append(target)
    return written


def check_mirror(base_url: str) -> None:
    """A ConfigError (one line) unless ``base_url`` is an http:// or https:// address."""
    import urllib.parse

    shown = base_url if len(base_url) <= 80 else f"{base_url[:60]}… ({len(base_url):,} chars)"
    expected = f"expected an http:// or https:// address of a mirror, such as {DEFAULT_MIRROR}"
    if any(ord(c) <= 0x20 or 0x7F <= ord(c) <= 0x9F for c in base_url):
        raise ConfigError(f"--url {shown!r}: holds a space or control character; {expected}")
    try:
        parts = urllib.parse.urlsplit(base_url)
        parts.port  # noqa: B018 (parsing it is the check: a port that is not a number)
    except ValueError as exc:
        raise ConfigError(f"--url {shown!r}: not a URL ({exc}); {expected}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--url {shown!r}: {expected}")


def _where(exc: OSError) -> str:
    if exc.strerror is None:  # safe_write's refusal says it all
        return str(exc)
    return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror


def _writable_folder(destination: Path) -> Path:
    """``destination/mnist``, created, after checking (before any download) that both are
    folders, that it is not a link out of ``destination``, and that a file can be made in
    it (a read-only or immutable folder is said now, not after ten megabytes)."""
    import tempfile

    from kernelnet.safe_write import contained_parent

    folder = destination / "mnist"
    text = str(destination)
    shown = text if len(text) <= 80 else f"{text[:60]}… ({len(text):,} characters)"
    for path in (destination, folder):
        if os.path.lexists(path) and not path.is_dir():
            raise DataError(f"--dest {shown}: {path.name} exists and is not a folder")
    try:
        destination.mkdir(parents=True, exist_ok=True)  # the folder the user named
        contained_parent(folder / "probe", destination)
        with tempfile.TemporaryFile(dir=folder, prefix=".kernelnet-probe-"):
            pass
    except OSError as exc:
        why = (
            "the name is too long for the file system"
            if exc.errno == errno.ENAMETOOLONG
            else f"cannot write there ({_where(exc)})"
        )
        raise DataError(f"--dest {shown}: {why}; choose another --dest") from None
    return folder


def _present(target: Path, pin: str, destination: Path) -> bool:
    """Whether ``target`` is a regular file inside ``destination`` matching ``pin``. Anything
    else there (missing, damaged, a FIFO, a link out of the folder, too large) is fetched
    again and replaced."""
    from kernelnet.safe_read import read_bytes

    try:
        return _digest(read_bytes(target, MAX_COMPRESSED, destination)) == pin
    except OSError:
        return False


def _write(target: Path, data: bytes, destination: Path) -> None:
    from kernelnet.safe_write import write_atomic

    try:
        write_atomic(target, lambda handle: handle.write(data), root=destination)
    except OSError as exc:  # a full disk, a folder made read-only meanwhile, a refusal
        raise DataError(
            f"{target}: cannot write it ({_where(exc)}); the files already verified are kept; "
            "free some space or choose another --dest"
        ) from None


def download(url: str, timeout: float, deadline: float) -> tuple[bytes, bytes, str]:
    """(compressed bytes, decompressed bytes, sha256 of the decompressed bytes) of a gzip
    file at ``url``, streamed under an overall ``deadline`` and the size caps."""
    import http.client  # imported here: the command line's start-up never pays for them
    import urllib.error
    import urllib.request

    started = time.monotonic()

    def remaining() -> float:
        left = deadline - (time.monotonic() - started)
        if left <= 0:
            raise DataError(f"{url}: not downloaded within {deadline:g} s; try again later")
        return left

    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    digest, compressed, decompressed = hashlib.sha256(), bytearray(), bytearray()
    declared = None
    try:
        with urllib.request.urlopen(url, timeout=min(timeout, remaining())) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > MAX_COMPRESSED:
                raise DataError(f"{url}: {int(declared):,} bytes, more than MNIST can be")
            while True:
                # each read waits at most `timeout`; the deadline is checked between reads
                chunk = response.read1(CHUNK)
                remaining()
                if not chunk:
                    break
                compressed += chunk
                if len(compressed) > MAX_COMPRESSED:
                    raise DataError(f"{url}: more than {MAX_COMPRESSED:,} bytes; not MNIST")
                part = inflate.decompress(chunk, MAX_DECOMPRESSED + 1 - len(decompressed))
                decompressed += part
                digest.update(part)
                if len(decompressed) > MAX_DECOMPRESSED or inflate.unconsumed_tail:
                    raise DataError(
                        f"{url}: decompresses to more than {MAX_DECOMPRESSED:,} bytes; not MNIST"
                    )
    except DataError:
        raise
    except zlib.error:
        return bytes(compressed), b"", "not a gzip file"
    except http.client.InvalidURL as exc:
        raise DataError(f"{url}: not a URL that can be fetched ({exc})") from None
    except (http.client.IncompleteRead, http.client.HTTPException) as exc:
        raise DataError(f"{url}: the server closed the connection early ({exc!r})") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot download {url}: {reason} (are you offline?)") from None
    except ValueError as exc:  # what urllib says of a URL it cannot open
        raise DataError(f"{url}: not a URL that can be fetched ({exc})") from None
    if declared and declared.isdigit() and len(compressed) < int(declared):
        raise DataError(
            f"{url}: the server closed the connection early ({len(compressed):,} of "
            f"{int(declared):,} bytes); try again"
        )
    if not inflate.eof:
        return bytes(compressed), bytes(decompressed), "not a complete gzip file"
    return bytes(compressed), bytes(decompressed), digest.hexdigest()


def _digest(compressed: bytes) -> str:
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    digest = hashlib.sha256()
    try:
        digest.update(inflate.decompress(compressed, MAX_DECOMPRESSED))
    except zlib.error:
        return "not a gzip file"
    if inflate.unconsumed_tail or not inflate.eof:
        return "not a gzip file within the size cap"
    return digest.hexdigest()
