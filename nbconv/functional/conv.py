"""conv2d and conv1d: cross-correlation with stride, padding, dilation and groups; with
``flip=True``, the true convolution (the kernel flipped), on the same kernels.

Three methods compute the same numbers (to rounding); the names every op takes map onto them
(``dispatch.CONV_ALIASES``): "naive" is "direct", "fast" and "auto" (the default) are "blocked".
  - ``"direct"``: the naive loop nest of ``nbconv.kernels.conv``, the teaching reference;
  - ``"im2col"``: im2col + GEMM, one matrix product per group and batch chunk, on
    the parallel lowering kernels of ``nbconv.kernels.im2col`` and NumPy's BLAS.  The naive
    im2col kernels of that module (``im2col``, ``col2im``, ``conv2d_forward_im2col``) are the
    reference it is tested against;
  - ``"blocked"``: the optimized direct kernel of ``nbconv.kernels.conv``: polyphase padding,
    shifted contiguous rows, register tiles of 8 output rows by 3 vectors of positions held in
    explicit SIMD vectors (``nbconv.kernels.simd``) over the whole sum, prange over independent
    outputs; no BLAS.  The fastest on the CPU, hence "fast".

Which function runs is a table lookup, ``dispatch.CONV[method]`` (read it there); the two fast
methods are driven by ``nbconv.functional.conv_fast``, which owns their scratch memory (a
per-thread workspace; ``release_workspace()`` frees it), their threads and the polyphase
geometry.  This module checks the arguments, allocates the outputs and keeps the cache.

The fast methods add their sums in another order (BLAS, fastmath), so they agree with the
naive nest to rounding, not bit for bit.  Problems with an empty dimension run the naive nest
(the cache still names the method asked for).

conv1d is conv2d on signals of height 1: x (N, C, L) is viewed as (N, C, 1, L)
and w (F, C // G, K) as (F, C // G, 1, K), so every method serves it unchanged.

On the GPU (CUDA device arrays in, see ``nbconv.devices``) the methods map to the device kernels
(``dispatch.conv_cuda_table``): ``"direct"`` (and ``"naive"``) runs nbconv.kernels.cuda.conv (one
thread per output, the backward gathered per input pixel); ``"im2col"`` runs
nbconv.kernels.cuda.im2col with the register-blocked Numba matrix product of
nbconv.kernels.cuda.gemm (the teaching form; X_col is recomputed in the backward, as on the CPU);
``"fast"`` (and ``"auto"``, the default) is the same lowering with the library GEMM, cuBLAS
through CuPy when it is installed (``gemm.fast_matmul``), its scratch arrays and X_col from a
reused device workspace (nbconv.kernels.cuda.workspace); ``"blocked"`` is a CPU optimization
(polyphase layout, cache-sized chunks) with no GPU counterpart and runs the direct kernels.  Outputs,
gradients and the cache stay on the device.

``flip=True``: the lecture's convolution flips the kernel, y[i, j] = sum w[ki, kj] x[i - ki, j - kj].
That is cross-correlation with w flipped in both spatial axes, w[..., ::-1, ::-1], so the forward
flips a copy of w and runs the same method on it (the cache keeps the flipped copy and
``flip``), and the backward flips the kernels' dw back: y depends on w[ki, kj] through the
flipped copy's tap (KH - 1 - ki, KW - 1 - kj), so that is where its gradient is.  On the GPU the
flip is a copy through the host (nbconv.devices has no flip kernel): w and dw are small beside
the activations, but each flipped call waits for the two small copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nbconv.shapes import conv_output_size
from nbconv import devices

from . import dispatch
from ._checks import as_dout, as_float_array, as_int, as_pair, check_cache, check_shape, same_dtype
from .conv_fast import release_workspace

__all__ = ["Conv2dCache", "conv2d_forward", "conv2d_backward", "conv1d_forward", "conv1d_backward",
           "release_workspace"]

METHODS = tuple(dispatch.CONV)              # "direct", "im2col", "blocked"
ALIASES = dispatch.CONV_ALIASES             # the names every op takes, and the conv method each one means


@dataclass(frozen=True)
class Conv2dCache:
    x: np.ndarray
    w: np.ndarray
    has_bias: bool
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    method: str
    flip: bool = False      # True: w above is the caller's w flipped (the kernels ran on it); dw is flipped back


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, flip=False, method="auto"):
    """x (N, C, H, W), w (F, C // groups, KH, KW), b (F,) or None -> y (N, F, OH, OW).

        y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj] * x[n, g*Cg + c, i*S - P + ki*D, j*S - P + kj*D]

    with OH = floor((H + 2P - D(KH - 1) - 1) / S) + 1 and likewise OW (g = f // (F / groups),
    Cg = C / groups): cross-correlation, the kernel not flipped, as every framework computes it.

    ``flip=True`` computes the lecture's true convolution, the kernel flipped in both spatial axes:

        y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj] * xp[n, g*Cg + c, r - ki*D, s - kj*D],
        r = i*S + D(KH - 1),  s = j*S + D(KW - 1),

    xp being x zero-padded by P on every side (xp[..., u, v] = x[..., u - P, v - P], 0 outside x):
    the lecture's y[i, j] = sum w[ki, kj] x[i - ki, j - kj] on the padded input, read at (r, s),
    the positions where the whole kernel lies inside it.  The same sizes OH, OW.  For S = D = 1 it
    is the full convolution of x and w (scipy.signal.convolve2d(x, w, "full")) from row
    KH - 1 - P and column KW - 1 - P on: mode "valid" for P = 0, "full" for P = K - 1, "same" for
    an odd K and P = (K - 1) / 2; summed over the channels c of each filter.  The result equals
    ``conv2d_forward(x, w[..., ::-1, ::-1], b)`` for every method and on the GPU.
    """
    device = devices.device_of(x=x, w=w, b=b)
    x = as_float_array("x", x, ndim=4)
    w = as_float_array("w", w, ndim=4)
    same_dtype("x", x, w=w)
    stride = as_pair("stride", stride, 1)
    padding = as_pair("padding", padding, 0)
    dilation = as_pair("dilation", dilation, 1)
    groups = as_int("groups", groups, 1)
    flip = _as_flip(flip)
    method = dispatch.conv_method(method, device)
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    if C % groups != 0:
        raise ValueError(f"groups={groups} must divide the input channels of x, got C={C} (x shape {x.shape})")
    if F % groups != 0:
        raise ValueError(f"groups={groups} must divide the output channels of w, got F={F} (w shape {w.shape})")
    if Cg != C // groups:
        raise ValueError(f"w must have C // groups = {C // groups} input channels to match x of shape {x.shape} "
                         f"with groups={groups}, got w shape {w.shape}")
    bias = _bias(b, F, x)
    OH = conv_output_size(H, KH, stride=stride[0], padding=padding[0], dilation=dilation[0], name="x height")
    OW = conv_output_size(W, KW, stride=stride[1], padding=padding[1], dilation=dilation[1], name="x width")

    if flip:
        w = _flipped(w)              # the true convolution is cross-correlation with the flipped kernel
    y = devices.empty((N, F, OH, OW), x.dtype, device)
    dispatch.conv_kernels(_runs(method, x, w, y), device).forward(x, w, bias, y, *stride, *padding, *dilation,
                                                                  groups)
    return y, Conv2dCache(x, w, b is not None, stride, padding, dilation, groups, method, flip)


def conv2d_backward(dout, cache: Conv2dCache):
    """-> (dx, dw, db); db is None when the forward had no bias.  After ``flip=True``, dw is the
    kernels' gradient of the flipped copy, flipped back: the gradient of the w that was passed."""
    check_cache(cache, Conv2dCache, "conv2d_forward")
    x, w = cache.x, cache.w
    device = devices.device_of(dout=dout, **{"the forward's x": x})
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    OH = conv_output_size(H, KH, stride=cache.stride[0], padding=cache.padding[0], dilation=cache.dilation[0])
    OW = conv_output_size(W, KW, stride=cache.stride[1], padding=cache.padding[1], dilation=cache.dilation[1])
    dy = as_dout(dout, (N, F, OH, OW), x.dtype)
    dx, dw, db = devices.empty_like(x), devices.empty_like(w), devices.empty(F, x.dtype, device)
    dispatch.conv_kernels(_runs(cache.method, x, w, dy), device).backward(
        dy, x, w, dx, dw, db, *cache.stride, *cache.padding, *cache.dilation, cache.groups)
    if cache.flip:
        dw = _flipped(dw)            # dL/dw[ki, kj] = dL/dw_flipped[KH - 1 - ki, KW - 1 - kj]
    return dx, dw, (db if cache.has_bias else None)


