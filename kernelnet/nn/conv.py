"""Convolution layers (cross-correlation, as deep-learning frameworks define them, or true
convolution with ``flip=True``) with stride, zero padding and dilation, in 1-D and 2-D.

Shapes: 2-D input x (N, C, H, W), weights w (F, C, KH, KW), bias b (F,), output
(N, F, OH, OW) with, per spatial axis,

    out = floor((in + 2 p - d (k - 1) - 1) / s) + 1.

1-D layers are the 2-D ones with H = 1. The forward pass sums KH * KW shifted, strided
slices of the padded input, each contracted with one kernel tap; the backward pass
scatters the same slices back, so both are exact (no approximation from im2col tricks).
"""

from __future__ import annotations

import numpy as np


def output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """floor((in + 2p - d(k - 1) - 1) / s) + 1"""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _slices(out_h: int, out_w: int, i: int, j: int, stride, dilation):
    (sh, sw), (dh, dw) = stride, dilation
    return (
        slice(i * dh, i * dh + sh * (out_h - 1) + 1, sh),
        slice(j * dw, j * dw + sw * (out_w - 1) + 1, sw),
    )


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride=1,
    padding=0,
    dilation=1,
    flip: bool = False,
):
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    kernel = w[:, :, ::-1, ::-1] if flip else w
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    out_h = output_size(H, KH, stride[0], padding[0], dilation[0])
    out_w = output_size(W, KW, stride[1], padding[1], dilation[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"kernel {KH}x{KW} (dilation {dilation}) does not fit input {H}x{W} "
            f"with padding {padding}"
        )
    padded = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    out = np.zeros((N, F, out_h, out_w), dtype=np.result_type(x, w))
    for i in range(KH):
        for j in range(KW):
            rows, cols = _slices(out_h, out_w, i, j, stride, dilation)
            out += np.einsum("nchw,fc->nfhw", padded[:, :, rows, cols], kernel[:, :, i, j])
    if b is not None:
        out += b[None, :, None, None]
    return out, (x.shape, padded, kernel, stride, padding, dilation, flip, b is not None)


def conv2d_backward(dout: np.ndarray, cache):
    """Returns (dx, dw, db); db is None for a layer without bias."""
    x_shape, padded, kernel, stride, padding, dilation, flip, has_bias = cache
    F, C, KH, KW = kernel.shape
    out_h, out_w = dout.shape[2:]
    dpadded = np.zeros_like(padded)
    dkernel = np.zeros_like(kernel)
    for i in range(KH):
        for j in range(KW):
            rows, cols = _slices(out_h, out_w, i, j, stride, dilation)
            dkernel[:, :, i, j] = np.einsum("nfhw,nchw->fc", dout, padded[:, :, rows, cols])
            dpadded[:, :, rows, cols] += np.einsum("nfhw,fc->nchw", dout, kernel[:, :, i, j])
    H, W = x_shape[2:]
    dx = dpadded[:, :, padding[0] : padding[0] + H, padding[1] : padding[1] + W]
    dw = dkernel[:, :, ::-1, ::-1] if flip else dkernel
    return dx, dw, dout.sum(axis=(0, 2, 3)) if has_bias else None


def conv1d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    flip: bool = False,
):
    """x (N, C, L), w (F, C, K) -> (N, F, L_out)."""
    out, cache = conv2d_forward(
        x[:, :, None, :], w[:, :, None, :], b, (1, stride), (0, padding), (1, dilation), flip
    )
    return out[:, :, 0, :], cache


def conv1d_backward(dout: np.ndarray, cache):
    dx, dw, db = conv2d_backward(dout[:, :, None, :], cache)
    return dx[:, :, 0, :], dw[:, :, 0, :], db


MODES = ("valid", "same", "full")


def convolve1d(signal: np.ndarray, kernel: np.ndarray, mode: str = "valid") -> np.ndarray:
    """True 1-D convolution of two vectors in numpy.convolve's modes: valid (padding 0),
    full (padding k - 1), same (the centre len(signal) values of full; for odd k that is
    padding (k - 1) / 2)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    k = len(kernel)
    padding = 0 if mode == "valid" else k - 1
    out, _ = conv1d_forward(
        signal[None, None, :].astype(float),
        kernel[None, None, :].astype(float),
        None,
        padding=padding,
        flip=True,
    )
    full_or_valid = out[0, 0]
    if mode == "same":
        start = (k - 1) // 2
        return full_or_valid[start : start + len(signal)]
    return full_or_valid
