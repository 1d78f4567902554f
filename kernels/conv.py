"""2-D convolution as the naive loop nest: the teaching reference.

Convolution here is cross-correlation (the kernel is not flipped), as in every
worked example of the course and every framework.

Shapes: x (N, C, H, W), w (F, C // G, KH, KW), b (F,), y (N, F, OH, OW),
with G groups: filter f sees the C // G input channels of its group
g = f // (F // G), i.e. channels g * C // G ... (g + 1) * C // G - 1.

Forward, for every output y[n, f, i, j]:

    y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj]
                           * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

where x is zero outside the image (zero padding), SH/SW the stride, PH/PW the
padding and DH/DW the dilation.

Below the naive kernels, the teaching reference, sits the optimized direct convolution
(``method="blocked"``): the same sums in a cache- and vector-friendly order, in parallel.
Its section explains the layout it works on (polyphase padding, "wide" output rows).
"""

from collections import namedtuple

from numba import njit, prange

from . import simd


@njit(cache=True)
def conv2d_forward_direct(x, w, b, y, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj] * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]"""
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    OH, OW = y.shape[2], y.shape[3]
    Fg = F // groups
    for n in range(N):
        for f in range(F):
            g = f // Fg
            for i in range(OH):
                for j in range(OW):
                    acc = 0.0
                    for c in range(Cg):
                        for ki in range(KH):
                            row = i * stride_h - pad_h + ki * dil_h
                            if row < 0 or row >= H:
                                continue
                            for kj in range(KW):
                                col = j * stride_w - pad_w + kj * dil_w
                                if col < 0 or col >= W:
                                    continue
                                acc += w[f, c, ki, kj] * x[n, g * Cg + c, row, col]
                    y[n, f, i, j] = acc + b[f]


@njit(cache=True)
def conv2d_backward_direct(dy, x, w, dx, dw, db, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """The forward sum differentiated term by term:

        db[f]             = sum_{n, i, j} dy[n, f, i, j]
        dw[f, c, ki, kj]  = sum_{n, i, j} dy[n, f, i, j] * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]
        dx[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW] += dy[n, f, i, j] * w[f, c, ki, kj]

    Every input pixel feeds several outputs, so its gradient is the sum over
    them (the fan-out rule); dx is zeroed first and accumulated.
    """
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    OH, OW = dy.shape[2], dy.shape[3]
    Fg = F // groups

    for f in range(F):
        acc = 0.0
        for n in range(N):
            for i in range(OH):
                for j in range(OW):
                    acc += dy[n, f, i, j]
        db[f] = acc

    for f in range(F):
        g = f // Fg
        for c in range(Cg):
            for ki in range(KH):
                for kj in range(KW):
                    acc = 0.0
                    for n in range(N):
                        for i in range(OH):
                            row = i * stride_h - pad_h + ki * dil_h
                            if row < 0 or row >= H:
                                continue
                            for j in range(OW):
                                col = j * stride_w - pad_w + kj * dil_w
                                if col < 0 or col >= W:
                                    continue
                                acc += dy[n, f, i, j] * x[n, g * Cg + c, row, col]
                    dw[f, c, ki, kj] = acc

    dx[:] = 0.0
    for n in range(N):
        for f in range(F):
            g = f // Fg
            for i in range(OH):
                for j in range(OW):
                    for c in range(Cg):
                        for ki in range(KH):
                            row = i * stride_h - pad_h + ki * dil_h
                            if row < 0 or row >= H:
                                continue
                            for kj in range(KW):
                                col = j * stride_w - pad_w + kj * dil_w
                                if col < 0 or col >= W:
                                    continue
                                dx[n, g * Cg + c, row, col] += dy[n, f, i, j] * w[f, c, ki, kj]


# =============================================================================================
# The optimized direct convolution (method="blocked"): the same sum, computed in another order.
#
# The naive nest above walks the formula one output at a time.  The blocked kernels below
# compute exactly the same numbers (up to the order of the additions) with four changes:
#
# 1. Polyphase padding.  The driver (nbconv.functional.conv_fast) first copies x into xq,
#    zero-padded and split into SH*SW "phases" (pad_polyphase):
#
#        xq[n, c, (ph*SW + pw)*Hq*Wq + u*Wq + v] = xpad[n, c, u*SH + ph, v*SW + pw]
#
#    xpad being x with PH, PW zeros around it (and zeros past its end up to Hq*SH, Wq*SW).
#    Input row i*SH + ki*DH lives in phase ph = (ki*DH) % SH at u = i + (ki*DH) // SH, and
#    likewise for the columns, so every term (c, ki, kj) of the sum reads
#
#        xq[n, g*Cg + c, taps[ki*KW + kj] + i*Wq + j]
#        taps[ki*KW + kj] = ((ki*DH % SH)*SW + kj*DW % SW)*Hq*Wq + (ki*DH // SH)*Wq + kj*DW // SW
#
#    whatever the stride and dilation: one fixed offset per term.  With stride 1 there is one
#    phase and xq is just the padded image.
# 2. Shifted rows over a flat index.  Output (i, j) reads input taps[..] + i*Wq + j: each term
#    adds a shifted copy of the input plane, scaled by one weight, to the output, with no bounds
#    tests.  Where the output goes is a grid (``Grid``): either y's own rows, OH rows of OW
#    read at i*Wq + j and written at i*OW + j, each row in whole vectors and a masked last one;
#    or the "wide" output yw[n, f, t], t = i*Wq + j < L, one long row whose columns j >= OW are
#    junk that a crop drops.  The driver takes y's rows when they need no more vectors than
#    the wide row (rows of 32 or 16: no junk computed and no crop), the wide row otherwise
#    (rows of 8 would fill half a vector each).
# 3. Register tiles.  A tile of outputs (8 filters by 3 vectors of positions: 48 float32 or 24
#    float64 positions) is held in 24 vector registers while the loop runs over ALL the terms
#    (c, ki, kj) of its sum: per term, 3 input vectors and 8 weights are loaded and 24
#    multiply-adds done; the tile is stored once at the end.  The vectors are explicit
#    (nbconv.kernels.simd, 64 bytes: one AVX-512 register): LLVM's loop vectorizer would keep
#    the running sums in memory, loaded and stored at every term, and choose 256-bit vectors
#    on the AVX-512 CPUs we measured.  The earlier form of these kernels, shift-and-add rows
#    in L1 with the compiler's vectors, ran at 60-80 GFLOP/s on the 2-core AVX-512 machine;
#    the tiles at 110-180 (forward and dx), the machine's GEMM at 80-160.
#    dx is the same loop nest as a gather (see blocked_backward in nbconv.functional.conv_fast):
#        dxq[n, c, s] = sum_{f, kk} w[f, c, kk] * dyw[n, f, s - taps[kk]]
#    conv2d_tiles with the channels as rows.  dw is a sum over all positions per (term, filter):
#    with dy transposed to positions by filters, a tile of 12 terms by 2 vectors of filters in
#    24 registers (conv2d_dw_lanes, at the end of this file); for groups of fewer filters than a
#    vector, dot products along the positions, 4 filters by 4 terms (conv2d_dw_tiles).
# 4. prange over independent outputs: (run of position tiles, about a sample's, block of 8 output
#    rows) for the tiles, (block of filters, run of term tiles) for dw.  No two tasks write one
#    element.
#
# fastmath: the kernels are compiled with {"contract", "reassoc", "nsz"} (fused multiply-add,
# reordered sums), never with "nnan"/"ninf": NaN and Inf still propagate.  The sums are therefore
# added in another order than the naive nest's, and the two methods agree to rounding (tests
# compare them with tolerances), not bit for bit.
# Two more differences show only with non-finite numbers: the padding is multiplied (by the
# weights) instead of skipped, so an infinite weight makes the border outputs NaN, as in
# im2col and the frameworks; and the junk columns read real inputs, which meet dy's zeros in
# dw, so an Inf or NaN input near an edge reaches a few more entries of dw than in the nest.
# =============================================================================================

FASTMATH = {"contract", "reassoc", "nsz"}


@njit(cache=True, inline="always")
def _first_inside(offset, step):
    """The smallest t >= 0 with t * step + offset >= 0."""
    if offset >= 0:
        return 0
    return (-offset + step - 1) // step


@njit(cache=True, inline="always")
def _end_inside(offset, step, size, count):
    """One past the largest t < count with t * step + offset <= size - 1 (0 if there is none)."""
    last = size - 1 - offset
    if last < 0:
        return 0
    return min(count, last // step + 1)


@njit(cache=True, parallel=True)
def pad_polyphase(x, xq, stride_h, stride_w, pad_h, pad_w, Hq, Wq):
    """xq[n, c, (ph*SW + pw)*Hq*Wq + u*Wq + v] = x[n, c, u*SH + ph - PH, v*SW + pw - PW]   (0 outside x)

    x (N, C, H, W) -> xq (N, C, SH*SW*Hq*Wq): zero padding and the split into stride phases
    in one pass, in parallel over the (n, c) planes.  Each phase row gets every SW-th pixel of
    its row of x: the whole row at SW = 1, the row split into its even and odd columns by
    shuffles at SW = 2 (``_split_row``), a gather beyond.
    """
    N, C, H, W = x.shape
    PLANE = xq.shape[2]
    xf = x.reshape(-1)                                    # flat: a row is (start, length), no views
    qf = xq.reshape(-1)
    for task in prange(N * C):                            # task = n*C + c, plane (n, c)
        for ph in range(stride_h):
            for pw in range(stride_w):
                base = task * PLANE + (ph * stride_w + pw) * Hq * Wq
                col0 = pw - pad_w                                 # col = v * SW + col0
                v_lo = min(_first_inside(col0, stride_w), Wq)
                v_hi = max(_end_inside(col0, stride_w, W, Wq), v_lo)
                for u in range(Hq):
                    row = u * stride_h + ph - pad_h
                    d = base + u * Wq
                    if row < 0 or row >= H:
                        simd.fill_zeros(qf, d, Wq)
                        continue
                    simd.fill_zeros(qf, d, v_lo)
                    simd.fill_zeros(qf, d + v_hi, Wq - v_hi)
                    src = (task * H + row) * W + col0             # x's row, at v = 0
                    if stride_w == 1:                             # the whole row
                        simd.copy(qf, d + v_lo, xf, src + v_lo, v_hi - v_lo)
                    elif stride_w > 2:                            # every stride_w-th pixel (a gather)
                        simd.copy_strided(qf, d + v_lo, 1, xf, src + v_lo * stride_w, stride_w, v_hi - v_lo)
            if stride_w == 2:                                     # the pixels of both column phases
                d = task * PLANE + ph * 2 * Hq * Wq               # phase (ph, 0)'s plane
                even, odd = _column_phases(pad_w, Hq, Wq)
                for u in range(Hq):
                    row = u * stride_h + ph - pad_h
                    if 0 <= row < H:
                        _split_row(qf, d + even + u * Wq, d + odd + u * Wq, xf, (task * H + row) * W, W)


@njit(cache=True, parallel=True)
def crop_polyphase(dxq, dx, stride_h, stride_w, pad_h, pad_w, Hq, Wq):
    """dx[n, c, row, col] = dxq[n, c, (ph*SW + pw)*Hq*Wq + u*Wq + v]  where row + PH = u*SH + ph, col + PW = v*SW + pw

    The inverse of pad_polyphase on the pixels of x: the padding's entries are dropped.  At
    SW = 2 a row of dx is its two phase rows zipped (``_zip_rows``).
    """
    N, C, H, W = dx.shape
    PLANE = dxq.shape[2]
    qf = dxq.reshape(-1)
    xf = dx.reshape(-1)
    for task in prange(N * C):                            # task = n*C + c, plane (n, c)
        for row in range(H):
            ph = (row + pad_h) % stride_h
            u = (row + pad_h) // stride_h
            dst = (task * H + row) * W                            # dx's row
            if stride_w == 2:                                     # the pixels of both column phases
                d = task * PLANE + ph * 2 * Hq * Wq + u * Wq      # phase (ph, 0)'s row
                even, odd = _column_phases(pad_w, Hq, Wq)
                _zip_rows(xf, dst, qf, d + even, d + odd, W)
                continue
            for pw in range(stride_w):
                base = task * PLANE + (ph * stride_w + pw) * Hq * Wq + u * Wq
                col0 = pw - pad_w
                v_lo = min(_first_inside(col0, stride_w), Wq)
                v_hi = max(_end_inside(col0, stride_w, W, Wq), v_lo)
                if stride_w == 1:                                 # the whole row
                    simd.copy(xf, dst + col0 + v_lo, qf, base + v_lo, v_hi - v_lo)
                else:                                             # every stride_w-th pixel (a scatter)
                    simd.copy_strided(xf, dst + col0 + v_lo * stride_w, stride_w, qf, base + v_lo, 1, v_hi - v_lo)


# At stride 2 a row's pixels alternate between two phase rows: column col + PW = 2v + pw lies in
# phase pw at v.  So the even columns 2m of x's row sit in phase PW % 2 from v = PW // 2 on, the
# odd columns 2m + 1 in phase (PW + 1) % 2 from v = (PW + 1) // 2 on, both contiguous there:
# two vectors of the row are two vectors of the phases, one shuffle each way.

@njit(cache=True, inline="always")
def _column_phases(pad_w, Hq, Wq):
    """Where a row's even and odd columns start at stride 2, from its row in phase (ph, 0):
    phase PW % 2 at v = PW // 2, and phase (PW + 1) % 2 at v = (PW + 1) // 2."""
    return pad_w % 2 * Hq * Wq + pad_w // 2, (pad_w + 1) % 2 * Hq * Wq + (pad_w + 1) // 2


