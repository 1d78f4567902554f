"""Sequential, Residual and Flatten: how layers stack."""

from __future__ import annotations

import math

from ..functional import _device
from .base import Layer


class Sequential(Layer):
    """Layers applied in order; the backward pass is the layers' backward in reverse."""

    def __init__(self, *layers: Layer):
        self.layers = list(layers)

    def children(self):
        return {str(k): layer for k, layer in enumerate(self.layers)}

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def output_shape(self, input_shape):
        for layer in self.layers:
            input_shape = layer.output_shape(input_shape)
        return input_shape

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
        self._shape = x.shape
        return x.reshape(x.shape[0], -1) if x.shape[0] else x.reshape(0, math.prod(x.shape[1:]))

    def backward(self, dout):
        return dout.reshape(self._shape)

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
        out = self.block.forward(x)
        if out.shape != x.shape:
            raise ValueError(f"Residual: the block must keep the shape so that block(x) + x is defined; "
                             f"x has shape {x.shape}, block(x) has shape {out.shape}")
        return _device.add(out, x)                  # out + x (a kernel on the GPU)

    def backward(self, dout):
        return _device.add(self.block.backward(dout), dout)     # fan-out: block branch + identity branch

    def output_shape(self, input_shape):
        out = tuple(self.block.output_shape(input_shape))
        if out != tuple(input_shape):
            raise ValueError(f"Residual: the block must keep the shape so that block(x) + x is defined; "
                             f"input shape {tuple(input_shape)}, block output shape {out}")
        return out

    def __repr__(self):
        inner = "\n".join("  " + line for line in repr(self.block).splitlines())
        return f"Residual(\n{inner}\n)"
