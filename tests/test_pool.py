import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from numpy.lib.stride_tricks import sliding_window_view

import nbconv.functional as F


# ----------------------------------------------------------------------------- NumPy references

def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _windows(x, kernel, stride, padding, fill):
    """(N, C, OH, OW, KH, KW) windows of x padded with ``fill``, and the padded array."""
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)), constant_values=fill)
    return sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::SH, ::SW], xp


def _geometry(kernel_size, stride, padding):
    kernel = _pair(kernel_size)
    return kernel, (kernel if stride is None else _pair(stride)), _pair(padding)


def ref_max_pool(x, kernel_size, stride=None, padding=0):
    """-> (out, switches), switches as row * W + col in the unpadded input."""
    kernel, stride, padding = _geometry(kernel_size, stride, padding)
    win, _ = _windows(x, kernel, stride, padding, -np.inf)
    N, C, OH, OW, KH, KW = win.shape
    out = win.max(axis=(-2, -1))
    first = win.reshape(N, C, OH, OW, KH * KW).argmax(axis=-1)   # np.argmax: first maximum wins
    ki, kj = np.divmod(first, KW)
    rows = np.arange(OH)[:, None] * stride[0] - padding[0] + ki
    cols = np.arange(OW)[None, :] * stride[1] - padding[1] + kj
    return out, rows * x.shape[3] + cols


def ref_max_pool_backward(dout, x, kernel_size, stride=None, padding=0):
    """Plain loops: find each window's first maximum and add dout there."""
    (KH, KW), (SH, SW), (PH, PW) = _geometry(kernel_size, stride, padding)
    N, C, H, W = x.shape
    dx = np.zeros_like(x)
    for n, c, i, j in np.ndindex(dout.shape):
        best, where = -np.inf, None
        for ki in range(KH):
            for kj in range(KW):
                r, s = i * SH - PH + ki, j * SW - PW + kj
                if 0 <= r < H and 0 <= s < W and (where is None or x[n, c, r, s] > best):
                    best, where = x[n, c, r, s], (r, s)
        dx[n, c, where[0], where[1]] += dout[n, c, i, j]
    return dx


def ref_avg_pool(x, kernel_size, stride=None, padding=0):
    kernel, stride, padding = _geometry(kernel_size, stride, padding)
    win, _ = _windows(x, kernel, stride, padding, 0.0)
    return win.sum(axis=(-2, -1)) / (kernel[0] * kernel[1])


def ref_avg_pool_backward(dout, x, kernel_size, stride=None, padding=0):
    (KH, KW), (SH, SW), (PH, PW) = _geometry(kernel_size, stride, padding)
    N, C, H, W = x.shape
    dxp = np.zeros((N, C, H + 2 * PH, W + 2 * PW))
    for n, c, i, j in np.ndindex(dout.shape):
        dxp[n, c, i * SH:i * SH + KH, j * SW:j * SW + KW] += dout[n, c, i, j] / (KH * KW)
    return dxp[:, :, PH:PH + H, PW:PW + W]


def ref_lp_pool(x, p, kernel_size, stride=None):
    kernel, stride, padding = _geometry(kernel_size, stride, 0)
    win, _ = _windows(x, kernel, stride, padding, 0.0)
    return (np.abs(win) ** p).sum(axis=(-2, -1)) ** (1.0 / p)


def ref_lp_pool_backward(dout, x, p, kernel_size, stride=None):
    """dx = dout * |x|^(p-1) * sign(x) / out^(p-1), summed over the windows; 0 where out == 0."""
    (KH, KW), (SH, SW), _ = _geometry(kernel_size, stride, 0)
    out = ref_lp_pool(x, p, kernel_size, stride)
    dx = np.zeros_like(x)
    for n, c, i, j in np.ndindex(dout.shape):
        if out[n, c, i, j] == 0:
            continue
        w = x[n, c, i * SH:i * SH + KH, j * SW:j * SW + KW]
        dx[n, c, i * SH:i * SH + KH, j * SW:j * SW + KW] += (
            dout[n, c, i, j] * np.abs(w) ** (p - 1) * np.sign(w) / out[n, c, i, j] ** (p - 1))
    return dx


