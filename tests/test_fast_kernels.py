"""The optimized kernels against their naive twins (the performance issue).

Every fast kernel is checked against the naive kernel beside it, which the other test files
check against NumPy references and the worked examples:

- conv2d / conv1d ``method="im2col"`` (the wide, chunked, parallel lowering) and
  ``method="blocked"`` (the optimized direct kernel) against ``method="direct"``, forward and
  backward, float32 and float64, over stride, padding, dilation and groups;
- the lowering kernels one by one: pad_polyphase / crop_polyphase against np.pad,
  im2col_wide / col2im_wide against the naive im2col / col2im;
- the parallel pooling and activation kernels against the naive ones, bit for bit, and the fused
  batch norm kernels to rounding (their sums are vectorized).

The blocked and im2col methods add their sums in another order (fastmath, BLAS), so they are
compared with tolerances scaled to the size of the result; the parallel twins of pooling and
the activations compute every element with the same operations and are compared exactly.
"""

import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nbconv.functional as F
import nbconv.functional.conv_fast as conv_fast
from nbconv.kernels import activation as KA
from nbconv.kernels import conv as KC
from nbconv.kernels import im2col as KI
from nbconv.kernels import norm as KN
from nbconv.kernels import pool as KP

FAST = ["im2col", "blocked"]
TOL = {np.float64: 1e-12, np.float32: 2e-5}


