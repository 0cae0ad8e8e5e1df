"""Pooling, upsampling and transposed convolution: forward passes against loop references
written from the definitions, backward passes against centred finite differences (float64),
and the transposed convolution against the adjoint of the convolution."""

import numpy as np
import pytest

from kernelnet.nn import pooling
from kernelnet.nn.conv import conv2d_forward
from kernelnet.nn.gradcheck import numeric_gradient, relative_error


def loop_pool(x, k, s, p, reduce):
    """One window at a time; positions outside the input are skipped (max) or count as
    zeros (average, divided by k·k)."""
    N, C, H, W = x.shape
    OH, OW = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    out = np.zeros((N, C, OH, OW))
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    values = [
                        x[n, c, r, q]
                        for r in range(i * s - p, i * s - p + k)
                        for q in range(j * s - p, j * s - p + k)
                        if 0 <= r < H and 0 <= q < W
                    ]
                    out[n, c, i, j] = max(values) if reduce == "max" else sum(values) / (k * k)
    return out


def loop_bilinear(x, s):
    """Half-pixel centres: output (i, j) reads input (max(0, (i+.5)/s-.5), same for j)."""
    N, C, H, W = x.shape
    out = np.zeros((N, C, H * s, W * s))

    def neighbours(index, size):
        position = max(0.0, (index + 0.5) / s - 0.5)
        low = min(int(np.floor(position)), size - 1)
        return low, min(low + 1, size - 1), position - low

    for i in range(H * s):
        r0, r1, a = neighbours(i, H)
        for j in range(W * s):
            c0, c1, b = neighbours(j, W)
            out[:, :, i, j] = (
                (1 - a) * (1 - b) * x[:, :, r0, c0]
                + (1 - a) * b * x[:, :, r0, c1]
                + a * (1 - b) * x[:, :, r1, c0]
                + a * b * x[:, :, r1, c1]
            )
    return out


def loop_conv_transpose(x, w, b, s, p, op, d):
    """Scatter each input value times the kernel onto the output, then crop p per border."""
    N, C, H, W = x.shape
    _, F, KH, KW = w.shape
    OH = (H - 1) * s - 2 * p + d * (KH - 1) + op + 1
    OW = (W - 1) * s - 2 * p + d * (KW - 1) + op + 1
    out = np.zeros((N, F, OH, OW)) + b[None, :, None, None]
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for v in range(W):
                    for f in range(F):
                        for u in range(KH):
                            for t in range(KW):
                                r, q = h * s + u * d - p, v * s + t * d - p
                                if 0 <= r < OH and 0 <= q < OW:
                                    out[n, f, r, q] += x[n, c, h, v] * w[c, f, u, t]
    return out


def distinct(rng, shape):
    """Values with no ties and gaps of at least 0.01: max pooling is differentiable there
    and a step of 1e-5 never changes a window's maximum."""
    values = rng.permutation(int(np.prod(shape))) * 0.01 + rng.uniform(0, 0.001)
    return rng.permutation(values).reshape(shape) - values.mean()


def check_gradients(forward, backward, inputs, rng, threshold=1e-7):
    out, cache = forward(**inputs)
    dout = rng.normal(size=out.shape)
    analytic = backward(dout, cache)
    analytic = analytic if isinstance(analytic, tuple) else (analytic,)
    for (name, value), grad in zip(inputs.items(), analytic):
        numeric = numeric_gradient(lambda: float((forward(**inputs)[0] * dout).sum()), value)
        error = relative_error(grad, numeric)
        assert error < threshold, f"{name}: {error:.3g}"


POOLS = [(2, None, 0), (3, 2, 1), (3, 1, 0), (2, 3, 1)]  # (kernel, stride, padding)


@pytest.mark.parametrize("k, s, p", POOLS)
def test_max_pool_matches_the_loop_definition_and_its_gradient(k, s, p):
    rng = np.random.default_rng(k + 10 * p)
    x = distinct(rng, (2, 3, 7, 6))
    out, _ = pooling.maxpool2d_forward(x, k, s, p)
    np.testing.assert_array_equal(out, loop_pool(x, k, s if s else k, p, "max"))
    check_gradients(
        lambda x: pooling.maxpool2d_forward(x, k, s, p), pooling.maxpool2d_backward, {"x": x}, rng
    )


@pytest.mark.parametrize("k, s, p", POOLS)
def test_average_pool_matches_the_loop_definition_and_its_gradient(k, s, p):
    rng = np.random.default_rng(k + 10 * p)
    x = rng.normal(size=(2, 3, 7, 6))
    out, _ = pooling.avgpool2d_forward(x, k, s, p)
    np.testing.assert_allclose(out, loop_pool(x, k, s if s else k, p, "avg"), rtol=0, atol=1e-14)
    check_gradients(
        lambda x: pooling.avgpool2d_forward(x, k, s, p), pooling.avgpool2d_backward, {"x": x}, rng
    )


def test_max_pool_sends_a_tied_window_gradient_to_its_first_maximum_only():
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])
    out, cache = pooling.maxpool2d_forward(x, 2)
    assert out.shape == (1, 1, 1, 1) and out[0, 0, 0, 0] == 3.0
    dx = pooling.maxpool2d_backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(dx, [[[[0.0, 1.0], [0.0, 0.0]]]])


