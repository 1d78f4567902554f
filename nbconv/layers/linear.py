"""Linear: y = x W^T + b, over F.linear_forward / F.linear_backward."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..init import as_rng, weight_init
from .base import Layer
from ._util import weights


class Linear(Layer):
    """x (N, in_features) -> y (N, out_features); parameters w (out, in) and b (out,)."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, init="he_normal",
                 seed=None, dtype=np.float32, allocate: bool = True, method: str = "auto"):
        self.in_features, self.out_features, self.bias = in_features, out_features, bias
        self.method = method          # "naive" (the loop nest), "fast" (GEMM) or "auto"
        shapes = {"w": (out_features, in_features)} | ({"b": (out_features,)} if bias else {})
        self.init_params(shapes, {"w": weight_init(init, as_rng(seed)), "b": np.zeros},
                         allocate=allocate, dtype=dtype)

    def forward(self, x):
        p = weights(self, x)
        y, self._cache = F.linear_forward(x, p["w"].data, p["b"].data if self.bias else None, method=self.method)
        return y

    def backward(self, dout):
        dx, dw, db = F.linear_backward(dout, self.cache)
        self.store_grads(w=dw, b=db)
        return dx

    def output_shape(self, input_shape):
        if len(input_shape) != 2 or input_shape[1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}) expects input of shape (N, "
                             f"{self.in_features}), got {tuple(input_shape)}")
        return (input_shape[0], self.out_features)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias}"