def assert_close(actual, expected, dtype, what=""):
    """|actual - expected| <= tol * max|expected| (+ a floor): sums in another order round differently."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, what
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOL[dtype] * scale, err_msg=what)


@st.composite
def conv_settings(draw):
    """A small conv2d problem whose output has at least one pixel."""
    groups = draw(st.integers(1, 3))
    Cg, Fg = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    KH, KW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    SH, SW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    PH, PW = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    DH, DW = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    H = draw(st.integers(max(1, DH * (KH - 1) + 1 - 2 * PH), 8))
    W = draw(st.integers(max(1, DW * (KW - 1) + 1 - 2 * PW), 8))
    N = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    bias = draw(st.booleans())
    return dict(x_shape=(N, groups * Cg, H, W), w_shape=(groups * Fg, Cg, KH, KW), stride=(SH, SW),
                padding=(PH, PW), dilation=(DH, DW), groups=groups, dtype=dtype, bias=bias)


def _conv_problem(s, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(s["x_shape"]).astype(s["dtype"])
    w = rng.standard_normal(s["w_shape"]).astype(s["dtype"])
    b = rng.standard_normal(s["w_shape"][0]).astype(s["dtype"]) if s["bias"] else None
    return x, w, b


def _run(method, x, w, b, dout_seed=1, **hyper):
    y, cache = F.conv2d_forward(x, w, b, method=method, **hyper)
    dy = np.random.default_rng(dout_seed).standard_normal(y.shape).astype(x.dtype)
    return (y,) + F.conv2d_backward(dy, cache)


# ----------------------------------------------------------------------------- conv2d methods

@pytest.fixture
def small_chunks(monkeypatch):
    """Cut the work into many chunks, so that tiny problems exercise the chunk loops too:
    im2col's batch chunks (one sample each) and the blocked kernels' row chunks (5 positions)."""
    monkeypatch.setattr(conv_fast, "COLS_BUDGET", 1)
    monkeypatch.setattr(conv_fast, "BLOCKED_CHUNK_BYTES", 5 * 8)


@settings(max_examples=25, deadline=None)
@given(conv_settings(), st.booleans())
def test_fast_methods_equal_direct_forward_and_backward(s, chunked):
    x, w, b = _conv_problem(s)
    hyper = dict(stride=s["stride"], padding=s["padding"], dilation=s["dilation"], groups=s["groups"])
    expected = _run("direct", x, w, b, **hyper)
    with pytest.MonkeyPatch.context() as mp:
        if chunked:
            mp.setattr(conv_fast, "COLS_BUDGET", 1)
            mp.setattr(conv_fast, "BLOCKED_CHUNK_BYTES", 3 * np.dtype(s["dtype"]).itemsize)
        for method in FAST:
            got = _run(method, x, w, b, **hyper)
            for name, a, e in zip(("y", "dx", "dw", "db"), got, expected):
                if e is None:
                    assert a is None
                else:
                    assert_close(a, e, s["dtype"], f"{method} {name} {s}")


@pytest.mark.parametrize("method", FAST)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_methods_on_larger_blocks_and_chunks(method, dtype, small_chunks):
    # 9 filters (two full blocks of 4 and one left over), 6 channels (a block of 4 and 2),
    # an odd filter count per group for the dx kernel's pairs, several batch and row chunks
    s = dict(x_shape=(3, 6, 9, 7), w_shape=(9, 6, 3, 2), stride=(1, 1), padding=(1, 2), dilation=(2, 1),
             groups=1, dtype=dtype, bias=True)
    x, w, b = _conv_problem(s, seed=3)
    hyper = dict(stride=s["stride"], padding=s["padding"], dilation=s["dilation"], groups=1)
    for got, e in zip(_run(method, x, w, b, **hyper), _run("direct", x, w, b, **hyper)):
        assert_close(got, e, dtype)


@pytest.mark.parametrize("method", FAST)
def test_conv1d_fast_methods_equal_direct(method, rng):
    x = rng.standard_normal((2, 4, 11))
    w = rng.standard_normal((6, 2, 3))
    b = rng.standard_normal(6)
    hyper = dict(stride=2, padding=1, dilation=2, groups=2)
    y0, c0 = F.conv1d_forward(x, w, b, method="direct", **hyper)
    y1, c1 = F.conv1d_forward(x, w, b, method=method, **hyper)
    dy = rng.standard_normal(y0.shape)
    assert_close(y1, y0, np.float64)
    for a, e in zip(F.conv1d_backward(dy, c1), F.conv1d_backward(dy, c0)):
        assert_close(a, e, np.float64)


@pytest.mark.parametrize("method", FAST)
def test_two_same_shape_convs_forwarded_before_either_backward(method, rng):
    # A network with two conv layers of one shape: both forwards run (and reuse the same
    # scratch buffers) before the first backward.  Neither cache may point into the scratch.
    x1, x2 = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((2, 3, 6, 6))
    w1, w2 = rng.standard_normal((3, 3, 3, 3)), rng.standard_normal((3, 3, 3, 3))
    dy1, dy2 = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((2, 3, 6, 6))
    _, c1 = F.conv2d_forward(x1, w1, padding=1, method=method)
    _, c2 = F.conv2d_forward(x2, w2, padding=1, method=method)
    got2 = F.conv2d_backward(dy2, c2)
    got1 = F.conv2d_backward(dy1, c1)
    for got, x, w, dy in ((got1, x1, w1, dy1), (got2, x2, w2, dy2)):
        _, c = F.conv2d_forward(x, w, padding=1, method="direct")
        for a, e in zip(got[:2], F.conv2d_backward(dy, c)[:2]):
            assert_close(a, e, np.float64)


@pytest.mark.parametrize("method", FAST)
def test_fast_methods_empty_batch_and_float32_dtype(method):
    y, cache = F.conv2d_forward(np.zeros((0, 3, 5, 5), np.float32), np.ones((4, 3, 3, 3), np.float32),
                                np.ones(4, np.float32), padding=1, method=method)
    assert y.shape == (0, 4, 5, 5) and y.dtype == np.float32
    dx, dw, db = F.conv2d_backward(y, cache)
    assert dx.shape == (0, 3, 5, 5) and dx.dtype == np.float32
    np.testing.assert_array_equal(dw, 0.0)
    np.testing.assert_array_equal(db, 0.0)


@pytest.mark.parametrize("method", FAST)
def test_fast_methods_keep_float32_end_to_end(method, rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    y, cache = F.conv2d_forward(x, w, stride=2, padding=1, method=method)
    grads = F.conv2d_backward(np.ones_like(y), cache)
    assert y.dtype == np.float32 and all(g.dtype == np.float32 for g in grads if g is not None)
    # float32 agrees with the float64 computation to float32 precision
    y64, cache64 = F.conv2d_forward(x.astype(np.float64), w.astype(np.float64), stride=2, padding=1,
                                    method="direct")
    assert_close(y.astype(np.float64), y64, np.float32)


def test_unknown_method_names_the_three_methods():
    with pytest.raises(ValueError, match=r"method must be one of 'direct', 'im2col', 'blocked', 'naive', 'fast', 'auto', got 'fft'"):
        F.conv2d_forward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)), method="fft")


def test_workspace_is_per_thread_and_reused():
    ws = conv_fast._workspace
    a = ws.get("test", (2, 3), np.float32)
    b = ws.get("test", (3, 2), np.float32)
    assert b.base is a.base                          # reused, not reallocated
    other = []
    thread = threading.Thread(target=lambda: other.append(ws.get("test", (2, 3), np.float32)))
    thread.start()
    thread.join()
    assert other[0].base is not a.base               # another thread gets its own buffer
    assert ws.get("test", (10, 10), np.float64).dtype == np.float64
    conv_fast.release_workspace()
    assert not ws.buffers


# ----------------------------------------------------------------------------- the lowering kernels

def _polyphase_reference(x, stride, padding, Hq, Wq):
    """xq (N, C, SH*SW*Hq*Wq) from np.pad and slicing, the definition in nbconv.kernels.conv."""
    (SH, SW), (PH, PW) = stride, padding
    N, C, H, W = x.shape
    xp = np.zeros((N, C, Hq * SH, Wq * SW), x.dtype)
    padded = np.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)))
    xp[:, :, :padded.shape[2], :padded.shape[3]] = padded[:, :, :Hq * SH, :Wq * SW]
    phases = [xp[:, :, ph::SH, pw::SW] for ph in range(SH) for pw in range(SW)]
    return np.stack(phases, axis=2).reshape(N, C, -1)


@settings(max_examples=25, deadline=None)
@given(conv_settings())
def test_pad_polyphase_and_crop_polyphase(s):
    x, w, _ = _conv_problem(s)
    geo = conv_fast._Polyphase(x.shape, w.shape, s["stride"], s["padding"], s["dilation"], 1, 1)
    xq = np.full((x.shape[0], x.shape[1], geo.plane), np.nan, x.dtype)
    KC.pad_polyphase(x, xq, *s["stride"], *s["padding"], geo.Hq, geo.Wq)
    np.testing.assert_array_equal(xq, _polyphase_reference(x, s["stride"], s["padding"], geo.Hq, geo.Wq))
    back = np.full_like(x, np.nan)
    KC.crop_polyphase(xq, back, *s["stride"], *s["padding"], geo.Hq, geo.Wq)
    np.testing.assert_array_equal(back, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("W", [1, 2, 15, 32, 33, 70])
@pytest.mark.parametrize("SH, PH, PW", [(1, 0, 0), (2, 1, 1), (3, 2, 2), (2, 0, 3), (1, 3, 1)])
def test_pad_and_crop_at_stride_2_split_and_zip_rows_of_any_width(dtype, W, SH, PH, PW):
    # the shuffled path of the stride-2 columns: rows of one and of several vectors, odd and
    # even widths, even and odd paddings (which phase gets the even columns), every row stride;
    # NaN in the outputs first, so that an element left out shows
    x = np.random.default_rng(W).standard_normal((2, 3, 5, W)).astype(dtype)
    geo = conv_fast._Polyphase(x.shape, (1, 3, 1, 1), (SH, 2), (PH, PW), (1, 1), 1, 1)
    xq = np.full((2, 3, geo.plane), np.nan, dtype)
    KC.pad_polyphase(x, xq, SH, 2, PH, PW, geo.Hq, geo.Wq)
    np.testing.assert_array_equal(xq, _polyphase_reference(x, (SH, 2), (PH, PW), geo.Hq, geo.Wq))
    back = np.full_like(x, np.nan)
    KC.crop_polyphase(xq, back, SH, 2, PH, PW, geo.Hq, geo.Wq)
    np.testing.assert_array_equal(back, x)


@settings(max_examples=25, deadline=None)
@given(conv_settings())
def test_im2col_wide_and_col2im_wide_equal_the_naive_im2col_and_col2im(s):
    x, w, _ = _conv_problem(s)
    (SH, SW), (PH, PW), (DH, DW), G = s["stride"], s["padding"], s["dilation"], s["groups"]
    N, C, H, W = x.shape
    F_, Cg, KH, KW = w.shape
    OH = (H + 2 * PH - DH * (KH - 1) - 1) // SH + 1
    OW = (W + 2 * PW - DW * (KW - 1) - 1) // SW + 1
    geo = conv_fast._Polyphase(x.shape, w.shape, s["stride"], s["padding"], s["dilation"], OH, OW)
    L = geo.L
    # naive: cols (G, Cg*KH*KW, N*OH*OW)
    cols = np.empty((G, Cg * KH * KW, N * OH * OW), x.dtype)
    KI.im2col(x, cols, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW)
    # wide: the same entries at t = i*Wq + j of every sample's L columns
    xq = np.empty((N, C, geo.plane), x.dtype)
    KC.pad_polyphase(x, xq, SH, SW, PH, PW, geo.Hq, geo.Wq)
    wide = np.empty((G, Cg * KH * KW, N * L), x.dtype)
    KI.im2col_wide(xq, geo.taps, wide, L)
    i, j = np.divmod(np.arange(OH * OW), OW)
    kept = (np.arange(N)[:, None] * L + (i * geo.Wq + j)[None, :]).reshape(-1)
    np.testing.assert_array_equal(wide[:, :, kept], cols)
    # col2im: the adjoint; junk columns set to 0, as the backward's dY makes them
    rng = np.random.default_rng(2)
    dcols = rng.standard_normal(cols.shape).astype(x.dtype)
    dx = np.empty_like(x)
    KI.col2im(dcols, dx, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW)
    dwide = np.zeros_like(wide)
    dwide[:, :, kept] = dcols
    dxq = np.full_like(xq, np.nan)
    KI.col2im_wide(dwide, geo.taps, dxq, L)
    dx_fast = np.empty_like(x)
    KC.crop_polyphase(dxq, dx_fast, SH, SW, PH, PW, geo.Hq, geo.Wq)
    assert_close(dx_fast, dx, s["dtype"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_kernels_directly_against_the_naive_kernel(rng, dtype):
    # the kernels without the functional layer: forward, dw and dx on the wide layout; rows long
    # enough for several whole register tiles (48 float32 or 24 float64 positions) and a
    # partial one, 7 filters (a block of 4 and one of 3) and 5 channels (4 and 1)
    N, C, F, H, W = 2, 5, 7, 9, 13
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, 3, 3)).astype(dtype)
    stride, padding, dilation = (1, 1), (1, 1), (1, 1)
    y = np.empty((N, F, H, W), dtype)
    KC.conv2d_forward_direct(x, w, np.zeros(F, dtype), y, *stride, *padding, *dilation, 1)
    geo = conv_fast._Polyphase(x.shape, w.shape, stride, padding, dilation, H, W)
    xq = np.empty((N, C, geo.plane), dtype)
    KC.pad_polyphase(x, xq, *stride, *padding, geo.Hq, geo.Wq)
    b = rng.standard_normal(F).astype(dtype)
    y += b[:, None, None]
    yw = np.full((N, F, H * geo.Wq), np.nan, dtype)
    wide = KC.wide_row(0, geo.L)
    KC.conv2d_tiles(xq, w.reshape(F, -1), geo.term_offsets(C), b, yw, 1, wide)
    assert np.isnan(yw[:, :, geo.L:]).all()                  # nothing written past the last position
    y_fast = np.empty_like(y)
    KC.crop_wide(yw, y_fast, geo.Wq)
    assert_close(y_fast, y, dtype)
    # the same sums on y's own rows: read at i*Wq + j, written at i*W + j
    y_rows = np.full((N, F, H * W), np.nan, dtype)
    KC.conv2d_tiles(xq, w.reshape(F, -1), geo.term_offsets(C), b, y_rows, 1, KC.Grid(H, W, 0, geo.Wq, 0, W))
    assert_close(y_rows.reshape(y.shape), y, dtype)

    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty(F, dtype)
    KC.conv2d_backward_direct(dy, x, w, dx, dw, db, *stride, *padding, *dilation, 1)
    front = int(geo.taps.max())
    dyw, db_fast = np.full((N, F, front + geo.plane), np.nan, dtype), np.empty(F, dtype)
    KC.widen_with_bias_grad(dy, dyw, db_fast, geo.Wq, front)
    assert (dyw[:, :, :front] == 0).all() and (dyw[:, :, front + geo.L:] == 0).all()
    offsets = np.concatenate([geo.term_offsets(C), geo.term_offsets(C)[-1:].repeat(3)])   # 48 terms: a multiple of 4
    blocks = np.empty((8, 48), dtype)                        # 2 blocks of 4 filters
    KC.conv2d_dw_tiles(dyw, front, xq, offsets, blocks, 1, geo.L, 16)
    assert_close(blocks[:F, :45].reshape(w.shape), dw, dtype)
    # dx: the same tile kernel, channels as its rows, w transposed, offsets front - taps
    w_t = np.ascontiguousarray(w.transpose(1, 0, 2, 3)).reshape(C, F * 9)
    gather = (np.arange(F)[:, None] * (front + geo.plane) + (front - geo.taps)[None, :]).reshape(-1)
    dxq = np.empty_like(xq)
    no_bias = np.zeros(C, dtype)
    KC.conv2d_tiles(dyw, w_t, gather, no_bias, dxq, 1, KC.wide_row(0, geo.plane))
    dx_fast = np.empty_like(x)
    KC.crop_polyphase(dxq, dx_fast, *stride, *padding, geo.Hq, geo.Wq)
    assert_close(dx_fast, dx, dtype)
    # dx's own rows: pixel (i, j) at (i + 1)*Wq + j + 1 of the padded plane
    dx_rows = np.full((N, C, H * W), np.nan, dtype)
    KC.conv2d_tiles(dyw, w_t, gather, no_bias, dx_rows, 1, KC.Grid(H, W, geo.Wq + 1, geo.Wq, 0, W))
    assert_close(dx_rows.reshape(x.shape), dx, dtype)
    assert_close(db_fast, db, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride, groups", [(1, 1), (2, 3), (3, 1)])
def test_blocked_on_rows_of_several_register_tiles(dtype, stride, groups):
    # the whole method on images wide enough for whole tiles and a partial one per row, 
    # filters and channels that leave partial blocks in every group, and strides whose phases
    # gather different numbers of taps (3x3 with stride 2: 4, 2, 2, 1)
    s = dict(x_shape=(2, 6, 11, 53), w_shape=(9, 6 // groups, 3, 3), stride=(stride, stride), padding=(1, 1),
             dilation=(1, 1), groups=groups, dtype=dtype, bias=True)
    x, w, b = _conv_problem(s, seed=5)
    hyper = dict(stride=s["stride"], padding=s["padding"], dilation=s["dilation"], groups=groups)
    for got, e in zip(_run("blocked", x, w, b, **hyper), _run("direct", x, w, b, **hyper)):
        assert_close(got, e, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("groups", [1, 3])
def test_dy_by_position_is_dy_transposed_on_the_wide_positions_in_blocks_of_filters(rng, dtype, groups):
    # 42 filters: one group of a whole block and a partial one (float32: 32 + 10; float64: 16, 16
    # and 10), or three groups of 14, each a partial block (its lanes past 14 hold 0)
    N, F, OH, OW, Wq = 3, 42, 5, 7, 9
    B = 2 * 64 // np.dtype(dtype).itemsize                  # filters a block: 2 vectors
    Fg = F // groups
    fblocks = -(-Fg // B)
    dy = rng.standard_normal((N, F, OH, OW)).astype(dtype)
    L = (OH - 1) * Wq + OW
    dyt = np.full((N, groups * fblocks, L, B), np.nan, dtype)
    KC.dy_by_position(dy, dyt, Wq, groups)
    expected = np.zeros((N, groups, fblocks * B, OH, Wq), dtype)       # by group, filters padded with 0
    expected[:, :, :Fg, :, :OW] = dy.reshape(N, groups, Fg, OH, OW)
    expected = expected.reshape(N, groups * fblocks, B, OH * Wq)[..., :L].transpose(0, 1, 3, 2)
    np.testing.assert_array_equal(dyt, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("groups", [1, 2])
def test_dw_lanes_against_the_naive_kernel_and_the_same_bits_for_any_split(rng, dtype, groups):
    # 40 filters in 1 or 2 groups: blocks of 2 vectors masked to 8 or 20 (float32), whole and
    # masked ones (float64); 10 or 5 channels per group: 90 or 45 terms, tiles of 12 (the last
    # one partial: its rows past T are scratch)
    N, C, F, H, W = 2, 10, 40, 7, 30
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C // groups, 3, 3)).astype(dtype)
    dy = rng.standard_normal((N, F, H, W)).astype(dtype)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty(F, dtype)
    KC.conv2d_backward_direct(dy, x, w, dx, dw, db, 1, 1, 1, 1, 1, 1, groups)
    geo = conv_fast._Polyphase(x.shape, w.shape, (1, 1), (1, 1), (1, 1), H, W)
    xq = np.empty((N, C, geo.plane), dtype)
    KC.pad_polyphase(x, xq, 1, 1, 1, 1, geo.Hq, geo.Wq)
    B = 2 * 64 // np.dtype(dtype).itemsize                  # filters a block: 2 vectors
    dyt = np.empty((N, groups * -(-(F // groups) // B), geo.L, B), dtype)
    KC.dy_by_position(dy, dyt, geo.Wq, groups)
    offsets = geo.term_offsets(C // groups)
    T = offsets.size
    padded = np.concatenate([offsets, offsets[-1:].repeat(-T % 12)])    # a multiple of 12 terms
    results = []
    for chunk, tiles_per_task, threads in [(1024, 8, None), (7, 1, None), (50, 3, 1)]:
        dw_t = np.full((padded.size, F), np.nan, dtype)
        with conv_fast._numba_threads(threads):
            KC.conv2d_dw_lanes(dyt, xq, padded, dw_t, groups, chunk, tiles_per_task)
        results.append(dw_t)
    assert_close(np.ascontiguousarray(results[0][:T].T).reshape(w.shape), dw, dtype)
    for other in results[1:]:                    # one order of summation per (term, filter)
        np.testing.assert_array_equal(other[:T], results[0][:T])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride, groups", [(1, 1), (2, 2), (1, 4)])
def test_blocked_with_a_vector_of_filters_per_group_takes_dw_by_lanes(dtype, stride, groups, monkeypatch):
    # at least 16 float32 or 8 float64 filters and LANES_FROM_TERMS terms per group:
    # blocked_backward's dw runs conv2d_dw_lanes (with fewer, conv2d_dw_tiles: the tests above
    # and the 1x1 case below); 1 and 2 of 4 groups' blocks masked, strides whose phases gather
    # different numbers of taps
    s = dict(x_shape=(2, 16 * groups, 9, 21), w_shape=(80, 16, 3, 3), stride=(stride, stride), padding=(1, 1),
             dilation=(1, 1), groups=groups, dtype=dtype, bias=True)
    assert 16 * 9 >= conv_fast.LANES_FROM_TERMS and 80 // groups >= 64 // np.dtype(dtype).itemsize
    calls = _count_calls(monkeypatch, "_dw_by_lanes", "_dw_by_tiles")
    x, w, b = _conv_problem(s, seed=7)
    hyper = dict(stride=s["stride"], padding=s["padding"], dilation=s["dilation"], groups=groups)
    for got, e in zip(_run("blocked", x, w, b, **hyper), _run("direct", x, w, b, **hyper)):
        assert_close(got, e, dtype)
    assert calls == {"_dw_by_lanes": 1, "_dw_by_tiles": 0}


def test_blocked_keeps_dw_by_tiles_for_short_sums(monkeypatch):
    # a 1x1 convolution of 32 channels (32 terms per filter): transposing dy would cost more
    # than the lanes bring, so dw stays with the dot products even with 48 filters
    s = dict(x_shape=(2, 32, 6, 7), w_shape=(48, 32, 1, 1), stride=(1, 1), padding=(0, 0),
             dilation=(1, 1), groups=1, dtype=np.float32, bias=True)
    calls = _count_calls(monkeypatch, "_dw_by_lanes", "_dw_by_tiles")
    x, w, b = _conv_problem(s, seed=8)
    hyper = dict(stride=s["stride"], padding=s["padding"], dilation=s["dilation"], groups=1)
    for got, e in zip(_run("blocked", x, w, b, **hyper), _run("direct", x, w, b, **hyper)):
        assert_close(got, e, np.float32)
    assert calls == {"_dw_by_lanes": 0, "_dw_by_tiles": 1}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C, F, groups", [(6, 9, 3), (130, 16, 1)])
def test_blocked_1x1_writes_y_and_reads_dy_in_place(dtype, C, F, groups):
    # a 1x1 kernel at stride 1 without padding: the wide output is y itself and dy its own wide
    # layout (no scratch copies; the scratch is poisoned so that a read of it shows). 6 channels
    # in 3 groups take dw's dot products, 130 channels and 16 filters its lanes in float64; 7x5
    # maps make rows of 35, not a multiple of a vector.  The dilation does nothing on a 1x1.
    s = dict(x_shape=(3, C, 7, 5), w_shape=(F, C // groups, 1, 1), stride=(1, 1), padding=(0, 0),
             dilation=(2, 2), groups=groups, dtype=dtype, bias=True)
    x, w, b = _conv_problem(s, seed=9)
    assert conv_fast._geometry(x.shape, w.shape, (1, 1), (0, 0), (2, 2), 7, 5, groups).wide_is_output
    conv_fast._workspace.get("wide", (3 * F * 64,), dtype)[...] = np.nan
    hyper = dict(stride=s["stride"], padding=s["padding"], dilation=s["dilation"], groups=groups)
    for got, e in zip(_run("blocked", x, w, b, **hyper), _run("direct", x, w, b, **hyper)):
        assert np.isfinite(got).all()
        assert_close(got, e, dtype)


def _count_calls(monkeypatch, *names):
    """Wrap conv_fast's functions ``names`` so that each call is counted in the returned dict."""
    calls = dict.fromkeys(names, 0)
    for name in names:
        def counted(*args, _name=name, _real=getattr(conv_fast, name)):
            calls[_name] += 1
            return _real(*args)
        monkeypatch.setattr(conv_fast, name, counted)
    return calls


