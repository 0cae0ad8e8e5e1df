"""The number of BLAS threads a cell uses, set the same way on every executor.

A float32 matrix product split over 1 or 2 threads adds its terms in a different order, so
results would depend on where a cell ran. Every executor runs each cell inside
:func:`blas_threads` with the run's thread count (recorded in run.json), set through each
loaded BLAS library's own call, not through environment variables that are read only when
a library loads. More than one BLAS is usually loaded: NumPy's (scipy-openblas) and the
OpenBLAS that cvxopt bundles; every one of them is set. Measured here: the products depend
only on the count in effect, not on the count a library started with.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_THREADS = 1  # steady under load and the same everywhere; raise it for big products
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_LIBRARY = re.compile(r"(/\S*(?:openblas|mkl_rt)\S*\.so\S*)")
_CALLS = [  # (set, get) symbol pairs, most specific first
    (f"{prefix}openblas_set_num_threads{suffix}", f"{prefix}openblas_get_num_threads{suffix}")
    for prefix in ("scipy_", "")
    for suffix in ("64_", "")
] + [("MKL_Set_Num_Threads", "MKL_Get_Max_Threads")]


@dataclass(frozen=True)
class Blas:
    path: str
    set_threads: object  # ctypes function (int) -> None
    get_threads: object  # ctypes function () -> int

    @property
    def name(self) -> str:
        return Path(self.path).name


@functools.cache
def _open(path: str) -> Blas | None:
    library = ctypes.CDLL(path)
    for set_name, get_name in _CALLS:
        setter, getter = getattr(library, set_name, None), getattr(library, get_name, None)
        if setter is not None and getter is not None:
            setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
            return Blas(path, setter, getter)
    return None


def loaded() -> list[Blas]:
    """Every BLAS library loaded in this process now (NumPy's first)."""
    import numpy  # noqa: F401  (NumPy's BLAS is always wanted)

    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    # the lines naming a BLAS first (a substring test), then the regex on those few: on the
    # whole text the regex took ~7 ms, paid by every fit that sets the threads
    lines = [line for line in maps.splitlines() if "openblas" in line or "mkl_rt" in line]
    found = {match for line in lines for match in _LIBRARY.findall(line)}
    paths = sorted(found, key=lambda p: "numpy" not in p)
    return [blas for blas in map(_open, paths) if blas is not None]


def library() -> str:
    """NumPy's BLAS library, as a name for run.json."""
    found = loaded()
    return found[0].name if found else "unknown"


def current_threads() -> int | None:
    """The thread count NumPy's BLAS uses now."""
    found = loaded()
    return int(found[0].get_threads()) if found else None


def environment_for(threads: int) -> dict[str, str]:
    """The variables that make a new process's BLAS libraries start with ``threads``."""
    return {name: str(threads) for name in THREAD_VARIABLES}


def _load_numeric_libraries() -> None:
    """Load cvxopt (and its BLAS) now, so a cell that imports it later still computes with
    the count set here."""
    with contextlib.suppress(ImportError):
        import cvxopt  # noqa: F401


def set_threads(threads: int, libraries: list[Blas] | None = None) -> None:
    """``threads`` threads in every BLAS library of ``libraries`` (None: every one loaded
    now, cvxopt's loaded first)."""
    if libraries is None:
        _load_numeric_libraries()
        libraries = loaded()
    for blas in libraries:
        blas.set_threads(threads)


@contextlib.contextmanager
def blas_threads(threads: int) -> Iterator[None]:
    """Run the body with ``threads`` threads in every BLAS library, then restore each
    library's previous count."""
    _load_numeric_libraries()
    libraries = loaded()
    before = [int(blas.get_threads()) for blas in libraries]
    set_threads(threads, libraries)
    try:
        yield
    finally:
        for blas, count in zip(libraries, before):
            blas.set_threads(count)
