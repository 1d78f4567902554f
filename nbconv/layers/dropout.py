"""Dropout over F.dropout_forward / F.dropout_backward (inverted dropout, or classic).

``p`` is the probability of DROPPING a unit (the lecture's p is the keep probability,
our 1 - p).  In training every forward draws a fresh mask from the layer's own
Generator ``self.rng`` (seeded once at construction, so a run is reproducible); the
kept units are divided by 1 - p.  In eval mode (``layer.eval()``) it is the identity.
``mode="classic"`` is the lecture's first variant: the kept units pass unscaled in training,
and eval mode multiplies by the keep probability 1 - p.
``method`` applies the mask with the loop ("naive"), its parallel twin ("fast") or either by
size ("auto"); the mask, and so the output, is the same in every form.
"""

from __future__ import annotations

import math

from .. import functional as F
from ..functional.dropout import _check_mode
from ..init import as_rng
from .base import Layer


class Dropout(Layer):
    in_place = True          # summaries: computed in place, only the mask is kept

    def __init__(self, p: float = 0.5, *, seed=None, mode: str = "inverted", method: str = "auto"):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0 or math.isnan(p):
            raise ValueError(f"p (the probability of dropping a unit) must be a number in [0, 1], got {p!r}")
        self.p = float(p)
        self.mode = _check_mode(mode)   # "inverted" (rescale in training) or "classic" (rescale in eval mode)
        self.rng = as_rng(seed)
        self.method = method     # "naive" (the loop), "fast" (its parallel twin) or "auto"

    def forward(self, x):
        y, self._cache = F.dropout_forward(x, p=self.p, training=self.training, seed=self.rng,
                                           mode=self.mode, method=self.method)
        return y

    def backward(self, dout):
        (dx,) = F.dropout_backward(dout, self.cache)
        return dx

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def summary_detail(self):
        """The detail column of the summary table (nbconv.summary)."""
        return self.extra_repr()

    def extra_repr(self):
        return f"p={self.p}" + ("" if self.mode == "inverted" else f", mode={self.mode!r}")
