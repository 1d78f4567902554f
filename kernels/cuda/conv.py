"""2-D convolution on the GPU, the naive mapping: the twin of nbconv.kernels.conv.

Convolution is cross-correlation (the kernel is not flipped).  Shapes, with G groups:
x (N, C, H, W), w (F, C // G, KH, KW), b (F,), y (N, F, OH, OW); filter f belongs to group
g = f // (F // G) and sees the input channels g*Cg ... (g + 1)*Cg - 1, Cg = C // G.

    y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj]
                           * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

(x is zero outside the image).  Only the naive loop nest has a twin here; the optimized CPU
kernels (polyphase, blocked) are CPU-specific.

Mapping: one thread per output element, the sum inside the thread, in float64.  The backward
is three kernels, none of them with atomics:

- db: one thread per filter f, summing dy over (n, i, j);
- dw: one thread per weight (f, c, ki, kj), summing over (n, i, j) (a per-element reduction);
- dx: one thread per input pixel (n, g*Cg + c, row, col), GATHERING the terms of the CPU's
  scatter ``dx[...] += dy * w``: it loops over the filters f of its group and the taps
  (ki, kj) and keeps the outputs (i, j) whose window reads this pixel, i.e.
  i = (row + PH - ki*DH) / SH when that is a whole number in [0, OH) (and likewise j).
  No two threads write one element, and the sum's order is fixed (deterministic results).
"""

from numba import cuda, float64

from ._launch import launch


@cuda.jit
def _conv2d_forward_direct_kernel(x, w, b, y, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj] * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

    one thread per (n, f, i, j)
    """
    t = cuda.grid(1)
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    OH, OW = y.shape[2], y.shape[3]
    if t >= N * F * OH * OW:
        return
    n = t // (F * OH * OW)
    f = t // (OH * OW) % F
    i = t // OW % OH
    j = t % OW
    g = f // (F // groups)
    acc = float64(0.0)
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


def conv2d_forward_direct(x, w, b, y, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj] * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

    (device arrays; one thread per element of y)
    """
    launch(_conv2d_forward_direct_kernel, y.size,
           x, w, b, y, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups)


@cuda.jit
def _conv2d_backward_db_kernel(dy, db):
    """db[f] = sum_{n, i, j} dy[n, f, i, j]        one thread per filter f"""
    f = cuda.grid(1)
    N, F, OH, OW = dy.shape
    if f >= F:
        return
    acc = float64(0.0)
    for n in range(N):
        for i in range(OH):
            for j in range(OW):
                acc += dy[n, f, i, j]
    db[f] = acc


@cuda.jit
def _conv2d_backward_dw_kernel(dy, x, dw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """dw[f, c, ki, kj] = sum_{n, i, j} dy[n, f, i, j] * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

    one thread per weight (f, c, ki, kj), looping over every output that weight touched
    """
    t = cuda.grid(1)
    N, C, H, W = x.shape
    F, Cg, KH, KW = dw.shape
    OH, OW = dy.shape[2], dy.shape[3]
    if t >= F * Cg * KH * KW:
        return
    f = t // (Cg * KH * KW)
    c = t // (KH * KW) % Cg
    ki = t // KW % KH
    kj = t % KW
    g = f // (F // groups)
    acc = float64(0.0)
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


@cuda.jit
def _conv2d_backward_dx_kernel(dy, w, dx, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """dx[n, g*Cg + c, row, col] = sum_{f in group g} sum_{ki, kj} dy[n, f, i, j] * w[f, c, ki, kj]

    over the outputs (i, j) that read this pixel: row = i*SH - PH + ki*DH, col = j*SW - PW + kj*DW,
    i.e. i = (row + PH - ki*DH) / SH and j = (col + PW - kj*DW) / SW, whole and in range.
    One thread per input pixel (n, channel, row, col): the CPU's scatter, gathered.
    """
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    F, Cg, KH, KW = w.shape
    OH, OW = dy.shape[2], dy.shape[3]
    if t >= N * C * H * W:
        return
    n = t // (C * H * W)
    channel = t // (H * W) % C
    row = t // W % H
    col = t % W
    g = channel // Cg
    c = channel % Cg
    Fg = F // groups
    acc = float64(0.0)
    for f in range(g * Fg, (g + 1) * Fg):
        for ki in range(KH):
            i_strided = row + pad_h - ki * dil_h          # = i * SH
            if i_strided < 0 or i_strided % stride_h != 0:
                continue
            i = i_strided // stride_h
            if i >= OH:
                continue
            for kj in range(KW):
                j_strided = col + pad_w - kj * dil_w      # = j * SW
                if j_strided < 0 or j_strided % stride_w != 0:
                    continue
                j = j_strided // stride_w
                if j >= OW:
                    continue
                acc += dy[n, f, i, j] * w[f, c, ki, kj]
    dx[n, channel, row, col] = acc


def conv2d_backward_direct(dy, x, w, dx, dw, db, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """The forward sum differentiated term by term (device arrays):

        db[f]             = sum_{n, i, j} dy[n, f, i, j]
        dw[f, c, ki, kj]  = sum_{n, i, j} dy[n, f, i, j] * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]
        dx[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW] += dy[n, f, i, j] * w[f, c, ki, kj]

    Three kernels: one thread per f for db, per (f, c, ki, kj) for dw, per input pixel for dx
    (which gathers its terms instead of scattering them; see the module docstring).
    """
    launch(_conv2d_backward_db_kernel, db.size, dy, db)
    launch(_conv2d_backward_dw_kernel, dw.size,
           dy, x, dw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups)
    launch(_conv2d_backward_dx_kernel, dx.size,
           dy, w, dx, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups)
