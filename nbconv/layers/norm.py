"""Normalization layers over nbconv.functional.norm.

BatchNorm1d / BatchNorm2d normalize per channel over the batch (and spatial axes) in
training and update the running statistics; in eval mode they use the running statistics
and change nothing.  LayerNorm, InstanceNorm2d and GroupNorm normalize each sample on its
own, the same in training and eval.  All have a learned scale ``gamma`` (init 1) and shift
``beta`` (init 0).  LocalResponseNorm (AlexNet's LRN) has no parameters.

Every layer takes ``method`` ("naive", "fast" or "auto", the default; see
nbconv.functional.dispatch) and keeps it in ``self.method``, which ``set_method`` changes.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._args import _int_at_least
from .base import Layer
from ._util import check_rank, weights


class _Affine(Layer):
    """gamma (init 1) and beta (init 0) of ``shape``."""

    def _init_affine(self, shape, dtype, allocate):
        self.init_params({"gamma": shape, "beta": shape}, {"gamma": np.ones, "beta": np.zeros},
                         allocate=allocate, dtype=dtype)


class _BatchNorm(_Affine):
    """Parameters gamma, beta (C,); buffers running_mean (init 0) and running_var (init 1), (C,).

        training: out = gamma * (x - batch mean) / sqrt(batch var + eps) + beta, running stats updated
                  running = (1 - momentum) * running + momentum * batch statistic (unbiased var)
        eval:     out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta

    ``unbiased=False`` smooths the running variance with the biased batch variance, as the lecture
    does (running_var = (1 - momentum) * running_var + momentum * var); see F.batch_norm_forward.
    """

    _ranks: tuple = ()
    _layout: str = ""

    def __init__(self, num_features: int, *, momentum: float = 0.1, eps: float = 1e-5, unbiased: bool = True,
                 dtype=np.float32, allocate: bool = True, method: str = "auto"):
        self.num_features = _int_at_least("num_features", num_features)
        if not isinstance(unbiased, (bool, np.bool_)):
            raise TypeError(f"unbiased must be a bool (True: the running variance takes the unbiased batch "
                            f"variance, False: the biased one, as the lecture), got {unbiased!r}")
        self.momentum, self.eps, self.unbiased = momentum, eps, bool(unbiased)
        self.method = method          # "naive" (the steps' loops), "fast" (parallel twins) or "auto"
        self._init_affine((num_features,), dtype, allocate)
        self._buffers = {"running_mean": np.zeros(num_features, dtype=dtype),
                         "running_var": np.ones(num_features, dtype=dtype)} if allocate else {}

    @property
    def running_mean(self):
        return self._buffers["running_mean"]

    @property
    def running_var(self):
        return self._buffers["running_var"]

    def buffers(self):
        return self._buffers

    def buffer_shapes(self):
        return {"running_mean": (self.num_features,), "running_var": (self.num_features,)}

    def forward(self, x):
        check_rank(self, x, self._ranks, self._layout)
        p = weights(self, x)
        y, self._cache = F.batch_norm_forward(x, p["gamma"].data, p["beta"].data, self.running_mean,
                                              self.running_var, training=self.training,
                                              momentum=self.momentum, eps=self.eps, unbiased=self.unbiased,
                                              method=self.method)
        return y

    def backward(self, dout):
        dx, dgamma, dbeta = F.batch_norm_backward(dout, self.cache)
        self.store_grads(gamma=dgamma, beta=dbeta)
        return dx

    def output_shape(self, input_shape):
        if len(input_shape) not in self._ranks or input_shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) expects input of shape {self._layout} "
                             f"with C = {self.num_features}, got {tuple(input_shape)}")
        return tuple(input_shape)

    def extra_repr(self):
        return f"{self.num_features}, momentum={self.momentum}, eps={self.eps}" + \
            ("" if self.unbiased else ", unbiased=False")


class BatchNorm1d(_BatchNorm):
    """x (N, C) (after a Linear) or (N, C, L) (after a Conv1d)."""
    _ranks, _layout = (2, 3), "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """x (N, C, H, W), statistics per channel over N, H and W."""
    _ranks, _layout = (4,), "(N, C, H, W)"


class LayerNorm(_Affine):
    """Normalizes each sample over its last len(normalized_shape) axes; gamma and beta of normalized_shape."""

    def __init__(self, normalized_shape, *, eps: float = 1e-5, dtype=np.float32, allocate: bool = True,
                 method: str = "auto"):
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        for size in shape:
            _int_at_least("every size in normalized_shape", size)
        if not shape:
            raise ValueError("normalized_shape must name at least one axis, got ()")
        self.normalized_shape, self.eps = shape, eps
        self.method = method
        self._init_affine(shape, dtype, allocate)

    def forward(self, x):
        p = weights(self, x)
        y, self._cache = F.layer_norm_forward(x, p["gamma"].data, p["beta"].data,
                                              normalized_ndim=len(self.normalized_shape), eps=self.eps,
                                              method=self.method)
        return y

    def backward(self, dout):
        dx, dgamma, dbeta = F.layer_norm_backward(dout, self.cache)
        self.store_grads(gamma=dgamma, beta=dbeta)
        return dx

    def output_shape(self, input_shape):
        k = len(self.normalized_shape)
        if len(input_shape) <= k or tuple(input_shape[-k:]) != self.normalized_shape:
            raise ValueError(f"LayerNorm{self.normalized_shape} expects input shape (N, ..., "
                             f"{', '.join(map(str, self.normalized_shape))}), got {tuple(input_shape)}")
        return tuple(input_shape)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}"


class InstanceNorm2d(_Affine):
    """x (N, C, H, W): normalizes each (sample, channel) over H and W; gamma and beta per channel."""

    def __init__(self, num_features: int, *, eps: float = 1e-5, dtype=np.float32, allocate: bool = True,
                 method: str = "auto"):
        self.num_features, self.eps = _int_at_least("num_features", num_features), eps
        self.method = method
        self._init_affine((num_features,), dtype, allocate)

    def forward(self, x):
        check_rank(self, x, (4,), "(N, C, H, W)")
        p = weights(self, x)
        y, self._cache = F.instance_norm_forward(x, p["gamma"].data, p["beta"].data, eps=self.eps,
                                                 method=self.method)
        return y

    def backward(self, dout):
        dx, dgamma, dbeta = F.instance_norm_backward(dout, self.cache)
        self.store_grads(gamma=dgamma, beta=dbeta)
        return dx

    def output_shape(self, input_shape):
        if len(input_shape) != 4 or input_shape[1] != self.num_features:
            raise ValueError(f"InstanceNorm2d({self.num_features}) expects input of shape (N, C, H, W) with "
                             f"C = {self.num_features}, got {tuple(input_shape)}")
        return tuple(input_shape)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}"


class GroupNorm(_Affine):
    """Channels split into num_groups groups; each (sample, group) normalized over its channels and
    spatial axes; gamma and beta per channel.  num_groups=1: layer norm; num_groups=C: instance norm."""

    def __init__(self, num_groups: int, num_channels: int, *, eps: float = 1e-5, dtype=np.float32,
                 allocate: bool = True, method: str = "auto"):
        _int_at_least("num_groups", num_groups)
        _int_at_least("num_channels", num_channels)
        if num_channels % num_groups:
            raise ValueError(f"num_groups must divide num_channels, got num_groups={num_groups}, "
                             f"num_channels={num_channels}")
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.method = method
        self._init_affine((num_channels,), dtype, allocate)

    def forward(self, x):
        p = weights(self, x)
        y, self._cache = F.group_norm_forward(x, p["gamma"].data, p["beta"].data, num_groups=self.num_groups,
                                              eps=self.eps, method=self.method)
        return y

    def backward(self, dout):
        dx, dgamma, dbeta = F.group_norm_backward(dout, self.cache)
        self.store_grads(gamma=dgamma, beta=dbeta)
        return dx

    def output_shape(self, input_shape):
        if len(input_shape) < 2 or input_shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm({self.num_groups}, {self.num_channels}) expects {self.num_channels} "
                             f"channels (axis 1), got input shape {tuple(input_shape)}")
        return tuple(input_shape)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}"


class LocalResponseNorm(Layer):
    """AlexNet's LRN across channels (no parameters):

        out[n, c] = x[n, c] / (k + alpha / size * sum of x^2 over the ``size`` channels around c) ** beta
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, *,
                 method: str = "auto"):
        self.size = _int_at_least("size", size)
        self.alpha, self.beta, self.k = alpha, beta, k
        self.method = method

    def forward(self, x):
        y, self._cache = F.local_response_norm_forward(x, size=self.size, alpha=self.alpha, beta=self.beta,
                                                       k=self.k, method=self.method)
        return y

    def backward(self, dout):
        (dx,) = F.local_response_norm_backward(dout, self.cache)
        return dx

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
