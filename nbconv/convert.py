"""FC -> CONV: turn a network's fully connected tail into convolutions (the cs231n notes; docs/worked-examples.md).

An FC layer that looks at the whole C x H x W volume is a CONV layer whose filters are
exactly that big (F = H x W, P = 0, S = 1, K = out_features): each of its K filters is one
row of the FC weight matrix, reshaped to (C, H, W) in the order Flatten laid the volume
out.  Every following FC layer then sees a 1 x 1 x in_features volume and becomes a 1x1
CONV.  On an input of the training size the converted network gives the same scores, as
a 1x1 map; on a larger image it slides the whole original network over it in one pass:

    VGG16 on 224x224 -> FC over 7x7x512 == CONV 7x7, 4096 filters
    on 384x384: a 12x12x512 volume -> a 6x6x1000 map of class scores, identical to the
    original network on the 36 crops of 224x224 taken at stride 32 (the product of the
    strides before the FC layers).

The identity with the crops is exact when the layers before the FC tail do not pad (or pad
only where the crops and the large image agree): a crop is zero-padded at its own border,
where the large image has real pixels.  At the training size the converted network always
equals the original.
"""

from __future__ import annotations

import copy

import numpy as np

from .layers import (ELU, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, LeakyReLU, Linear, Maxout, PReLU,
                     ReLU, Sequential, Sigmoid, Tanh)

__all__ = ["fc_to_conv"]

# Layers that act per value or per channel of axis 1, so that they work unchanged on (N, C, 1, 1) maps.
_CARRIED = (ReLU, Sigmoid, Tanh, LeakyReLU, ELU, Dropout, PReLU, Maxout)


def fc_to_conv(model: Sequential, input_shape, *, method: str = "auto") -> Sequential:
    """A copy of ``model`` whose Flatten + Linear tail is convolutional.

    ``model`` is a Sequential ``[... CONV/POOL ..., Flatten, Linear, (ReLU, Dropout, ...), Linear, ...]``
    trained on samples of ``input_shape`` (C, H, W), no batch axis.  The layers before Flatten
    are copied as they are; Flatten is dropped; the first Linear becomes a Conv2d whose kernel
    covers the whole incoming volume, the following ones 1x1 Conv2d; elementwise layers
    (ReLU, Dropout, ...) are carried over and BatchNorm1d becomes BatchNorm2d with the same
    parameters and running statistics.  Weights are copied (the model is not changed).  A model
    built with ``allocate=False`` converts to shapes only.

    The result maps (N, C, H, W) to (N, classes, 1, 1), and a larger image to a map of scores.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a Sequential, got {type(model).__name__}")
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    if len(shape) != 3 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
                                  for s in shape):
        raise ValueError(f"input_shape must be the (C, H, W) of one sample without the batch axis, "
                         f"got {input_shape!r}")
    flat = [k for k, layer in enumerate(model.layers) if isinstance(layer, Flatten)]
    if not flat:
        raise ValueError("model has no Flatten layer at its top level, so no FC tail to convert")
    k_flat = flat[0]

    head = [copy.deepcopy(layer) for layer in model.layers[:k_flat]]
    volume = Sequential(*head).output_shape((1,) + shape)          # (1, C, H, W) entering the FC tail
    if len(volume) != 4:
        raise ValueError(f"the layers before Flatten must give a (C, H, W) volume, got shape {volume[1:]}")
    tail, channels, first = [], None, True
    for k, layer in enumerate(model.layers[k_flat + 1:], start=k_flat + 1):
        if isinstance(layer, Linear):
            if first:
                C, H, W = volume[1:]
                if layer.in_features != C * H * W:
                    raise ValueError(f"layer {k} (Linear) has in_features={layer.in_features} but Flatten "
                                     f"gives {C}*{H}*{W} = {C * H * W} values for input_shape {shape}")
                kernel = (C, H, W)
            else:
                if layer.in_features != channels:
                    raise ValueError(f"layer {k} (Linear) has in_features={layer.in_features} but receives "
                                     f"{channels} channels")
                kernel = (channels, 1, 1)
            tail.append(_linear_to_conv(layer, kernel, method))
            channels, first = layer.out_features, False
        elif first:
            raise ValueError(f"layer {k} ({type(layer).__name__}) comes between Flatten and the first Linear; "
                             f"only the FC layers that follow Flatten directly can be converted")
        elif isinstance(layer, BatchNorm1d):
            tail.append(_batch_norm_2d(layer))
        elif isinstance(layer, _CARRIED):
            tail.append(copy.deepcopy(layer))
            if isinstance(layer, Maxout):
                channels //= layer.pieces
        elif isinstance(layer, Flatten):
            continue                          # a second Flatten of an (N, F) tail is a no-op
        else:
            raise ValueError(f"layer {k} ({type(layer).__name__}) after Flatten cannot be converted; "
                             f"supported: Linear, BatchNorm1d, {', '.join(c.__name__ for c in _CARRIED)}")
    if first:
        raise ValueError("model has no Linear layer after Flatten: nothing to convert")
    converted = Sequential(*head, *tail)
    converted.train(model.training)
    return converted


def _linear_to_conv(linear: Linear, kernel: tuple, method: str) -> Conv2d:
    """The Conv2d with w[f] = row f of the linear weight reshaped to ``kernel`` = (C, KH, KW)."""
    C, KH, KW = kernel
    params = linear.params()
    dtype = params["w"].data.dtype if params else np.float32
    conv = Conv2d(C, linear.out_features, (KH, KW), bias=linear.bias, method=method, dtype=dtype,
                  init=lambda shape, rng: np.zeros(shape), allocate=bool(params))
    if params:
        p = conv.params()
        p["w"].data[...] = params["w"].data.reshape(linear.out_features, C, KH, KW)   # Flatten's (c, h, w) order
        if linear.bias:
            p["b"].data[...] = params["b"].data
    return conv


def _batch_norm_2d(bn: BatchNorm1d) -> BatchNorm2d:
    params = bn.params()
    dtype = params["gamma"].data.dtype if params else np.float32
    out = BatchNorm2d(bn.num_features, momentum=bn.momentum, eps=bn.eps, unbiased=bn.unbiased, dtype=dtype,
                      allocate=bool(params), method=bn.method)
    if params:
        for name in ("gamma", "beta"):
            out.params()[name].data[...] = params[name].data
        for name in ("running_mean", "running_var"):
            out.buffers()[name][...] = bn.buffers()[name]
    return out

