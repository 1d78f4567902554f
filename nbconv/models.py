"""Ready-made networks, built from nbconv.layers.

For the digits data set (8x8 gray images, 10 classes), trained by ``nbconv train``:

    lenet()          the default of ``nbconv train``: the course's pattern
                     INPUT -> [[CONV -> BN -> RELU] * 2 -> POOL] -> [CONV -> BN -> RELU -> POOL] -> FC -> RELU -> FC
    residual_net()   a stem convolution, Residual blocks y = x + block(x) with batch norm, global
                     average pooling and one FC layer
    pattern(n, m, k) the notes' pattern, any N, M, K:
                     INPUT -> [[CONV -> RELU] * N -> POOL?] * M -> [FC -> RELU] * K -> FC
                     with batch norm before (or after) each ReLU, dropout, a choice of init
    mlp(hidden)      Flatten -> [FC -> RELU] * K -> FC, the pattern with no convolutions

The networks of the cs231n notes, for ``nbconv summary`` (shapes only by default: no weights):

    vgg16()          VGG16 on 224x224x3, the notes' VGGNet table
    alexnet_conv1()  AlexNet's first layer on 227x227x3

All are plain ``Sequential`` models: print one to see every layer.  Convolutions are 3x3 with
padding 1 (the spatial size is kept; only the 2x2 pools shrink it).  A convolution or FC layer
followed directly by batch norm has no bias, because the batch norm subtracts any per-channel
constant (its beta is the bias); every other one has a bias, initialized to 0.
Weights are drawn with He initialization (``init`` chooses another, see ``INITS``) from one
generator seeded by ``seed``, so the same seed gives the same network.
"""

from __future__ import annotations

import numpy as np

from ._args import _int_at_least
from .init import INITIALIZERS, as_rng, zeros
from .layers import (BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, ReLU,
                     Residual, Sequential)

__all__ = ["lenet", "residual_net", "residual_block", "pattern", "mlp", "INITS", "vgg16", "alexnet_conv1",
           "VGG16_INPUT", "ALEXNET_INPUT"]

VGG16_INPUT = (3, 224, 224)
ALEXNET_INPUT = (3, 227, 227)


def _size_after_pools(name: str, image_size: int, pools: int) -> int:
    size = image_size
    for _ in range(pools):
        size //= 2
    if size < 1:
        raise ValueError(f"{name}: image_size {image_size} is too small for {pools} 2x2 poolings")
    return size


# --------------------------------------------------------------------------- the building blocks

# The weight initializations a model's ``init`` takes: the short names of ``nbconv train --init``
# and the names of nbconv.init.  "zeros" sets every weight to 0 (the symmetry that random init breaks).
INITS = {"zeros": zeros, "normal": "normal", "xavier": "xavier_normal", "he": "he_normal"} | \
        {name: name for name in INITIALIZERS}


def _layer_init(name: str, init):
    """``init`` as a layer's ``init=`` takes it (a name of nbconv.init or a function), or a ValueError."""
    if callable(init):
        return init
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"{name}: init must be one of {', '.join(INITS)} (or a function (shape, rng) -> array), "
                         f"got {init!r}")
    return INITS[init]


def _check_flags(name: str, batch_norm, bn_after_relu, dropout) -> float:
    for flag, value in (("batch_norm", batch_norm), ("bn_after_relu", bn_after_relu)):
        if not isinstance(value, bool):
            raise TypeError(f"{name}: {flag} must be True or False, got {value!r}")
    if bn_after_relu and not batch_norm:
        raise ValueError(f"{name}: bn_after_relu=True places a batch norm, but batch_norm=False")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"{name}: dropout (the probability of dropping a unit) must be a number in [0, 1), "
                         f"got {dropout!r}")
    return float(dropout)


def _check_dropout_place(name: str, dropout: float, hidden: tuple) -> float:
    if dropout > 0 and not hidden:
        raise ValueError(f"{name}: dropout={dropout:g} goes after each hidden FC layer, but there are none")
    return dropout


def _widths(name: str, widths, count: int, what: str) -> tuple:
    """``widths`` as a tuple of ``count`` ints >= 1, or a ValueError naming ``name``."""
    if isinstance(widths, (int, str)) or not isinstance(widths, (tuple, list)):
        raise ValueError(f"{name} must be a tuple of {count} ints >= 1 ({what}), got {widths!r}")
    widths = tuple(widths)
    if len(widths) != count:
        raise ValueError(f"{name} must hold {count} widths ({what}), got {len(widths)}: {widths!r}")
    for i, width in enumerate(widths):
        _int_at_least(f"{name}[{i}]", width, 1)
    return widths