@njit(cache=True, inline="always")
def _split_row(qf, even_at, odd_at, xf, src, W):
    """qf[even_at + m] = xf[src + 2m], qf[odd_at + m] = xf[src + 2m + 1] for the W pixels of a row."""
    V = simd.lanes(xf)
    evens, odds = (W + 1) // 2, W // 2
    for m in range(0, evens, V):
        lo = simd.load(xf, src + 2 * m, W - 2 * m)
        hi = simd.load(xf, src + 2 * m + V, W - 2 * m - V)
        simd.store(qf, even_at + m, simd.even_lanes(lo, hi), evens - m)
        simd.store(qf, odd_at + m, simd.odd_lanes(lo, hi), odds - m)


@njit(cache=True, inline="always")
def _zip_rows(xf, dst, qf, even_at, odd_at, W):
    """xf[dst + 2m] = qf[even_at + m], xf[dst + 2m + 1] = qf[odd_at + m] for the W pixels of a row."""
    V = simd.lanes(xf)
    evens, odds = (W + 1) // 2, W // 2
    for m in range(0, evens, V):
        even = simd.load(qf, even_at + m, evens - m)
        odd = simd.load(qf, odd_at + m, odds - m)
        simd.store(xf, dst + 2 * m, simd.interleave_low(even, odd), W - 2 * m)
        simd.store(xf, dst + 2 * m + V, simd.interleave_high(even, odd), W - 2 * m - V)


