import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nbconv.functional as F

METHODS = ["direct", "im2col", "blocked"]

# The course's worked example: a 4x6 image and a 3x3 kernel (lecture 004)
IMAGE = np.array([[6, 5, 3, -1, 6, 7], [4, 6, 2, 4, 6, 2], [1, 3, 6, 0, 0, 1], [5, 7, 2, 1, 5, 8]], float)
KERNEL = np.array([[3, 2, -1], [-1, 1, 4], [1, 3, 2]], float)


def reference_conv2d(x, w, b, stride, padding, dilation, groups):
    """An independent reference: pad with np.pad, then one einsum per kernel offset."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    N, C, H, W = x.shape
    Fn, Cg, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    OH = (H + 2 * ph - dh * (KH - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1
    y = np.zeros((N, Fn, OH, OW))
    Fg = Fn // groups
    for g in range(groups):
        xg = xp[:, g * Cg:(g + 1) * Cg]
        wg = w[g * Fg:(g + 1) * Fg]
        for ki in range(KH):
            for kj in range(KW):
                patch = xg[:, :, ki * dh: ki * dh + sh * (OH - 1) + 1: sh, kj * dw: kj * dw + sw * (OW - 1) + 1: sw]
                y[:, g * Fg:(g + 1) * Fg] += np.einsum("ncij,fc->nfij", patch, wg[:, :, ki, kj])
    if b is not None:
        y += b[None, :, None, None]
    return y


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("padding, stride, expected", [
    (0, 1, [[57, 55, 33, 14], [78, 36, 17, 58]]),
    (1, 1, [[50, 37, 14, 46, 61, 13], [44, 57, 55, 33, 14, 31], [44, 78, 36, 17, 58, 52], [32, 13, 20, 37, 35, 5]]),
    (1, 2, [[50, 14, 61], [44, 36, 58]]),
])
def test_lecture_convolution_examples(method, padding, stride, expected):
    y, _ = F.conv2d_forward(IMAGE[None, None], KERNEL[None, None], padding=padding, stride=stride, method=method)
    np.testing.assert_array_equal(y[0, 0], np.array(expected, float))


@pytest.mark.parametrize("method", METHODS)
def test_cs231n_11x11x4_example(method, rng):
    # Input 11x11x4, F = 5, S = 2, P = 0: a 4x4 map; V[0,0,0] = sum(X[:5,:5,:] * W0) + b0,
    # V[1,0,0] = sum(X[2:7,:5,:] * W0) + b0 (X in H, W, C order there; V[x, y, d] with x along W)
    X = rng.standard_normal((11, 11, 4))
    W0, b0 = rng.standard_normal((5, 5, 4)), 0.7
    x = X.transpose(2, 0, 1)[None]                 # (1, 4, 11, 11)
    w = W0.transpose(2, 0, 1)[None]                # (1, 4, 5, 5)
    y, _ = F.conv2d_forward(x, w, np.array([b0]), stride=2, method=method)
    assert y.shape == (1, 1, 4, 4)
    assert y[0, 0, 0, 0] == pytest.approx(np.sum(X[:5, :5, :] * W0) + b0, rel=1e-12)
    # the notes' first index runs along the width: V[1,0,0] sits at column 1 of row 0
    assert y[0, 0, 0, 1] == pytest.approx(np.sum(X[:5, 2:7, :] * W0) + b0, rel=1e-12)
    assert y[0, 0, 1, 0] == pytest.approx(np.sum(X[2:7, :5, :] * W0) + b0, rel=1e-12)


@st.composite
def conv_settings(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    C = groups * draw(st.integers(1, 2))
    Fn = groups * draw(st.integers(1, 2))
    KH, KW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    H = draw(st.integers(max(1, dilation[0] * (KH - 1) + 1 - 2 * padding[0]), 7))
    W = draw(st.integers(max(1, dilation[1] * (KW - 1) + 1 - 2 * padding[1]), 7))
    N = draw(st.integers(0, 2))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return N, C, H, W, Fn, KH, KW, stride, padding, dilation, groups, bias, seed


@settings(max_examples=40, deadline=None)
@given(conv_settings())
def test_direct_equals_im2col_equals_reference(setting):
    N, C, H, W, Fn, KH, KW, stride, padding, dilation, groups, bias, seed = setting
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((Fn, C // groups, KH, KW))
    b = rng.standard_normal(Fn) if bias else None
    hyper = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y_ref = reference_conv2d(x, w, b, stride, padding, dilation, groups)
    y_direct, c_direct = F.conv2d_forward(x, w, b, method="direct", **hyper)
    y_im2col, c_im2col = F.conv2d_forward(x, w, b, method="im2col", **hyper)
    np.testing.assert_allclose(y_direct, y_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y_im2col, y_ref, rtol=1e-10, atol=1e-10)

    dy = rng.standard_normal(y_ref.shape)
    grads_direct = F.conv2d_backward(dy, c_direct)
    grads_im2col = F.conv2d_backward(dy, c_im2col)
    for g_direct, g_im2col in zip(grads_direct, grads_im2col):
        if bias or g_direct is not None:
            np.testing.assert_allclose(g_direct, g_im2col, rtol=1e-10, atol=1e-10)
    if not bias:
        assert grads_direct[2] is None and grads_im2col[2] is None


@pytest.mark.parametrize("method", METHODS)
def test_1x1_conv_is_linear_over_channels(method, rng):
    # A 1x1 convolution applies the same linear map to the channel vector of every pixel.
    x = rng.standard_normal((2, 5, 3, 4))
    w = rng.standard_normal((6, 5, 1, 1))
    b = rng.standard_normal(6)
    y, _ = F.conv2d_forward(x, w, b, method=method)
    pixels = x.transpose(0, 2, 3, 1).reshape(-1, 5)               # (N*H*W, C)
    y_lin, _ = F.linear_forward(pixels, w[:, :, 0, 0], b)
    np.testing.assert_allclose(y.transpose(0, 2, 3, 1).reshape(-1, 6), y_lin, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_dx_is_full_convolution_of_dout_with_flipped_kernel(method, padding, rng):
    # For stride 1: dx = conv2d(dout, w flipped in space with F and C swapped, padding K - 1 - P)
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    y, cache = F.conv2d_forward(x, w, padding=padding, method=method)
    dy = rng.standard_normal(y.shape)
    dx, _, _ = F.conv2d_backward(dy, cache)
    w_flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    dx_conv, _ = F.conv2d_forward(dy, w_flipped, padding=2 - padding, method="direct")
    np.testing.assert_allclose(dx, dx_conv, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_dw_is_correlation_of_input_with_dout(method, rng):
    # dw[f, c] = x[:, c] correlated with dy[:, f] (batch summed): a conv with N and C swapped
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 2))
    y, cache = F.conv2d_forward(x, w, padding=1, method=method)
    dy = rng.standard_normal(y.shape)
    _, dw, _ = F.conv2d_backward(dy, cache)
    x_t = np.ascontiguousarray(x.transpose(1, 0, 2, 3))       # (C, N, H, W): C becomes the batch
    dy_t = np.ascontiguousarray(dy.transpose(1, 0, 2, 3))     # (F, N, OH, OW): filters over N channels
    dw_conv, _ = F.conv2d_forward(x_t, dy_t, padding=1, method="direct")   # (C, F, KH, KW)
    np.testing.assert_allclose(dw, dw_conv.transpose(1, 0, 2, 3), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_float32_agrees_with_float64(method, rng):
    x = rng.standard_normal((2, 4, 7, 7))
    w = rng.standard_normal((6, 2, 3, 3))
    b = rng.standard_normal(6)
    hyper = dict(stride=2, padding=1, groups=2, method=method)
    y64, c64 = F.conv2d_forward(x, w, b, **hyper)
    y32, c32 = F.conv2d_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), **hyper)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5)
    dy = rng.standard_normal(y64.shape)
    for g32, g64 in zip(F.conv2d_backward(dy.astype(np.float32), c32), F.conv2d_backward(dy, c64)):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", METHODS)
def test_non_contiguous_inputs(method, rng):
    base = rng.standard_normal((2, 3, 8, 10))
    x = base[:, :, ::2, 1::2]                       # a strided view
    w = rng.standard_normal((3, 3, 4, 2)).transpose(0, 1, 3, 2)   # a transposed view, (3, 3, 2, 4)
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    y, cache = F.conv2d_forward(x, w, padding=1, method=method)
    y_copy, cache_copy = F.conv2d_forward(x.copy(), w.copy(), padding=1, method=method)
    np.testing.assert_array_equal(y, y_copy)
    dy = rng.standard_normal(y.shape)[:, :, :, :]
    dy_view = np.asfortranarray(dy)
    for a, b in zip(F.conv2d_backward(dy_view, cache), F.conv2d_backward(dy, cache_copy)):
        if a is not None:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_batch(method, dtype):
    x = np.zeros((0, 2, 5, 5), dtype=dtype)
    w = np.ones((3, 2, 3, 3), dtype=dtype)
    y, cache = F.conv2d_forward(x, w, np.ones(3, dtype=dtype), padding=1, method=method)
    assert y.shape == (0, 3, 5, 5) and y.dtype == dtype
    dx, dw, db = F.conv2d_backward(np.zeros_like(y), cache)
    assert dx.shape == x.shape and np.all(dw == 0) and np.all(db == 0)


@pytest.mark.parametrize("method", METHODS)
def test_conv1d_against_numpy_correlate(method, rng):
    x = rng.standard_normal((2, 3, 11))
    w = rng.standard_normal((4, 3, 3))
    b = rng.standard_normal(4)
    y, _ = F.conv1d_forward(x, w, b, padding=1, method=method)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1)))
    expected = np.zeros((2, 4, 11))
    for n in range(2):
        for f in range(4):
            expected[n, f] = b[f] + sum(np.correlate(xp[n, c], w[f, c], mode="valid") for c in range(3))
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("L, padding, stride, out", [(5, 1, 1, 5), (5, 1, 2, 3), (5, 1, 3, 2)])
def test_conv1d_output_sizes(L, padding, stride, out):
    # The course's worked example, 1-D: W = 5, F = 3, P = 1: S = 1 -> 5, S = 2 -> 3; S = 3 floors to 2
    y, _ = F.conv1d_forward(np.zeros((1, 1, L)), np.zeros((1, 1, 3)), padding=padding, stride=stride)
    assert y.shape == (1, 1, out)


def test_conv1d_backward_shapes_and_values(rng):
    x = rng.standard_normal((2, 2, 8))
    w = rng.standard_normal((3, 2, 3))
    y, cache = F.conv1d_forward(x, w, np.zeros(3), stride=2, dilation=2, method="im2col")
    dy = rng.standard_normal(y.shape)
    dx, dw, db = F.conv1d_backward(dy, cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (3,)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2)), rtol=1e-12)
    _, cache_d = F.conv1d_forward(x, w, np.zeros(3), stride=2, dilation=2, method="direct")
    for a, b in zip((dx, dw, db), F.conv1d_backward(dy, cache_d)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.conv2d_forward(np.zeros((2, 3, 5)), np.zeros((4, 3, 3, 3))), ValueError, r"x must be 4-D, got a 3-D"),
    (lambda: F.conv2d_forward(np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3))), ValueError, r"w must be 4-D"),
    (lambda: F.conv2d_forward(np.zeros((2, 3, 5, 5)), np.zeros((4, 2, 3, 3))), ValueError,
     r"w must have C // groups = 3 input channels"),
    (lambda: F.conv2d_forward(np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3)), np.zeros(3)), ValueError,
     r"b must have shape \(4,\), got \(3,\)"),
    (lambda: F.conv2d_forward(np.zeros((2, 3, 2, 2)), np.zeros((4, 3, 3, 3))), ValueError,
     r"kernel of size 3 .* larger than the padded x height of size 2"),
    (lambda: F.conv2d_forward(np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3)), stride=0), ValueError,
     r"stride must be >= 1, got 0"),
    (lambda: F.conv2d_forward(np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3)), dilation=(1, 0)), ValueError,
     r"dilation must be >= 1, got 0"),
    (lambda: F.conv2d_forward(np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3)), padding=-1), ValueError,
     r"padding must be >= 0, got -1"),
    (lambda: F.conv2d_forward(np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3)), padding=(1, 2, 3)), ValueError,
     r"padding must be an int or an \(h, w\) pair"),
    (lambda: F.conv2d_forward(np.zeros((2, 3, 5, 5)), np.zeros((4, 1, 3, 3)), groups=2), ValueError,
     r"groups=2 must divide the input channels of x, got C=3"),
    (lambda: F.conv2d_forward(np.zeros((2, 4, 5, 5)), np.zeros((3, 2, 3, 3)), groups=2), ValueError,
     r"groups=2 must divide the output channels of w, got F=3"),
    (lambda: F.conv2d_forward(np.zeros((2, 4, 5, 5)), np.zeros((4, 2, 3, 3)), groups=0), ValueError,
     r"groups must be >= 1, got 0"),
    (lambda: F.conv2d_forward(np.zeros((2, 4, 5, 5)), np.zeros((4, 4, 3, 3)), stride=1.5), TypeError,
     r"stride must be an int, got 1.5"),
    (lambda: F.conv2d_forward(np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3)), method="fft"), ValueError,
     r"method must be one of 'direct', 'im2col', 'blocked', 'naive', 'fast', 'auto', got 'fft'"),
    (lambda: F.conv2d_forward(np.zeros((2, 3, 5, 5), np.float16), np.zeros((4, 3, 3, 3))), TypeError,
     r"x has dtype float16; supported dtypes are float32 or float64"),
    (lambda: F.conv2d_forward(np.zeros((2, 3, 5, 5), np.complex128), np.zeros((4, 3, 3, 3))), TypeError,
     r"x has dtype complex128"),
    (lambda: F.conv2d_forward(np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3), np.float32)), TypeError,
     r"w has dtype float32 but x has dtype float64"),
    (lambda: F.conv2d_forward([[1.0]], np.zeros((4, 3, 3, 3))), TypeError, r"x must be a numpy.ndarray"),
    (lambda: F.conv1d_forward(np.zeros((2, 3, 2)), np.zeros((4, 3, 3))), ValueError,
     r"larger than the padded x length of size 2"),
    (lambda: F.conv1d_forward(np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3))), ValueError, r"x must be 3-D"),
    (lambda: F.conv1d_forward(np.zeros((2, 3, 5)), np.zeros((4, 3, 3)), stride=(1, 1)), TypeError,
     r"stride must be an int, got \(1, 1\)"),
])
def test_conv_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("method", METHODS)
def test_conv_backward_rejects_wrong_dout(method):
    y, cache = F.conv2d_forward(np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3)), method=method)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4, 3, 3\), got \(2, 4, 3, 4\)"):
        F.conv2d_backward(np.zeros((2, 4, 3, 4)), cache)
    with pytest.raises(TypeError, match=r"dout has dtype float32 but the forward output has dtype float64"):
        F.conv2d_backward(np.zeros((2, 4, 3, 3), np.float32), cache)
