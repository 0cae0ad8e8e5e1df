"""Pooling and upsampling layers for 2-D feature maps, in the layer convention of
:mod:`kernelnet.nn.layers`: ``forward(x, ...) -> (out, cache)``, ``backward(dout, cache)``.

Shapes: x (N, C, H, W) -> out (N, C, OH, OW); channels are never mixed.

- Max and average pooling over k x k windows with stride s (default k: non-overlapping) and
  zero padding p: ``OH = floor((H + 2p - k) / s) + 1``, the convolution rule with d = 1.
  Max pooling pads with -inf (a pad is never the maximum) and sends each output's gradient
  to the first maximum of its window (row-major order), so ties have one well-defined
  subgradient. Average pooling divides by k·k whatever the padding (the padded zeros count),
  which keeps it a fixed linear map whose adjoint is its backward pass.
- Nearest upsampling by an integer factor s: ``out[i, j] = x[i // s, j // s]``; its backward
  sums each s x s block of ``dout``.
- Bilinear upsampling by an integer factor s with half-pixel centres (align_corners=False,
  deep-learning frameworks' default): output row i reads input position
  ``max(0, (i + 1/2) / s - 1/2)``, interpolated between its two neighbours (the last row
  repeated at the border). It is separable, out = A_H x A_W^T with (OH, H) and (OW, W)
  interpolation matrices, so backward is dx = A_H^T dout A_W.
- Transposed convolution ("deconvolution"): the adjoint of :func:`~kernelnet.nn.conv.
  conv2d_forward`'s map from input to output, so a stride-s transposed convolution
  upsamples: ``OH = (H - 1) s - 2p + d (k - 1) + output_padding + 1``. Weights w are
  (C_in, F, KH, KW) as in PyTorch's ConvTranspose2d, bias b (F,).

Every forward pass is a sum over the k·k kernel taps of strided slices (as in
:mod:`kernelnet.nn.conv`), so forward and backward are exact, vectorized over batch,
channels and positions.
"""

from __future__ import annotations

import numpy as np


def pool_output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """floor((in + 2p - k) / s) + 1"""
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1, output_padding=0
) -> int:
    """(in - 1) s - 2p + d (k - 1) + output_padding + 1: the input size of a convolution
    with these settings whose output is ``size`` (output_padding picks one of the s sizes
    that floor() maps to the same output)."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _tap(i: int, j: int, out_h: int, out_w: int, stride: int, dilation: int = 1):
    """The slices of a padded map that kernel tap (i, j) reads for every output position."""
    return (
        slice(i * dilation, i * dilation + stride * (out_h - 1) + 1, stride),
        slice(j * dilation, j * dilation + stride * (out_w - 1) + 1, stride),
    )


def _pool_geometry(x: np.ndarray, kernel: int, stride: int | None, padding: int):
    stride = kernel if stride is None else stride
    if kernel < 1 or stride < 1 or padding < 0:
        raise ValueError(
            f"pooling needs kernel >= 1, stride >= 1, padding >= 0 "
            f"(got {kernel}, {stride}, {padding})"
        )
    if 2 * padding > kernel:
        raise ValueError(f"padding {padding} is more than half the {kernel}x{kernel} window")
    H, W = x.shape[2:]
    out_h = pool_output_size(H, kernel, stride, padding)
    out_w = pool_output_size(W, kernel, stride, padding)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"pooling window {kernel}x{kernel} does not fit input {H}x{W}")
    return stride, out_h, out_w


def _pad(x: np.ndarray, padding: int, value: float) -> np.ndarray:
    width = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    return np.pad(x, width, constant_values=value)


def maxpool2d_forward(x: np.ndarray, kernel: int = 2, stride: int | None = None, padding=0):
    """out[n, c, i, j] = max over the window at (i s - p, j s - p) of size k x k."""
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)  # the -inf padding needs a float map
    stride, out_h, out_w = _pool_geometry(x, kernel, stride, padding)
    padded = _pad(x, padding, -np.inf)
    out = np.full((*x.shape[:2], out_h, out_w), -np.inf, dtype=x.dtype)
    winner = np.zeros(out.shape, dtype=np.intp)  # which tap holds the first maximum
    for i in range(kernel):
        for j in range(kernel):
            window = padded[(slice(None), slice(None), *_tap(i, j, out_h, out_w, stride))]
            better = window > out  # strict: an equal later value never takes over
            out = np.where(better, window, out)
            winner[better] = i * kernel + j
    return out, (x.shape, kernel, stride, padding, winner)


def maxpool2d_backward(dout: np.ndarray, cache) -> np.ndarray:
    x_shape, kernel, stride, padding, winner = cache
    out_h, out_w = dout.shape[2:]
    H, W = x_shape[2:]
    dpadded = np.zeros((*x_shape[:2], H + 2 * padding, W + 2 * padding), dtype=dout.dtype)
    for i in range(kernel):
        for j in range(kernel):
            rows, cols = _tap(i, j, out_h, out_w, stride)
            dpadded[:, :, rows, cols] += np.where(winner == i * kernel + j, dout, 0)
    return dpadded[:, :, padding : padding + H, padding : padding + W]


def avgpool2d_forward(x: np.ndarray, kernel: int = 2, stride: int | None = None, padding=0):
    """out[n, c, i, j] = (1 / k²) · sum over the window (padded zeros included)."""
    stride, out_h, out_w = _pool_geometry(x, kernel, stride, padding)
    padded = _pad(x, padding, 0.0)
    out = np.zeros((*x.shape[:2], out_h, out_w), dtype=np.result_type(x, np.float64))
    for i in range(kernel):
        for j in range(kernel):
            out += padded[(slice(None), slice(None), *_tap(i, j, out_h, out_w, stride))]
    out /= kernel * kernel
    return out, (x.shape, kernel, stride, padding)


def avgpool2d_backward(dout: np.ndarray, cache) -> np.ndarray:
    """Every input of a window receives 1/k² of that window's gradient."""
    x_shape, kernel, stride, padding = cache
    out_h, out_w = dout.shape[2:]
    H, W = x_shape[2:]
    dpadded = np.zeros((*x_shape[:2], H + 2 * padding, W + 2 * padding), dtype=dout.dtype)
    share = dout / (kernel * kernel)
    for i in range(kernel):
        for j in range(kernel):
            rows, cols = _tap(i, j, out_h, out_w, stride)
            dpadded[:, :, rows, cols] += share
    return dpadded[:, :, padding : padding + H, padding : padding + W]


