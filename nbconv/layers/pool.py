"""Pooling layers over F.max_pool2d_* / avg_pool2d_* / lp_pool2d_* / global_avg_pool2d_*.

No parameters.  ``stride`` defaults to ``kernel_size``; ``kernel_size``, ``stride`` and
``padding`` take an int or an (h, w) pair.  Output size per axis: floor((H + 2P - K) / S) + 1.
"""

from __future__ import annotations

from .. import functional as F
from ..shapes import conv_output_size
from .base import Layer


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class _Pool2d(Layer):
    def __init__(self, kernel_size, stride=None, padding=0, *, method: str = "auto"):
        self.method = method          # "naive" (the loops), "fast" (parallel twins) or "auto"
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)
        self.padding = _pair(padding)
        if self.padding[0] > self.kernel_size[0] // 2 or self.padding[1] > self.kernel_size[1] // 2:
            raise ValueError(f"padding must be at most half the kernel (padding <= kernel_size // 2 per axis), "
                             f"got padding {self.padding} with kernel_size {self.kernel_size}")

    def output_shape(self, input_shape):
        N, C, H, W = input_shape
        return (N, C) + tuple(conv_output_size(size, k, stride=s, padding=p, name=axis)
                              for size, k, s, p, axis in zip((H, W), self.kernel_size, self.stride,
                                                             self.padding, ("height", "width")))

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """x (N, C, H, W) -> the maximum of every window; backward routes each gradient to the window's winner."""

    def forward(self, x):
        y, self._cache = F.max_pool2d_forward(x, kernel_size=self.kernel_size, stride=self.stride,
                                              padding=self.padding, method=self.method)
        return y

    def backward(self, dout):
        (dx,) = F.max_pool2d_backward(dout, self.cache)
        return dx


class AvgPool2d(_Pool2d):
    """x (N, C, H, W) -> the mean of every window (zero padding counts in the mean)."""

    def forward(self, x):
        y, self._cache = F.avg_pool2d_forward(x, kernel_size=self.kernel_size, stride=self.stride,
                                              padding=self.padding, method=self.method)
        return y

    def backward(self, dout):
        (dx,) = F.avg_pool2d_backward(dout, self.cache)
        return dx


class LPPool2d(_Pool2d):
    """x (N, C, H, W) -> the p-norm of every window, p = norm_type (2: the notes' L2-norm pooling). No padding."""

    def __init__(self, norm_type, kernel_size, stride=None, *, method: str = "auto"):
        super().__init__(kernel_size, stride, 0, method=method)
        self.norm_type = norm_type

    def forward(self, x):
        y, self._cache = F.lp_pool2d_forward(x, norm_type=self.norm_type, kernel_size=self.kernel_size,
                                             stride=self.stride, method=self.method)
        return y

    def backward(self, dout):
        (dx,) = F.lp_pool2d_backward(dout, self.cache)
        return dx

    def extra_repr(self):
        return f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}"


class GlobalAvgPool2d(Layer):
    """x (N, C, H, W) -> (N, C), the mean of every feature map (GoogLeNet/ResNet's replacement for FC layers)."""

    def __init__(self, *, method: str = "auto"):
        self.method = method

    def forward(self, x):
        y, self._cache = F.global_avg_pool2d_forward(x, method=self.method)
        return y

    def backward(self, dout):
        (dx,) = F.global_avg_pool2d_backward(dout, self.cache)
        return dx

    def output_shape(self, input_shape):
        N, C, H, W = input_shape
        if H < 1 or W < 1:
            raise ValueError(f"GlobalAvgPool2d needs a non-empty feature map, got input shape {tuple(input_shape)}")
        return (N, C)
