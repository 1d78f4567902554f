"""Ready-made networks, built from nbconv.layers.

For the digits data set (8x8 gray images, 10 classes), trained by ``nbconv train``:

    lenet()          the default of ``nbconv train``: the course's pattern
                     INPUT -> [[CONV -> BN -> RELU] * 2 -> POOL] -> [CONV -> BN -> RELU -> POOL] -> FC -> RELU -> FC
    residual_net()   a stem convolution, Residual blocks y = x + block(x) with batch norm, global
                     average pooling and one FC layer

The networks of the cs231n notes, for ``nbconv summary`` (shapes only by default: no weights):

    vgg16()          VGG16 on 224x224x3, the notes' VGGNet table
    alexnet_conv1()  AlexNet's first layer on 227x227x3

All are plain ``Sequential`` models: print one to see every layer.  Convolutions are 3x3 with
padding 1 (the spatial size is kept; only the 2x2 pools shrink it) and have no bias, because the
batch norm right after them subtracts any per-channel constant (its beta is the bias).
Weights are drawn with He initialization from one generator seeded by ``seed``, so the same seed
gives the same network.
"""

from __future__ import annotations

import numpy as np

from .init import as_rng
from .layers import (BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, ReLU, Residual,
                     Sequential)

__all__ = ["lenet", "residual_net", "residual_block", "vgg16", "alexnet_conv1", "VGG16_INPUT", "ALEXNET_INPUT"]

VGG16_INPUT = (3, 224, 224)
ALEXNET_INPUT = (3, 227, 227)


def _size_after_pools(name: str, image_size: int, pools: int) -> int:
    size = image_size
    for _ in range(pools):
        size //= 2
    if size < 1:
        raise ValueError(f"{name}: image_size {image_size} is too small for {pools} 2x2 poolings")
    return size


def _conv_bn_relu(c_in: int, c_out: int, *, method: str, rng, dtype) -> list:
    return [Conv2d(c_in, c_out, 3, padding=1, bias=False, method=method, seed=rng, dtype=dtype),
            BatchNorm2d(c_out, dtype=dtype), ReLU()]


def lenet(method: str = "im2col", seed=0, *, channels: tuple = (32, 64), hidden: int = 128,
          num_classes: int = 10, in_channels: int = 1, image_size: int = 8, dtype=np.float32) -> Sequential:
    """The default CNN for digits, LeNet-style with batch norm (62,378 parameters by default)::

        (N, 1, 8, 8)
        conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN -> ReLU -> max pool 2x2    (N, c1, 4, 4)
        conv 3x3 -> BN -> ReLU -> max pool 2x2                              (N, c2, 2, 2)
        flatten -> FC -> ReLU -> FC                                         (N, num_classes)

    ``channels=(c1, c2)`` are the widths of the two stages, ``hidden`` the width of the hidden FC
    layer, ``method`` the convolution kernel ("im2col" or "direct").
    """
    c1, c2 = channels
    rng = as_rng(seed)
    size = _size_after_pools("lenet", image_size, 2)
    return Sequential(
        *_conv_bn_relu(in_channels, c1, method=method, rng=rng, dtype=dtype),
        *_conv_bn_relu(c1, c1, method=method, rng=rng, dtype=dtype),
        MaxPool2d(2),
        *_conv_bn_relu(c1, c2, method=method, rng=rng, dtype=dtype),
        MaxPool2d(2),
        Flatten(),
        Linear(c2 * size * size, hidden, seed=rng, dtype=dtype),
        ReLU(),
        Linear(hidden, num_classes, init="xavier_normal", seed=rng, dtype=dtype),
    )


def residual_block(channels: int, *, method: str = "im2col", seed=None, dtype=np.float32) -> Residual:
    """y = x + BN(conv(ReLU(BN(conv(x))))), both convolutions 3x3 with padding 1 (shape kept)."""
    rng = as_rng(seed)
    return Residual(Sequential(
        Conv2d(channels, channels, 3, padding=1, bias=False, method=method, seed=rng, dtype=dtype),
        BatchNorm2d(channels, dtype=dtype),
        ReLU(),
        Conv2d(channels, channels, 3, padding=1, bias=False, method=method, seed=rng, dtype=dtype),
        BatchNorm2d(channels, dtype=dtype),
    ))


def residual_net(method: str = "im2col", seed=0, *, channels: int = 16, blocks: int = 2, num_classes: int = 10,
                 in_channels: int = 1, image_size: int = 8, dtype=np.float32) -> Sequential:
    """A small residual network::

        (N, 1, 8, 8)
        conv 3x3 -> BN -> ReLU                                   (N, channels, 8, 8)
        [Residual(conv -> BN -> ReLU -> conv -> BN) -> ReLU] * blocks
        max pool 2x2                                             (N, channels, 4, 4)
        [Residual(conv -> BN -> ReLU -> conv -> BN) -> ReLU] * blocks
        global average pool -> FC                                (N, num_classes)
    """
    rng = as_rng(seed)
    _size_after_pools("residual_net", image_size, 1)
    stage = lambda: [layer for _ in range(blocks)
                     for layer in (residual_block(channels, method=method, seed=rng, dtype=dtype), ReLU())]
    return Sequential(
        *_conv_bn_relu(in_channels, channels, method=method, rng=rng, dtype=dtype),
        *stage(),
        MaxPool2d(2),
        *stage(),
        GlobalAvgPool2d(),
        Linear(channels, num_classes, init="xavier_normal", seed=rng, dtype=dtype),
    )


# --------------------------------------------------------------------------- the notes' networks

def vgg16(allocate: bool = False, *, dtype=np.float32, seed=None, method: str = "im2col") -> Sequential:
    """VGG16 (configuration D) for 224x224x3 inputs: 13 CONV 3x3 (stride 1, pad 1) + ReLU in five
    blocks, each block closed by a 2x2 max pool of stride 2, then FC 4096, FC 4096, FC 1000
    (ReLU and dropout 0.5 between).  ``allocate=False`` (the default) builds the shapes only:
    its 138M weights would take 553 MB in float32."""
    rng = np.random.default_rng(seed) if allocate else None
    layers, c = [], 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if v == "M":
            layers.append(MaxPool2d(2, stride=2))
        else:
            layers += [Conv2d(c, v, 3, padding=1, method=method, seed=rng, dtype=dtype, allocate=allocate),
                       ReLU()]
            c = v
    layers += [Flatten(),
               Linear(512 * 7 * 7, 4096, seed=rng, dtype=dtype, allocate=allocate), ReLU(), Dropout(0.5, seed=rng),
               Linear(4096, 4096, seed=rng, dtype=dtype, allocate=allocate), ReLU(), Dropout(0.5, seed=rng),
               Linear(4096, 1000, seed=rng, dtype=dtype, allocate=allocate)]
    return Sequential(*layers)


def alexnet_conv1(allocate: bool = False, *, dtype=np.float32, seed=None, method: str = "im2col") -> Sequential:
    """AlexNet's first layer on 227x227x3 inputs: 96 filters 11x11x3, stride 4, no padding -> 55x55x96."""
    return Sequential(Conv2d(3, 96, 11, stride=4, padding=0, method=method, seed=seed, dtype=dtype,
                             allocate=allocate))
