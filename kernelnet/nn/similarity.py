"""Cosine similarity as a layer, and the Siamese cosine loss.

cos(z, w) = z.w / (max(||z||, eps) max(||w||, eps)) row by row, for z, w of shape (N, D).
Flooring the norms at ``eps`` keeps the value and its gradient finite at zero vectors
(a zero vector has similarity 0 with everything and receives gradient w / (eps ||w||)).

With a = max(||z||, eps), b = max(||w||, eps) and c = cos:
    d c / d z = w / (a b) - c z / a^2   when ||z|| > eps   (else w / (a b))
and symmetrically for w.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-8


def cosine_forward(z: np.ndarray, w: np.ndarray, eps: float = EPS):
    norm_z = np.linalg.norm(z, axis=1)
    norm_w = np.linalg.norm(w, axis=1)
    a, b = np.maximum(norm_z, eps), np.maximum(norm_w, eps)
    cos = np.einsum("ij,ij->i", z, w) / (a * b)
    return cos, (z, w, a, b, norm_z > eps, norm_w > eps, cos)


def cosine_backward(dcos: np.ndarray, cache):
    """Returns (dz, dw) for upstream gradient dcos (N,)."""
    z, w, a, b, z_counts, w_counts, cos = cache
    scale = (dcos / (a * b))[:, None]
    dz = scale * w - (dcos * cos * z_counts / a**2)[:, None] * z
    dw = scale * z - (dcos * cos * w_counts / b**2)[:, None] * w
    return dz, dw


def cosine_loss(cos: np.ndarray, y: np.ndarray):
    """L = mean(-y cos) for y in {+1 (same), -1 (different)}; returns (loss, dL/dcos)."""
    return float(np.mean(-y * cos)), -y / y.size
