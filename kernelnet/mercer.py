"""Positive-semidefiniteness checks for Gram matrices (the empirical side of Mercer's
condition). A matrix counts as PSD when, after symmetrizing, its smallest eigenvalue is
not below ``-rel_tol * max|lambda|``: eigenvalues of an exactly PSD matrix computed in
float64 come out slightly negative by roughly machine epsilon times the largest one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PSD_REL_TOL = 1e-10


@dataclass(frozen=True)
class SpectrumCheck:
    min_eigenvalue: float
    max_abs_eigenvalue: float
    symmetric: bool  # K == K.T to within 1e-12 relative
    psd: bool


def check_psd(K: np.ndarray, rel_tol: float = PSD_REL_TOL) -> SpectrumCheck:
    """Symmetry and the eigenvalue test on a square matrix ``K`` (n, n)."""
    K = np.asarray(K, dtype=np.float64)
    scale = max(float(np.abs(K).max(initial=0.0)), np.finfo(float).tiny)
    symmetric = bool(np.abs(K - K.T).max(initial=0.0) <= 1e-12 * scale)
    eigenvalues = np.linalg.eigvalsh((K + K.T) / 2)
    largest = float(np.abs(eigenvalues).max(initial=0.0))
    smallest = float(eigenvalues.min(initial=0.0))
    return SpectrumCheck(smallest, largest, symmetric, smallest >= -rel_tol * largest)


@dataclass(frozen=True)
class Counterexample:
    """Points whose Gram matrix is not PSD, and a vector a with a^T K a < 0."""

    points: np.ndarray  # (m, d)
    gram: np.ndarray  # (m, m)
    eigenvalue: float  # the most negative eigenvalue of (K + K^T)/2
    vector: np.ndarray  # (m,) its unit eigenvector
    quadratic_form: float  # a^T K a (= eigenvalue up to rounding), < 0


@dataclass(frozen=True)
class MercerVerdict:
    trials: int
    min_eigenvalue: float  # smallest eigenvalue seen over all trials
    symmetric: bool  # every Gram matrix was symmetric
    psd: bool  # every Gram matrix passed the PSD test
    counterexample: Counterexample | None

    @property
    def verdict(self) -> str:
        if not self.symmetric:
            return "not symmetric"
        return "valid on all trials" if self.psd else "not PSD"


def sample_points(
    rng: np.random.Generator, n: int, d: int, distribution: str, scale: float
) -> np.ndarray:
    if distribution == "normal":
        return scale * rng.standard_normal((n, d))
    if distribution == "uniform":
        return rng.uniform(-scale, scale, (n, d))
    raise ValueError(f"unknown distribution {distribution!r}; valid: normal, uniform")


def minimal_counterexample(kernel, X: np.ndarray, rel_tol: float = PSD_REL_TOL) -> Counterexample:
    """Drop points one at a time while the Gram matrix of the rest stays non-PSD."""
    keep = list(range(len(X)))
    for index in list(keep):
        trial = [i for i in keep if i != index]
        if trial and not check_psd(kernel(X[trial]), rel_tol).psd:
            keep = trial
    points = X[keep]
    K = kernel(points)
    eigenvalues, vectors = np.linalg.eigh((K + K.T) / 2)
    a = vectors[:, 0]
    return Counterexample(points, K, float(eigenvalues[0]), a, float(a @ K @ a))


def check_mercer(
    kernel,
    rng: np.random.Generator,
    trials: int,
    dims: list[int],
    sizes: list[int],
    distribution: str = "normal",
    scale: float = 1.0,
    rel_tol: float = PSD_REL_TOL,
) -> MercerVerdict:
    """Test symmetry and PSD-ness of Gram matrices on ``trials`` random point sets, each
    with a dimension from ``dims`` and a size from ``sizes`` drawn from ``rng``."""
    smallest, symmetric, failing = np.inf, True, None
    for _ in range(trials):
        X = sample_points(rng, int(rng.choice(sizes)), int(rng.choice(dims)), distribution, scale)
        spectrum = check_psd(kernel(X), rel_tol)
        smallest = min(smallest, spectrum.min_eigenvalue)
        symmetric &= spectrum.symmetric
        if not spectrum.psd and failing is None:
            failing = X
    counterexample = None if failing is None else minimal_counterexample(kernel, failing, rel_tol)
    return MercerVerdict(trials, float(smallest), symmetric, failing is None, counterexample)


def poly2_feature_map(X: np.ndarray) -> np.ndarray:
    """phi(x) = (x1^2, x2^2, sqrt2 x1 x2, sqrt2 x1, sqrt2 x2, 1) for 2-D x: phi(x).phi(z) =
    (x.z + 1)^2."""
    x1, x2 = X[:, 0], X[:, 1]
    r2 = np.sqrt(2.0)
    return np.column_stack([x1 * x1, x2 * x2, r2 * x1 * x2, r2 * x1, r2 * x2, np.ones(len(X))])


def multi_indices(d: int, degree: int) -> list[tuple[int, ...]]:
    """All alpha in N^d with |alpha| = degree."""
    if d == 1:
        return [(degree,)]
    return [
        (first, *rest)
        for first in range(degree, -1, -1)
        for rest in multi_indices(d - 1, degree - first)
    ]


def gaussian_feature_map(X: np.ndarray, gamma: float, max_degree: int) -> np.ndarray:
    """The Gaussian kernel's feature map truncated at total degree P = ``max_degree``:
    exp(-g||x-z||^2) = exp(-g||x||^2) exp(-g||z||^2) sum_k (2g)^k (x.z)^k / k!, and
    (x.z)^k = sum_{|alpha|=k} k!/alpha! x^alpha z^alpha, so
    phi_alpha(x) = exp(-g||x||^2) sqrt((2g)^|alpha| / alpha!) x^alpha, |alpha| <= P."""
    from math import factorial, prod

    envelope = np.exp(-gamma * np.einsum("ij,ij->i", X, X))
    columns = []
    for k in range(max_degree + 1):
        for alpha in multi_indices(X.shape[1], k):
            weight = np.sqrt((2 * gamma) ** k / prod(factorial(a) for a in alpha))
            columns.append(envelope * weight * np.prod(X ** np.array(alpha), axis=1))
    return np.column_stack(columns)