@pytest.mark.parametrize("kernel, stride, padding, dilation", [
    (1, 2, 0, 1),          # 1x1 at stride 2: three of the four phases are read by no tap (dx 0 there)
    (3, 2, 1, 1),          # phases with 4, 2, 2 and 1 taps, each with a padded first row or column
    (3, 3, 2, 1),          # padding past a whole phase row: some phases start on their second row
    (2, 1, 3, 2),          # stride 1, padding larger than the kernel reach, dilation 2
    (3, 1, 0, 1),          # no padding at stride 1: dxq is dx itself
])
def test_blocked_dx_writes_every_pixel_from_a_poisoned_workspace(kernel, stride, padding, dilation):
    # dx is gathered only at the positions of each stride phase that hold pixels of x
    # (_Polyphase.inside); the crop must then find every pixel written, whatever the scratch
    # buffer held before: NaN everywhere, so a pixel left out shows
    s = dict(x_shape=(2, 3, 9, 11), w_shape=(4, 3, kernel, kernel), stride=(stride, stride),
             padding=(padding, padding), dilation=(dilation, dilation), groups=1, dtype=np.float64, bias=True)
    x, w, b = _conv_problem(s, seed=11)
    geo = conv_fast._Polyphase(x.shape, w.shape, s["stride"], s["padding"], s["dilation"], 1, 1)
    if not geo.identity:
        conv_fast._workspace.get("dxq", (2, 3, geo.plane), np.float64)[...] = np.nan
    hyper = dict(stride=s["stride"], padding=s["padding"], dilation=s["dilation"], groups=1)
    for got, e in zip(_run("blocked", x, w, b, **hyper), _run("direct", x, w, b, **hyper)):
        assert np.isfinite(got).all()
        assert_close(got, e, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N, H, W", [(5, 4, 4), (3, 5, 20), (2, 1, 1)])
def test_tiles_share_their_vectors_between_samples_and_write_exactly_the_grid(rng, dtype, N, H, W):
    # small maps: a tile takes vectors of two samples (4x4: 4 vectors a sample, 3 a tile; rows
    # of 20: 2 vectors a row, the second of 4 positions); every element of y is written once
    # (NaN before), nothing past it; the same bits on 1 and 2 threads
    C, F = 3, 11                                          # 11 filters: a block of 8 and one of 3
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, 3, 3)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    y = np.empty((N, F, H, W), dtype)
    KC.conv2d_forward_direct(x, w, b, y, 1, 1, 1, 1, 1, 1, 1)
    geo = conv_fast._Polyphase(x.shape, w.shape, (1, 1), (1, 1), (1, 1), H, W)
    xq = np.empty((N, C, geo.plane), dtype)
    KC.pad_polyphase(x, xq, 1, 1, 1, 1, geo.Hq, geo.Wq)
    results = []
    for threads in (None, 1):
        out = np.full((N, F, H * W + 5), np.nan, dtype)        # 5 more per row: must stay NaN
        with conv_fast._numba_threads(threads):
            KC.conv2d_tiles(xq, w.reshape(F, -1), geo.term_offsets(C), b, out, 1, KC.Grid(H, W, 0, geo.Wq, 0, W))
        assert np.isnan(out[:, :, H * W:]).all()
        results.append(out[:, :, :H * W].reshape(y.shape))
    assert_close(results[0], y, dtype)
    np.testing.assert_array_equal(results[0], results[1])


