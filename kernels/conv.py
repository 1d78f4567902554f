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

from numba import njit, prange


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
# 2. Shift-and-add over a flat index.  Give the output rows the same length Wq (the "wide"
#    output yw[n, f, i*Wq + j]; the columns j >= OW are junk that the crop drops).  Then
#    output t = i*Wq + j reads input taps[..] + t: each term adds a shifted copy of a whole
#    input plane, scaled by one weight, to a whole output plane.  The innermost loop runs over
#    t, contiguous in both arrays, with no bounds tests: the compiler vectorizes it.
# 3. Register blocking.  The inner loop updates 4 output rows at once from 4 terms (16 weights
#    held in registers, 4 input loads shared by 4 outputs: 16 multiply-adds per 8 loads and 4
#    stores), on chunks of t short enough for the rows to stay in L1.  Stores are the scarce
#    port (one per cycle on the CPUs we measured, against two loads and two multiply-adds), so
#    what counts is the multiply-adds per store: 4 here.  4 rows from 2 terms (2 per store) ran
#    1.3-2.3x slower on 32 to 128 channels, 2 rows from 4 terms (4 per store, but 6 loads per
#    8 multiply-adds) 10-30% slower on the AVX-512 machine.  dw keeps its running sums in
#    registers and stores nothing in its inner loop: 4 filters by 3 terms there (12
#    independent sums).
# 4. prange over independent outputs: (sample, block of 4 filters) for y; (sample, block of 4
#    input channels) for dx; blocks of 4 filters for dw.  No two tasks write one element.
#
# fastmath: the kernels are compiled with {"contract", "reassoc", "nsz"} (fused multiply-add,
# reordered sums so that dw's dot products vectorize), never with "nnan"/"ninf": NaN and Inf
# still propagate.  The sums are therefore added in another order than the naive nest's, and
# the two methods agree to rounding (tests compare them with tolerances), not bit for bit.
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
    in one pass, in parallel over the (n, c) planes.
    """
    N, C, H, W = x.shape
    for task in prange(N * C):
        n = task // C
        c = task % C
        for ph in range(stride_h):
            for pw in range(stride_w):
                base = (ph * stride_w + pw) * Hq * Wq
                col0 = pw - pad_w                                 # col = v * SW + col0
                v_lo = min(_first_inside(col0, stride_w), Wq)
                v_hi = max(_end_inside(col0, stride_w, W, Wq), v_lo)
                for u in range(Hq):
                    row = u * stride_h + ph - pad_h
                    dst = xq[n, c, base + u * Wq:base + (u + 1) * Wq]
                    if row < 0 or row >= H:
                        for v in range(Wq):
                            dst[v] = 0.0
                        continue
                    for v in range(v_lo):
                        dst[v] = 0.0
                    src = x[n, c, row, v_lo * stride_w + col0:(v_hi - 1) * stride_w + col0 + 1:stride_w]
                    for v in range(v_hi - v_lo):
                        dst[v_lo + v] = src[v]
                    for v in range(v_hi, Wq):
                        dst[v] = 0.0


@njit(cache=True, parallel=True)
def crop_polyphase(dxq, dx, stride_h, stride_w, pad_h, pad_w, Hq, Wq):
    """dx[n, c, row, col] = dxq[n, c, (ph*SW + pw)*Hq*Wq + u*Wq + v]  where row + PH = u*SH + ph, col + PW = v*SW + pw

    The inverse of pad_polyphase on the pixels of x: the padding's entries are dropped.
    """
    N, C, H, W = dx.shape
    for task in prange(N * C):
        n = task // C
        c = task % C
        for row in range(H):
            ph = (row + pad_h) % stride_h
            u = (row + pad_h) // stride_h
            for pw in range(stride_w):
                base = (ph * stride_w + pw) * Hq * Wq + u * Wq
                col0 = pw - pad_w
                v_lo = min(_first_inside(col0, stride_w), Wq)
                v_hi = max(_end_inside(col0, stride_w, W, Wq), v_lo)
                if v_hi == v_lo:
                    continue
                src = dxq[n, c, base + v_lo:base + v_hi]
                dst = dx[n, c, row, v_lo * stride_w + col0:(v_hi - 1) * stride_w + col0 + 1:stride_w]
                for v in range(v_hi - v_lo):
                    dst[v] = src[v]


@njit(cache=True, parallel=True)
def crop_wide(yw, b, y, Wq):
    """y[n, f, i, j] = yw[n, f, i*Wq + j] + b[f]: drop the junk columns j >= OW, add the bias."""
    N, F, OH, OW = y.shape
    for task in prange(N * F):
        n = task // F
        f = task % F
        for i in range(OH):
            src = yw[n, f, i * Wq:i * Wq + OW]
            for j in range(OW):
                y[n, f, i, j] = src[j] + b[f]


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def widen_with_bias_grad(dy, dyw, db, Wq):
    """dyw[n, f, i*Wq + j] = dy[n, f, i, j] (0 for the junk columns OW <= j < Wq);  db[f] = sum_{n, i, j} dy[n, f, i, j]

    dy in the wide layout of the forward's output, for the backward kernels; one task per f.
    """
    N, F, OH, OW = dy.shape
    for f in prange(F):
        acc = 0.0
        for n in range(N):
            for i in range(OH):
                dst = dyw[n, f, i * Wq:(i + 1) * Wq]
                for j in range(OW):
                    dst[j] = dy[n, f, i, j]
                    acc += dy[n, f, i, j]
                for j in range(OW, Wq):
                    dst[j] = 0.0
        db[f] = acc


@njit(cache=True, inline="always")
def _term_offset(k, KK, PLANE, taps):
    """Where term k = c*KK + kk of the sum reads a group's input: channel c's plane, tap kk."""
    return k // KK * PLANE + taps[k % KK]


@njit(cache=True, fastmath=FASTMATH)
def _add_terms_to_row(yrow, xg, w_row, taps, PLANE, m):
    """yrow[t] += sum_k w_row[k] * xg[offset(k) + t], t < m: one output row, 4 terms at a time
    (the filters left over when a group's count is not a multiple of 4)."""
    T = w_row.shape[0]
    KK = taps.shape[0]
    T4 = T - T % 4
    for k in range(0, T4, 4):
        xa = xg[_term_offset(k, KK, PLANE, taps):]
        xb = xg[_term_offset(k + 1, KK, PLANE, taps):]
        xc = xg[_term_offset(k + 2, KK, PLANE, taps):]
        xd = xg[_term_offset(k + 3, KK, PLANE, taps):]
        wa, wb, wc, wd = w_row[k], w_row[k + 1], w_row[k + 2], w_row[k + 3]
        for t in range(m):
            yrow[t] += (wa * xa[t] + wb * xb[t]) + (wc * xc[t] + wd * xd[t])
    for k in range(T4, T):
        xa = xg[_term_offset(k, KK, PLANE, taps):]
        wa = w_row[k]
        for t in range(m):
            yrow[t] += wa * xa[t]


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def conv2d_forward_blocked(xq, w_terms, taps, yw, groups, OW, Wq, chunk):
    """yw[n, f, i*Wq + j] = sum_{c, ki, kj} w[f, c, ki, kj] * xq[n, g*Cg + c, taps[ki*KW + kj] + i*Wq + j]

    the convolution sum on the polyphase input, f in group g; w_terms (F, Cg*KH*KW) is w
    flattened, term k = (c*KH + ki)*KW + kj.  One task per (n, block of 4 filters of a group);
    t = i*Wq + j runs in chunks of ``chunk``, and the innermost loop adds 4 terms to 4 rows.
    """
    N, C, PLANE = xq.shape
    F, T = w_terms.shape
    KK = taps.shape[0]
    Cg = C // groups
    Fg = F // groups
    OH = yw.shape[2] // Wq
    L = (OH - 1) * Wq + OW                 # one past the last output that is kept
    nblocks = (Fg + 3) // 4
    T4 = T - T % 4
    xs = xq.reshape(N, C * PLANE)
    for task in prange(N * groups * nblocks):
        n = task // (groups * nblocks)
        g = task // nblocks % groups
        f0 = g * Fg + task % nblocks * 4
        nf = min(4, (g + 1) * Fg - f0)
        for t0 in range(0, L, chunk):
            m = min(chunk, L - t0)
            xg = xs[n, g * Cg * PLANE + t0:]                  # the group's input, from t0 on
            for fb in range(nf):
                yrow = yw[n, f0 + fb, t0:t0 + m]
                for t in range(m):
                    yrow[t] = 0.0
            if nf < 4:                                        # the last 1-3 filters of a group
                for fb in range(nf):
                    _add_terms_to_row(yw[n, f0 + fb, t0:t0 + m], xg, w_terms[f0 + fb], taps, PLANE, m)
                continue
            y0 = yw[n, f0, t0:t0 + m]
            y1 = yw[n, f0 + 1, t0:t0 + m]
            y2 = yw[n, f0 + 2, t0:t0 + m]
            y3 = yw[n, f0 + 3, t0:t0 + m]
            for k in range(0, T4, 4):
                xa = xg[_term_offset(k, KK, PLANE, taps):]
                xb = xg[_term_offset(k + 1, KK, PLANE, taps):]
                xc = xg[_term_offset(k + 2, KK, PLANE, taps):]
                xd = xg[_term_offset(k + 3, KK, PLANE, taps):]
                # w<filter><term>: 16 weights held in registers
                w0a, w0b, w0c, w0d = w_terms[f0, k], w_terms[f0, k + 1], w_terms[f0, k + 2], w_terms[f0, k + 3]
                w1a, w1b, w1c, w1d = w_terms[f0 + 1, k], w_terms[f0 + 1, k + 1], w_terms[f0 + 1, k + 2], w_terms[f0 + 1, k + 3]
                w2a, w2b, w2c, w2d = w_terms[f0 + 2, k], w_terms[f0 + 2, k + 1], w_terms[f0 + 2, k + 2], w_terms[f0 + 2, k + 3]
                w3a, w3b, w3c, w3d = w_terms[f0 + 3, k], w_terms[f0 + 3, k + 1], w_terms[f0 + 3, k + 2], w_terms[f0 + 3, k + 3]
                for t in range(m):
                    a = xa[t]
                    b = xb[t]
                    c = xc[t]
                    d = xd[t]
                    y0[t] += (w0a * a + w0b * b) + (w0c * c + w0d * d)
                    y1[t] += (w1a * a + w1b * b) + (w1c * c + w1d * d)
                    y2[t] += (w2a * a + w2b * b) + (w2c * c + w2d * d)
                    y3[t] += (w3a * a + w3b * b) + (w3c * c + w3d * d)
            for k in range(T4, T):                            # the last 1-3 terms
                xa = xg[_term_offset(k, KK, PLANE, taps):]
                w0a, w1a, w2a, w3a = w_terms[f0, k], w_terms[f0 + 1, k], w_terms[f0 + 2, k], w_terms[f0 + 3, k]
                for t in range(m):
                    a = xa[t]
                    y0[t] += w0a * a
                    y1[t] += w1a * a
                    y2[t] += w2a * a
                    y3[t] += w3a * a


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def conv2d_backward_blocked_dx(dyw, w_terms, taps, dxq, groups, L, chunk):
    """dxq[n, g*Cg + c, taps[ki*KW + kj] + t] += sum_{f in group g} w[f, c, ki, kj] * dyw[n, f, t]   (t < L)

    The adjoint of the forward's shift-and-add: every term scatters a whole dy plane, scaled
    by one weight, back onto the input plane it was read from.  dyw is dy in the wide layout
    (0 in the junk columns); dxq, in the polyphase layout, is zeroed first.  One task per
    (n, block of 4 input channels of a group): a task owns its channels' planes of dxq; the
    innermost loop adds 4 filters' dy rows to 4 channels' rows.
    """
    N, C, PLANE = dxq.shape
    F, T = w_terms.shape
    KK = taps.shape[0]
    Cg = C // groups
    Fg = F // groups
    nblocks = (Cg + 3) // 4
    Fg4 = Fg - Fg % 4
    for task in prange(N * groups * nblocks):
        n = task // (groups * nblocks)
        g = task // nblocks % groups
        cl0 = task % nblocks * 4                              # first channel within the group
        nc = min(4, Cg - cl0)
        c0 = g * Cg + cl0
        for cb in range(nc):
            plane = dxq[n, c0 + cb]
            for p in range(PLANE):
                plane[p] = 0.0
        for t0 in range(0, L, chunk):
            m = min(chunk, L - t0)
            for fq in range(0, Fg4, 4):
                fa = g * Fg + fq
                da = dyw[n, fa, t0:t0 + m]
                db = dyw[n, fa + 1, t0:t0 + m]
                dc = dyw[n, fa + 2, t0:t0 + m]
                dd = dyw[n, fa + 3, t0:t0 + m]
                for kk in range(KK):
                    o = taps[kk] + t0
                    if nc < 4:                                # the last 1-3 channels of a group
                        for cb in range(nc):
                            k = (cl0 + cb) * KK + kk
                            wa, wb, wc, wd = w_terms[fa, k], w_terms[fa + 1, k], w_terms[fa + 2, k], w_terms[fa + 3, k]
                            d = dxq[n, c0 + cb, o:o + m]
                            for t in range(m):
                                d[t] += (wa * da[t] + wb * db[t]) + (wc * dc[t] + wd * dd[t])
                        continue
                    k0 = cl0 * KK + kk                        # channel cl0's term kk; cl0 + 1's is k0 + KK, ...
                    k1, k2, k3 = k0 + KK, k0 + 2 * KK, k0 + 3 * KK
                    # w<channel><filter>: 16 weights held in registers
                    w0a, w0b, w0c, w0d = w_terms[fa, k0], w_terms[fa + 1, k0], w_terms[fa + 2, k0], w_terms[fa + 3, k0]
                    w1a, w1b, w1c, w1d = w_terms[fa, k1], w_terms[fa + 1, k1], w_terms[fa + 2, k1], w_terms[fa + 3, k1]
                    w2a, w2b, w2c, w2d = w_terms[fa, k2], w_terms[fa + 1, k2], w_terms[fa + 2, k2], w_terms[fa + 3, k2]
                    w3a, w3b, w3c, w3d = w_terms[fa, k3], w_terms[fa + 1, k3], w_terms[fa + 2, k3], w_terms[fa + 3, k3]
                    d0 = dxq[n, c0, o:o + m]
                    d1 = dxq[n, c0 + 1, o:o + m]
                    d2 = dxq[n, c0 + 2, o:o + m]
                    d3 = dxq[n, c0 + 3, o:o + m]
                    for t in range(m):
                        a = da[t]
                        b = db[t]
                        c = dc[t]
                        d = dd[t]
                        d0[t] += (w0a * a + w0b * b) + (w0c * c + w0d * d)
                        d1[t] += (w1a * a + w1b * b) + (w1c * c + w1d * d)
                        d2[t] += (w2a * a + w2b * b) + (w2c * c + w2d * d)
                        d3[t] += (w3a * a + w3b * b) + (w3c * c + w3d * d)
            for f in range(g * Fg + Fg4, (g + 1) * Fg):          # the last 1-3 filters
                da = dyw[n, f, t0:t0 + m]
                for kk in range(KK):
                    o = taps[kk] + t0
                    for cb in range(nc):
                        d = dxq[n, c0 + cb, o:o + m]
                        wa = w_terms[f, (cl0 + cb) * KK + kk]
                        for t in range(m):
                            d[t] += wa * da[t]


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def conv2d_backward_blocked_dw(dyw, xq, taps, dw_terms, groups, L, chunk):
    """dw[f, c, ki, kj] = sum_n sum_{t < L} dyw[n, f, t] * xq[n, g*Cg + c, taps[ki*KW + kj] + t]

    dw_terms (F, Cg*KH*KW) is dw flattened.  A dot product per (filter, term) over every output
    position (the junk columns of dyw are 0 and add nothing); 4 filters and 3 terms at a time:
    12 running sums, enough independent chains to keep the multiply-adders busy while each sum
    waits for its previous addition (with 8, the latency showed: 8-15% slower), on chunks of t
    that stay in L1.  One task per block of 4 filters.
    """
    N, C, PLANE = xq.shape
    F, T = dw_terms.shape
    KK = taps.shape[0]
    Cg = C // groups
    Fg = F // groups
    nblk = (Fg + 3) // 4
    T3 = T - T % 3
    xs = xq.reshape(N, C * PLANE)
    for task in prange(groups * nblk):
        g = task // nblk
        f0 = g * Fg + task % nblk * 4
        nf = min(4, (g + 1) * Fg - f0)
        for fb in range(nf):
            for k in range(T):
                dw_terms[f0 + fb, k] = 0.0
        for n in range(N):
            for t0 in range(0, L, chunk):
                m = min(chunk, L - t0)
                xg = xs[n, g * Cg * PLANE + t0:]
                if nf == 4:
                    e0 = dyw[n, f0, t0:t0 + m]
                    e1 = dyw[n, f0 + 1, t0:t0 + m]
                    e2 = dyw[n, f0 + 2, t0:t0 + m]
                    e3 = dyw[n, f0 + 3, t0:t0 + m]
                    for k in range(0, T3, 3):
                        oa = k // KK * PLANE + taps[k % KK]
                        ob = (k + 1) // KK * PLANE + taps[(k + 1) % KK]
                        oc = (k + 2) // KK * PLANE + taps[(k + 2) % KK]
                        xa = xg[oa:oa + m]
                        xb = xg[ob:ob + m]
                        xc = xg[oc:oc + m]
                        # the running sums, in w's dtype: s<filter><term>
                        s0a, s0b, s0c = dw_terms[f0, k], dw_terms[f0, k + 1], dw_terms[f0, k + 2]
                        s1a, s1b, s1c = dw_terms[f0 + 1, k], dw_terms[f0 + 1, k + 1], dw_terms[f0 + 1, k + 2]
                        s2a, s2b, s2c = dw_terms[f0 + 2, k], dw_terms[f0 + 2, k + 1], dw_terms[f0 + 2, k + 2]
                        s3a, s3b, s3c = dw_terms[f0 + 3, k], dw_terms[f0 + 3, k + 1], dw_terms[f0 + 3, k + 2]
                        for t in range(m):
                            a = xa[t]
                            b = xb[t]
                            c = xc[t]
                            s0a += e0[t] * a
                            s0b += e0[t] * b
                            s0c += e0[t] * c
                            s1a += e1[t] * a
                            s1b += e1[t] * b
                            s1c += e1[t] * c
                            s2a += e2[t] * a
                            s2b += e2[t] * b
                            s2c += e2[t] * c
                            s3a += e3[t] * a
                            s3b += e3[t] * b
                            s3c += e3[t] * c
                        dw_terms[f0, k], dw_terms[f0, k + 1], dw_terms[f0, k + 2] = s0a, s0b, s0c
                        dw_terms[f0 + 1, k], dw_terms[f0 + 1, k + 1], dw_terms[f0 + 1, k + 2] = s1a, s1b, s1c
                        dw_terms[f0 + 2, k], dw_terms[f0 + 2, k + 1], dw_terms[f0 + 2, k + 2] = s2a, s2b, s2c
                        dw_terms[f0 + 3, k], dw_terms[f0 + 3, k + 1], dw_terms[f0 + 3, k + 2] = s3a, s3b, s3c
                    for k in range(T3, T):                    # the last 1-2 terms
                        o0 = k // KK * PLANE + taps[k % KK]
                        xa = xg[o0:o0 + m]
                        for fb in range(4):
                            e = dyw[n, f0 + fb, t0:t0 + m]
                            s = dw_terms[f0 + fb, k]
                            for t in range(m):
                                s += e[t] * xa[t]
                            dw_terms[f0 + fb, k] = s
                else:                                         # the last 1-3 filters of a group
                    for fb in range(nf):
                        e = dyw[n, f0 + fb, t0:t0 + m]
                        for k in range(T):
                            o0 = k // KK * PLANE + taps[k % KK]
                            xa = xg[o0:o0 + m]
                            s = dw_terms[f0 + fb, k]
                            for t in range(m):
                                s += e[t] * xa[t]
                            dw_terms[f0 + fb, k] = s
