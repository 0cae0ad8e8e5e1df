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