def test_blocked_writes_y_and_dx_rows_where_they_take_no_more_vectors_than_the_wide_layout():
    # the rule of _Polyphase.output_grid and dx_rows, counted by hand: rows of OW in whole and
    # partial vectors against the wide row of L = (OH - 1)*Wq + OW positions
    def geo(H, S, P, lanes):
        OH = (H + 2 * P - 3) // S + 1
        return conv_fast._Polyphase((2, 3, H, H), (4, 3, 3, 3), (S, S), (P, P), (1, 1), OH, OH, 1, lanes)
    g = geo(32, 1, 1, 16)              # 32 rows of 2 vectors (64) against ceil(1086 / 16) = 68
    assert g.output_grid == (KC.Grid(32, 32, 0, 34, 0, 32), True) and g.dx_rows
    g = geo(8, 1, 1, 16)               # 8 rows of 1 vector (8) against ceil(78 / 16) = 5: the wide row
    assert g.output_grid == (KC.Grid(1, 78, 0, 78, 0, 78), False) and not g.dx_rows
    g = geo(8, 1, 1, 8)                # float64: 8 vectors of 8 against ceil(78 / 8) = 10
    assert g.output_grid[1] and g.dx_rows
    g = geo(32, 2, 1, 16)              # stride 2: 16 rows of 16 against ceil(271 / 16) = 17; dx by phases
    assert g.output_grid == (KC.Grid(16, 16, 0, 17, 0, 16), True) and not g.dx_rows
    g = geo(8, 1, 0, 16)               # no padding at stride 1: dxq is dx itself, no rows needed
    assert g.identity and not g.dx_rows


