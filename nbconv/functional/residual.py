"""The residual connection y = conv(x) + x (the book page 000's residual block).

The convolution keeps the shape: stride 1, F = C filters, odd kernel sizes and
"same" padding P = D * (K - 1) / 2 (the page prints the padding formula wrongly;
for D = 1 it is P = (K - 1) / 2).

Backward: x feeds two branches, the convolution and the identity shortcut, so
by the fan-out rule its gradient is the sum of both:

    dx = dconv_x + dout

``method`` is the convolution's (nbconv.functional.conv): "direct", "im2col" or "blocked", or
the common names ("naive" is "direct", "fast" and "auto" are "blocked"); the cache keeps the
conv method that ran, and the backward runs it too.

On the GPU the two sums are the element-wise add kernel of nbconv.kernels.cuda.elementwise
(a device array has no ``+``).
"""

from __future__ import annotations

from dataclasses import dataclass

from nbconv import devices
from .conv import Conv2dCache, conv2d_backward, conv2d_forward
from ._checks import as_float_array, as_int, as_pair, check_cache

__all__ = ["ResidualCache", "residual_forward", "residual_backward"]


@dataclass(frozen=True)
class ResidualCache:
    conv: Conv2dCache


def residual_forward(x, w, b=None, *, dilation=1, groups=1, method="auto"):
    """x (N, C, H, W), w (C, C // groups, KH, KW) with KH, KW odd -> y = conv2d(x, w, b) + x, same shape as x."""
    x = as_float_array("x", x, ndim=4)
    w = as_float_array("w", w, ndim=4)
    dilation = as_pair("dilation", dilation, 1)
    groups = as_int("groups", groups, 1)
    C, F, (KH, KW) = x.shape[1], w.shape[0], w.shape[2:]
    if F != C:
        raise ValueError(f"w must have as many filters as x has channels ({C}) so that conv(x) + x is defined, "
                         f"got w shape {w.shape}")
    if KH % 2 == 0 or KW % 2 == 0:
        raise ValueError(f"w must have odd kernel sizes so that padding can keep the shape, got {KH}x{KW}")
    padding = (dilation[0] * (KH - 1) // 2, dilation[1] * (KW - 1) // 2)
    conv_out, conv_cache = conv2d_forward(x, w, b, stride=1, padding=padding, dilation=dilation,
                                          groups=groups, method=method)
    return devices.add(conv_out, x), ResidualCache(conv_cache)


def residual_backward(dout, cache: ResidualCache):
    """-> (dx, dw, db): the conv branch's gradients, plus dout through the shortcut into dx."""
    check_cache(cache, ResidualCache, "residual_forward")
    dx_conv, dw, db = conv2d_backward(dout, cache.conv)
    dx = devices.add(dx_conv, dout)      # fan-out: x feeds the conv and the shortcut, so the gradients add
    return dx, dw, db