def conv1d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, flip=False, method="auto"):
    """x (N, C, L), w (F, C // groups, K), b (F,) or None -> y (N, F, L_out).

        y[n, f, i] = b[f] + sum_{c, k} w[f, c, k] * x[n, g*Cg + c, i*S - P + k*D]

    Computed as conv2d on a signal of height 1.  ``flip=True``: the true convolution, the kernel
    reversed, y[n, f, i] = b[f] + sum_{c, k} w[f, c, k] * xp[n, g*Cg + c, i*S + D(K - 1) - k*D]
    (xp: x zero-padded by P), numpy.convolve(x, w, "valid") for S = D = 1 and P = 0.
    """
    devices.device_of(x=x, w=w, b=b)
    x = as_float_array("x", x, ndim=3)
    w = as_float_array("w", w, ndim=3)
    stride, padding, dilation = as_int("stride", stride, 1), as_int("padding", padding, 0), as_int("dilation", dilation, 1)
    if w.shape[2] >= 1:
        conv_output_size(x.shape[2], w.shape[2], stride=stride, padding=padding, dilation=dilation, name="x length")
    y, cache = conv2d_forward(_with_height(x), _with_height(w), b, stride=(1, stride),
                              padding=(0, padding), dilation=(1, dilation), groups=groups, flip=flip,
                              method=method)
    return _without_height(y), cache


