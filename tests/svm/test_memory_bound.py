"""KernelSVM's memory bound, by tracked allocation (tracemalloc, which NumPy reports its
buffers to), not by timing: the peak traced during ``fit`` stays within the terms that the
working-set solver's code allocates, each computed from the objects of the fit, and at
40,000 samples that bound is a small fraction of the n x n float32 Gram matrix (6.4 GB).

The terms (kernelnet/svm/estimator.py, workingset.py, row_cache.py), held throughout:

- the data: X and y as given (float64 X is validated without a copy);
- the model: the union of the support vectors, the (union, pairs) coefficient matrix, each
  pair's coefficients and support indices;
- per-sample vectors: for the pair being solved about a dozen of its length (alpha, the
  gradient, scores, the active set, the cache's slot map, the squared norms, masks); for
  every pair, kept until the model is assembled, its index, labels and costs and its
  solution's alpha and gradient; for the data, the validated labels and the class index;

and the larger of two phases, which never overlap:

- solving a pair: its points in float32, the row cache (``cache_size`` MB, its slab
  allocated whole when the pair starts) and the kernel rows in flight: a cache miss
  computes its rows ROWS_PER_PRODUCT at a time, one block alive besides the slab, so up to
  min(q, ROWS_PER_PRODUCT) rows of the pair's n values (q = min(working_set, the rows the
  cache holds)): 256 rows, 40 MB at n = 40,000;
- assembling the model (``_join_support_vectors``): besides the union it builds, the union
  from ``_gather`` that the pairs share, and first the bytes that identify each vector
  (dropped before the new union is copied out): one more copy of the support vectors, plus
  a few hundred bytes of Python objects per vector of each pair.

The README's formula states these terms; with two blocks of rows in flight (as the cache
once kept them) tests 1 and 2 exceed it, and with the four copies the assembly once made,
test 3 does.

Each bound must also be reached, or it would pass trivially: the cache is chosen small
enough that every pair's cache reaches capacity and evicts rows (the solver's statistics),
and the peak must be at least the buffers that certainly coexist in the binding phase.
"""

import tracemalloc

import numpy as np

from kernelnet import KernelSVM
from kernelnet.svm.row_cache import ROWS_PER_PRODUCT
from kernelnet.svm.workingset import check_cache, row_dtype

N = 40_000
FEATURES = 10
CACHE_MB = 48  # 314 rows of a 40k pair (< working_set 512), 629 of a 20k pair
SEPARATION = 3.0  # class means this far apart along a feature: thousands of support vectors
MiB = 2**20
# per-sample vectors, in bytes per sample (see the module docstring): a pair being solved
# holds at most 12 float64-sized vectors of its length (alpha, gradient, scores, active set,
# slot map: 8 bytes each; squared norms 4; up to five boolean masks), every pair keeps 5
# (index, labels, costs; alpha, gradient) until the model is assembled, the data 2 (labels
# as validated, class index)
SOLVING_BYTES_PER_SAMPLE = 12 * 8
KEPT_BYTES_PER_PAIR_SAMPLE = 5 * 8
DATA_BYTES_PER_SAMPLE = 2 * 8
# the assembly's copies of the support vectors besides the model's own union (the bytes
# keys, then the new union beside the shared one), and the Python objects per vector of a
# pair: a bytes header (33) and a dict entry for its key, a (pair, row) tuple of the union's
# first appearances, an int for its row in the union
ASSEMBLY_COPIES = 1
ASSEMBLY_BYTES_PER_PAIR_VECTOR = 320
TIGHTNESS = 1.10  # the bound is at most this factor above the measured peak
WIDE = 1_000  # features of the assembly test: its support vectors outweigh the solve


