"""Activation layers over the functional pairs of nbconv.functional.activation.

ReLU, Sigmoid, Tanh, LeakyReLU and ELU are elementwise with no parameters; PReLU learns
its negative slope (one, or one per channel of axis 1); Maxout takes the max over groups
of ``pieces`` consecutive channels.

``in_place = True`` marks the layers that a memory count treats as computed in place
(as the notes' VGGNet table does: a CONV row includes its ReLU), see nbconv.summary.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._args import _int_at_least
from .base import Layer
from ._util import weights


class _Elementwise(Layer):
    in_place = True          # summaries: the output may overwrite the input, no new activations
    _forward = _backward = None

    def __init__(self, *, method: str = "auto"):
        self.method = method     # "naive" (the loop), "fast" (its parallel twin) or "auto"

    def forward(self, x):
        y, self._cache = type(self)._forward(x, **self.hyper(), method=self.method)
        return y

    def backward(self, dout):
        (dx,) = type(self)._backward(dout, self.cache)
        return dx

    def hyper(self) -> dict:
        return {}

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.hyper().items())


class ReLU(_Elementwise):
    """max(0, x)."""
    _forward, _backward = staticmethod(F.relu_forward), staticmethod(F.relu_backward)


class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x))."""
    _forward, _backward = staticmethod(F.sigmoid_forward), staticmethod(F.sigmoid_backward)


class Tanh(_Elementwise):
    """tanh(x)."""
    _forward, _backward = staticmethod(F.tanh_forward), staticmethod(F.tanh_backward)


class LeakyReLU(_Elementwise):
    """x for x > 0, negative_slope * x otherwise."""
    _forward, _backward = staticmethod(F.leaky_relu_forward), staticmethod(F.leaky_relu_backward)

    def __init__(self, negative_slope: float = 0.01, *, method: str = "auto"):
        super().__init__(method=method)
        self.negative_slope = negative_slope

    def hyper(self):
        return {"negative_slope": self.negative_slope}


class ELU(_Elementwise):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    _forward, _backward = staticmethod(F.elu_forward), staticmethod(F.elu_backward)

    def __init__(self, alpha: float = 1.0, *, method: str = "auto"):
        super().__init__(method=method)
        self.alpha = alpha

    def hyper(self):
        return {"alpha": self.alpha}


class PReLU(Layer):
    """x for x > 0, a * x otherwise, the slope a learned: parameter ``weight`` of shape (num_parameters,),
    one slope shared by every element (num_parameters=1) or one per channel of axis 1 (num_parameters=C)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, *, method: str = "auto", dtype=np.float32,
                 allocate: bool = True):
        _int_at_least("num_parameters", num_parameters, hint=" (1 or the number of channels)")
        self.num_parameters, self.init = num_parameters, init
        self.method = method     # "naive" (the loop), "fast" (its parallel twin) or "auto"
        self.init_params({"weight": (num_parameters,)}, {"weight": lambda shape: np.full(shape, init)},
                         allocate=allocate, dtype=dtype)

    def forward(self, x):
        y, self._cache = F.prelu_forward(x, weights(self, x)["weight"].data, method=self.method)
        return y

    def backward(self, dout):
        dx, dweight = F.prelu_backward(dout, self.cache)
        self.store_grads(weight=dweight)
        return dx

    def output_shape(self, input_shape):
        if self.num_parameters != 1 and (len(input_shape) < 2 or input_shape[1] != self.num_parameters):
            raise ValueError(f"PReLU with {self.num_parameters} slopes needs {self.num_parameters} channels "
                             f"(axis 1), got input shape {tuple(input_shape)}")
        return tuple(input_shape)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}, init={self.init}"


class Maxout(Layer):
    """(N, K * pieces, ...) -> (N, K, ...): channel k is the max of channels k*pieces ... k*pieces + pieces - 1.

    The lecture's max(w1^T x + b1, w2^T x + b2) is a Linear/Conv2d with 2K outputs followed by Maxout(2).
    """

    def __init__(self, pieces: int, *, method: str = "auto"):
        _int_at_least("pieces", pieces)
        self.pieces = pieces
        self.method = method     # "naive" (the loop), "fast" (its parallel twin) or "auto"

    def forward(self, x):
        y, self._cache = F.maxout_forward(x, pieces=self.pieces, method=self.method)
        return y

    def backward(self, dout):
        (dx,) = F.maxout_backward(dout, self.cache)
        return dx

    def output_shape(self, input_shape):
        if len(input_shape) < 2 or input_shape[1] % self.pieces:
            raise ValueError(f"Maxout(pieces={self.pieces}) needs a channel axis 1 divisible by {self.pieces}, "
                             f"got input shape {tuple(input_shape)}")
        return (input_shape[0], input_shape[1] // self.pieces) + tuple(input_shape[2:])

    def extra_repr(self):
        return f"pieces={self.pieces}"