def test_pooling_exact_small_answers():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(pooling.maxpool2d_forward(x, 2)[0][0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(
        pooling.avgpool2d_forward(x, 2)[0][0, 0], [[2.5, 4.5], [10.5, 12.5]]
    )


def test_nearest_upsampling_repeats_blocks_and_sums_them_back():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    out, cache = pooling.upsample_nearest_forward(x, 2)
    np.testing.assert_array_equal(
        out[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    )
    dout = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(
        pooling.upsample_nearest_backward(dout, cache)[0, 0], [[10, 18], [42, 50]]
    )
    rng = np.random.default_rng(0)
    check_gradients(
        lambda x: pooling.upsample_nearest_forward(x, 3),
        pooling.upsample_nearest_backward,
        {"x": rng.normal(size=(2, 2, 3, 4))},
        rng,
    )


def test_bilinear_upsampling_known_values_loop_reference_and_gradient():
    row = np.array([[[[0.0, 1.0]]]])
    np.testing.assert_allclose(
        pooling.upsample_bilinear_forward(row, 2)[0][0, 0, 0], [0, 0.25, 0.75, 1], atol=1e-15
    )
    rng = np.random.default_rng(1)
    for s in (2, 3):
        x = rng.normal(size=(2, 2, 3, 5))
        out, _ = pooling.upsample_bilinear_forward(x, s)
        np.testing.assert_allclose(out, loop_bilinear(x, s), rtol=0, atol=1e-13)
        check_gradients(
            lambda x, s=s: pooling.upsample_bilinear_forward(x, s),
            pooling.upsample_bilinear_backward,
            {"x": x},
            rng,
        )


def test_bilinear_keeps_a_constant_map_constant():
    out, _ = pooling.upsample_bilinear_forward(np.full((1, 1, 3, 3), 2.5), 4)
    np.testing.assert_allclose(out, 2.5, rtol=0, atol=1e-15)


CONV_T = [(1, 0, 0, 1), (2, 1, 1, 1), (2, 0, 0, 1), (3, 1, 2, 1), (2, 2, 1, 2)]  # s, p, op, d


@pytest.mark.parametrize("s, p, op, d", CONV_T)
def test_transposed_convolution_matches_the_loop_definition_and_its_gradient(s, p, op, d):
    rng = np.random.default_rng(s + 10 * p + 100 * op + 1000 * d)
    x, w, b = rng.normal(size=(2, 3, 4, 3)), rng.normal(size=(3, 2, 3, 2)), rng.normal(size=2)
    out, _ = pooling.conv_transpose2d_forward(x, w, b, s, p, op, d)
    np.testing.assert_allclose(
        out, loop_conv_transpose(x, w, b, s, p, op, d), rtol=1e-12, atol=1e-12
    )

    def forward(x, w, b):
        return pooling.conv_transpose2d_forward(x, w, b, s, p, op, d)

    check_gradients(forward, pooling.conv_transpose2d_backward, {"x": x, "w": w, "b": b}, rng)


@pytest.mark.parametrize("s, p, op, d", CONV_T)
def test_transposed_convolution_is_the_adjoint_of_convolution(s, p, op, d):
    """<conv(y, w), x> = <y, conv_transpose(x, w)> for every y and x: the definition of the
    transposed map, checked against the convolution layer, an independent implementation."""
    rng = np.random.default_rng(7 + s + p)
    w = rng.normal(size=(3, 2, 3, 2))  # conv2d: 2 -> 3 channels; transposed: 3 -> 2
    x = rng.normal(size=(2, 3, 4, 3))
    up, _ = pooling.conv_transpose2d_forward(x, w, None, s, p, op, d)
    y = rng.normal(size=up.shape)
    down, _ = conv2d_forward(y, w, None, stride=s, padding=p, dilation=d)
    assert down.shape == x.shape  # the transposed map inverts the shape rule
    np.testing.assert_allclose((down * x).sum(), (y * up).sum(), rtol=1e-12)


def test_stride_two_transposed_convolution_doubles_the_assignments_maps():
    w = np.zeros((32, 32, 4, 4))
    out, _ = pooling.conv_transpose2d_forward(np.zeros((1, 32, 32, 32)), w, None, 2, 1)
    assert out.shape == (1, 32, 64, 64)
    assert pooling.conv_transpose_output_size(32, 3, 2, 1, 1, 1) == 64


@pytest.mark.parametrize(
    "call",
    [
        lambda: pooling.maxpool2d_forward(np.zeros((1, 1, 2, 2)), 3),
        lambda: pooling.avgpool2d_forward(np.zeros((1, 1, 4, 4)), 2, 2, 2),
        lambda: pooling.upsample_nearest_forward(np.zeros((1, 1, 2, 2)), 0),
        lambda: pooling.upsample_bilinear_forward(np.zeros((1, 1, 2, 2)), 1.5),
        lambda: pooling.conv_transpose2d_forward(
            np.zeros((1, 2, 3, 3)), np.zeros((3, 1, 3, 3)), None
        ),
        lambda: pooling.conv_transpose2d_forward(
            np.zeros((1, 2, 3, 3)), np.zeros((2, 1, 3, 3)), None, 2, 0, 2
        ),
    ],
)
def test_impossible_settings_are_refused(call):
    with pytest.raises(ValueError):
        call()


def test_layers_do_not_modify_their_inputs():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 2, 4, 4))
    saved = x.copy()
    pooling.maxpool2d_forward(x, 2, 2, 1)
    pooling.avgpool2d_forward(x, 3, 1, 1)
    pooling.upsample_nearest_forward(x, 2)[0][...] = 0  # a fresh array, not a view of x
    pooling.upsample_bilinear_forward(x, 2)
    pooling.conv_transpose2d_forward(x, rng.normal(size=(2, 1, 2, 2)), None, 2)
    np.testing.assert_array_equal(x, saved)
