"""nbconv.kernels.cuda.conv and .im2col against the CPU kernels (the matrix product they share,
nbconv.kernels.cuda.gemm, against NumPy: tests/cuda/test_cuda_fast.py)."""

import numpy as np
import pytest

import nbconv.kernels.conv as KC
import nbconv.kernels.im2col as KI
import nbconv.kernels.cuda.conv as GC
import nbconv.kernels.cuda.im2col as GI
from nbconv import devices

# (N, C, H, W, F, KH, KW, (SH, SW), (PH, PW), (DH, DW), groups): strides, padding, dilation and
# groups, a depthwise case, each small enough for the simulator (a few hundred elements, and few
# weights: dw runs one block per weight).  db's and dw's sums have N*OH*OW = 18, 24, 36, 9, 4 and
# 21 terms, in the blocks of 8 threads of the fixture small_blocks: a multiple of the block size,
# sizes that are not, and block-stride loops of one to five rounds.
CASES = [
    (2, 2, 5, 5, 2, 3, 3, (1, 1), (0, 0), (1, 1), 1),
    (1, 4, 6, 5, 2, 3, 2, (2, 1), (1, 2), (1, 1), 2),
    (2, 2, 7, 6, 2, 2, 3, (1, 2), (2, 1), (2, 2), 1),
    (1, 3, 5, 5, 3, 3, 2, (2, 2), (1, 1), (1, 1), 3),
    (1, 2, 4, 4, 2, 1, 1, (3, 3), (0, 0), (1, 1), 2),      # 1x1 kernel, stride skips pixels
    (1, 2, 6, 6, 2, 3, 2, (2, 1), (2, 1), (2, 1), 2),      # all at once
]
IDS = ["plain", "stride-pad-groups2", "dilation", "depthwise", "1x1-stride3", "all"]
# The im2col path runs the register-blocked matrix product, whose blocks and barriers are slow in
# the simulator: three of the cases cover its strides, padding, dilation and groups.
IM2COL = [0, 3, 5]


def _out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _problem(rng, dtype, N, C, H, W, F, KH, KW, stride, pad, dil, groups):
    OH = _out(H, KH, stride[0], pad[0], dil[0])
    OW = _out(W, KW, stride[1], pad[1], dil[1])
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C // groups, KH, KW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    dy = rng.standard_normal((N, F, OH, OW)).astype(dtype)
    hyper = (*stride, *pad, *dil)
    return x, w, b, dy, OH, OW, hyper


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv2d_direct_forward_and_backward(rng, dtype, compare, small_blocks, case):
    N, C, H, W, F, KH, KW, stride, pad, dil, groups = case
    x, w, b, dy, OH, OW, hyper = _problem(rng, dtype, *case)
    compare(KC.conv2d_forward_direct, GC.conv2d_forward_direct,
            x, w, b, np.full((N, F, OH, OW), np.nan, dtype), *hyper, groups)
    compare(KC.conv2d_backward_direct, GC.conv2d_backward_direct,
            dy, x, w, np.full(x.shape, np.nan, dtype), np.full(w.shape, np.nan, dtype),
            np.full(F, np.nan, dtype), *hyper, groups)


# db's and dw's sums over N*OH*OW terms at the real block size, 128 threads: one term (one
# thread works), and 2*7*23 = 322 = 2*128 + 66 (three rounds of the block-stride loop, the last
# one partial).  A 1x1 kernel on one channel keeps it to one block for db and one for dw.
@pytest.mark.parametrize("N, H, W", [(1, 1, 1), (2, 7, 23)], ids=["1-term", "322-terms"])
@pytest.mark.real_blocks
def test_conv2d_direct_backward_sums_at_the_real_block_size(rng, dtype, compare, N, H, W):
    x = rng.standard_normal((N, 1, H, W)).astype(dtype)
    w = rng.standard_normal((1, 1, 1, 1)).astype(dtype)
    dy = rng.standard_normal((N, 1, H, W)).astype(dtype)
    compare(KC.conv2d_backward_direct, GC.conv2d_backward_direct,
            dy, x, w, np.full(x.shape, np.nan, dtype), np.full(w.shape, np.nan, dtype),
            np.full(1, np.nan, dtype), 1, 1, 0, 0, 1, 1, 1)


def test_conv2d_direct_one_output_pixel(rng, dtype, compare, small_blocks):
    # a 3x3 image under a 3x3 kernel: N*OH*OW = 1 term per weight and per filter
    x = rng.standard_normal((1, 2, 3, 3)).astype(dtype)
    w = rng.standard_normal((1, 2, 3, 3)).astype(dtype)
    dy = rng.standard_normal((1, 1, 1, 1)).astype(dtype)
    compare(KC.conv2d_forward_direct, GC.conv2d_forward_direct,
            x, w, np.ones(1, dtype), np.full((1, 1, 1, 1), np.nan, dtype), 1, 1, 0, 0, 1, 1, 1)
    compare(KC.conv2d_backward_direct, GC.conv2d_backward_direct,
            dy, x, w, np.full(x.shape, np.nan, dtype), np.full(w.shape, np.nan, dtype),
            np.full(1, np.nan, dtype), 1, 1, 0, 0, 1, 1, 1)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_im2col_and_col2im(rng, dtype, compare, case):
    N, C, H, W, F, KH, KW, stride, pad, dil, groups = case
    x, w, b, dy, OH, OW, hyper = _problem(rng, dtype, *case)
    cols_shape = (groups, C // groups * KH * KW, N * OH * OW)
    compare(KI.im2col, GI.im2col, x, np.full(cols_shape, np.nan, dtype), KH, KW, *hyper, OH, OW)
    cols = rng.standard_normal(cols_shape).astype(dtype)
    compare(KI.col2im, GI.col2im, cols, np.full(x.shape, np.nan, dtype), KH, KW, *hyper, OH, OW)


@pytest.mark.parametrize("case", [CASES[k] for k in IM2COL], ids=[IDS[k] for k in IM2COL])
def test_conv2d_im2col_forward_and_backward(rng, dtype, compare, case):
    N, C, H, W, F, KH, KW, stride, pad, dil, groups = case
    x, w, b, dy, OH, OW, hyper = _problem(rng, dtype, *case)
    w_rows = np.ascontiguousarray(w.reshape(groups, F // groups, -1))
    cols_shape = (groups, C // groups * KH * KW, N * OH * OW)
    cpu = compare(KI.conv2d_forward_im2col, GI.conv2d_forward_im2col,
                  x, w_rows, b, np.full((N, F, OH, OW), np.nan, dtype), np.full(cols_shape, np.nan, dtype),
                  KH, KW, *hyper)
    cols = cpu[4]
    compare(KI.conv2d_backward_im2col, GI.conv2d_backward_im2col,
            dy, cols, w_rows, np.full(x.shape, np.nan, dtype), np.full(w_rows.shape, np.nan, dtype),
            np.full(F, np.nan, dtype), KH, KW, *hyper)


def test_conv2d_direct_empty_batch(compare, small_blocks):
    x = np.zeros((0, 2, 4, 4))
    w = np.ones((3, 2, 2, 2))
    compare(KC.conv2d_forward_direct, GC.conv2d_forward_direct,
            x, w, np.ones(3), np.empty((0, 3, 3, 3)), 1, 1, 0, 0, 1, 1, 1)
    compare(KC.conv2d_backward_direct, GC.conv2d_backward_direct,
            np.zeros((0, 3, 3, 3)), x, w, np.empty(x.shape), np.full(w.shape, np.nan), np.full(3, np.nan),
            1, 1, 0, 0, 1, 1, 1)