def test_polyphase_inside_is_the_span_of_the_pixels_of_x():
    # [start, stop) of every phase against a brute-force scan of the layout: the first and one
    # past the last position whose (row, col) of the padded image lies inside x
    for H, W, S, P in [(9, 11, 2, 1), (7, 5, 3, 2), (4, 4, 1, 1), (5, 6, 2, 0), (3, 8, 3, 4)]:
        geo = conv_fast._Polyphase((1, 1, H, W), (1, 1, 3, 3), (S, S), (P, P), (1, 1), 1, 1)
        for p in range(S * S):
            ph, pw = divmod(p, S)
            inside = [p * geo.Hq * geo.Wq + u * geo.Wq + v for u in range(geo.Hq) for v in range(geo.Wq)
                      if 0 <= u * S + ph - P < H and 0 <= v * S + pw - P < W]
            expected = (inside[0], inside[-1] + 1) if inside else None
            start, stop = geo.inside(p)
            assert (start, stop) == expected if inside else start >= stop, (H, W, S, P, p)


# ----------------------------------------------------------------------------- parallel twins, bit for bit

ELEMENTWISE = [("relu", ()), ("leaky_relu", (0.1,)), ("elu", (0.7,)), ("sigmoid", ()), ("tanh", ())]


# the fast twins that call nbconv.kernels.vecmath's exp, expm1 or tanh: within 2 ulp of the loop
VECMATH = {("elu", "forward"), ("elu", "backward"), ("sigmoid", "forward"), ("tanh", "forward")}


