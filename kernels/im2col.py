"""Convolution lowered to matrix multiplication: im2col + GEMM, and col2im for the backward.

im2col stretches every receptive field of the input into a column (the notes'
X_col): for AlexNet's conv1, 227x227x3 with 11x11 filters at stride 4, X_col
is 363 x 3025.  The filters become rows (W_row, 96 x 363) and the whole
convolution is the single product W_row @ X_col (96 x 3025), one per group.

Shapes, with G groups, Cg = C // G input and Fg = F // G output channels per group:
    x    (N, C, H, W)
    cols (G, Cg*KH*KW, N*OH*OW)   row (c, ki, kj), column (n, i, j)
    w    (G, Fg, Cg*KH*KW)        the filters of each group, flattened
    y    (N, F, OH, OW)

    cols[g, (c*KH + ki)*KW + kj, (n*OH + i)*OW + j] = x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

(zero where that pixel lies in the padding).

Below the reference kernels sits the fast path that ``method="im2col"`` runs: the same
lowering on a "wide" layout, parallel, in cache-sized batch chunks (see its section).
"""

import numpy as np
from numba import njit, prange


@njit(cache=True)
def im2col(x, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW):
    """cols[g, (c*KH + ki)*KW + kj, (n*OH + i)*OW + j] = x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]"""
    N, C, H, W = x.shape
    G = cols.shape[0]
    Cg = C // G
    for g in range(G):
        for c in range(Cg):
            for ki in range(KH):
                for kj in range(KW):
                    r = (c * KH + ki) * KW + kj
                    for n in range(N):
                        for i in range(OH):
                            row = i * stride_h - pad_h + ki * dil_h
                            for j in range(OW):
                                col = j * stride_w - pad_w + kj * dil_w
                                k = (n * OH + i) * OW + j
                                if 0 <= row < H and 0 <= col < W:
                                    cols[g, r, k] = x[n, g * Cg + c, row, col]
                                else:
                                    cols[g, r, k] = 0.0


@njit(cache=True)
def col2im(cols, dx, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW):
    """The adjoint of im2col: every column entry is added back to the pixel it was copied from.

        dx[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW] += cols[g, (c*KH + ki)*KW + kj, (n*OH + i)*OW + j]

    A pixel that sits in several receptive fields collects the sum (the fan-out rule).
    """
    N, C, H, W = dx.shape
    G = cols.shape[0]
    Cg = C // G
    dx[:] = 0.0
    for g in range(G):
        for c in range(Cg):
            for ki in range(KH):
                for kj in range(KW):
                    r = (c * KH + ki) * KW + kj
                    for n in range(N):
                        for i in range(OH):
                            row = i * stride_h - pad_h + ki * dil_h
                            if row < 0 or row >= H:
                                continue
                            for j in range(OW):
                                col = j * stride_w - pad_w + kj * dil_w
                                if 0 <= col < W:
                                    dx[n, g * Cg + c, row, col] += cols[g, r, (n * OH + i) * OW + j]


