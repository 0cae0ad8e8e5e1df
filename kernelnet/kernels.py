"""Kernel functions as callables ``k(X, Y=None) -> K`` with ``K[i, j] = k(x_i, y_j)``.

Definitions follow scikit-learn's so that libsvm is a usable oracle:

- linear:  k(x, z) = x.z
- poly:    k(x, z) = (gamma x.z + coef0) ** degree
- sigmoid: k(x, z) = tanh(gamma x.z + coef0)        (not positive semidefinite in general)
- rbf:     k(x, z) = exp(-gamma ||x - z||^2)

``X`` is ``(n, d)`` and ``Y`` is ``(m, d)`` (``Y = X`` when omitted); the result is ``(n, m)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Kernel(Protocol):
    name: str

    def __call__(self, X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray: ...


def squared_distances(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``||x_i - y_j||^2`` via the expansion x.x - 2 x.y + y.y, clipped at 0 (rounding);
    exactly 0 on the diagonal when ``Y is X``."""
    sq = np.einsum("ij,ij->i", X, X)[:, None] - 2.0 * (X @ Y.T) + np.einsum("ij,ij->i", Y, Y)
    np.maximum(sq, 0.0, out=sq)
    if Y is X:
        np.fill_diagonal(sq, 0.0)  # a point's distance to itself is exactly 0 (rbf(x, x) = 1)
    return sq


def _check_gamma(gamma: float) -> None:
    if not (math.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"gamma must be >= 0 and finite (got {gamma})")


@dataclass(frozen=True)
class Linear:
    name = "linear"

    def __call__(self, X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray:
        return X @ (X if Y is None else Y).T


@dataclass(frozen=True)
class Polynomial:
    gamma: float = 1.0
    degree: int = 3
    coef0: float = 0.0
    name = "poly"

    def __post_init__(self) -> None:
        _check_gamma(self.gamma)
        if isinstance(self.degree, bool) or int(self.degree) != self.degree or self.degree < 0:
            raise ValueError(f"degree must be a non-negative integer (got {self.degree})")

    def __call__(self, X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray:
        return (self.gamma * (X @ (X if Y is None else Y).T) + self.coef0) ** int(self.degree)


@dataclass(frozen=True)
class Sigmoid:
    gamma: float = 1.0
    coef0: float = 0.0
    name = "sigmoid"

    def __post_init__(self) -> None:
        _check_gamma(self.gamma)

    def __call__(self, X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray:
        return np.tanh(self.gamma * (X @ (X if Y is None else Y).T) + self.coef0)


@dataclass(frozen=True)
class RBF:
    gamma: float = 1.0
    name = "rbf"

    def __post_init__(self) -> None:
        _check_gamma(self.gamma)

    def __call__(self, X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray:
        return np.exp(-self.gamma * squared_distances(X, X if Y is None else Y))


KERNELS: dict[str, type] = {k.name: k for k in (Linear, Polynomial, Sigmoid, RBF)}


def make_kernel(name: str, **params: float) -> Kernel:
    """Build a kernel by name, passing only the parameters it takes (others ignored)."""
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}; valid: {', '.join(KERNELS)}")
    cls = KERNELS[name]
    accepted = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in params.items() if k in accepted})