def conv1d_backward(dout, cache: Conv2dCache):
    """-> (dx, dw, db) for conv1d; db is None when the forward had no bias."""
    check_cache(cache, Conv2dCache, "conv1d_forward")
    dout = as_float_array("dout", dout, ndim=3)
    dx, dw, db = conv2d_backward(_with_height(dout), cache)
    return _without_height(dx), _without_height(dw), db


def _as_flip(flip) -> bool:
    if not isinstance(flip, (bool, np.bool_)):
        raise TypeError(f"flip must be a bool (False: cross-correlation, the frameworks' convolution; True: the "
                        f"kernel flipped, the lecture's true convolution), got {flip!r}")
    return bool(flip)


def _flipped(w):
    """w (F, Cg, KH, KW) flipped in both spatial axes, w[:, :, ::-1, ::-1], as a contiguous copy on
    w's device (on the GPU through the host: nbconv.devices has no flip kernel)."""
    if isinstance(w, np.ndarray):
        return np.ascontiguousarray(w[:, :, ::-1, ::-1])
    host = devices.to_host(w)
    return devices.to_device(np.ascontiguousarray(host[:, :, ::-1, ::-1]), devices.CUDA)


def _runs(method, x, w, out):
    """The method that runs: ``method``, or the direct nest when x, w or the output is empty
    (nothing to lower or block; the nest handles every empty extent)."""
    return "direct" if x.size == 0 or w.size == 0 or out.size == 0 else method


def _with_height(a):
    """(A, B, L) -> (A, B, 1, L): a view (an indexing view on the host, a reshape on the device)."""
    if devices.is_device_array(a):
        return a.reshape(a.shape[0], a.shape[1], 1, a.shape[2])
    return a[:, :, None, :]


def _without_height(a):
    """(A, B, 1, L) -> (A, B, L), the inverse view."""
    if devices.is_device_array(a):
        return a.reshape(a.shape[0], a.shape[1], a.shape[3])
    return a[:, :, 0, :]


def _bias(b, F, x):
    if b is None:
        return devices.zeros(F, x.dtype, devices.array_device(x))
    b = as_float_array("b", b, ndim=1)
    same_dtype("x", x, b=b)
    check_shape("b", b, (F,))
    return b