# (kernel_size, stride, padding): disjoint, overlapping (stride < kernel), padded, non-square, gaps
POOL_SETTINGS = [
    (2, None, 0),
    (3, 1, 0),
    (3, 1, 1),
    (3, 2, 1),
    ((2, 3), (1, 2), (1, 1)),
    ((3, 1), (2, 1), (1, 0)),
    (4, 3, 2),
    (1, 2, 0),
]
LP_SETTINGS = [(2, None), (3, 1), (3, 2), ((2, 3), (1, 2)), ((3, 1), (2, 1))]


# ----------------------------------------------------------------------------- worked examples

def test_max_pool_worked_example_4x6_image():
    # The course's worked example, convolution of a 4x6 image: 2x2 max pooling, stride 2
    image = np.array([[6, 5, 3, -1, 6, 7], [4, 6, 2, 4, 6, 2], [1, 3, 6, 0, 0, 1], [5, 7, 2, 1, 5, 8]],
                     dtype=np.float64)
    out, cache = F.max_pool2d_forward(image[None, None], kernel_size=2, stride=2)
    np.testing.assert_array_equal(out[0, 0], [[6, 4, 7], [7, 6, 8]])
    # the top-left window [[6, 5], [4, 6]] ties: the first 6 (row 0, col 0) wins
    np.testing.assert_array_equal(cache.switches[0, 0], [[0, 9, 5], [19, 14, 23]])


def test_max_pool_worked_example_002():
    # The course's worked example, max pooling (002)
    x = np.array([[1, 3, 2, 9], [7, 4, 1, 5], [8, 5, 2, 3], [4, 2, 1, 4]], dtype=np.float64)
    out, cache = F.max_pool2d_forward(x[None, None], kernel_size=2)
    np.testing.assert_array_equal(out[0, 0], [[7, 9], [8, 4]])
    (dx,) = F.max_pool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    # each gradient lands on its window's maximum (the switches), nowhere else
    np.testing.assert_array_equal(cache.switches[0, 0], [[4, 3], [8, 15]])
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 0, 2], [1, 0, 0, 0], [3, 0, 0, 0], [0, 0, 0, 4]])


# ----------------------------------------------------------------------------- against the references

