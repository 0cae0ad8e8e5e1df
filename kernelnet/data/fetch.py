"""Download MNIST from a public mirror into the data folder, with the same verification
as the loader (sha256 of the decompressed bytes, IDX header checks).

A download cannot hang or blow up: each file has an overall deadline (not only a per-read
timeout, which a server sending one byte every few seconds never trips), the compressed
and the decompressed sizes are capped while streaming, the sha256 is computed as the data
arrives, and the copy in the data folder is replaced only by a file that passed every
check. Every network failure is a DataError (one line, exit 2).
"""

from __future__ import annotations

import hashlib
import time
import zlib
from pathlib import Path

from kernelnet.errors import DataError

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
    from kernelnet.runs import write_atomic

    folder = destination / "mnist"
    written = []
    for key, (name, pin) in FILES.items():
        target = folder / f"{name}.gz"
        if target.is_file() and not force and _digest(target.read_bytes()) == pin:
            continue
        url = f"{base_url.rstrip('/')}/{name}.gz"
        compressed, decompressed, digest = download(url, timeout, deadline)
        if digest != pin:
            raise DataError(f"{url}: sha256 of the decompressed data is {digest}, expected {pin}")
        parse_idx(decompressed, url, IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC)
        write_atomic(target, lambda handle, data=compressed: handle.write(data))
        written.append(target)
    return written


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
    except (http.client.IncompleteRead, http.client.HTTPException) as exc:
        raise DataError(f"{url}: the server closed the connection early ({exc!r})") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot download {url}: {reason} (are you offline?)") from None
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
