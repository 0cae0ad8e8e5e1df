"""Estimated footprints, checked before big work starts.

Work whose memory can be known from its sizes (a dense conversion of a sparse file, a Gram
matrix, a cvxopt problem, a weight history) is estimated first and refused, with one line
saying what it needs and what to do instead, when it is over the memory limit: never an
out-of-memory death half way through a run.

The limit is half of this machine's memory (or of the cgroup's limit, when lower), never
more than what the process's address-space limit leaves; the user raises or lowers it with
``KERNELNET_MEMORY_LIMIT`` (bytes, or a number with K, M, G or
T: ``KERNELNET_MEMORY_LIMIT=16G``). It is read where it is used, never stored.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from kernelnet.errors import ConfigError, ResourceError

ENV = "KERNELNET_MEMORY_LIMIT"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def human(nbytes: float) -> str:
    """``3.2 GB``-style sizes (binary multiples, as the limit is given)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if abs(nbytes) < 1024 or unit == "PB":
            return f"{nbytes:,.0f} bytes" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not match:
        raise ConfigError(f"{ENV}={text!r}: expected a size such as 8G or 500M")
    value = float(match[1]) * _UNITS[match[2].upper()]
    if value < 1 or value > 2**62:
        raise ConfigError(f"{ENV}={text!r}: out of range")
    return int(value)


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit() and int(text) < 2**60:
            return int(text)
    return None


def physical_memory() -> int:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = _cgroup_limit()
    return min(total, limit) if limit else total


def _address_space_left() -> int | None:
    """What this process's address-space limit (``ulimit -v``, ``prlimit --as``) leaves
    beyond what it maps now; None when there is no such limit."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        mapped = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return soft
    return max(0, soft - mapped * os.sysconf("SC_PAGE_SIZE"))


def memory_limit() -> int:
    """Bytes that one piece of work may need: ``KERNELNET_MEMORY_LIMIT`` if set, else half
    of the machine's (or cgroup's) memory; never more than the process's address-space
    limit leaves (a refusal in one line beats a MemoryError half way)."""
    text = os.environ.get(ENV)
    limit = parse_size(text) if text else physical_memory() // 2
    left = _address_space_left()
    return limit if left is None else min(limit, left)


def check_memory(what: str, needed: float, instead: str) -> None:
    """Refuse ``what`` if it needs more than the memory limit, saying what to do instead.

    ``needed`` is the estimate in bytes; ``instead`` is advice in the imperative ("use
    svm.solver=smo, or a subset with data.max_samples").
    """
    limit = memory_limit()
    if needed > limit:
        raise ResourceError(
            f"{what} needs about {human(needed)} of memory, over the {human(limit)} limit; "
            f"{instead}, or raise the limit ({ENV}=...)"
        )
