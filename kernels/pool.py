"""Pooling as naive loop nests: max, average, Lp-norm and global average pooling.

Shapes: x (N, C, H, W), out (N, C, OH, OW) with

    OH = floor((H + 2 PH - KH) / SH) + 1,   OW = floor((W + 2 PW - KW) / SW) + 1

for a KH x KW window moved with stride (SH, SW) over x padded by (PH, PW).
Output pixel (i, j) of channel c looks at the window

    rows i*SH - PH + ki  (ki = 0 ... KH-1),   cols j*SW - PW + kj  (kj = 0 ... KW-1)

of the same channel: pooling never mixes channels.  Positions outside the
image are padding: -inf for max pooling (they can never win), 0 for average
pooling (they count in the divisor KH*KW).  The callers guarantee that every
window holds at least one real pixel.

Max pooling's switches (n, c, i, j) -> row * W + col: the flat index, within
the (H, W) plane of channel (n, c), of the pixel that won the window.
Global average pooling: x (N, C, H, W) -> out (N, C).
"""

import numpy as np
from numba import njit, prange

from . import vecmath            # the Lp twins' powers, global average pooling's sums


# ----------------------------------------------------------------------------- max pooling

@njit(cache=True)
def max_pool2d_forward(x, out, switches, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """out[n, c, i, j] = max_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj]
    switches[n, c, i, j] = row * W + col of that maximum

    Padding is -inf, so out-of-image positions are simply skipped.  Ties: the
    first maximum in row-major window order wins (a later pixel must be
    strictly larger to take over).  A NaN in the window wins, as in IEEE max.
    """
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    best = -np.inf
                    best_index = -1
                    for ki in range(kernel_h):
                        row = i * stride_h - pad_h + ki
                        if row < 0 or row >= H:
                            continue
                        for kj in range(kernel_w):
                            col = j * stride_w - pad_w + kj
                            if col < 0 or col >= W:
                                continue
                            v = x[n, c, row, col]
                            if best_index < 0 or v > best or (v != v and best == best):
                                best = v
                                best_index = row * W + col
                    out[n, c, i, j] = best
                    switches[n, c, i, j] = best_index


@njit(cache=True)
def max_pool2d_backward(dout, switches, dx):
    """dx[n, c, row, col] = sum of dout[n, c, i, j] over the windows (i, j) whose switch is (row, col)

    Only the winning pixel of a window influenced its output, so the gradient
    is routed to it alone; overlapping windows that share a winner add up
    (the fan-out rule).  dx is zeroed first.
    """
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    dx[:] = 0.0
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    s = switches[n, c, i, j]
                    dx[n, c, s // W, s % W] += dout[n, c, i, j]


# ----------------------------------------------------------------------------- average pooling

@njit(cache=True)
def avg_pool2d_forward(x, out, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """out[n, c, i, j] = (1 / (KH*KW)) * sum_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj]

    Padding is zero and counts in the average: the divisor is always KH*KW.
    """
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    area = kernel_h * kernel_w
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    acc = 0.0
                    for ki in range(kernel_h):
                        row = i * stride_h - pad_h + ki
                        if row < 0 or row >= H:
                            continue
                        for kj in range(kernel_w):
                            col = j * stride_w - pad_w + kj
                            if col < 0 or col >= W:
                                continue
                            acc += x[n, c, row, col]
                    out[n, c, i, j] = acc / area


@njit(cache=True)
def avg_pool2d_backward(dout, dx, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """dx[n, c, i*SH - PH + ki, j*SW - PW + kj] += dout[n, c, i, j] / (KH*KW)

    Every pixel of a window gets an equal share of the window's gradient;
    shares that fall on the padding are dropped.  dx is zeroed first.
    """
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    area = kernel_h * kernel_w
    dx[:] = 0.0
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    share = dout[n, c, i, j] / area
                    for ki in range(kernel_h):
                        row = i * stride_h - pad_h + ki
                        if row < 0 or row >= H:
                            continue
                        for kj in range(kernel_w):
                            col = j * stride_w - pad_w + kj
                            if col < 0 or col >= W:
                                continue
                            dx[n, c, row, col] += share


# ----------------------------------------------------------------------------- Lp-norm pooling

@njit(cache=True)
def lp_pool2d_forward(x, out, p, kernel_h, kernel_w, stride_h, stride_w):
    """out[n, c, i, j] = (sum_{ki, kj} |x[n, c, i*SH + ki, j*SW + kj]|^p)^(1/p)

    The p-norm of the window (L2-norm pooling for p = 2); no padding.
    """
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    acc = 0.0
                    for ki in range(kernel_h):
                        row = i * stride_h + ki
                        for kj in range(kernel_w):
                            col = j * stride_w + kj
                            acc += abs(x[n, c, row, col]) ** p
                    out[n, c, i, j] = acc ** (1.0 / p)


@njit(cache=True)
def lp_pool2d_backward(dout, x, out, dx, p, kernel_h, kernel_w, stride_h, stride_w):
    """dx[n, c, i*SH + ki, j*SW + kj] += dout[n, c, i, j] * |x|^(p-1) * sign(x) / out[n, c, i, j]^(p-1)

    (d/dx of (sum |x|^p)^(1/p) is (1/p) (sum |x|^p)^(1/p - 1) * p |x|^(p-1) sign(x).)
    Computed as sign(x) * (|x| / out)^(p-1), the same number without
    overflowing |x|^(p-1) for large p.  A window whose norm is 0 passes no
    gradient (the norm has no derivative there; 0 is the subgradient chosen).
    Overlapping windows add up; dx is zeroed first.
    """
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    dx[:] = 0.0
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    norm = out[n, c, i, j]
                    if norm == 0.0:
                        continue
                    g = dout[n, c, i, j]
                    for ki in range(kernel_h):
                        row = i * stride_h + ki
                        for kj in range(kernel_w):
                            col = j * stride_w + kj
                            v = x[n, c, row, col]
                            if v > 0.0:
                                sign = 1.0
                            elif v < 0.0:
                                sign = -1.0
                            else:
                                sign = 0.0
                            dx[n, c, row, col] += g * sign * (abs(v) / norm) ** (p - 1.0)


# ----------------------------------------------------------------------------- global average pooling

@njit(cache=True)
def global_avg_pool2d_forward(x, out):
    """out[n, c] = (1 / (H*W)) * sum_{h, w} x[n, c, h, w]"""
    N, C, H, W = x.shape
    area = H * W
    for n in range(N):
        for c in range(C):
            acc = 0.0
            for h in range(H):
                for w in range(W):
                    acc += x[n, c, h, w]
            out[n, c] = acc / area


@njit(cache=True)
def global_avg_pool2d_backward(dout, dx):
    """dx[n, c, h, w] = dout[n, c] / (H*W): every pixel gets an equal share."""
    N, C, H, W = dx.shape
    area = H * W
    for n in range(N):
        for c in range(C):
            share = dout[n, c] / area
            for h in range(H):
                for w in range(W):
                    dx[n, c, h, w] = share


# ----------------------------------------------------------------------------- parallel twins
#
# Pooling never mixes channels, so every (n, c) plane is an independent task (prange); within
# a plane each output sees its window's pixels in the same row-major order as in the naive
# kernels above, so the results, switches included, are bit for bit the same.  The forward
# kernels of the common 2x2 window with stride 2 and no padding (disjoint windows that tile
# the image) have their own plane kernels, _*_2x2 below, whose loop over the output columns
# vectorizes; other windows are computed a whole output row at a time, tap by tap.


@njit(cache=True)
def _max_pool_plane_2x2(x, out, switches):
    """One (H, W) plane, 2x2 windows at stride 2: the window's 4 pixels in row-major order,
    the first maximum kept (a later pixel wins if larger, or if it is NaN and the best is not)."""
    W = x.shape[1]
    OH, OW = out.shape
    for i in range(OH):
        top, bottom = x[2 * i], x[2 * i + 1]
        best_row, index_row = out[i], switches[i]
        for j in range(OW):
            best = top[2 * j]
            which = 0                                        # 0, 1: top row; 2, 3: bottom row
            v = top[2 * j + 1]
            take = (v > best) | ((v != v) & (best == best))
            which = 1 if take else which
            best = v if take else best
            v = bottom[2 * j]
            take = (v > best) | ((v != v) & (best == best))
            which = 2 if take else which
            best = v if take else best
            v = bottom[2 * j + 1]
            take = (v > best) | ((v != v) & (best == best))
            which = 3 if take else which
            best = v if take else best
            best_row[j] = best
            index_row[j] = (2 * i + which // 2) * W + 2 * j + which % 2


@njit(cache=True)
def _window_sums_2x2(x, out, scale):
    """out[i, j] = scale * (the sum of the 2x2 window (i, j) of x), disjoint windows at stride 2:
    the four terms added to 0 in float64 in row-major order, as the naive kernels add, one loop
    over j for the whole output row.  scale = 1/4 is average pooling (a power of two: the same
    number as the naive loop's sum / 4), scale = 1 the window sums of Lp pooling."""
    OH, OW = out.shape
    for i in range(OH):
        top, bottom, row = x[2 * i], x[2 * i + 1], out[i]
        for j in range(OW):
            acc = 0.0
            acc += top[2 * j]
            acc += top[2 * j + 1]
            acc += bottom[2 * j]
            acc += bottom[2 * j + 1]
            row[j] = acc * scale


@njit(cache=True)
def _avg_pool_plane_backward_2x2(dout, dx):
    """One plane, disjoint 2x2 windows: every pixel of a window gets 0 + dout / 4."""
    OH, OW = dout.shape
    for i in range(OH):
        top, bottom = dx[2 * i], dx[2 * i + 1]
        g_row = dout[i]
        for j in range(OW):
            share = 0.0 + g_row[j] / 4
            top[2 * j] = share
            top[2 * j + 1] = share
            bottom[2 * j] = share
            bottom[2 * j + 1] = share
    _zero_uncovered(dx, OH, OW)


@njit(cache=True)
def _zero_uncovered(dx, OH, OW):
    """Zero the last row and column of an odd-sized plane, which no 2x2 window covers."""
    H, W = dx.shape
    for row in range(2 * OH, H):
        for col in range(W):
            dx[row, col] = 0.0
    for row in range(2 * OH):
        for col in range(2 * OW, W):
            dx[row, col] = 0.0


@njit(cache=True, inline="always")
def _is_2x2(kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    return kernel_h == 2 and kernel_w == 2 and stride_h == 2 and stride_w == 2 and pad_h == 0 and pad_w == 0

@njit(cache=True, inline="always")
def _window_columns(col0, stride, W, OW):
    """(j_lo, j_hi): the outputs j whose column j * stride + col0 lies inside 0 ... W - 1."""
    j_lo = 0 if col0 >= 0 else (-col0 + stride - 1) // stride
    j_lo = min(j_lo, OW)
    last = W - 1 - col0
    j_hi = 0 if last < 0 else min(OW, last // stride + 1)
    return j_lo, max(j_hi, j_lo)


@njit(cache=True, parallel=True)
def max_pool2d_forward_parallel(x, out, switches, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """max_pool2d_forward, one task per (n, c) plane, a whole output row at a time:

        out[n, c, i, j] = max_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj],  switches = row * W + col

    For each tap (ki, kj) in row-major order, every output j of row i compares its running
    maximum with its pixel under that tap.  The comparison is written with | and & (no
    short-circuit) and both rows are stored whatever it says, so the innermost loop over j
    has no branch and vectorizes.  Same ties (first maximum wins) and NaN rule as the naive
    kernel.
    """
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    fast = _is_2x2(kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)
    for task in prange(N * C):
        n = task // C
        c = task % C
        if fast:
            _max_pool_plane_2x2(x[n, c], out[n, c], switches[n, c])
            continue
        for i in range(OH):
            best = out[n, c, i]
            index = switches[n, c, i]
            for j in range(OW):
                best[j] = -np.inf
                index[j] = -1
            for ki in range(kernel_h):
                row = i * stride_h - pad_h + ki
                if row < 0 or row >= H:
                    continue
                for kj in range(kernel_w):
                    col0 = kj - pad_w                            # col = j * SW + col0
                    j_lo, j_hi = _window_columns(col0, stride_w, W, OW)
                    if j_hi == j_lo:
                        continue
                    src = x[n, c, row, j_lo * stride_w + col0:(j_hi - 1) * stride_w + col0 + 1:stride_w]
                    b_row = best[j_lo:j_hi]
                    i_row = index[j_lo:j_hi]
                    first = row * W + j_lo * stride_w + col0
                    for jj in range(j_hi - j_lo):
                        v = src[jj]
                        b = b_row[jj]
                        take = (i_row[jj] < 0) | (v > b) | ((v != v) & (b == b))
                        b_row[jj] = v if take else b
                        i_row[jj] = first + jj * stride_w if take else i_row[jj]


@njit(cache=True, parallel=True)
def max_pool2d_backward_parallel(dout, switches, dx):
    """max_pool2d_backward, one task per (n, c) plane: the plane is zeroed and each dout is
    added to its window's winner, in the naive kernel's order.  The switch is used as the flat
    index it is (the plane viewed as H*W values), without splitting it into row and column."""
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    for task in prange(N * C):
        n = task // C
        c = task % C
        plane = dx[n, c].reshape(H * W)
        for p in range(H * W):
            plane[p] = 0.0
        for i in range(OH):
            g_row = dout[n, c, i]
            s_row = switches[n, c, i]
            for j in range(OW):
                plane[s_row[j]] += g_row[j]


@njit(cache=True, parallel=True)
def avg_pool2d_forward_parallel(x, out, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """avg_pool2d_forward, one task per (n, c) plane, a whole output row at a time: the window's
    pixels are added tap by tap in row-major order into a float64 row (the naive kernel's
    accumulator, the same additions in the same order), then divided by KH*KW."""
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    area = kernel_h * kernel_w
    fast = _is_2x2(kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)
    for task in prange(N * C):
        n = task // C
        c = task % C
        if fast:
            _window_sums_2x2(x[n, c], out[n, c], 0.25)
            continue
        acc = np.empty(OW)                                       # this task's running sums
        for i in range(OH):
            for j in range(OW):
                acc[j] = 0.0
            for ki in range(kernel_h):
                row = i * stride_h - pad_h + ki
                if row < 0 or row >= H:
                    continue
                for kj in range(kernel_w):
                    col0 = kj - pad_w
                    j_lo, j_hi = _window_columns(col0, stride_w, W, OW)
                    if j_hi == j_lo:
                        continue
                    src = x[n, c, row, j_lo * stride_w + col0:(j_hi - 1) * stride_w + col0 + 1:stride_w]
                    a_row = acc[j_lo:j_hi]
                    for jj in range(j_hi - j_lo):
                        a_row[jj] += src[jj]
            dst = out[n, c, i]
            for j in range(OW):
                dst[j] = acc[j] / area


@njit(cache=True, parallel=True)
def avg_pool2d_backward_parallel(dout, dx, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """avg_pool2d_backward, one task per (n, c) plane: zeroed, then every window's share added."""
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    area = kernel_h * kernel_w
    fast = _is_2x2(kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)
    for task in prange(N * C):
        n = task // C
        c = task % C
        if fast:
            _avg_pool_plane_backward_2x2(dout[n, c], dx[n, c])
            continue
        plane = dx[n, c]
        for row in range(H):
            for col in range(W):
                plane[row, col] = 0.0
        for i in range(OH):
            for j in range(OW):
                share = dout[n, c, i, j] / area
                for ki in range(kernel_h):
                    row = i * stride_h - pad_h + ki
                    if row < 0 or row >= H:
                        continue
                    for kj in range(kernel_w):
                        col = j * stride_w - pad_w + kj
                        if col < 0 or col >= W:
                            continue
                        plane[row, col] += share


# ----------------------------------------------------------------------------- Lp pooling, parallel
#
# Why lp_pool2d_*_parallel are faster than the loops above:
#
# 1. Threads: one task per (n, c) plane, as for the other pooling twins.  Every sum of a task
#    stays inside it, so the results do not depend on the number of threads.
# 2. No libm call per pixel.  The naive kernels call the C library's pow for every (window, tap):
#    one call per element, which LLVM cannot vectorize.  Here the powers are taken a whole
#    plane at a time by _abs_pow, which picks the case of the exponent once per plane, outside
#    its loops: sqrt (q = 1/2) and products (q = 0, 1, 2, 3: 1, |a|, a*a, a*a*a), and for any
#    other q exp(q * log|a|) with nbconv.kernels.vecmath's exp and log, in float64 like the
#    naive kernel's pow.  These loops are free of calls and branches, and vectorize.
# 3. Each pixel's |x|^p is computed once per plane, not once per window that holds it.
# 4. The 2x2 window with stride 2, the common one, has its own steps (_window_sums_2x2, and in
#    the backward the windows' values spread onto their pixels, _spread_2x2), so that the
#    backward is elementwise over the plane's rows.
#
# The window sums add the same float64 terms in the naive kernel's order (taps in row-major
# order), and the backward adds each pixel's shares in the naive order too (see
# lp_pool2d_backward_parallel).  So where the powers are exact the results are the naive ones
# bit for bit: p = 1 (forward and backward) and p = 2 in the backward (power p - 1 = 1).  Else
# products, sqrt and vecmath's exp and log (within 2 ulp) stand for pow, which is within an ulp
# of the exact power: the results agree to a few float64 ulp (x float32: to float32 rounding).



@njit(cache=True, error_model="numpy")
def _abs_pow(a, q, out):
    """out[r, w] = |a[r, w]|^q, computed in float64, for 2-D a and out and an exponent q >= 0.

    The exponent's case is chosen once, so that each loop is branch-free and vectorizes:
        q = 0: 1 (pow(a, 0) is 1 for every a, NaN included),   q = 1/2: sqrt(|a|),
        q = 1, 2, 3: |a|, a * a, a * a * a (for a float32 a, a * a is exact in float64),
        any other q: exp(q * log|a|) with vecmath's exp and log, which give pow's special
        values too (|a| = 0: log = -inf, exp(-inf) = 0; inf and NaN pass through).
    """
    R, W = a.shape
    if q == 0.0:
        for r in range(R):
            for w in range(W):
                out[r, w] = 1.0
    elif q == 0.5:
        for r in range(R):
            for w in range(W):
                out[r, w] = np.sqrt(abs(np.float64(a[r, w])))
    elif q == 1.0:
        for r in range(R):
            for w in range(W):
                out[r, w] = abs(np.float64(a[r, w]))
    elif q == 2.0:
        for r in range(R):
            for w in range(W):
                v = np.float64(a[r, w])
                out[r, w] = v * v
    elif q == 3.0:
        for r in range(R):
            for w in range(W):
                v = abs(np.float64(a[r, w]))
                out[r, w] = v * v * v
    else:
        for r in range(R):
            for w in range(W):
                out[r, w] = vecmath.exp(q * vecmath.log(abs(np.float64(a[r, w]))))


# Planes per task of the Lp pooling twins: their scratch planes are allocated once per task, not
# once per plane (on 2048 planes of 32x32, 2 threads: the forward 0.86x, the backward 0.92x
# the time with an allocation per plane).
LP_PLANES = 16


@njit(cache=True, parallel=True, error_model="numpy")
def lp_pool2d_forward_parallel(x, out, p, kernel_h, kernel_w, stride_h, stride_w):
    """lp_pool2d_forward, one task per (n, c) plane, in three steps over the whole plane:

        power[h, w]     = |x[n, c, h, w]|^p                            (float64)
        s[i, j]         = sum_{ki, kj} power[i*SH + ki, j*SW + kj]     (float64, taps in row-major order)
        out[n, c, i, j] = s[i, j]^(1/p)

    The 2x2 window with stride 2 sums in _window_sums_2x2, other windows a tap at a time.  A
    task takes LP_PLANES planes in turn, with one scratch allocation for all of them.
    """
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    two_by_two = _is_2x2(kernel_h, kernel_w, stride_h, stride_w, 0, 0)
    for block in prange((N * C + LP_PLANES - 1) // LP_PLANES):
        scratch = np.empty(H * W + OH * OW)                   # one allocation for both planes
        power = scratch[:H * W].reshape(H, W)
        s = scratch[H * W:].reshape(OH, OW)
        for task in range(block * LP_PLANES, min(N * C, (block + 1) * LP_PLANES)):   # plane (n, c)
            n = task // C
            c = task % C
            _abs_pow(x[n, c], p, power)
            if two_by_two:
                _window_sums_2x2(power, s, 1.0)
            else:
                s[:] = 0.0
                for ki in range(kernel_h):
                    for kj in range(kernel_w):
                        for i in range(OH):
                            src, s_row = power[i * stride_h + ki], s[i]
                            for j in range(OW):
                                s_row[j] += src[j * stride_w + kj]
            _abs_pow(s, 1.0 / p, out[n, c])


@njit(cache=True)
def _spread_2x2(a, out):
    """out[2i + r, 2j + b] = a[i, j]: every 2x2 window's value on its four pixels (stride 2).
    Row 2i is filled column pair by column pair, row 2i + 1 is a copy of it."""
    OH, OW = a.shape
    for i in range(OH):
        a_row, top, bottom = a[i], out[2 * i], out[2 * i + 1]
        for j in range(OW):
            top[2 * j] = a_row[j]
            top[2 * j + 1] = a_row[j]
        for col in range(2 * OW):
            bottom[col] = top[col]


@njit(cache=True, error_model="numpy")
def _lp_ratios(v, norm, ratio):
    """ratio[r, w] = |v[r, w]| / norm[r, w], divided in v's dtype as the naive kernel does, over
    norm's shape (v may be larger: a whole plane whose edge no window covers)."""
    R, W = norm.shape
    for r in range(R):
        v_row, n_row, r_row = v[r], norm[r], ratio[r]
        for w in range(W):
            r_row[w] = abs(v_row[w]) / n_row[w]


@njit(cache=True, error_model="numpy")
def _lp_shares(v, norm, g, factor, share):
    """share[r, w] = 0 + g[r, w] * sign(v[r, w]) * factor[r, w], or 0 where norm[r, w] = 0, over
    norm's shape (v and share may be larger).

    sign(v) = (v > 0) - (v < 0): 1, -1 or 0 (NaN: 0, as in the naive kernel), in integer
    arithmetic, which compiles to no branch (an if/elif chain would mispredict on random signs
    wherever the loop runs unvectorized).  0 + turns a share of -0 into +0, as the naive
    kernel's dx (zeroed) += share does."""
    R, W = norm.shape
    for r in range(R):
        v_row, n_row, g_row, f_row, s_row = v[r], norm[r], g[r], factor[r], share[r]
        for w in range(W):
            sign = np.float64((v_row[w] > 0.0) - (v_row[w] < 0.0))
            s = g_row[w] * sign * f_row[w]
            s_row[w] = 0.0 + (0.0 if n_row[w] == 0.0 else s)


@njit(cache=True, parallel=True, error_model="numpy")
def lp_pool2d_backward_parallel(dout, x, out, dx, p, kernel_h, kernel_w, stride_h, stride_w):
    """lp_pool2d_backward, one task per (n, c) plane, one tap (ki, kj) at a time:

        v[i, j]      = x[n, c, i*SH + ki, j*SW + kj]                  (the tap's pixel of every window)
        factor[i, j] = (|v[i, j]| / out[n, c, i, j])^(p - 1)
        dx[n, c, i*SH + ki, j*SW + kj] += dout[n, c, i, j] * sign(v[i, j]) * factor[i, j]

    (nothing for a window whose norm is 0).  The taps run from the last to the first: a pixel
    lies under tap (ki, kj) of window (i, j) = ((row - ki) / SH, (col - kj) / SW), so taken this
    way it receives its shares from the windows in the naive kernel's order (i, then j, rising).
    dx is zeroed first.

    The 2x2 window with stride 2 puts every pixel in one window: the windows' norms and dout are
    spread onto their pixels (_spread_2x2), and the formula is then elementwise over the plane,
    dx = 0 + share, in loops as long as the plane's rows.  A task takes LP_PLANES planes in
    turn, with one allocation of its scratch planes for all of them.
    """
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    two_by_two = _is_2x2(kernel_h, kernel_w, stride_h, stride_w, 0, 0)
    rows, cols = (2 * OH, 2 * OW) if two_by_two else (OH, OW)   # the scratch planes' shape
    for block in prange((N * C + LP_PLANES - 1) // LP_PLANES):
        # 2x2: each pixel's window norm, and its dout (exact in float64), ratio, factor;
        # other windows: the tap's pixel v of every window, and ratio, factor, share
        pixels = np.empty((rows, cols), x.dtype)
        work = np.empty((3, rows, cols))
        for task in range(block * LP_PLANES, min(N * C, (block + 1) * LP_PLANES)):   # plane (n, c)
            n = task // C
            c = task % C
            x_plane, plane, norm, g = x[n, c], dx[n, c], out[n, c], dout[n, c]
            if two_by_two:
                norm_px, g_px, ratio, factor = pixels, work[0], work[1], work[2]
                _spread_2x2(norm, norm_px)
                _spread_2x2(g, g_px)
                _lp_ratios(x_plane, norm_px, ratio)
                _abs_pow(ratio, p - 1.0, factor)
                _lp_shares(x_plane, norm_px, g_px, factor, plane)     # dx = 0 + share
                _zero_uncovered(plane, OH, OW)
                continue
            for row in range(H):
                for col in range(W):
                    plane[row, col] = 0.0
            v, ratio, factor, share = pixels, work[0], work[1], work[2]
            for ki in range(kernel_h - 1, -1, -1):
                for kj in range(kernel_w - 1, -1, -1):
                    for i in range(OH):
                        x_row, v_row = x_plane[i * stride_h + ki], v[i]
                        for j in range(OW):
                            v_row[j] = x_row[j * stride_w + kj]
                    _lp_ratios(v, norm, ratio)
                    _abs_pow(ratio, p - 1.0, factor)
                    _lp_shares(v, norm, g, factor, share)
                    for i in range(OH):
                        s_row, dx_row = share[i], plane[i * stride_h + ki]
                        for j in range(OW):
                            dx_row[j * stride_w + kj] += s_row[j]


# ------------------------------------------------------------------------- global average pooling, parallel
#
# Why global_avg_pool2d_*_parallel are faster: one task per (n, c) plane, and the forward's sum
# vectorizes.  The naive loop has one float64 sum, and each addition waits for the previous one
# (~4 cycles).  vecmath.vsum lets LLVM reassociate the additions (fastmath "reassoc", on that
# function only): it keeps partial sums in the lanes of a few vector registers and adds them
# up at the end.  Another order than the naive loop's, so the results agree to rounding (a few
# float64 ulp of the sum of |x|), not bit for bit; but one fixed order for a given plane size,
# inside one task, whatever the thread count.  Each plane is summed as one flat row of H*W
# values (x is C-contiguous, as nbconv.functional passes it), so that small feature maps (7x7,
# 4x4) make one vector loop, not one short loop per row.  The backward is the naive fill, one
# plane per task: bit for bit the same.


@njit(cache=True, parallel=True)
def global_avg_pool2d_forward_parallel(x, out):
    """global_avg_pool2d_forward, one task per (n, c): out[n, c] = (1 / (H*W)) * sum_{h, w} x[n, c, h, w]

    x is viewed as N*C rows of H*W values (and out as N*C values), so that a task is a row
    index: no division of the task number into (n, c) (an integer division costs as much as
    summing a 7x7 plane)."""
    N, C, H, W = x.shape
    area = H * W
    rows, means = x.reshape(N * C, area), out.reshape(N * C)
    for task in prange(N * C):
        means[task] = vecmath.vsum(rows[task]) / area


@njit(cache=True, parallel=True)
def global_avg_pool2d_backward_parallel(dout, dx):
    """global_avg_pool2d_backward, one task per (n, c): dx[n, c, h, w] = dout[n, c] / (H*W),
    on the same (N*C, H*W) view of dx."""
    N, C, H, W = dx.shape
    area = H * W
    rows, g = dx.reshape(N * C, area), dout.reshape(N * C)
    for task in prange(N * C):
        share = g[task] / area
        row = rows[task]
        for k in range(area):
            row[k] = share