@njit(cache=True)
def conv2d_forward_im2col(x, w_rows, b, y, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """y = W_row @ X_col + b, one matrix product per group.

    w_rows (G, Fg, Cg*KH*KW) are the filters flattened; cols is filled by im2col
    and kept for the backward pass.
    """
    N = x.shape[0]
    G, Fg, _ = w_rows.shape
    OH, OW = y.shape[2], y.shape[3]
    im2col(x, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW)
    for g in range(G):
        y_rows = np.dot(w_rows[g], cols[g])          # (Fg, N*OH*OW)
        for fg in range(Fg):
            f = g * Fg + fg
            for n in range(N):
                for i in range(OH):
                    for j in range(OW):
                        y[n, f, i, j] = y_rows[fg, (n * OH + i) * OW + j] + b[f]


@njit(cache=True)
def conv2d_backward_im2col(dy, cols, w_rows, dx, dw_rows, db, KH, KW, stride_h, stride_w, pad_h, pad_w,
                           dil_h, dil_w):
    """The backward of y = W_row @ X_col + b, per group:

        dW_row = dY @ X_col^T          (Fg, Cg*KH*KW)
        dX_col = W_row^T @ dY          (Cg*KH*KW, N*OH*OW), then col2im -> dx
        db[f]  = sum over the row f of dY

    where dY (Fg, N*OH*OW) is dy with its rows ordered like y_rows of the forward.
    """
    N, F, OH, OW = dy.shape
    G, Fg, CKK = w_rows.shape
    dcols = np.empty_like(cols)
    for g in range(G):
        dy_rows = np.empty((Fg, N * OH * OW), dtype=dy.dtype)
        for fg in range(Fg):
            f = g * Fg + fg
            acc = 0.0
            for n in range(N):
                for i in range(OH):
                    for j in range(OW):
                        dy_rows[fg, (n * OH + i) * OW + j] = dy[n, f, i, j]
                        acc += dy[n, f, i, j]
            db[f] = acc
        dw_rows[g] = np.dot(dy_rows, cols[g].T)
        dcols[g] = np.dot(w_rows[g].T, dy_rows)
    col2im(dcols, dx, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW)


# =============================================================================================
# The fast path: the same lowering on the "wide" layout, parallel, in cache-sized batch chunks.
#
# Beside the reference kernels above (which stay as they are), these compute the same numbers.
# The input arrives padded and split into its stride phases, xq (N, C, PLANE), with every
# kernel tap at a fixed offset taps[ki*KW + kj] (``nbconv.kernels.conv.pad_polyphase``
# builds it; see "The optimized direct convolution" there).  Output (i, j) is then position
# t = i*Wq + j of a "wide" output row of length Wq >= OW, and a row of X_col is one straight
# copy of L = (OH - 1)*Wq + OW consecutive inputs:
#
#     cols[g, c*KH*KW + kk, n*L + t] = xq[n, g*Cg + c, taps[kk] + t]        t < L
#
# The positions t with j >= OW are junk, computed and dropped (a few percent more GEMM work:
# Wq / OW, 34/32 for a padded 32x32 image); in exchange im2col and col2im are long
# contiguous copies that run at memory speed instead of OW-long row fragments.
#
#   - im2col_wide / col2im_wide: prange over independent pieces.  im2col's tasks are
#     (channel, tap, sample) triples, each writing its own row segment of cols; col2im's
#     tasks are (channel, sample) pairs, each owning a whole (n, c) plane of dxq and
#     gathering into it every column entry copied from that plane, so no two threads ever add
#     into the same pixel (col2im does NOT parallelize over columns, which scatter into
#     shared pixels).
#   - rows_to_nchw / nchw_to_rows: the parallel copies between the GEMM's (F, n*L) row order
#     and y's (N, F, OH, OW), bias and bias gradient on the way.
# The GEMMs themselves are called by nbconv.functional.conv_fast (NumPy's np.dot with out=, one
# per group and batch chunk), which also owns the scratch buffers.  Same dtype end to end:
# float32 in, sgemm, float32 out.
# =============================================================================================

@njit(cache=True, parallel=True)
def im2col_wide(xq, taps, cols, L):
    """cols[g, c*KH*KW + kk, n*L + t] = xq[n, g*Cg + c, taps[kk] + t]   for t < L

    im2col on the polyphase input, in parallel over the (channel, tap, sample) triples.
    """
    N, C, PLANE = xq.shape
    G = cols.shape[0]
    Cg = C // G
    KK = taps.shape[0]
    for task in prange(C * KK * N):
        channel = task // (KK * N)
        kk = task // N % KK
        n = task % N
        src = xq[n, channel, taps[kk]:taps[kk] + L]
        dst = cols[channel // Cg, channel % Cg * KK + kk, n * L:(n + 1) * L]
        for t in range(L):
            dst[t] = src[t]


@njit(cache=True, parallel=True)
def col2im_wide(cols, taps, dxq, L):
    """dxq[n, g*Cg + c, taps[kk] + t] += cols[g, c*KH*KW + kk, n*L + t]   for t < L

    The adjoint of im2col_wide: dxq is zeroed first, then every column entry is added back to
    the input it was copied from.  One task per (channel, sample): it owns that (n, c) plane
    of dxq, so no two threads ever add into the same pixel.
    """
    N, C, PLANE = dxq.shape
    G = cols.shape[0]
    Cg = C // G
    KK = taps.shape[0]
    for task in prange(C * N):
        channel = task // N
        n = task % N
        plane = dxq[n, channel]
        for p in range(PLANE):
            plane[p] = 0.0
        for kk in range(KK):
            src = cols[channel // Cg, channel % Cg * KK + kk, n * L:(n + 1) * L]
            dst = dxq[n, channel, taps[kk]:taps[kk] + L]
            for t in range(L):
                dst[t] += src[t]


@njit(cache=True, parallel=True)
def rows_to_nchw(y_rows, b, y, Wq, L):
    """y[n, g*Fg + fg, i, j] = y_rows[g, fg, n*L + i*Wq + j] + b[g*Fg + fg]

    The GEMM's output, one row per filter and one wide column per (n, t), reordered to NCHW
    without the junk columns.
    """
    N, F, OH, OW = y.shape
    G, Fg, _ = y_rows.shape
    for task in prange(N * F):
        n = task // F
        f = task % F
        for i in range(OH):
            src = y_rows[f // Fg, f % Fg, n * L + i * Wq:n * L + i * Wq + OW]
            dst = y[n, f, i]
            for j in range(OW):
                dst[j] = src[j] + b[f]


@njit(cache=True, parallel=True, fastmath={"reassoc"})
def nchw_to_rows(dy, dy_rows, db, Wq, L):
    """dy_rows[g, fg, n*L + i*Wq + j] = dy[n, g*Fg + fg, i, j] (0 in the junk columns)  and  db[f] += sum dy[:, f]

    The inverse reordering, for the backward's GEMMs, adding the chunk's share of the bias
    gradient on the way (one task per filter f: it writes row f of dy_rows and db[f] only).
    The junk columns must be 0: they multiply real inputs in dW = dY @ X_col^T.  fastmath
    "reassoc" lets the compiler add the bias gradient's terms in vector lanes (another order
    than one by one: the same sum to rounding).
    """
    N, F, OH, OW = dy.shape
    G, Fg, _ = dy_rows.shape
    for f in prange(F):
        acc = 0.0
        for n in range(N):
            dst = dy_rows[f // Fg, f % Fg, n * L:(n + 1) * L]
            for i in range(OH):
                src = dy[n, f, i]
                for j in range(OW):
                    dst[i * Wq + j] = src[j]
                    acc += src[j]
                if i < OH - 1:
                    for j in range(OW, Wq):
                        dst[i * Wq + j] = 0.0
        db[f] += acc