def _with_norm(layer, norm, *, batch_norm: bool, bn_after_relu: bool) -> list:
    """layer -> BN -> ReLU (the lecture's place), layer -> ReLU -> BN, or layer -> ReLU."""
    if not batch_norm:
        return [layer, ReLU()]
    return [layer, ReLU(), norm] if bn_after_relu else [layer, norm, ReLU()]


def _conv_block(c_in: int, c_out: int, *, method: str, rng, dtype, batch_norm: bool = True,
                bn_after_relu: bool = False, init="he_normal") -> list:
    """CONV 3x3 (padding 1) -> BN -> RELU, or CONV -> RELU -> BN, or CONV -> RELU."""
    bias = not batch_norm or bn_after_relu            # no bias right before a batch norm
    conv = Conv2d(c_in, c_out, 3, padding=1, bias=bias, method=method, init=init, seed=rng, dtype=dtype)
    return _with_norm(conv, BatchNorm2d(c_out, dtype=dtype) if batch_norm else None,
                      batch_norm=batch_norm, bn_after_relu=bn_after_relu)


def _fc_block(f_in: int, f_out: int, *, rng, dtype, batch_norm: bool, bn_after_relu: bool, dropout: float,
              init) -> list:
    """FC -> BN -> RELU (or FC -> RELU -> BN, or FC -> RELU), then Dropout(p) when p > 0."""
    bias = not batch_norm or bn_after_relu
    fc = Linear(f_in, f_out, bias=bias, init=init, seed=rng, dtype=dtype)
    layers = _with_norm(fc, BatchNorm1d(f_out, dtype=dtype) if batch_norm else None,
                        batch_norm=batch_norm, bn_after_relu=bn_after_relu)
    # last in the block, after the batch norm too: a dropout before a batch norm would make its
    # running statistics (measured with units dropped) differ from what it sees in eval mode
    return layers + [Dropout(dropout, seed=rng)] if dropout > 0 else layers


def lenet(method: str = "auto", seed=0, *, channels: tuple = (32, 64), hidden: int = 128,
          num_classes: int = 10, in_channels: int = 1, image_size: int = 8, batch_norm: bool = True,
          bn_after_relu: bool = False, dropout: float = 0.0, init=None, dtype=np.float32) -> Sequential:
    """The default CNN for digits, LeNet-style with batch norm (62,378 parameters by default)::

        (N, 1, 8, 8)
        conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN -> ReLU -> max pool 2x2    (N, c1, 4, 4)
        conv 3x3 -> BN -> ReLU -> max pool 2x2                              (N, c2, 2, 2)
        flatten -> FC -> ReLU -> FC                                         (N, num_classes)

    ``channels=(c1, c2)`` are the widths of the two stages, ``hidden`` the width of the hidden FC
    layer, ``method`` the convolution kernel ("auto", the default, is "blocked"; or "im2col", "direct").

    The variations of ``nbconv train`` (the defaults build the network above):
    ``batch_norm=False`` drops the three batch norms (the convolutions get a bias);
    ``bn_after_relu=True`` puts them after the ReLU (conv -> ReLU -> BN); ``dropout=p`` adds
    Dropout(p) after the hidden FC's ReLU; ``init`` (a key of ``INITS``) draws every weight with
    that initialization, the last FC's included; None (the default) is He for the convolutions
    and the hidden FC, Xavier (``xavier_normal``) for the last FC, which no ReLU follows.
    """
    c1, c2 = channels
    dropout = _check_flags("lenet", batch_norm, bn_after_relu, dropout)
    weights, last = ("he_normal", "xavier_normal") if init is None else (_layer_init("lenet", init),) * 2
    rng = as_rng(seed)
    size = _size_after_pools("lenet", image_size, 2)
    conv = dict(method=method, rng=rng, dtype=dtype, batch_norm=batch_norm, bn_after_relu=bn_after_relu,
                init=weights)
    return Sequential(
        *_conv_block(in_channels, c1, **conv),
        *_conv_block(c1, c1, **conv),
        MaxPool2d(2),
        *_conv_block(c1, c2, **conv),
        MaxPool2d(2),
        Flatten(),
        Linear(c2 * size * size, hidden, init=weights, seed=rng, dtype=dtype),
        ReLU(),
        *([Dropout(dropout, seed=rng)] if dropout > 0 else []),
        Linear(hidden, num_classes, init=last, seed=rng, dtype=dtype),
    )