UPSAMPLE_MODES = ("nearest", "bilinear")


def _check_scale(scale: int) -> None:
    if not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"upsampling needs an integer scale >= 1 (got {scale!r})")


def upsample_nearest_forward(x: np.ndarray, scale: int = 2):
    """(N, C, H, W) -> (N, C, s H, s W): each value repeated in an s x s block."""
    _check_scale(scale)
    return x.repeat(scale, axis=2).repeat(scale, axis=3), (x.shape, scale)


def upsample_nearest_backward(dout: np.ndarray, cache) -> np.ndarray:
    (N, C, H, W), s = cache
    return dout.reshape(N, C, H, s, W, s).sum(axis=(3, 5))


def bilinear_matrix(size: int, scale: int) -> np.ndarray:
    """(scale·size, size): row i interpolates input position max(0, (i + 1/2)/s - 1/2)
    linearly between its two neighbouring inputs (the last one repeated at the edge)."""
    position = np.maximum((np.arange(size * scale) + 0.5) / scale - 0.5, 0.0)
    low = np.minimum(np.floor(position).astype(np.intp), size - 1)
    high = np.minimum(low + 1, size - 1)
    weight = position - low
    matrix = np.zeros((size * scale, size))
    rows = np.arange(size * scale)
    np.add.at(matrix, (rows, low), 1 - weight)
    np.add.at(matrix, (rows, high), weight)
    return matrix


def upsample_bilinear_forward(x: np.ndarray, scale: int = 2):
    """(N, C, H, W) -> (N, C, s H, s W), out = A_H x A_W^T per map."""
    _check_scale(scale)
    A_h, A_w = bilinear_matrix(x.shape[2], scale), bilinear_matrix(x.shape[3], scale)
    return np.einsum("ih,nchw,jw->ncij", A_h, x, A_w, optimize=True), (A_h, A_w)


def upsample_bilinear_backward(dout: np.ndarray, cache) -> np.ndarray:
    A_h, A_w = cache
    return np.einsum("ih,ncij,jw->nchw", A_h, dout, A_w, optimize=True)


def conv_transpose2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
):
    """x (N, C, H, W), w (C, F, KH, KW) -> (N, F, OH, OW): every input value scatters
    x[n, c, h, w] · w[c, f] onto the output window at (h s - p, w s - p)."""
    N, C, H, W = x.shape
    C_w, F, KH, KW = w.shape
    if C_w != C:
        raise ValueError(f"weights are for {C_w} input channels, the input has {C}")
    if not 0 <= output_padding < max(stride, dilation):
        raise ValueError(
            f"output_padding must be below the stride or dilation (got {output_padding})"
        )
    out_h = conv_transpose_output_size(H, KH, stride, padding, dilation, output_padding)
    out_w = conv_transpose_output_size(W, KW, stride, padding, dilation, output_padding)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"padding {padding} crops the whole {H}x{W} transposed output")
    # the uncropped output: padding p crops p rows and columns from each border
    full_h, full_w = out_h + 2 * padding, out_w + 2 * padding
    full = np.zeros((N, F, full_h, full_w), dtype=np.result_type(x, w))
    for i in range(KH):
        for j in range(KW):
            rows, cols = _tap(i, j, H, W, stride, dilation)
            full[:, :, rows, cols] += np.einsum("nchw,cf->nfhw", x, w[:, :, i, j])
    out = full[:, :, padding : padding + out_h, padding : padding + out_w].copy()
    if b is not None:
        out += b[None, :, None, None]
    return out, (x, w, stride, padding, dilation, b is not None)


def conv_transpose2d_backward(dout: np.ndarray, cache):
    """Returns (dx, dw, db): the gradient gathers what each input scattered."""
    x, w, stride, padding, dilation, has_bias = cache
    N, C, H, W = x.shape
    _, F, KH, KW = w.shape
    out_h, out_w = dout.shape[2:]
    full = np.zeros((N, F, out_h + 2 * padding, out_w + 2 * padding), dtype=dout.dtype)
    full[:, :, padding : padding + out_h, padding : padding + out_w] = dout
    dx = np.zeros_like(x, dtype=np.result_type(x, dout))
    dw = np.zeros_like(w, dtype=np.result_type(w, dout))
    for i in range(KH):
        for j in range(KW):
            rows, cols = _tap(i, j, H, W, stride, dilation)
            gathered = full[:, :, rows, cols]  # (N, F, H, W)
            dx += np.einsum("nfhw,cf->nchw", gathered, w[:, :, i, j])
            dw[:, :, i, j] = np.einsum("nchw,nfhw->cf", x, gathered)
    return dx, dw, dout.sum(axis=(0, 2, 3)) if has_bias else None