def assert_within_ulp(a, e, ulps):
    """a and e equal at every special value (NaN, +-inf, +-0) and within ``ulps`` units in the
    last place elsewhere."""
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
    finite = np.isfinite(e) & (e != 0)
    np.testing.assert_array_equal(a[~finite & ~np.isnan(e)], e[~finite & ~np.isnan(e)])
    np.testing.assert_array_max_ulp(a[finite], e[finite], maxulp=ulps)


@pytest.mark.parametrize("op, hyper", ELEMENTWISE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parallel_activations_equal_the_naive_kernels(op, hyper, dtype, rng):
    # bit for bit, except the exp-based fast twins: within 2 ulp, every special value the same
    x = (rng.standard_normal(1000) * 5).astype(dtype)
    x[:8] = [0.0, -0.0, np.nan, np.inf, -np.inf, 1000.0, -1000.0, 1e-30]
    dy = rng.standard_normal(1000).astype(dtype)
    y_naive = np.empty_like(x)
    getattr(KA, f"{op}_forward")(x, y_naive, *hyper)
    saved = y_naive if op in ("sigmoid", "tanh") else x          # both backwards get the same input
    for phase in ("forward", "backward"):
        results = []
        for suffix in ("", "_parallel"):
            out = np.empty_like(x)
            if phase == "forward":
                getattr(KA, f"{op}_forward{suffix}")(x, out, *hyper)
            else:
                getattr(KA, f"{op}_backward{suffix}")(dy, saved, out, *hyper)
            results.append(out)
        if (op, phase) in VECMATH:
            assert_within_ulp(results[1], results[0], 2)
        else:
            np.testing.assert_array_equal(results[1], results[0])


def _check_pooling_twins(x, KH, KW, SH, SW, PH, PW, dtype):
    rng = np.random.default_rng(7)
    H, W = x.shape[2:]
    OH, OW = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    dout = rng.standard_normal((2, 3, OH, OW)).astype(dtype)
    results = []
    for suffix in ("", "_parallel"):
        out, switches = np.empty((2, 3, OH, OW), dtype), np.empty((2, 3, OH, OW), np.int64)
        getattr(KP, f"max_pool2d_forward{suffix}")(x, out, switches, KH, KW, SH, SW, PH, PW)
        dx_max = np.full_like(x, np.nan)
        getattr(KP, f"max_pool2d_backward{suffix}")(dout, switches, dx_max)
        avg = np.empty((2, 3, OH, OW), dtype)
        getattr(KP, f"avg_pool2d_forward{suffix}")(x, avg, KH, KW, SH, SW, PH, PW)
        dx_avg = np.full_like(x, np.nan)
        getattr(KP, f"avg_pool2d_backward{suffix}")(dout, dx_avg, KH, KW, SH, SW, PH, PW)
        results.append((out, switches, dx_max, avg, dx_avg))
    for a, e in zip(results[1], results[0]):
        np.testing.assert_array_equal(a, e)


def _pooling_input(shape, dtype, ties, seed):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    if ties:                                              # many equal values: the first maximum must win
        x = np.round(x).astype(dtype)
        x[0, 0, 1, 1] = np.nan                            # and a NaN wins its windows
        x[1, 2, 2:4, 2:4] = -0.0
    return x


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 1),
       st.integers(0, 1), st.sampled_from([np.float32, np.float64]), st.booleans())
