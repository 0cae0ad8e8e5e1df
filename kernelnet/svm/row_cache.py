"""Kernel rows of one binary problem, computed for a working set at a time and kept in a
least-recently-used cache of bounded size.

**Rows.** :class:`RowKernel` evaluates K[rows, cols] for the problem's points with one BLAS
product X[rows] @ X[cols]' and the kernel's elementwise map (for RBF the squared norms
||x||^2 are computed once: ||x - z||^2 = ||x||^2 + ||z||^2 - 2 x.z, exactly 0 for a point
against itself, so K_ii = 1 as libsvm has it). float32 halves the memory and doubles the
product rate; its rounding (about 1e-7 relative) is far below the default stopping tolerance
(1e-3), so a solver asking for a tolerance below 1e-5 gets float64 rows.

**Cache.** :class:`RowCache` holds at most ``capacity`` rows of n values in one slab
(allocated zeroed, so untouched pages cost nothing), sample -> slot in LRU order. A row
computed while the solver had shrunk the problem holds the values of the columns active at
that moment only (the others are left from the slot's last owner); it is marked partial and
dropped when the shrunk variables come back (:meth:`RowCache.drop_partial`), since the
active set only shrinks between two such moments. ``bytes_held`` counts the bytes of the
rows held, ``peak_bytes`` its maximum: never more than ``capacity`` rows.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from kernelnet.kernels import Kernel

# Rows computed by one BLAS product at most: the one temporary besides the cache (a block of
# ROWS_PER_PRODUCT rows of n values is alive while it is copied into the slab).
ROWS_PER_PRODUCT = 256
# A block's rows are computed CHUNK_ROWS at a time, each chunk one single-threaded product,
# the chunks spread over ``threads`` Python threads (NumPy releases the GIL in BLAS and in
# the kernel's elementwise map). Measured here: a product's rounding depends on the rows
# computed with it and on BLAS's thread count, so a row's values depend only on its chunk,
# never on how many threads ran the chunks; and beside busy processes, threads that each
# wait for their own chunk keep their share of the CPUs where OpenBLAS's threads, which spin
# at a barrier for each other, lose it (benchmarks/svm_load.py).
CHUNK_ROWS = 128


class RowKernel:
    """K[rows, cols] for the points ``X`` (n, d) under ``kernel`` in ``dtype``.

    linear, poly, sigmoid and rbf (kernelnet's kernels, read from ``kernel.name`` and their
    parameters) are evaluated from products of CHUNK_ROWS rows, spread over ``threads``
    threads (the caller runs BLAS on one thread: :func:`kernelnet.blas.blas_threads`); any
    other callable is called as ``kernel(X[rows], X[cols])``. ``close`` stops the threads
    (a RowKernel is also a context manager)."""

    def __init__(self, kernel: Kernel, X: np.ndarray, dtype: type = np.float32, threads: int = 1):
        self.kernel = kernel
        self.dtype = np.dtype(dtype)
        self.X = np.ascontiguousarray(X, dtype=self.dtype)
        self.n = len(self.X)
        self.name = getattr(kernel, "name", None)
        self.sq = np.einsum("ij,ij->i", self.X, self.X)  # ||x_i||^2 in dtype
        self.products = 0  # kernel values computed
        self.threads = max(1, int(threads))
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> RowKernel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _from_dot(self, dot: np.ndarray, rows: np.ndarray, cols: np.ndarray | None) -> None:
        """Map X[rows] @ X[cols]' to kernel values in place."""
        name = self.name
        if name == "linear":
            return
        if name == "rbf":
            dot *= -2.0
            dot += self.sq[rows][:, None]
            dot += self.sq if cols is None else self.sq[cols]
            np.maximum(dot, 0.0, out=dot)
            if cols is None:
                dot[np.arange(len(rows)), rows] = 0.0
            else:  # cols sorted: a row's own column, where present
                where = np.searchsorted(cols, rows)
                where = np.minimum(where, len(cols) - 1)
                own = cols[where] == rows
                dot[np.flatnonzero(own), where[own]] = 0.0
            dot *= -self.kernel.gamma
            np.exp(dot, out=dot)
        elif name == "poly":
            dot *= self.kernel.gamma
            dot += self.kernel.coef0
            np.power(dot, int(self.kernel.degree), out=dot)
        elif name == "sigmoid":
            dot *= self.kernel.gamma
            dot += self.kernel.coef0
            np.tanh(dot, out=dot)

    def block(self, rows: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """(len(rows), len(cols)) kernel values (cols None: all n columns)."""
        rows = np.asarray(rows, dtype=np.intp)
        Y = self.X if cols is None else self.X[cols]
        if self.name not in ("linear", "poly", "sigmoid", "rbf"):
            values = np.asarray(self.kernel(self.X[rows], Y), dtype=self.dtype)
            self.products += values.size
            return values
        values = np.empty((len(rows), len(Y)), dtype=self.dtype)

        def chunk(start: int) -> None:
            part = slice(start, min(start + CHUNK_ROWS, len(rows)))
            np.matmul(self.X[rows[part]], Y.T, out=values[part])
            self._from_dot(values[part], rows[part], cols)

        starts = range(0, len(rows), CHUNK_ROWS)
        if self.threads > 1 and len(starts) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="kernel-rows")
            list(self._pool.map(chunk, starts))  # list: a chunk's exception is raised here
        else:
            for start in starts:
                chunk(start)
        self.products += values.size
        return values

    def diagonal(self) -> np.ndarray:
        """K_ii (n,) in float64."""
        sq = self.sq.astype(np.float64)
        if self.name == "linear":
            return sq
        if self.name == "rbf":
            return np.ones(self.n)
        if self.name == "poly":
            return (self.kernel.gamma * sq + self.kernel.coef0) ** int(self.kernel.degree)
        if self.name == "sigmoid":
            return np.tanh(self.kernel.gamma * sq + self.kernel.coef0)
        return np.concatenate(
            [
                np.diag(np.asarray(self.kernel(self.X[s : s + 256]), dtype=np.float64))
                for s in range(0, self.n, 256)
            ]
        )