def pattern(n: int = 2, m: int = 2, k: int = 1, *, channels=None, hidden=None, pool: bool = True,
            batch_norm: bool = True, bn_after_relu: bool = False, dropout: float = 0.0, init="he_normal",
            in_channels: int = 1, image_size: int = 8, num_classes: int = 10, method: str = "auto", seed=0,
            dtype=np.float32) -> Sequential:
    """The notes' pattern of a ConvNet, for any N, M, K::

        INPUT -> [[CONV -> RELU] * N -> POOL?] * M -> [FC -> RELU] * K -> FC

    With the defaults (n=2, m=2, k=1, channels (16, 32), hidden (64,); 25,434 parameters)::

        (N, 1, 8, 8)
        [conv 3x3 -> BN -> ReLU] * 2 -> max pool 2x2       (N, 16, 4, 4)     stage 1, channels[0]
        [conv 3x3 -> BN -> ReLU] * 2 -> max pool 2x2       (N, 32, 2, 2)     stage 2, channels[1]
        flatten                                            (N, 128)
        FC -> BN -> ReLU                                   (N, 64)           hidden[0]
        FC                                                 (N, num_classes)

    In general the M stages keep the spatial size (3x3 convolutions, padding 1) and each pool
    halves it: the flattened features are channels[-1] * (image_size // 2**m)**2 with
    ``pool=True``, channels[-1] * image_size**2 without (``in_channels`` instead of
    channels[-1] when N or M is 0).  The notes' examples: ``pattern(0, 0, 0)`` is INPUT -> FC,
    a linear classifier; ``pattern(1, 1, 0, pool=False)`` is INPUT -> CONV -> RELU -> FC;
    ``pattern(1, 2, 1)`` is INPUT -> [CONV -> RELU -> POOL] * 2 -> FC -> RELU -> FC;
    ``pattern(2, 3, 2)`` is INPUT -> [[CONV -> RELU] * 2 -> POOL] * 3 -> [FC -> RELU] * 2 -> FC.

    n, m, k          convolutions per stage, stages, hidden FC layers (ints >= 0)
    channels         the width of each stage's convolutions, M ints (default 16, 32, 64, ...: doubled
                     at each stage, as VGG does); with n=0 there are none to give
    hidden           the width of each hidden FC layer, K ints (default 64 each)
    pool             a 2x2 max pool (stride 2) closes each stage; image_size must survive M of them
    batch_norm       a batch norm between each CONV and its ReLU (BatchNorm2d) and between each hidden
                     FC and its ReLU (BatchNorm1d), where the lecture puts it: right after the fully
                     connected or convolutional layer, before the nonlinearity; that layer has no bias
    bn_after_relu    the batch norm after the ReLU instead (CONV -> RELU -> BN), the order of some
                     code examples; the layer before then keeps its bias
    dropout          p > 0 adds Dropout(p) (p the probability of dropping a unit) at the end of each
                     hidden FC block: FC -> BN -> ReLU -> Dropout; none in the conv stages
    init             the weight initialization of every CONV and FC layer, the last FC's included
                     (a key of ``INITS``: zeros, normal, xavier, he, or a name of nbconv.init)
    method           the convolution kernel ("auto" is "blocked"; "im2col", "direct"); the other layers "auto"
    """
    name = "pattern"
    n, m, k = (_int_at_least(arg, value, 0) for arg, value in (("n", n), ("m", m), ("k", k)))
    if n == 0:
        if channels is not None and not (isinstance(channels, (tuple, list)) and len(channels) == 0):
            raise ValueError(f"{name}: channels {channels!r} given, but with n=0 the stages have no convolutions; "
                             f"leave channels out")
        channels = ()
    elif channels is None:
        channels = tuple(16 * 2 ** stage for stage in range(m))        # doubled at each stage
    else:
        channels = _widths("channels", channels, m, "one per stage, m of them")
    hidden = (64,) * k if hidden is None else _widths("hidden", hidden, k, "one per hidden FC layer, k of them")
    if not isinstance(pool, bool):
        raise TypeError(f"{name}: pool must be True or False, got {pool!r}")
    dropout = _check_dropout_place(name, _check_flags(name, batch_norm, bn_after_relu, dropout), hidden)
    init = _layer_init(name, init)
    for arg, value in (("in_channels", in_channels), ("image_size", image_size), ("num_classes", num_classes)):
        _int_at_least(arg, value, 1)
    size = _size_after_pools(name, image_size, m) if pool else image_size
    rng = as_rng(seed)

    layers, c = [], in_channels
    for stage in range(m):                                   # [[CONV -> RELU] * N -> POOL?] * M
        for _ in range(n):
            layers += _conv_block(c, channels[stage], method=method, rng=rng, dtype=dtype, batch_norm=batch_norm,
                                  bn_after_relu=bn_after_relu, init=init)
            c = channels[stage]
        if pool:
            layers.append(MaxPool2d(2))
    return Sequential(*layers, *_classifier(c * size * size, hidden, num_classes, rng=rng, dtype=dtype,
                                            batch_norm=batch_norm, bn_after_relu=bn_after_relu, dropout=dropout,
                                            init=init))


