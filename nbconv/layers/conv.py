"""Conv2d and Conv1d over F.conv2d_* / F.conv1d_*."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..init import as_rng, weight_init
from ..shapes import conv_output_size
from .base import Layer
from ._util import weights


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class Conv2d(Layer):
    """x (N, C, H, W) -> y (N, F, OH, OW); parameters w (F, C // groups, KH, KW) and b (F,).

    ``method``: "direct", "im2col" or "blocked", or a common name ("naive" is "direct", "fast"
    and "auto", the default, are "blocked"), so that ``set_method("naive")`` reaches it too.
    ``flip=True`` computes the lecture's true convolution, the kernel flipped in both spatial
    axes (see F.conv2d_forward); the default is cross-correlation, as every framework.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, flip: bool = False, method: str = "auto", init="he_normal",
                 seed=None, dtype=np.float32, allocate: bool = True):
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        self.groups, self.bias, self.method = groups, bias, method
        self.flip = _check_flip(flip)
        shapes = {"w": (out_channels, in_channels // groups, *self.kernel_size)} | \
                 ({"b": (out_channels,)} if bias else {})
        self.init_params(shapes, {"w": weight_init(init, as_rng(seed)), "b": np.zeros},
                         allocate=allocate, dtype=dtype)

    def hyper(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups,
                    flip=self.flip, method=self.method)

    def forward(self, x):
        p = weights(self, x)
        y, self._cache = F.conv2d_forward(x, p["w"].data, p["b"].data if self.bias else None, **self.hyper())
        return y

    def backward(self, dout):
        dx, dw, db = F.conv2d_backward(dout, self.cache)
        self.store_grads(w=dw, b=db)
        return dx

    def output_shape(self, input_shape):
        if len(input_shape) != 4 or input_shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}({self.in_channels}, {self.out_channels}) expects input of shape "
                             f"(N, C, H, W) with C = {self.in_channels}, got {tuple(input_shape)}")
        N, C, H, W = input_shape
        return (N, self.out_channels) + tuple(
            conv_output_size(size, k, stride=s, padding=pad, dilation=d, name=axis)
            for size, k, s, pad, d, axis in zip((H, W), self.kernel_size, self.stride, self.padding, self.dilation,
                                                ("height", "width")))

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, method={self.method!r}" + (", flip=True" if self.flip else ""))


def _check_flip(flip) -> bool:
    if not isinstance(flip, (bool, np.bool_)):
        raise TypeError(f"flip must be a bool (False: cross-correlation; True: the kernel flipped, the "
                        f"lecture's true convolution), got {flip!r}")
    return bool(flip)


class Conv1d(Layer):
    """x (N, C, L) -> y (N, F, L_out); parameters w (F, C // groups, K) and b (F,).

    ``method`` is the convolution's, as for Conv2d: "direct" (the loop nest), "im2col" (lowering
    + GEMM) or "blocked" (the optimized direct kernel), or a common name ("naive" is "direct",
    "fast" and "auto", the default, are "blocked"; see nbconv.functional.dispatch.CONV).  ``flip=True``: the
    true convolution, the kernel reversed (see F.conv1d_forward).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1, bias: bool = True, flip: bool = False,
                 method: str = "auto", init="he_normal", seed=None, dtype=np.float32,
                 allocate: bool = True):
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.groups, self.bias, self.method = groups, bias, method
        self.flip = _check_flip(flip)
        shapes = {"w": (out_channels, in_channels // groups, kernel_size)} | \
                 ({"b": (out_channels,)} if bias else {})
        self.init_params(shapes, {"w": weight_init(init, as_rng(seed)), "b": np.zeros},
                         allocate=allocate, dtype=dtype)

    def forward(self, x):
        p = weights(self, x)
        y, self._cache = F.conv1d_forward(x, p["w"].data, p["b"].data if self.bias else None,
                                          stride=self.stride, padding=self.padding, dilation=self.dilation,
                                          groups=self.groups, flip=self.flip, method=self.method)
        return y

    def backward(self, dout):
        dx, dw, db = F.conv1d_backward(dout, self.cache)
        self.store_grads(w=dw, b=db)
        return dx

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] != self.in_channels:
            raise ValueError(f"Conv1d({self.in_channels}, {self.out_channels}) expects input of shape (N, C, L) "
                             f"with C = {self.in_channels}, got {tuple(input_shape)}")
        N, C, L = input_shape
        return (N, self.out_channels, conv_output_size(L, self.kernel_size, stride=self.stride,
                                                       padding=self.padding, dilation=self.dilation))

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, method={self.method!r}" + (", flip=True" if self.flip else ""))


class WSConv2d(Conv2d):
    """Conv2d on standardized weights: y = conv2d(x, ws(w), b), ws(w)[f] = (w[f] - mean) / sqrt(var + eps)
    over each filter's (C, KH, KW).  The raw w is the parameter; its gradient goes back through ws:

        dw_hat = conv2d's dw,   dw = weight_standardize_backward(dw_hat)
    """

    def __init__(self, *args, eps: float = 1e-5, **kwargs):
        super().__init__(*args, **kwargs)
        self.eps = eps

    def forward(self, x):
        p = weights(self, x)
        w_hat, ws_cache = F.weight_standardize_forward(p["w"].data, eps=self.eps)
        y, conv_cache = F.conv2d_forward(x, w_hat, p["b"].data if self.bias else None, **self.hyper())
        self._cache = ws_cache, conv_cache
        return y

    def backward(self, dout):
        ws_cache, conv_cache = self.cache
        dx, dw_hat, db = F.conv2d_backward(dout, conv_cache)
        (dw,) = F.weight_standardize_backward(dw_hat, ws_cache)        # chain rule into the raw weights
        self.store_grads(w=dw, b=db)
        return dx

    def extra_repr(self):
        return super().extra_repr() + f", eps={self.eps}"
