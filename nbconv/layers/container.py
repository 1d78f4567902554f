"""Sequential, Residual and Flatten: how layers stack.

An error raised by a layer inside a Sequential (or a Residual's block) says where that
layer sits: its message gets the path and the failing layer's one-line repr in front,

    layer [3] Linear(256, 10, bias=True), forward: Linear(256, 10) expects input of shape (N, 256), got (64, 144)
    layer [1].block[0] Conv2d(...), backward: ...

with the same exception type and traceback (see ``_located``).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

from .. import devices
from .base import Layer
from ._table import Row, child_name, walk
from ._util import describe

_LOCATED = (ValueError, TypeError, RuntimeError, NotImplementedError)    # exactly these types, not subclasses


@contextmanager
def _located(part: str, layer: Layer, phase: str):
    """Prefix a ValueError, TypeError, RuntimeError or NotImplementedError raised by ``layer``
    (the child at ``part``, "[k]" or ".block") with the layer's path, its repr and ``phase``.

    The first container to catch the error keeps the original message and the failing layer
    on the exception (``layer_message``, ``layer``); each container on the way out prepends its
    part to ``layer_path`` and rebuilds ``args``, so nested containers give one path, not a pile
    of prefixes.  The exception is re-raised as it is: same type, same traceback."""
    try:
        yield
    except _LOCATED as exc:
        if type(exc) not in _LOCATED:
            raise
        if not hasattr(exc, "layer_path"):
            exc.layer_message, exc.layer, exc.layer_path = str(exc), describe(layer), ""
        exc.layer_path = part + exc.layer_path
        named = "" if exc.layer_message.startswith(exc.layer) else f" {exc.layer}"    # the repr once
        exc.args = (f"layer {exc.layer_path.lstrip('.')}{named}, {phase}: {exc.layer_message}",)
        raise


class Sequential(Layer):
    """Layers applied in order; the backward pass is the layers' backward in reverse."""

    def __init__(self, *layers: Layer):
        self.layers = list(layers)

    def children(self):
        return {str(k): layer for k, layer in enumerate(self.layers)}

    def forward(self, x):
        for k, layer in enumerate(self.layers):
            with _located(f"[{k}]", layer, "forward"):
                x = layer.forward(x)
        return x

    def backward(self, dout):
        for k in reversed(range(len(self.layers))):
            with _located(f"[{k}]", self.layers[k], "backward"):
                dout = self.layers[k].backward(dout)
        return dout

    def output_shape(self, input_shape):
        for layer in self.layers:
            input_shape = layer.output_shape(input_shape)
        return input_shape

    def summary_rows(self, name, shape, depth, rows):
        """Summary table (nbconv.summary): the rows of the layers in order, nested one level below
        a named Sequential; returns the output shape."""
        for k, sub in enumerate(self.layers):
            shape = walk(sub, child_name(name, k), shape, depth + (1 if name else 0), rows)
        return shape

    def __getitem__(self, k):
        return self.layers[k]

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        inner = "\n".join(f"  ({k}) {layer!r}" for k, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...), the step from the last CONV/POOL volume to the FC layers."""

    in_place = True          # summaries: a view of its input, no new activations

    def forward(self, x):
        self._cache = x.shape                # all that backward needs
        return x.reshape(x.shape[0], -1) if x.shape[0] else x.reshape(0, math.prod(x.shape[1:]))

    def backward(self, dout):
        return dout.reshape(self.cache)

    def output_shape(self, input_shape):
        return (input_shape[0], math.prod(input_shape[1:]))


class Residual(Layer):
    """y = block(x) + x, the identity shortcut around ``block`` (which must keep the shape).

    Backward: x feeds two branches, the block and the shortcut, so by the fan-out rule
    its gradient is the sum of both branches' gradients.  On the GPU both sums are the add
    kernel of nbconv.kernels.cuda.elementwise.
    """

    def __init__(self, block: Layer):
        self.block = block

    def children(self):
        return {"block": self.block}

    def forward(self, x):
        with _located(".block", self.block, "forward"):
            out = self.block.forward(x)
        if out.shape != x.shape:
            raise ValueError(f"Residual: the block must keep the shape so that block(x) + x is defined; "
                             f"x has shape {x.shape}, block(x) has shape {out.shape}")
        return devices.add(out, x)                  # out + x (a kernel on the GPU)

    def backward(self, dout):
        with _located(".block", self.block, "backward"):
            dblock = self.block.backward(dout)
        return devices.add(dblock, dout)            # fan-out: block branch + identity branch

    def output_shape(self, input_shape):
        out = tuple(self.block.output_shape(input_shape))
        if out != tuple(input_shape):
            raise ValueError(f"Residual: the block must keep the shape so that block(x) + x is defined; "
                             f"input shape {tuple(input_shape)}, block output shape {out}")
        return out

    def summary_rows(self, name, shape, depth, rows):
        """Summary table (nbconv.summary): the block's rows one level deeper, then the add as a
        row of its own (it stores block(x) + x); returns the output shape."""
        inner = walk(self.block, child_name(name, "block"), shape, depth + 1, rows)
        out = self.output_shape(shape)          # checks that the block kept the shape
        assert tuple(inner) == tuple(out)
        rows.append(Row(name or "residual", "Residual add", "block(x) + x", tuple(out[1:]),
                        math.prod(out[1:]), 0, depth=depth))
        return out

    def __repr__(self):
        inner = "\n".join("  " + line for line in repr(self.block).splitlines())
        return f"Residual(\n{inner}\n)"