@pytest.mark.parametrize("kernel_size, stride, padding", POOL_SETTINGS)
def test_max_pool_matches_reference(rng, kernel_size, stride, padding):
    x = rng.standard_normal((2, 3, 7, 6))
    out, cache = F.max_pool2d_forward(x, kernel_size=kernel_size, stride=stride, padding=padding)
    ref_out, ref_switches = ref_max_pool(x, kernel_size, stride, padding)
    np.testing.assert_array_equal(out, ref_out)
    assert cache.switches.dtype == np.int64 and cache.switches.shape == out.shape
    np.testing.assert_array_equal(cache.switches, ref_switches)
    dout = rng.standard_normal(out.shape)
    (dx,) = F.max_pool2d_backward(dout, cache)
    np.testing.assert_allclose(dx, ref_max_pool_backward(dout, x, kernel_size, stride, padding),
                               rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("kernel_size, stride, padding", POOL_SETTINGS)
def test_avg_pool_matches_reference(rng, kernel_size, stride, padding):
    x = rng.standard_normal((2, 3, 7, 6))
    out, cache = F.avg_pool2d_forward(x, kernel_size=kernel_size, stride=stride, padding=padding)
    np.testing.assert_allclose(out, ref_avg_pool(x, kernel_size, stride, padding), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    (dx,) = F.avg_pool2d_backward(dout, cache)
    np.testing.assert_allclose(dx, ref_avg_pool_backward(dout, x, kernel_size, stride, padding),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("norm_type", [1, 1.5, 2, 3])
@pytest.mark.parametrize("kernel_size, stride", LP_SETTINGS)
def test_lp_pool_matches_reference(rng, norm_type, kernel_size, stride):
    x = rng.standard_normal((2, 3, 7, 6))
    out, cache = F.lp_pool2d_forward(x, norm_type=norm_type, kernel_size=kernel_size, stride=stride)
    np.testing.assert_allclose(out, ref_lp_pool(x, norm_type, kernel_size, stride), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    (dx,) = F.lp_pool2d_backward(dout, cache)
    np.testing.assert_allclose(dx, ref_lp_pool_backward(dout, x, norm_type, kernel_size, stride),
                               rtol=1e-10, atol=1e-12)


def test_global_avg_pool_matches_reference(rng):
    x = rng.standard_normal((2, 3, 5, 4))
    out, cache = F.global_avg_pool2d_forward(x)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out, x.mean(axis=(2, 3)), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal((2, 3))
    (dx,) = F.global_avg_pool2d_backward(dout, cache)
    np.testing.assert_allclose(dx, np.broadcast_to(dout[:, :, None, None] / 20, x.shape), rtol=1e-12, atol=1e-14)


@settings(max_examples=25, deadline=None)
@given(H=st.integers(1, 7), W=st.integers(1, 7), KH=st.integers(1, 4), KW=st.integers(1, 4),
       SH=st.integers(1, 3), SW=st.integers(1, 3), data=st.data())
def test_max_and_avg_pool_match_reference_on_random_settings(H, W, KH, KW, SH, SW, data):
    PH = data.draw(st.integers(0, KH // 2))
    PW = data.draw(st.integers(0, KW // 2))
    if KH > H + 2 * PH or KW > W + 2 * PW:
        return
    x = np.random.default_rng(H * 100 + W).standard_normal((1, 2, H, W))
    args = dict(kernel_size=(KH, KW), stride=(SH, SW), padding=(PH, PW))
    out, cache = F.max_pool2d_forward(x, **args)
    ref_out, ref_switches = ref_max_pool(x, (KH, KW), (SH, SW), (PH, PW))
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(cache.switches, ref_switches)
    np.testing.assert_allclose(F.avg_pool2d_forward(x, **args)[0], ref_avg_pool(x, (KH, KW), (SH, SW), (PH, PW)),
                               rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- max pooling: switches, ties, padding

def test_max_pool_backward_routes_gradient_exactly_to_switches(rng):
    # overlapping 3x3 windows, stride 1, padding 1: a pixel can win several windows
    x = rng.permutation(2 * 3 * 5 * 5).reshape(2, 3, 5, 5).astype(np.float64)   # no ties
    out, cache = F.max_pool2d_forward(x, kernel_size=3, stride=1, padding=1)
    dout = rng.integers(1, 10, size=out.shape).astype(np.float64)             # integer sums are exact
    (dx,) = F.max_pool2d_backward(dout, cache)
    expected = np.zeros_like(x)
    _, switches = ref_max_pool(x, 3, 1, 1)
    for n, c, i, j in np.ndindex(out.shape):
        r, s = divmod(int(switches[n, c, i, j]), 5)
        expected[n, c, r, s] += dout[n, c, i, j]
    np.testing.assert_array_equal(dx, expected)
    assert (expected > dout.min()).any()                     # some pixel really won several windows
    winners = np.zeros(x.shape, dtype=bool)
    winners.reshape(2, 3, 25)[np.arange(2)[:, None, None], np.arange(3)[None, :, None],
                              switches.reshape(2, 3, -1)] = True
    assert np.all(dx[~winners] == 0) and np.all(dx[winners] > 0)
    assert dx.sum() == dout.sum()


def test_max_pool_ties_go_to_first_maximum_in_row_major_order():
    x = np.array([[[[5.0, 5.0, 1.0, 2.0],
                    [5.0, 5.0, 2.0, 1.0]]]])
    out, cache = F.max_pool2d_forward(x, kernel_size=2)
    np.testing.assert_array_equal(out[0, 0], [[5.0, 2.0]])
    np.testing.assert_array_equal(cache.switches[0, 0], [[0, 3]])   # (0, 0) and (0, 3)
    (dx,) = F.max_pool2d_backward(np.ones((1, 1, 1, 2)), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1, 0, 0, 1], [0, 0, 0, 0]])


def test_max_pool_constant_input_picks_top_left_of_each_window():
    x = np.full((1, 1, 4, 4), 3.0)
    _, cache = F.max_pool2d_forward(x, kernel_size=2, stride=1)
    expected = np.arange(3)[:, None] * 4 + np.arange(3)[None, :]
    np.testing.assert_array_equal(cache.switches[0, 0], expected)


def test_max_pool_pads_with_minus_infinity():
    # all inputs negative: zero padding would make the border outputs 0
    x = -1.0 - np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    out, cache = F.max_pool2d_forward(x, kernel_size=3, stride=1, padding=1)
    assert np.all(out < 0)
    assert out[0, 0, 0, 0] == -1.0 and out[0, 0, 3, 3] == -11.0
    assert cache.switches.min() >= 0 and cache.switches.max() < 16   # never a padding position
    # a window of -inf pixels still picks a real pixel
    out, cache = F.max_pool2d_forward(np.full((1, 1, 2, 2), -np.inf), kernel_size=2, padding=1)
    assert np.all(out == -np.inf) and np.all((cache.switches >= 0) & (cache.switches < 4))


def test_max_pool_propagates_nan():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    out, cache = F.max_pool2d_forward(x, kernel_size=2)
    assert np.isnan(out[0, 0, 0, 0]) and cache.switches[0, 0, 0, 0] == 4
    np.testing.assert_array_equal(out[0, 0, 0, 1:], [7.0])
    np.testing.assert_array_equal(out[0, 0, 1], [13.0, 15.0])


# ----------------------------------------------------------------------------- identities

@pytest.mark.parametrize("method", ["direct", "im2col"])
@pytest.mark.parametrize("kernel_size, stride, padding", [(2, None, 0), (3, 1, 1), ((3, 2), (2, 1), (1, 0))])
def test_avg_pool_equals_depthwise_conv_with_constant_kernel(rng, method, kernel_size, stride, padding):
    C = 3
    x = rng.standard_normal((2, C, 6, 5))
    KH, KW = _pair(kernel_size)
    stride_ = kernel_size if stride is None else stride
    w = np.full((C, 1, KH, KW), 1.0 / (KH * KW))
    conv_out, conv_cache = F.conv2d_forward(x, w, stride=stride_, padding=padding, groups=C, method=method)
    out, cache = F.avg_pool2d_forward(x, kernel_size=kernel_size, stride=stride, padding=padding)
    np.testing.assert_allclose(out, conv_out, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(F.avg_pool2d_backward(dout, cache)[0], F.conv2d_backward(dout, conv_cache)[0],
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel_size, stride", LP_SETTINGS)
def test_l2_pool_is_sqrt_of_window_area_times_avg_pool_of_squares(rng, kernel_size, stride):
    x = rng.standard_normal((2, 3, 6, 7))
    KH, KW = _pair(kernel_size)
    out, cache = F.lp_pool2d_forward(x, norm_type=2, kernel_size=kernel_size, stride=stride)
    avg, avg_cache = F.avg_pool2d_forward(x ** 2, kernel_size=kernel_size, stride=stride)
    np.testing.assert_allclose(out, np.sqrt(avg * KH * KW), rtol=1e-12)
    # and the chain rule through that composition gives the same gradient
    dout = rng.standard_normal(out.shape)
    (d_squares,) = F.avg_pool2d_backward(dout * KH * KW / (2 * out), avg_cache)
    np.testing.assert_allclose(F.lp_pool2d_backward(dout, cache)[0], d_squares * 2 * x, rtol=1e-10, atol=1e-12)


def test_lp_pool_with_p_1_is_sum_of_absolute_values(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    out, _ = F.lp_pool2d_forward(x, norm_type=1, kernel_size=2)
    avg, _ = F.avg_pool2d_forward(np.abs(x), kernel_size=2)
    np.testing.assert_allclose(out, 4 * avg, rtol=1e-12)


def test_global_avg_pool_equals_avg_pool_over_whole_map(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    out, cache = F.global_avg_pool2d_forward(x)
    full, full_cache = F.avg_pool2d_forward(x, kernel_size=(4, 5))
    assert full.shape == (2, 3, 1, 1)
    np.testing.assert_allclose(out, full[:, :, 0, 0], rtol=1e-12, atol=1e-14)
    dout = rng.standard_normal((2, 3))
    np.testing.assert_allclose(F.global_avg_pool2d_backward(dout, cache)[0],
                               F.avg_pool2d_backward(dout[:, :, None, None], full_cache)[0], rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- edge values

def test_avg_pool_counts_zero_padding_in_the_average():
    out, _ = F.avg_pool2d_forward(np.ones((1, 1, 3, 3)), kernel_size=3, stride=1, padding=1)
    np.testing.assert_allclose(out[0, 0], [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9], [4 / 9, 6 / 9, 4 / 9]])


def test_lp_pool_zero_window_passes_zero_gradient():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 2:, 2:] = [[3.0, 0.0], [0.0, -4.0]]
    out, cache = F.lp_pool2d_forward(x, norm_type=2, kernel_size=2)
    np.testing.assert_allclose(out[0, 0], [[0, 0], [0, 5]])
    (dx,) = F.lp_pool2d_backward(np.ones_like(out), cache)
    assert np.all(np.isfinite(dx))
    expected = np.zeros((4, 4))
    expected[2:, 2:] = [[3 / 5, 0], [0, -4 / 5]]
    np.testing.assert_allclose(dx[0, 0], expected)


def test_stride_defaults_to_kernel_size(rng):
    x = rng.standard_normal((1, 2, 6, 6))
    for forward, extra in ((F.max_pool2d_forward, {}), (F.avg_pool2d_forward, {}),
                           (F.lp_pool2d_forward, {"norm_type": 2})):
        default, _ = forward(x, kernel_size=(3, 2), **extra)
        explicit, _ = forward(x, kernel_size=(3, 2), stride=(3, 2), **extra)
        assert default.shape == (1, 2, 2, 3)
        np.testing.assert_array_equal(default, explicit)


# ----------------------------------------------------------------------------- dtypes, layout, empty batch

def _run(op, x, dout_seed=1):
    """forward then backward with a fixed dout of the output's dtype; -> (out, dx)."""
    forward, backward, kwargs = OPS[op]
    out, cache = forward(x, **kwargs)
    dout = np.random.default_rng(dout_seed).standard_normal(out.shape).astype(x.dtype)
    return out, backward(dout, cache)[0]


OPS = {
    "max_pool2d": (F.max_pool2d_forward, F.max_pool2d_backward, dict(kernel_size=3, stride=2, padding=1)),
    "avg_pool2d": (F.avg_pool2d_forward, F.avg_pool2d_backward, dict(kernel_size=(3, 2), stride=1, padding=(1, 0))),
    "lp_pool2d": (F.lp_pool2d_forward, F.lp_pool2d_backward, dict(norm_type=3, kernel_size=2, stride=1)),
    "global_avg_pool2d": (F.global_avg_pool2d_forward, F.global_avg_pool2d_backward, {}),
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_float32_agrees_with_float64(rng, op):
    x64 = rng.standard_normal((2, 3, 5, 6))
    out64, dx64 = _run(op, x64)
    out32, dx32 = _run(op, x64.astype(np.float32))
    assert out32.dtype == np.float32 and dx32.dtype == np.float32
    assert out64.dtype == np.float64 and dx64.dtype == np.float64
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", sorted(OPS))
def test_non_contiguous_input_gives_same_result(rng, op):
    base = rng.standard_normal((6, 5, 3, 2))
    x = base.transpose(3, 2, 0, 1)[:, :, ::-1, :]        # (2, 3, 6, 5), neither C nor F contiguous
    assert not x.flags.c_contiguous and not x.flags.f_contiguous
    out, dx = _run(op, x)
    out_c, dx_c = _run(op, np.ascontiguousarray(x))
    np.testing.assert_array_equal(out, out_c)
    np.testing.assert_array_equal(dx, dx_c)
    # a non-contiguous dout too
    forward, backward, kwargs = OPS[op]
    y, cache = forward(x, **kwargs)
    dout = np.asfortranarray(rng.standard_normal(y.shape))
    np.testing.assert_array_equal(backward(dout, cache)[0], backward(np.ascontiguousarray(dout), cache)[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", sorted(OPS))
def test_empty_batch(op, dtype):
    forward, backward, kwargs = OPS[op]
    x = np.zeros((0, 3, 5, 6), dtype=dtype)
    out, cache = forward(x, **kwargs)
    assert out.shape[:2] == (0, 3) and out.size == 0 and out.dtype == dtype
    (dx,) = backward(np.zeros(out.shape, dtype=dtype), cache)
    assert dx.shape == x.shape and dx.dtype == dtype


@pytest.mark.parametrize("op", sorted(OPS))
def test_backward_does_not_mutate_dout_or_cache(rng, op):
    forward, backward, kwargs = OPS[op]
    x = rng.standard_normal((1, 2, 5, 6))
    x_copy = x.copy()
    out, cache = forward(x, **kwargs)
    dout = rng.standard_normal(out.shape)
    dout_copy = dout.copy()
    first = backward(dout, cache)[0]
    second = backward(dout, cache)[0]
    np.testing.assert_array_equal(dout, dout_copy)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(first, second)


# ----------------------------------------------------------------------------- errors

WINDOWED = [F.max_pool2d_forward, F.avg_pool2d_forward]


@pytest.mark.parametrize("forward", WINDOWED + [F.lp_pool2d_forward])
def test_window_errors(forward):
    x = np.zeros((1, 2, 4, 5))
    with pytest.raises(ValueError, match=r"x must be 4-D, got a 3-D array of shape \(2, 4, 5\)"):
        forward(x[0], kernel_size=2)
    with pytest.raises(TypeError, match=r"x must be a numpy.ndarray of float32 or float64, got list"):
        forward(x.tolist(), kernel_size=2)
    with pytest.raises(TypeError, match=r"x has dtype int64; supported dtypes are float32 or float64"):
        forward(np.zeros((1, 2, 4, 5), dtype=np.int64), kernel_size=2)
    with pytest.raises(TypeError, match=r"x has dtype float16; supported dtypes are float32 or float64"):
        forward(x.astype(np.float16), kernel_size=2)
    with pytest.raises(ValueError, match=r"kernel of size 5 .*larger than the padded x height of size 4 \+ 2\*0 = 4"):
        forward(x, kernel_size=5)
    with pytest.raises(ValueError, match=r"kernel of size 6 .*larger than the padded x width of size 5 \+ 2\*0 = 5"):
        forward(x, kernel_size=(2, 6))
    with pytest.raises(ValueError, match=r"stride must be >= 1, got 0"):
        forward(x, kernel_size=2, stride=0)
    with pytest.raises(ValueError, match=r"stride must be >= 1, got -1"):
        forward(x, kernel_size=2, stride=(1, -1))
    with pytest.raises(ValueError, match=r"kernel_size must be >= 1, got 0"):
        forward(x, kernel_size=0)
    with pytest.raises(TypeError, match=r"kernel_size must be an int, got 2.0"):
        forward(x, kernel_size=2.0)
    with pytest.raises(ValueError, match=r"kernel_size must be an int or an \(h, w\) pair, got \(2, 2, 2\)"):
        forward(x, kernel_size=(2, 2, 2))
    with pytest.raises(TypeError, match=r"stride must be an int, got '2'"):
        forward(x, kernel_size=2, stride="2")


@pytest.mark.parametrize("forward", WINDOWED)
def test_padding_errors(forward):
    x = np.zeros((1, 2, 6, 6))
    with pytest.raises(ValueError, match=r"padding must be >= 0, got -1"):
        forward(x, kernel_size=3, padding=-1)
    with pytest.raises(ValueError, match=r"padding must be at most half the kernel .*got padding \(2, 2\) "
                                         r"with kernel_size \(3, 3\)"):
        forward(x, kernel_size=3, padding=2)
    with pytest.raises(ValueError, match=r"padding must be at most half the kernel .*got padding \(0, 1\) "
                                         r"with kernel_size \(2, 1\)"):
        forward(x, kernel_size=(2, 1), padding=(0, 1))
    # a kernel larger than the input even after padding
    with pytest.raises(ValueError, match=r"kernel of size 8 .*larger than the padded x height of size 3 \+ 2\*2 = 7"):
        forward(np.zeros((1, 1, 3, 9)), kernel_size=(8, 2), padding=(2, 0))
    forward(x, kernel_size=(4, 3), padding=(2, 1))          # exactly half the kernel is allowed


def test_lp_pool_norm_type_errors():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"norm_type must be >= 1, got 0.5"):
        F.lp_pool2d_forward(x, norm_type=0.5, kernel_size=2)
    with pytest.raises(ValueError, match=r"norm_type must be >= 1, got -2.0"):
        F.lp_pool2d_forward(x, norm_type=-2, kernel_size=2)
    with pytest.raises(ValueError, match=r"norm_type must be a finite real number >= 1, got inf"):
        F.lp_pool2d_forward(x, norm_type=float("inf"), kernel_size=2)
    with pytest.raises(ValueError, match=r"norm_type must be a finite real number >= 1, got nan"):
        F.lp_pool2d_forward(x, norm_type=float("nan"), kernel_size=2)
    with pytest.raises(TypeError, match=r"norm_type must be a real number, got '2'"):
        F.lp_pool2d_forward(x, norm_type="2", kernel_size=2)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'padding'"):
        F.lp_pool2d_forward(x, kernel_size=2, padding=1)


def test_global_avg_pool_errors():
    with pytest.raises(ValueError, match=r"x must be 4-D, got a 2-D array of shape \(2, 3\)"):
        F.global_avg_pool2d_forward(np.zeros((2, 3)))
    with pytest.raises(TypeError, match=r"x has dtype int32; supported dtypes are float32 or float64"):
        F.global_avg_pool2d_forward(np.zeros((1, 1, 2, 2), dtype=np.int32))
    with pytest.raises(ValueError, match=r"x must have a non-empty feature map \(H, W >= 1\) to average, "
                                         r"got shape \(1, 2, 0, 3\)"):
        F.global_avg_pool2d_forward(np.zeros((1, 2, 0, 3)))


@pytest.mark.parametrize("op", sorted(OPS))
def test_dout_errors(op):
    forward, backward, kwargs = OPS[op]
    out, cache = forward(np.zeros((1, 2, 5, 6)), **kwargs)
    wrong = out.shape[:-1] + (out.shape[-1] + 1,)
    shape_text = str(tuple(out.shape)).replace("(", r"\(").replace(")", r"\)")
    wrong_text = str(wrong).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=rf"dout must have shape {shape_text}, got {wrong_text}"):
        backward(np.zeros(wrong), cache)
    with pytest.raises(TypeError, match=r"dout has dtype float32 but the forward output has dtype float64"):
        backward(np.zeros(out.shape, dtype=np.float32), cache)
    with pytest.raises(TypeError, match=r"dout has dtype int64; supported dtypes are float32 or float64"):
        backward(np.zeros(out.shape, dtype=np.int64), cache)