def gaussian_classes(centers: np.ndarray, per_class: int, features: int = FEATURES, seed=0):
    """Unit-variance Gaussian classes in ``features`` dimensions, means at ``centers`` (on
    the first features), class after class."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(centers)), per_class)
    X = rng.standard_normal((len(y), features))
    X[:, : centers.shape[1]] += centers[y]
    return X, y


def traced_peak_of_fit(model: KernelSVM, make_data):
    """(X, y, peak traced bytes during fit). The data is made under tracing, so the peak
    counts it as a process's memory would; the peak is reset once it is made, so the
    generator's temporaries are not counted. A small fit on the same path comes first:
    what the first fit imports (lazily) is not the fit's memory."""
    X, y = make_data()
    pick = np.random.default_rng(1).choice(len(y), min(6_000, len(y) // 2), replace=False)
    KernelSVM(**model.get_params()).fit(X[pick], y[pick])
    del X, y
    tracemalloc.start()
    try:
        X, y = make_data()
        tracemalloc.reset_peak()
        model.fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return X, y, peak


def pair_sizes(model: KernelSVM) -> list[int]:
    return [len(e.alpha_) for e in model.estimators_]


def cache_slab_bytes(model: KernelSVM, n: int) -> int:
    """The bytes of the slab a pair of ``n`` samples allocates (at most ``cache_size``)."""
    itemsize = np.dtype(row_dtype(model.tol)).itemsize
    return check_cache(model.cache_size, n, model.tol) * n * itemsize


def bound_terms(model: KernelSVM, X: np.ndarray, y: np.ndarray) -> dict[str, dict[str, int]]:
    """The bound's terms in bytes, from the fitted model and the data: those held
    throughout, and those of each phase."""
    sizes = pair_sizes(model)
    largest = max(sizes)
    itemsize = np.dtype(row_dtype(model.tol)).itemsize
    working_set = min(model.working_set, check_cache(model.cache_size, largest, model.tol))
    rows_in_flight = min(working_set, largest, ROWS_PER_PRODUCT)
    vectors = model.support_vectors_
    pair_vectors = sum(len(e.support_) for e in model.estimators_)
    return {
        "throughout": {
            "data (X, y)": X.nbytes + y.nbytes,
            "model: support vectors once": vectors.nbytes,
            "model: coefficients, support indices": len(vectors) * len(sizes) * 8
            + sum(e.dual_coef_.nbytes + e.support_.nbytes for e in model.estimators_),
            "per-sample vectors": SOLVING_BYTES_PER_SAMPLE * largest
            + KEPT_BYTES_PER_PAIR_SAMPLE * sum(sizes)
            + DATA_BYTES_PER_SAMPLE * len(y),
        },
        "solving": {
            "one pair's points, float32": largest * X.shape[1] * itemsize,
            "cache_size": int(model.cache_size * MiB),
            "kernel rows in flight": rows_in_flight * largest * itemsize,
        },
        "assembling": {
            "copies of the support vectors": ASSEMBLY_COPIES * vectors.nbytes,
            "their Python objects": ASSEMBLY_BYTES_PER_PAIR_VECTOR * pair_vectors,
        },
    }


def check_bound(model, X, y, peak: int, binding: str, certain: int) -> None:
    """peak <= the bound, the ``binding`` phase the larger, ``certain`` <= peak (the buffers
    known to coexist) and the bound within TIGHTNESS of the peak."""
    terms = bound_terms(model, X, y)
    phases = {phase: sum(parts.values()) for phase, parts in terms.items()}
    bound = phases["throughout"] + max(phases["solving"], phases["assembling"])
    shown = "; ".join(
        f"{phase} {phases[phase] / MiB:.2f} ("
        + ", ".join(f"{name} {size / MiB:.2f}" for name, size in parts.items())
        + ")"
        for phase, parts in terms.items()
    )
    report = f"peak {peak / MiB:.2f} MB, bound {bound / MiB:.2f} MB = {shown}"
    other = "assembling" if binding == "solving" else "solving"
    assert phases[binding] > phases[other], report
    assert peak <= bound, report
    assert certain <= peak, report
    assert bound <= TIGHTNESS * peak, report


def check_cache_was_used(model: KernelSVM) -> None:
    """Every pair's cache filled and rows were evicted: more rows were computed than it
    holds, it held its capacity at its peak, and it could not hold the pair's Gram matrix."""
    itemsize = np.dtype(row_dtype(model.tol)).itemsize
    for estimator in model.estimators_:
        solver, n = estimator.solver_, len(estimator.alpha_)
        assert solver.solver == "workingset" and solver.converged
        assert solver.cache_capacity_rows == check_cache(model.cache_size, n, model.tol)
        assert solver.cache_capacity_rows < n // 10
        assert solver.cache_peak_bytes == solver.cache_capacity_rows * n * itemsize
        assert solver.rows_computed > 2 * solver.cache_capacity_rows


def check_40k_fit(model: KernelSVM, make_data) -> None:
    """A 40k fit: bounded while solving, far below the Gram matrix, the cache used; the
    data, one pair's float32 points, the slab and the rows in flight certainly coexist (the
    first working set misses every row it asks for)."""
    X, y, peak = traced_peak_of_fit(model, make_data)
    assert len(y) == N and len(model.support_vectors_) > 2_000
    check_cache_was_used(model)
    terms = bound_terms(model, X, y)
    gram = N**2 * 4  # the n x n float32 kernel matrix: 6.4 GB
    assert sum(sum(parts.values()) for parts in terms.values()) * 50 < gram
    solving = terms["solving"]
    certain = (
        terms["throughout"]["data (X, y)"]
        + solving["one pair's points, float32"]
        + cache_slab_bytes(model, max(pair_sizes(model)))
        + solving["kernel rows in flight"]
    )
    check_bound(model, X, y, peak, "solving", certain)


def test_two_class_40k_fit_stays_within_the_memory_bound():
    """One pair of 40,000: the rows path (not the batched one)."""

    def make_data():
        return gaussian_classes(np.array([[-SEPARATION / 2], [SEPARATION / 2]]), N // 2)

    model = KernelSVM(cache_size=CACHE_MB)
    check_40k_fit(model, make_data)
    assert len(model.estimators_) == 1


def test_four_class_40k_fit_stays_within_the_memory_bound():
    """Six pairs of 20,000, one at a time in this process (worker processes would hold
    their caches out of tracemalloc's sight); the model keeps the union of the pairs'
    support vectors once."""

    def make_data():
        square = np.array([[0, 0], [1, 0], [0, 1], [1, 1]]) * SEPARATION - SEPARATION / 2
        return gaussian_classes(square, N // 4)

    model = KernelSVM(cache_size=CACHE_MB, n_jobs=1)
    check_40k_fit(model, make_data)
    assert len(model.estimators_) == 6
    union = np.unique(np.concatenate([e.support_ for e in model.estimators_]))
    assert len(model.support_vectors_) == len(union)


def test_many_wide_support_vectors_peak_while_the_model_is_assembled():
    """6,000 samples of WIDE features, classes overlapping so most are support vectors, a
    4 MB cache: the model's assembly, not the solve, sets the peak. When the union is built
    the data, the union from ``_gather`` and either the vectors' bytes or the new union
    coexist: at least the data and twice the support vectors."""

    def make_data():
        return gaussian_classes(np.array([[-0.5], [0.5]]), 3_000, features=WIDE)

    model = KernelSVM(cache_size=4)
    X, y, peak = traced_peak_of_fit(model, make_data)
    assert len(model.support_vectors_) > len(y) / 2
    certain = X.nbytes + y.nbytes + 2 * model.support_vectors_.nbytes
    check_bound(model, X, y, peak, "assembling", certain)