def test_parallel_pooling_equals_the_naive_kernels_bit_for_bit(KH, KW, SH, SW, PH, PW, dtype, ties):
    PH, PW = min(PH, KH // 2), min(PW, KW // 2)
    x = _pooling_input((2, 3, 7, 6), dtype, ties, KH * 100 + KW * 10 + SH)
    _check_pooling_twins(x, KH, KW, SH, SW, PH, PW, dtype)


@pytest.mark.parametrize("shape", [(2, 3, 8, 6), (2, 3, 7, 9)])       # even; odd: a row and column left over
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_parallel_pooling_fast_2x2_case_equals_the_naive_kernels_bit_for_bit(shape, dtype, ties):
    _check_pooling_twins(_pooling_input(shape, dtype, ties, 5), 2, 2, 2, 2, 0, 0, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_equals_the_naive_kernels(dtype, training, rng):
    # the same formulas; the sums are vectorized (fastmath "reassoc"), so to rounding only
    x = (rng.standard_normal((4, 3, 10)) * 3 + 7).astype(dtype)
    gamma, beta = rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype)
    if training:
        mean, var = np.empty(3), np.empty(3)
        KN.moments(x, mean, var)
    else:
        mean, var = rng.random(3).astype(dtype), (rng.random(3) + 0.5).astype(dtype)
    xhat, inv_std, out = np.empty_like(x), np.empty(3), np.empty_like(x)
    KN.normalize_forward(x, mean, var, 1e-5, xhat, inv_std)
    KN.channel_affine_forward(xhat, gamma, beta, out)

    mean2, var2 = (np.empty(3), np.empty(3)) if training else (mean, var)
    xhat2, inv_std2, out2 = np.empty_like(x), np.empty(3), np.empty_like(x)
    KN.batch_norm_forward_parallel(x, gamma, beta, 1e-5, training, mean2, var2, xhat2, inv_std2, out2)
    for a, e in ((mean2, mean), (var2, var), (xhat2, xhat), (inv_std2, inv_std), (out2, out)):
        assert a.dtype == e.dtype
        np.testing.assert_allclose(a, e, rtol=4 * np.finfo(e.dtype).eps, atol=4 * np.finfo(e.dtype).eps)

    dout = rng.standard_normal(x.shape).astype(dtype)
    naive = [np.empty_like(x), np.empty_like(gamma), np.empty_like(gamma)]
    KN.batch_norm_backward(dout, xhat, gamma, inv_std, training, *naive)
    fast = [np.empty_like(x), np.empty_like(gamma), np.empty_like(gamma)]
    KN.batch_norm_backward_parallel(dout, xhat, gamma, inv_std, training, *fast)
    for a, e in zip(fast, naive):
        scale = max(1.0, float(np.abs(e).max()))
        np.testing.assert_allclose(a, e, rtol=0, atol=16 * np.finfo(dtype).eps * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_batch_norm_of_a_constant_channel_gives_beta_exactly(dtype):
    x = np.full((3, 2, 5), 7.25, dtype)
    gamma, beta = np.array([2.0, 3.0], dtype), np.array([0.5, -1.5], dtype)
    mean, var, xhat, inv_std, out = np.empty(2), np.empty(2), np.empty_like(x), np.empty(2), np.empty_like(x)
    KN.batch_norm_forward_parallel(x, gamma, beta, 1e-5, True, mean, var, xhat, inv_std, out)
    np.testing.assert_array_equal(mean, 7.25)
    np.testing.assert_array_equal(var, 0.0)
    np.testing.assert_array_equal(out, np.broadcast_to(beta[None, :, None], x.shape))


# ----------------------------------------------------------------------------- warm cache: no recompiling

def test_a_warm_cache_loads_the_fast_kernels_without_compiling(tmp_path):
    # Run once here (fills the on-disk cache), then in a fresh interpreter: every kernel the
    # fast methods dispatch to must come from the cache (no cache misses).
    import subprocess
    import sys

    script = tmp_path / "warm.py"
    script.write_text(
        "import numpy as np\n"
        "import nbconv.functional as F\n"
        "from nbconv.kernels import conv, im2col\n"
        "x = np.ones((2, 3, 6, 6), np.float32); w = np.ones((4, 3, 3, 3), np.float32)\n"
        "for m in ('im2col', 'blocked'):\n"
        "    y, c = F.conv2d_forward(x, w, padding=1, method=m); F.conv2d_backward(y, c)\n"
        "misses = {k.__name__: sum(k.stats.cache_misses.values()) for mod in (conv, im2col)\n"
        "          for k in vars(mod).values() if hasattr(k, 'stats') and k.signatures}\n"
        "print(sum(misses.values()), misses)\n")
    for attempt in range(2):                              # the first run may fill the cache
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert result.stdout.split()[0] == "0", result.stdout


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_functional_ops_give_the_same_numbers_in_either_form(dtype, rng):
    # method="naive" runs the loops, method="fast" the parallel twins (activations, pooling, batch norm)
    x = rng.standard_normal((3, 4, 6, 6)).astype(dtype)
    gamma, beta = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)

    def everything(method):
        results = []
        for op in ("relu", "leaky_relu", "elu", "sigmoid", "tanh"):
            y, cache = getattr(F, f"{op}_forward")(x, method=method)
            assert cache.method == method
            results += [y, *getattr(F, f"{op}_backward")(y * 2, cache)]
        for op in ("max_pool2d", "avg_pool2d"):
            y, cache = getattr(F, f"{op}_forward")(x, kernel_size=3, stride=2, padding=1, method=method)
            assert cache.method == method
            results += [y, *getattr(F, f"{op}_backward")(y * 2, cache)]
        for training in (True, False):
            stats = [np.zeros(4, dtype), np.ones(4, dtype)]
            y, cache = F.batch_norm_forward(x, gamma, beta, *stats, training=training, method=method)
            assert cache.method == method
            results += [y, *stats, *F.batch_norm_backward(y * 2, cache)]
        return results

    naive = everything("naive")
    fast = everything("fast")
    exact = len(naive) - 2 * 6                 # activations and pooling: bit for bit, but the
    for k, (a, e) in enumerate(zip(fast[:exact], naive[:exact])):          # vecmath ones (2 ulp)
        op, part = ("relu", "leaky_relu", "elu", "sigmoid", "tanh", "max", "avg")[k // 2], k % 2
        if op in ("elu", "sigmoid", "tanh"):
            scale = max(1.0, float(np.abs(e).max()))
            np.testing.assert_allclose(a, e, rtol=4 * np.finfo(dtype).eps, atol=8 * np.finfo(dtype).eps * scale)
        else:
            np.testing.assert_array_equal(a, e)
    for a, e in zip(fast[exact:], naive[exact:]):   # batch norm: vectorized sums, to rounding
        scale = max(1.0, float(np.abs(e).max()))
        np.testing.assert_allclose(a, e, rtol=0, atol=64 * np.finfo(dtype).eps * scale)


# ----------------------------------------------------------------------------- nbconv bench

def test_simd_width_from_the_cpu_flags():
    from nbconv.measure import simd_width

    assert simd_width(["fpu", "sse", "sse2", "avx", "avx2", "avx512f"]) == 512
    assert simd_width(["sse", "sse2", "avx", "avx2", "fma"]) == 256
    assert simd_width(["sse", "sse2"]) == 128
    assert simd_width([]) == 0


def test_nbconv_bench_prints_tables_and_saves_json(tmp_path, capsys, monkeypatch):
    import json

    import nbconv.bench as bench
    import nbconv.measure as measure
    from nbconv.cli import main

    monkeypatch.setattr(measure, "SETTLE", 0.0)
    monkeypatch.setattr(bench, "QUICK_CONV_SHAPES", [(1, 2, 6, 6, 4, 3, 1, 1)])
    monkeypatch.setattr(bench, "QUICK_MAP_SHAPE", (2, 3, 8, 8))
    out = tmp_path / "bench.json"
    assert main(["bench", "--op", "conv2d", "--op", "relu", "--repeat", "1", "--no-torch", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for expected in ("CPU:", "SIMD", "BLAS", "threading layer", "conv2d  N=1 C=2 6x6 F=4 K=3 stride=1 pad=1",
                     "GFLOP/s", "GB/s", "speedup", "of limit", "direct", "im2col", "blocked", "relu", "naive",
                     "fast", "median"):
        assert expected in text, expected
    saved = json.loads(out.read_text())
    conv = next(t for t in saved["tables"] if t["op"] == "conv2d")
    assert [r["method"] for r in conv["rows"]] == ["direct", "im2col", "blocked"]
    assert conv["rows"][0]["speedup"] == 1.0 and conv["limit"] > 0
    relu = next(t for t in saved["tables"] if t["op"] == "relu")
    assert {(r["phase"], r["method"]) for r in relu["rows"]} == {
        ("forward", "naive"), ("forward", "fast"), ("backward", "naive"), ("backward", "fast")}
    assert all(r["fraction"] > 0 for r in relu["rows"])


def test_bench_sets_im2col_beside_pytorchs_own_im2col_and_blocked_beside_its_default():
    """The like-for-like peers: im2col against PyTorch with oneDNN off (its unfold + GEMM), every
    method against PyTorch's default in the target lines; the ratios are the times' quotients."""
    from nbconv.bench import Row, Table, asdict_table, format_table, summarize

    def table(im2col_ms, blocked_ms, torch_ms, torch_im2col_ms):
        rows = [Row("im2col", im2col_ms / 1e3, 1.0, 1.0, 0.5), Row("blocked", blocked_ms / 1e3, 1.0, 1.0, 0.5)]
        rows[-1].torch_seconds = torch_ms / 1e3
        return Table("conv2d", "s", "GFLOP/s", 2.0, "np.dot", rows, torch_im2col_seconds=torch_im2col_ms / 1e3)

    tables = [table(30.0, 10.0, 20.0, 60.0), table(8.0, 4.0, 5.0, 10.0), table(9.0, 9.0, 10.0, 30.0)]
    text = format_table(tables[0], show_torch=True)
    assert "PyTorch's own im2col + GEMM (oneDNN off): 60.00 ms, im2col's time 0.50x that" in text
    assert "oneDNN" not in format_table(tables[0], show_torch=False)
    lines = summarize(tables)
    assert "conv2d fwd+bwd, im2col: median 1.50x PyTorch's time over 3 shapes (target 1.2x)" in lines   # 1.5, 1.6, 0.9
    assert "conv2d fwd+bwd, blocked: median 0.80x PyTorch's time over 3 shapes (target 1.0x)" in lines  # 0.5, 0.8, 0.9
    assert ("conv2d fwd+bwd, im2col: median 0.50x the time of PyTorch's own im2col + GEMM (oneDNN off) "
            "over 3 shapes") in lines                                                               # 0.5, 0.8, 0.3
    assert asdict_table(tables[1])["torch_im2col_seconds"] == pytest.approx(0.010)
    no_peer = table(1.0, 1.0, 1.0, 1.0)
    no_peer.torch_im2col_seconds = None
    assert "torch_im2col_seconds" not in asdict_table(no_peer)
    assert not any("oneDNN" in line for line in summarize([no_peer]))


def test_bench_header_names_the_oneDNN_off_peer_only_where_its_line_is_printed():
    from nbconv.measure import torch_header
    both = torch_header("2.13", 2, ["conv2d"], ["im2col", "blocked"])
    assert both == ("PyTorch 2.13 (2 threads): peer column 'torch ms'; for conv2d its default (oneDNN), "
                    "and under each table its own im2col + GEMM (oneDNN off)")
    assert torch_header("2.13", 2, ["conv2d"], ["blocked"]).endswith("for conv2d its default (oneDNN)")
    assert torch_header("2.13", 1, ["relu"], ["im2col"]) == "PyTorch 2.13 (1 thread): peer column 'torch ms'"


@pytest.mark.parametrize("op", sorted(__import__("nbconv.bench").bench.MEMORY_OPS))
def test_every_benchmarked_op_runs_its_forms_through_the_public_api_and_they_agree(op):
    from nbconv.bench import memory_op_forms, memory_op_methods
    from nbconv.functional import dispatch

    assert memory_op_forms(op) == tuple(m for m in ("naive", "fast") if m in dispatch.CPU[op])
    x = np.random.default_rng(0).standard_normal((2, 8, 4, 4))
    results = []
    for method in memory_op_forms(op):
        forward, backward = memory_op_methods(op, method)
        y, cache = forward(x)
        assert cache.method == method
        results.append((y, backward(np.ones_like(y), cache)[0]))
    for y, dx in results[1:]:
        np.testing.assert_allclose(y, results[0][0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dx, results[0][1], rtol=1e-12, atol=1e-12)