def rows_that_fit(cache_bytes: float, n: int, itemsize: int) -> int:
    """Rows of ``n`` values of ``itemsize`` bytes within ``cache_bytes``."""
    return int(cache_bytes // (n * itemsize))


class RowCache:
    """Up to ``capacity`` kernel rows of ``n`` values, least recently used out first.

    Bookkeeping is in arrays, not per row: ``slot_of[sample]`` (-1 when absent), and per
    slot its sample and the tick it was last asked for, so a working set of q rows is found,
    and the LRU slots evicted, in a few vector operations."""

    def __init__(self, n: int, capacity: int, dtype: np.dtype):
        if capacity < 1:
            raise ValueError(f"a row cache needs room for one row of {n} values")
        self.n = n
        self.capacity = min(capacity, n)
        self.slab = np.zeros((self.capacity, n), dtype=dtype)  # zeroed pages: touched on use
        self.row_bytes = n * self.slab.itemsize
        self.slot_of = np.full(n, -1, dtype=np.intp)
        self.sample_in = np.full(self.capacity, -1, dtype=np.intp)
        self.last_used = np.full(self.capacity, -1, dtype=np.int64)  # -1: a free slot
        self.partial = np.zeros(self.capacity, dtype=bool)  # rows missing shrunk columns
        self.tick = 0
        self.bytes_held = 0
        self.peak_bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return int((self.sample_in >= 0).sum())

    def slots(
        self,
        samples: np.ndarray,
        compute: Callable[[np.ndarray], np.ndarray],
        active: np.ndarray | None,
    ) -> np.ndarray:
        """Slab slots holding the rows of ``samples`` (distinct, at most ``capacity``);
        missing rows are computed by ``compute(missing) -> (len(missing), len(active) or
        n)`` in products of ROWS_PER_PRODUCT rows, against the ``active`` columns (sorted;
        None: all)."""
        samples = np.asarray(samples, dtype=np.intp)
        if len(samples) > self.capacity:
            raise ValueError(f"{len(samples)} rows asked of a cache of {self.capacity}")
        self.tick += 1
        found = self.slot_of[samples]
        present = found >= 0
        self.last_used[found[present]] = self.tick  # asked rows are never evicted below
        missing = np.flatnonzero(~present)
        self.hits += len(samples) - len(missing)
        self.misses += len(missing)
        if not len(missing):
            return found
        # free slots first (last_used -1), then the least recently used
        order = np.argpartition(self.last_used, len(missing) - 1)[: len(missing)]
        evicted = self.sample_in[order]
        self.slot_of[evicted[evicted >= 0]] = -1
        self.bytes_held += self.row_bytes * int((evicted < 0).sum())
        self.peak_bytes = max(self.peak_bytes, self.bytes_held)
        missing_samples = samples[missing]
        self.sample_in[order] = missing_samples
        self.slot_of[missing_samples] = order
        self.last_used[order] = self.tick
        self.partial[order] = active is not None
        found[missing] = order
        for s in range(0, len(missing), ROWS_PER_PRODUCT):
            values = compute(missing_samples[s : s + ROWS_PER_PRODUCT])
            where = order[s : s + ROWS_PER_PRODUCT]
            if active is None:
                self.slab[where] = values
            else:
                self.slab[np.ix_(where, active)] = values
            del values  # one block besides the slab at a time, never two
        return found

    def drop_partial(self) -> int:
        """Forget the rows computed on a shrunk problem; returns how many."""
        dropped = np.flatnonzero(self.partial & (self.sample_in >= 0))
        self.slot_of[self.sample_in[dropped]] = -1
        self.sample_in[dropped] = -1
        self.last_used[dropped] = -1
        self.partial[dropped] = False
        self.bytes_held -= self.row_bytes * len(dropped)
        return len(dropped)