@njit(cache=True, parallel=True)
def crop_wide(yw, y, Wq):
    """y[n, f, i, j] = yw[n, f, i*Wq + j]: the wide output without its junk columns j >= OW
    (the tiles added the bias already)."""
    N, F, OH, OW = y.shape
    R = yw.shape[2]
    wf = yw.reshape(-1)
    yf = y.reshape(-1)
    for task in prange(N * F):                            # task = n*F + f
        for i in range(OH):
            simd.copy(yf, (task * OH + i) * OW, wf, task * R + i * Wq, OW)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def bias_grad(dy, db):
    """db[f] = sum_{n, s} dy[n, f, s]: the bias gradient alone, one task per f (for dy already
    in the wide layout: see blocked_backward)."""
    N, F, S = dy.shape
    for f in prange(F):
        acc = 0.0
        for n in range(N):
            acc = _add_all(acc, dy[n, f])
        db[f] = acc


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def widen_with_bias_grad(dy, dyw, db, Wq, front):
    """dyw[n, f, front + i*Wq + j] = dy[n, f, i, j], 0 everywhere else;  db[f] = sum_{n, i, j} dy[n, f, i, j]

    dy in the wide layout of the forward's output, after ``front`` zeros, for the backward
    kernels (the zeros in front let dx read dy at t - tap without a bounds test); one task per f.
    """
    N, F, OH, OW = dy.shape
    R = dyw.shape[2]
    src = dy.reshape(-1)
    dst = dyw.reshape(-1)
    for f in prange(F):
        acc = 0.0
        for n in range(N):
            row = (n * F + f) * R
            plane = (n * F + f) * OH * OW
            simd.fill_zeros(dst, row, front)
            for i in range(OH):
                simd.copy(dst, row + front + i * Wq, src, plane + i * OW, OW)
                simd.fill_zeros(dst, row + front + i * Wq + OW, Wq - OW)
            simd.fill_zeros(dst, row + front + OH * Wq, R - front - OH * Wq)
            acc = _add_all(acc, src[plane:plane + OH * OW])
        db[f] = acc