def mlp(hidden=(64, 64), *, in_features: int = 64, num_classes: int = 10, batch_norm: bool = False,
        bn_after_relu: bool = False, dropout: float = 0.0, init="he", seed=0, dtype=np.float32) -> Sequential:
    """A fully connected network, the pattern without convolutions (M = 0)::

        (N, 1, 8, 8) or (N, 64)
        flatten                                     (N, in_features)
        [FC -> ReLU] * len(hidden)                  (N, hidden[-1])
        FC                                          (N, num_classes)

    ``hidden`` are the widths of the hidden layers (``()``: a linear classifier).  Flatten comes
    first, so it takes images as well as (N, in_features) rows.  ``batch_norm``, ``bn_after_relu``,
    ``dropout`` and ``init`` are those of ``pattern`` (here batch norm is off by default).
    """
    name = "mlp"
    if isinstance(hidden, (int, str)) or not isinstance(hidden, (tuple, list)):
        raise ValueError(f"hidden must be a tuple of ints >= 1 (one per hidden FC layer), got {hidden!r}")
    hidden = _widths("hidden", hidden, len(hidden), "one per hidden FC layer")
    dropout = _check_dropout_place(name, _check_flags(name, batch_norm, bn_after_relu, dropout), hidden)
    init = _layer_init(name, init)
    for arg, value in (("in_features", in_features), ("num_classes", num_classes)):
        _int_at_least(arg, value, 1)
    return Sequential(*_classifier(in_features, hidden, num_classes, rng=as_rng(seed), dtype=dtype,
                                   batch_norm=batch_norm, bn_after_relu=bn_after_relu, dropout=dropout, init=init))


def _classifier(features: int, hidden: tuple, num_classes: int, *, rng, dtype, batch_norm, bn_after_relu, dropout,
                init) -> list:
    """Flatten -> [FC -> BN -> RELU -> Dropout?] * K -> FC (the tail of ``pattern`` and all of ``mlp``)."""
    layers, f = [Flatten()], features
    for width in hidden:
        layers += _fc_block(f, width, rng=rng, dtype=dtype, batch_norm=batch_norm, bn_after_relu=bn_after_relu,
                            dropout=dropout, init=init)
        f = width
    return layers + [Linear(f, num_classes, init=init, seed=rng, dtype=dtype)]


def residual_block(channels: int, *, method: str = "auto", seed=None, dtype=np.float32) -> Residual:
    """y = x + BN(conv(ReLU(BN(conv(x))))), both convolutions 3x3 with padding 1 (shape kept)."""
    rng = as_rng(seed)
    return Residual(Sequential(
        Conv2d(channels, channels, 3, padding=1, bias=False, method=method, seed=rng, dtype=dtype),
        BatchNorm2d(channels, dtype=dtype),
        ReLU(),
        Conv2d(channels, channels, 3, padding=1, bias=False, method=method, seed=rng, dtype=dtype),
        BatchNorm2d(channels, dtype=dtype),
    ))


def residual_net(method: str = "auto", seed=0, *, channels: int = 16, blocks: int = 2, num_classes: int = 10,
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
        *_conv_block(in_channels, channels, method=method, rng=rng, dtype=dtype),
        *stage(),
        MaxPool2d(2),
        *stage(),
        GlobalAvgPool2d(),
        Linear(channels, num_classes, init="xavier_normal", seed=rng, dtype=dtype),
    )


# --------------------------------------------------------------------------- the notes' networks

def vgg16(allocate: bool = False, *, dtype=np.float32, seed=None, method: str = "auto") -> Sequential:
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


def alexnet_conv1(allocate: bool = False, *, dtype=np.float32, seed=None, method: str = "auto") -> Sequential:
    """AlexNet's first layer on 227x227x3 inputs: 96 filters 11x11x3, stride 4, no padding -> 55x55x96."""
    return Sequential(Conv2d(3, 96, 11, stride=4, padding=0, method=method, seed=seed, dtype=dtype,
                             allocate=allocate))
