"""Download MNIST from a public mirror into the data folder, with the same verification
as the loader (sha256 of the decompressed bytes, IDX header checks)."""

from __future__ import annotations

import gzip
import hashlib
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from kernelnet.data.mnist import FILES, IMAGES_MAGIC, LABELS_MAGIC, parse_idx
from kernelnet.errors import DataError
from kernelnet.runs import write_atomic

DEFAULT_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist"


def fetch_mnist(
    destination: Path, base_url: str = DEFAULT_MIRROR, timeout: float = 30.0, force: bool = False
) -> list[Path]:
    """Download the four ``.gz`` files into ``destination/mnist``; returns what was written.

    Files already present and matching their pins are kept unless ``force``. Each file is
    verified before it replaces anything, and written atomically.
    """
    folder = destination / "mnist"
    written = []
    for key, (name, pin) in FILES.items():
        target = folder / f"{name}.gz"
        if target.is_file() and not force and _digest(target.read_bytes()) == pin:
            continue
        url = f"{base_url.rstrip('/')}/{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                compressed = response.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DataError(f"cannot download {url}: {reason} (are you offline?)") from None
        digest = _digest(compressed)
        if digest != pin:
            raise DataError(f"{url}: sha256 of the decompressed data is {digest}, expected {pin}")
        parse_idx(
            gzip.decompress(compressed),
            url,
            IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC,
        )
        write_atomic(target, lambda handle, data=compressed: handle.write(data))
        written.append(target)
    return written


def _digest(compressed: bytes) -> str:
    try:
        return hashlib.sha256(gzip.decompress(compressed)).hexdigest()
    except (OSError, EOFError, zlib.error):
        return "not a gzip file"