@njit(cache=True, inline="always")
def _add_all(acc, values):
    """acc + values[0] + values[1] + ... (a bias gradient's share of one (n, f) plane)."""
    for t in range(values.shape[0]):
        acc += values[t]
    return acc


# Where conv2d_tiles computes: a grid of rows x cols output positions, position (i, j) read at
# read_start + i*read_row + j of every shifted input row and written at write_start + i*write_row + j
# of its output row.  One row of stop - start positions is the wide layout itself (read and written
# at the same t); the forward's rows (OH, OW, read_row Wq, write_row OW) go straight into y.
Grid = namedtuple("Grid", ["rows", "cols", "read_start", "read_row", "write_start", "write_row"])


def wide_row(start, count):
    """The grid of one row of ``count`` positions from ``start``, each read and written at the
    same place (the wide layout; a single row has no row strides, so they are given as count)."""
    return Grid(1, count, start, count, start, count)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def conv2d_tiles(inp, w_terms, offsets, bias, out, groups, grid):
    """out[n, o, q] = bias[o] + sum_k w_terms[o, k] * inp[n, g*Cg*PLANE + offsets[k] + p]    (o in group g)

    for every sample n and position (i, j) of the grid (i < rows, j < cols): p = read_start +
    i*read_row + j, q = write_start + i*write_row + j.  The one loop nest of the blocked forward
    and dx (see the section above): shifted input rows, each scaled by one weight, summed into
    output rows.  inp (N, C, PLANE), w_terms (O, T), offsets (T,) where term k reads its group's
    input, bias (O,), out (N, O, Q).  For the forward, o = f, term k = (c, ki, kj), offsets[k] =
    c*PLANE + taps[ki*KW + kj], and the grid is y's rows (i, j) read at i*Wq + j, or one wide row.

    Register tiles: for 8 output rows and 3 vectors of positions (48 float32, 24 float64), 24
    running sums stay in vector registers while the loop runs over all T terms; each term loads
    3 input vectors and 8 weights and does 24 multiply-adds, then the tile is stored once.  (4
    rows: 12 multiply-adds per 3 input loads, 5-45% slower; the loads, each vector straddling two
    cache lines, were what limited it.)  The vectors are the grid's, row by row, each within one
    grid row (the last of a row is shorter: its loads and stores are masked, simd.load/store
    with a count, so nothing outside the grid is read or written), sample after sample: a tile
    may take its vectors from two samples, so that a small map does not leave most of its last
    tile empty (a 4x4 map is 4 vectors of 4 positions: alone, 2 tiles of 6 vectors).
    A task owns a block of 8 output rows of one group and a run of about one sample's tiles.
    When fewer than 8 rows are left in a group, the last one is repeated (computed again, stored
    again with the same values), so every block runs the same code.  Each output is one tile's
    sum over the terms in order, whatever the split: the results do not depend on the threads.
    """
    N, C, PLANE = inp.shape
    O, T = w_terms.shape
    Q = out.shape[2]
    Cg = C // groups
    Og = O // groups
    V = simd.lanes(inp)
    per_row = (grid.cols + V - 1) // V                # vectors per grid row
    vectors = N * grid.rows * per_row                 # of all samples, in order
    tiles = (vectors + 2) // 3
    run = max(4, (grid.rows * per_row + 2) // 3)      # tiles per task: about one sample's
    per_group = (Og + 7) // 8                         # blocks of 8 output rows in a group
    blocks = groups * per_group
    xf = inp.reshape(-1)
    of = out.reshape(-1)
    for task in prange((tiles + run - 1) // run * blocks):   # task = run index * blocks + block
        g = task % blocks // per_group
        o0 = g * Og + task % per_group * 8
        last = min(7, (g + 1) * Og - 1 - o0)            # rows o0 ... o0 + last are this task's
        r0, r1, r2, r3 = o0, o0 + min(1, last), o0 + min(2, last), o0 + min(3, last)
        r4, r5, r6, r7 = o0 + min(4, last), o0 + min(5, last), o0 + min(6, last), o0 + last
        w0, w1, w2, w3 = w_terms[r0], w_terms[r1], w_terms[r2], w_terms[r3]
        w4, w5, w6, w7 = w_terms[r4], w_terms[r5], w_terms[r6], w_terms[r7]
        x_sample, x_group, y_sample = C * PLANE, g * Cg * PLANE, O * Q    # flat sizes and offsets
        first = task // blocks * run * 3              # the run's first vector
        stop = min(vectors, first + run * 3)
        # the cursor: vector jv of grid row i of sample n
        n, rest = divmod(first, grid.rows * per_row)
        i, jv = divmod(rest, per_row)
        for v in range(first, stop, 3):
            # the tile's 3 vectors: where each reads (p), writes (q, row r0's) and how many
            # positions (m; 0 past the run's end)
            p0, q0, m0, n, i, jv = _grid_vector(grid, n, i, jv, per_row, V, v < stop, x_sample, x_group, y_sample)
            p1, q1, m1, n, i, jv = _grid_vector(grid, n, i, jv, per_row, V, v + 1 < stop, x_sample, x_group, y_sample)
            p2, q2, m2, n, i, jv = _grid_vector(grid, n, i, jv, per_row, V, v + 2 < stop, x_sample, x_group, y_sample)
            # s<row><vector>: the tile's 24 running sums, starting from the bias
            b0, b1, b2, b3 = simd.broadcast(bias, r0), simd.broadcast(bias, r1), simd.broadcast(bias, r2), simd.broadcast(bias, r3)
            b4, b5, b6, b7 = simd.broadcast(bias, r4), simd.broadcast(bias, r5), simd.broadcast(bias, r6), simd.broadcast(bias, r7)
            s00, s01, s02, s10, s11, s12, s20, s21, s22, s30, s31, s32 = b0, b0, b0, b1, b1, b1, b2, b2, b2, b3, b3, b3
            s40, s41, s42, s50, s51, s52, s60, s61, s62, s70, s71, s72 = b4, b4, b4, b5, b5, b5, b6, b6, b6, b7, b7, b7
            for k in range(T):
                o = offsets[k]
                x0 = simd.load(xf, o + p0, m0)
                x1 = simd.load(xf, o + p1, m1)
                x2 = simd.load(xf, o + p2, m2)
                s00, s01, s02 = _fma3(simd.broadcast(w0, k), x0, x1, x2, s00, s01, s02)
                s10, s11, s12 = _fma3(simd.broadcast(w1, k), x0, x1, x2, s10, s11, s12)
                s20, s21, s22 = _fma3(simd.broadcast(w2, k), x0, x1, x2, s20, s21, s22)
                s30, s31, s32 = _fma3(simd.broadcast(w3, k), x0, x1, x2, s30, s31, s32)
                s40, s41, s42 = _fma3(simd.broadcast(w4, k), x0, x1, x2, s40, s41, s42)
                s50, s51, s52 = _fma3(simd.broadcast(w5, k), x0, x1, x2, s50, s51, s52)
                s60, s61, s62 = _fma3(simd.broadcast(w6, k), x0, x1, x2, s60, s61, s62)
                s70, s71, s72 = _fma3(simd.broadcast(w7, k), x0, x1, x2, s70, s71, s72)
            _store_tile(of, r0 * Q, q0, q1, q2, m0, m1, m2, s00, s01, s02)
            _store_tile(of, r1 * Q, q0, q1, q2, m0, m1, m2, s10, s11, s12)
            _store_tile(of, r2 * Q, q0, q1, q2, m0, m1, m2, s20, s21, s22)
            _store_tile(of, r3 * Q, q0, q1, q2, m0, m1, m2, s30, s31, s32)
            _store_tile(of, r4 * Q, q0, q1, q2, m0, m1, m2, s40, s41, s42)
            _store_tile(of, r5 * Q, q0, q1, q2, m0, m1, m2, s50, s51, s52)
            _store_tile(of, r6 * Q, q0, q1, q2, m0, m1, m2, s60, s61, s62)
            _store_tile(of, r7 * Q, q0, q1, q2, m0, m1, m2, s70, s71, s72)


@njit(cache=True, inline="always")
def _grid_vector(grid, n, i, jv, per_row, V, inside, x_sample, x_group, y_sample):
    """The vector at the cursor (vector jv of grid row i of sample n): where it reads in the flat
    input (x_sample elements a sample, the group's channels from x_group on), where it writes in
    the flat output (y_sample elements a sample; a tile adds its output row's offset), how many
    positions (0 when not ``inside`` the run), and the cursor moved to the next vector."""
    j = jv * V
    p = n * x_sample + x_group + grid.read_start + i * grid.read_row + j
    q = n * y_sample + grid.write_start + i * grid.write_row + j
    m = min(V, grid.cols - j) if inside else 0
    jv += 1
    if jv == per_row:                                 # the next grid row, or the next sample
        jv = 0
        i += 1
        if i == grid.rows:
            i = 0
            n += 1
    return p, q, m, n, i, jv


@njit(cache=True, inline="always")
def _fma3(w, x0, x1, x2, s0, s1, s2):
    """One row of a tile, one term: s_v += w * x_v for its 3 vectors."""
    return simd.fma(w, x0, s0), simd.fma(w, x1, s1), simd.fma(w, x2, s2)


@njit(cache=True, inline="always")
def _store_tile(of, row, q0, q1, q2, m0, m1, m2, s0, s1, s2):
    """One output row's three vectors of a tile into the flat output: of[row + q_v ...] (m_v positions each)."""
    simd.store(of, row + q0, s0, m0)
    simd.store(of, row + q1, s1, m1)
    simd.store(of, row + q2, s2, m2)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def conv2d_dw_tiles(dyw, front, inp, offsets, dw_blocks, groups, L, chunk):
    """dw_blocks[4*b + i, k] = sum_n sum_{t < L} dyw[n, f, front + t] * inp[n, g*Cg*PLANE + offsets[k] + t]

    for filter f = the i-th of block b (blocks of 4 filters, numbered through all groups; f in
    group g): dw as dot products of dy rows with shifted input rows.  offsets has a multiple of
    4 entries (the driver repeats its last); the rows of a block's missing filters and the
    repeated terms' columns are scratch, which the driver drops.  One task per block of 4
    filters, 4 terms at a time: 16 running sums in vector registers over a chunk of positions
    that stays in L1 (4 dy and 4 input vectors loaded per 16 multiply-adds), then each added
    (a tree over its lanes) into dw_blocks.  Small images: a chunk spans several samples.
    """
    N, C, PLANE = inp.shape
    F = dyw.shape[1]
    T4 = offsets.shape[0]
    Cg = C // groups
    Fg = F // groups
    nblocks = (Fg + 3) // 4
    V = simd.lanes(inp)
    R = dyw.shape[2]
    x = inp.reshape(-1)                               # flat, so that each load is one index
    e = dyw.reshape(-1)
    for task in prange(groups * nblocks):
        g = task // nblocks
        f0 = g * Fg + task % nblocks * 4
        last = min(3, (g + 1) * Fg - 1 - f0)           # filters f0 ... f0 + last are this block's
        out = dw_blocks[4 * task:4 * task + 4]
        for i in range(4):
            for k in range(T4):
                out[i, k] = 0.0
        samples = max(1, chunk // L)                  # small images: several samples per chunk
        for n0 in range(0, N, samples):
            for t0 in range(0, L, chunk):
                m = min(chunk, L - t0)
                whole = m - m % V
                for k in range(0, T4, 4):
                    z = simd.zeros(inp)
                    sums = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
                    for n in range(n0, min(N, n0 + samples)):
                        x0 = (n * C + g * Cg) * PLANE + t0                  # where the rows start
                        xs = (x0 + offsets[k], x0 + offsets[k + 1], x0 + offsets[k + 2], x0 + offsets[k + 3])
                        e0 = n * F * R + front + t0
                        es = (e0 + f0 * R, e0 + (f0 + min(1, last)) * R, e0 + (f0 + min(2, last)) * R,
                              e0 + (f0 + last) * R)
                        for t in range(0, whole, V):           # whole vectors: unmasked loads
                            sums = _dw_step(sums, x, xs, e, es, t, V)
                        if whole < m:                           # the last, partial vector
                            sums = _dw_step(sums, x, xs, e, es, whole, m - whole)
                    _add_lane_sums(out, k, sums)


@njit(cache=True, inline="always")
def _dw_step(sums, x, xs, e, es, t, count):
    """One vector of positions of dw's 16 dot products: s<filter><term> += e<filter> * x<term>,
    the vectors at x[xs[term] + t:] and e[es[filter] + t:]."""
    saa, sab, sac, sad, sba, sbb, sbc, sbd, sca, scb, scc, scd, sda, sdb, sdc, sdd = sums
    a = simd.load(x, xs[0] + t, count)
    b = simd.load(x, xs[1] + t, count)
    c = simd.load(x, xs[2] + t, count)
    d = simd.load(x, xs[3] + t, count)
    f = simd.load(e, es[0] + t, count)
    saa, sab, sac, sad = simd.fma(f, a, saa), simd.fma(f, b, sab), simd.fma(f, c, sac), simd.fma(f, d, sad)
    f = simd.load(e, es[1] + t, count)
    sba, sbb, sbc, sbd = simd.fma(f, a, sba), simd.fma(f, b, sbb), simd.fma(f, c, sbc), simd.fma(f, d, sbd)
    f = simd.load(e, es[2] + t, count)
    sca, scb, scc, scd = simd.fma(f, a, sca), simd.fma(f, b, scb), simd.fma(f, c, scc), simd.fma(f, d, scd)
    f = simd.load(e, es[3] + t, count)
    sda, sdb, sdc, sdd = simd.fma(f, a, sda), simd.fma(f, b, sdb), simd.fma(f, c, sdc), simd.fma(f, d, sdd)
    return (saa, sab, sac, sad, sba, sbb, sbc, sbd, sca, scb, scc, scd, sda, sdb, sdc, sdd)


@njit(cache=True, inline="always")
def _add_lane_sums(out, k, sums):
    """out[i, k + j] += the sum of the lanes of sums[4*i + j]: filter i, term k + j."""
    saa, sab, sac, sad, sba, sbb, sbc, sbd, sca, scb, scc, scd, sda, sdb, sdc, sdd = sums
    out[0, k], out[0, k + 1] = out[0, k] + simd.hsum(saa), out[0, k + 1] + simd.hsum(sab)
    out[0, k + 2], out[0, k + 3] = out[0, k + 2] + simd.hsum(sac), out[0, k + 3] + simd.hsum(sad)
    out[1, k], out[1, k + 1] = out[1, k] + simd.hsum(sba), out[1, k + 1] + simd.hsum(sbb)
    out[1, k + 2], out[1, k + 3] = out[1, k + 2] + simd.hsum(sbc), out[1, k + 3] + simd.hsum(sbd)
    out[2, k], out[2, k + 1] = out[2, k] + simd.hsum(sca), out[2, k + 1] + simd.hsum(scb)
    out[2, k + 2], out[2, k + 3] = out[2, k + 2] + simd.hsum(scc), out[2, k + 3] + simd.hsum(scd)
    out[3, k], out[3, k + 1] = out[3, k] + simd.hsum(sda), out[3, k + 1] + simd.hsum(sdb)
    out[3, k + 2], out[3, k + 3] = out[3, k + 2] + simd.hsum(sdc), out[3, k + 3] + simd.hsum(sdd)


# --- dw with the filters in the vector lanes ---------------------------------------------------
#
# conv2d_dw_tiles above computes each dw[f, k] as a dot product along the positions: the sums
# end in vectors of partial sums, added across their lanes at every chunk (a tree of shuffles on
# the port the multiply-adds also use), and each step loads 4 shifted input vectors, each
# straddling two cache lines.  With dy transposed to positions by filters (dy_by_position: every
# position's dy of a block of 2V filters in one contiguous row), dw is a register tile like the
# forward's:
#
#     dw_t[k, f0:f0 + 2V] += x[n, offsets[k] + t] * dyt[n, b, t, :]     for every (n, t)
#
# 12 terms by 2 vectors of filters (32 float32 or 16 float64) held in 24 registers; per
# position 2 vectors of dy loaded, 12 inputs broadcast, 24 multiply-adds, and every lane is its
# own filter's sum, so nothing is added across lanes.  The driver (nbconv.functional.conv_fast)
# uses it when a group has at least one vector of filters and LANES_FROM_TERMS terms; with fewer
# filters (depthwise and narrow groups) most lanes would idle, and with fewer terms transposing
# dy costs more than the lanes bring: the dot products above run instead.
# dy by position is stored block by block, (N, blocks, L, 2V), not as one (N, L, F) row per
# position: a task reads its block's 2 vectors at every position, and in rows of F filters those
# lay F floats apart, 512 bytes at F = 128, so that a chunk of them fell into an eighth of the L1
# cache's sets and was read again from L2 by every tile.  Block by block, a task's chunk is one
# contiguous run (dw 13-27% faster on the benchmark shapes with 64 or 128 filters, float32, one
# and two threads, the transposition included; the same with 32 filters, where F is one block).

@njit(cache=True, inline="always")
def _filter_block(block, fblocks, Fg, B):
    """Block ``block`` of dy by position (fblocks blocks of B filters per group of Fg): its
    group g and its first filter, g*Fg + (block % fblocks)*B."""
    g = block // fblocks
    return g, g * Fg + block % fblocks * B


@njit(cache=True, parallel=True)
def dy_by_position(dy, dyt, Wq, groups):
    """dyt[n, g*fblocks + b, i*Wq + j, l] = dy[n, g*Fg + b*2V + l, i, j]   for j < OW and l < Fg - b*2V,
    0 elsewhere (the junk positions j >= OW, the lanes past a group's last filter)   (i*Wq + j < L)

    dy (N, F, OH, OW) -> dyt (N, groups * fblocks, L, 2V): the wide positions of the forward's
    output, each position's dy of a block of 2V filters of one group (fblocks = ceil(Fg / 2V)
    per group) in one row of 2 vectors, each vector one column of dy (simd.gather, stride
    OH*OW), in parallel over (n, i).
    """
    N, F, OH, OW = dy.shape
    blocks, L, B = dyt.shape[1], dyt.shape[2], dyt.shape[3]
    V = simd.lanes(dyt)
    Fg = F // groups
    fblocks = blocks // groups
    src = dy.reshape(-1)
    dst = dyt.reshape(-1)
    for task in prange(N * OH):                           # task = n*OH + i, output row i of sample n
        n = task // OH
        i = task % OH
        for block in range(blocks):
            g, first = _filter_block(block, fblocks, Fg, B)
            for j in range(min(Wq, L - i * Wq)):
                row = ((n * blocks + block) * L + i * Wq + j) * B
                for h in range(0, B, V):                              # the block's 2 vectors
                    f0 = first + h                                    # the vector's first filter
                    count = max(0, min(V, (g + 1) * Fg - f0)) if j < OW else 0     # its filters
                    column = ((n * F + f0) * OH + i) * OW + j         # dy[n, f0, i, j]
                    simd.store(dst, row + h, simd.gather(src, column, OH * OW, count), V)   # 0 past count


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def conv2d_dw_lanes(dyt, inp, offsets, dw_t, groups, chunk, tiles_per_task):
    """dw_t[k, f] = sum_n sum_{t < L} inp[n, g*Cg*PLANE + offsets[k] + t] * dyt[n, g*fblocks + b, t, l]
    for f = g*Fg + b*2V + l in group g

    dw with the filters in the vector lanes (see the section above).  dyt (N, groups*fblocks,
    L, 2V) from dy_by_position; inp (N, C, PLANE); offsets (T12,) where term k reads its group's
    input, a multiple of 12 entries (the driver repeats the last); dw_t (T12, F), k's row holding
    the sums of all filters (of k's group's filters for each group).  A task owns a block of 2V
    filters of one group and a run of ``tiles_per_task`` tiles of 12 terms; it walks the samples
    and chunks of ``chunk`` positions, and for each chunk runs every one of its tiles over it
    (the block's chunk of dyt, contiguous, stays in cache across them), each tile's 24 sums
    loaded from dw_t before and stored after (0 before the first chunk).  Every (k, f) is summed
    in one order, samples then positions, whatever the task split or the thread count.
    """
    N, C, PLANE = inp.shape
    blocks, L, B = dyt.shape[1], dyt.shape[2], dyt.shape[3]
    F = dw_t.shape[1]
    Cg = C // groups
    Fg = F // groups
    V = simd.lanes(inp)
    fblocks = blocks // groups
    ntiles = offsets.shape[0] // 12
    runs = (ntiles + tiles_per_task - 1) // tiles_per_task
    x = inp.reshape(-1)
    e = dyt.reshape(-1)
    d = dw_t.reshape(-1)
    for task in prange(blocks * runs):
        block = task // runs                             # g*fblocks + b
        g, f0 = _filter_block(block, fblocks, Fg, B)
        count = min(B, (g + 1) * Fg - f0)                # filters f0 ... f0 + count - 1: this block's
        first = task % runs * tiles_per_task
        for n in range(N):
            xb = (n * C + g * Cg) * PLANE                # the group's input of sample n
            eb = (n * blocks + block) * L * B            # the block's dy by position, of sample n
            for t0 in range(0, L, chunk):
                for tile in range(first, min(ntiles, first + tiles_per_task)):
                    k = 12 * tile
                    o = (xb + offsets[k], xb + offsets[k + 1], xb + offsets[k + 2], xb + offsets[k + 3],
                         xb + offsets[k + 4], xb + offsets[k + 5], xb + offsets[k + 6], xb + offsets[k + 7],
                         xb + offsets[k + 8], xb + offsets[k + 9], xb + offsets[k + 10], xb + offsets[k + 11])
                    if n == 0 and t0 == 0:
                        z = simd.zeros(inp)
                        s = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
                    else:
                        s = _load_lane_tile(d, k * F + f0, F, count, V)
                    for t in range(t0, min(L, t0 + chunk)):
                        q = eb + t * B                   # whole vectors: the lanes past count hold 0
                        s = _lane_tile_step(s, x, o, t, simd.load(e, q, V), simd.load(e, q + V, V))
                    _store_lane_tile(d, k * F + f0, F, count, V, s)


@njit(cache=True, inline="always")
def _lane_tile_step(s, x, o, t, e0, e1):
    """One position of a lane tile: s[2r + h] += x[o[r] + t] * e_h for its 12 rows r (terms) and
    its 2 vectors h of filters."""
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15, s16, s17, s18, s19, s20, s21, s22, s23 = s
    s0, s1 = _fma2(simd.broadcast(x, o[0] + t), e0, e1, s0, s1)
    s2, s3 = _fma2(simd.broadcast(x, o[1] + t), e0, e1, s2, s3)
    s4, s5 = _fma2(simd.broadcast(x, o[2] + t), e0, e1, s4, s5)
    s6, s7 = _fma2(simd.broadcast(x, o[3] + t), e0, e1, s6, s7)
    s8, s9 = _fma2(simd.broadcast(x, o[4] + t), e0, e1, s8, s9)
    s10, s11 = _fma2(simd.broadcast(x, o[5] + t), e0, e1, s10, s11)
    s12, s13 = _fma2(simd.broadcast(x, o[6] + t), e0, e1, s12, s13)
    s14, s15 = _fma2(simd.broadcast(x, o[7] + t), e0, e1, s14, s15)
    s16, s17 = _fma2(simd.broadcast(x, o[8] + t), e0, e1, s16, s17)
    s18, s19 = _fma2(simd.broadcast(x, o[9] + t), e0, e1, s18, s19)
    s20, s21 = _fma2(simd.broadcast(x, o[10] + t), e0, e1, s20, s21)
    s22, s23 = _fma2(simd.broadcast(x, o[11] + t), e0, e1, s22, s23)
    return (s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15, s16, s17, s18, s19, s20, s21,
            s22, s23)


@njit(cache=True, inline="always")
def _fma2(w, e0, e1, s0, s1):
    """One row of a lane tile: s_h += w * e_h for its 2 vectors."""
    return simd.fma(w, e0, s0), simd.fma(w, e1, s1)


@njit(cache=True, inline="always")
def _load_lane_tile(d, r, F, count, V):
    """The 24 sums of a lane tile from its 12 rows of dw_t (flat d, row stride F, from d[r])."""
    s0, s1 = _load_pair(d, r, V, count)
    s2, s3 = _load_pair(d, r + F, V, count)
    s4, s5 = _load_pair(d, r + 2 * F, V, count)
    s6, s7 = _load_pair(d, r + 3 * F, V, count)
    s8, s9 = _load_pair(d, r + 4 * F, V, count)
    s10, s11 = _load_pair(d, r + 5 * F, V, count)
    s12, s13 = _load_pair(d, r + 6 * F, V, count)
    s14, s15 = _load_pair(d, r + 7 * F, V, count)
    s16, s17 = _load_pair(d, r + 8 * F, V, count)
    s18, s19 = _load_pair(d, r + 9 * F, V, count)
    s20, s21 = _load_pair(d, r + 10 * F, V, count)
    s22, s23 = _load_pair(d, r + 11 * F, V, count)
    return (s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15, s16, s17, s18, s19, s20, s21,
            s22, s23)


@njit(cache=True, inline="always")
def _load_pair(d, r, V, count):
    """The two vectors of one row of a lane tile, d[r : r + count]."""
    return simd.load(d, r, count), simd.load(d, r + V, count - V)


@njit(cache=True, inline="always")
def _store_lane_tile(d, r, F, count, V, s):
    """The inverse of _load_lane_tile: the 24 sums back into their rows (count filters each)."""
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15, s16, s17, s18, s19, s20, s21, s22, s23 = s
    _store_pair(d, r, V, count, s0, s1)
    _store_pair(d, r + F, V, count, s2, s3)
    _store_pair(d, r + 2 * F, V, count, s4, s5)
    _store_pair(d, r + 3 * F, V, count, s6, s7)
    _store_pair(d, r + 4 * F, V, count, s8, s9)
    _store_pair(d, r + 5 * F, V, count, s10, s11)
    _store_pair(d, r + 6 * F, V, count, s12, s13)
    _store_pair(d, r + 7 * F, V, count, s14, s15)
    _store_pair(d, r + 8 * F, V, count, s16, s17)
    _store_pair(d, r + 9 * F, V, count, s18, s19)
    _store_pair(d, r + 10 * F, V, count, s20, s21)
    _store_pair(d, r + 11 * F, V, count, s22, s23)


@njit(cache=True, inline="always")
def _store_pair(d, r, V, count, s0, s1):
    """d[r : r + count] = the two vectors of one row of a lane tile."""
    simd.store(d, r, s0, count)
    simd.store(d, r + V, s1, count - V)
