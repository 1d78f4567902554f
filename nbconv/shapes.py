"""Shape arithmetic of convolution and pooling, receptive fields, parameter and memory counts.

    out = floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1

With ``dilation = 1`` this is the lecture's ``floor((W - F + 2P) / S) + 1``.
By default the division floors, as the lecture does; ``strict=True`` applies
the cs231n rule and rejects settings where the kernel does not tile the padded
input evenly (``(W - F + 2P) / S`` must be whole).

The comparisons of the cs231n notes, as functions (``nbconv example receptive-field`` and
``nbconv example parameter-count`` replay them):

    receptive_field([3, 3, 3])                    7    three 3x3 layers see 7x7, as one 7x7 layer
    conv_stack_param_count(C, 3, depth=3)         27 C^2 weights, against
    conv_stack_param_count(C, 7, depth=1)         49 C^2
    receptive_field([3, 3, 3], dilations=[1, 2, 4])   15: dilated stacks grow faster
    unshared_param_count(3, 96, 11, (55, 55))     105,705,600: AlexNet's CONV1 without parameter sharing
    conv_stack_activations((3, 224, 224), [64, 64, 64])   9,633,792 ("about 10M")
    training_memory(activations, params, batch_size=B, optimizer="momentum")   values to hold in training
"""

from __future__ import annotations

from dataclasses import dataclass

from ._args import _int_at_least


def conv_output_size(size: int, kernel: int, *, stride: int = 1, padding: int = 0,
                     dilation: int = 1, strict: bool = False, name: str = "input") -> int:
    """Output length along one axis of a convolution or pooling window."""
    for arg, value, minimum in (("size", size, 0), ("kernel", kernel, 1), ("stride", stride, 1),
                                ("padding", padding, 0), ("dilation", dilation, 1)):
        _int_at_least(arg, value, minimum)
    span = dilation * (kernel - 1) + 1          # the receptive field of one output
    room = size + 2 * padding - span            # how far the window can slide
    if room < 0:
        raise ValueError(
            f"kernel of size {kernel} (dilation {dilation}, span {span}) is larger than the padded "
            f"{name} of size {size} + 2*{padding} = {size + 2 * padding}"
        )
    if strict and room % stride != 0:
        raise ValueError(
            f"stride {stride} does not fit evenly: (size {size} - span {span} + 2*padding {padding}) "
            f"/ stride = {room}/{stride} is not whole (strict mode)"
        )
    return room // stride + 1


def conv2d_output_shape(hw: tuple[int, int], kernel_size, *, stride=1, padding=0, dilation=1,
                        strict: bool = False) -> tuple[int, int]:
    """(H_out, W_out) of a 2-D convolution or pooling; every argument an int or an (h, w) pair."""
    k, s, p, d = (_pair(v) for v in (kernel_size, stride, padding, dilation))
    return tuple(conv_output_size(hw[a], k[a], stride=s[a], padding=p[a], dilation=d[a],
                                  strict=strict, name=("height", "width")[a]) for a in (0, 1))


def conv2d_param_count(in_channels: int, out_channels: int, kernel_size, *, groups: int = 1,
                       bias: bool = True) -> int:
    """(F_h * F_w * C / groups) * K weights plus K biases: the notes' count for a CONV layer."""
    kh, kw = _pair(kernel_size)
    return out_channels * (in_channels // groups) * kh * kw + (out_channels if bias else 0)


def conv1d_param_count(in_channels: int, out_channels: int, kernel_size: int, *, groups: int = 1,
                       bias: bool = True) -> int:
    return out_channels * (in_channels // groups) * kernel_size + (out_channels if bias else 0)


def linear_param_count(in_features: int, out_features: int, *, bias: bool = True) -> int:
    """An FC layer: in * out weights plus out biases."""
    return in_features * out_features + (out_features if bias else 0)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def batch_norm_param_count(num_layers: int, maps_per_layer: int) -> int:
    """Numbers batch norm keeps: N_BN = 4 * L * M for L layers of M feature maps each.

    Every feature map (channel) has 4: 2 statistics (the running mean and variance,
    used at inference) and 2 trainable parameters (the scale gamma and shift beta),
    as the second lecture counts them.  Only half of them, 2 * L * M, are trained.
    """
    counts = (num_layers, maps_per_layer)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
        raise ValueError(f"num_layers and maps_per_layer must be ints >= 0, got {counts}")
    return 4 * num_layers * maps_per_layer


# --------------------------------------------------------------------------- receptive fields

def receptive_field_steps(kernel_sizes, strides=1, dilations=1) -> list[tuple[int, int]]:
    """(receptive field, jump) after each layer of a stack, along one axis, in input pixels.

    The receptive field r of an output is the span of input pixels it depends on; the jump j
    is the distance, in input pixels, between two neighbouring outputs (the product of the
    strides so far).  Starting from one input pixel (r_0 = 1, j_0 = 1), a layer with kernel k,
    stride s and dilation d gives

        r_l = r_(l-1) + d_l * (k_l - 1) * j_(l-1)     its window spans d(k - 1) + 1 of its inputs,
        j_l = j_(l-1) * s_l                            which lie j_(l-1) input pixels apart

    ``strides`` and ``dilations`` are one int for every layer or a list as long as
    ``kernel_sizes``.  A pooling layer is a window too (dilation 1).  Padding does not enter:
    near the border part of the field lies on the padding.
    """
    kernel_sizes = list(kernel_sizes)
    strides = _per_layer("strides", strides, len(kernel_sizes))
    dilations = _per_layer("dilations", dilations, len(kernel_sizes))
    rf, jump, steps = 1, 1, []
    for k, s, d in zip(kernel_sizes, strides, dilations):
        _int_at_least("kernel size", k)
        rf += d * (k - 1) * jump
        jump *= s
        steps.append((rf, jump))
    return steps


def receptive_field(kernel_sizes, strides=1, dilations=1) -> int:
    """The effective receptive field of the last layer of a stack, along one axis:

        r = 1 + sum_l d_l * (k_l - 1) * (s_1 * ... * s_(l-1))

    Three 3x3 layers of stride 1: 1 + 2 + 2 + 2 = 7, the field of one 7x7 layer; with
    dilations 1, 2, 4: 1 + 2 + 4 + 8 = 15.  (See ``receptive_field_steps``.)"""
    steps = receptive_field_steps(kernel_sizes, strides, dilations)
    return steps[-1][0] if steps else 1


def _per_layer(name: str, value, count: int) -> list:
    values = list(value) if isinstance(value, (list, tuple)) else [value] * count
    if len(values) != count:
        raise ValueError(f"{name} must be one int or one per layer ({count}), got {value!r}")
    for v in values:
        _int_at_least(name[:-1], v)
    return values


# --------------------------------------------------------------------------- the notes' counts

def conv_stack_param_count(channels: int, kernel_size: int, depth: int, *, bias: bool = False) -> int:
    """Weights of ``depth`` CONV layers of ``kernel_size`` x ``kernel_size`` filters that keep ``channels``
    channels: depth * C * (k * k * C) = depth * k^2 * C^2 (the notes leave the biases out).

    Three 3x3 layers: 27 C^2; one 7x7 layer, with the same receptive field: 49 C^2."""
    _int_at_least("depth", depth)
    return depth * conv2d_param_count(channels, channels, kernel_size, bias=bias)


def unshared_param_count(in_channels: int, out_channels: int, kernel_size, output_hw, *,
                         bias: bool = True) -> int:
    """Parameters of a CONV layer WITHOUT parameter sharing (a locally connected layer): each of the
    OH * OW * F output neurons has its own C * KH * KW weights and its own bias,

        OH * OW * F * (C * KH * KW + 1)

    AlexNet's CONV1 (55x55x96 outputs, 11x11x3 windows): 290,400 * 364 = 105,705,600, against
    34,944 with sharing (``conv2d_param_count(3, 96, 11)``)."""
    oh, ow = _pair(output_hw)
    _int_at_least("output height", oh), _int_at_least("output width", ow)
    _int_at_least("out_channels", out_channels)
    per_neuron = conv2d_param_count(in_channels, 1, kernel_size, bias=bias)   # C*KH*KW (+ 1)
    return oh * ow * out_channels * per_neuron


def conv_stack_activations(input_shape, filters, kernel_size=3, *, stride=1, padding=1, dilation=1) -> int:
    """Values stored per image by a stack of CONV layers on ``input_shape`` (C, H, W), one layer per
    entry of ``filters`` (its number of filters K): the sum of K * H_out * W_out over the layers
    (the input itself not counted; the ReLUs computed in place).

    The notes' example, three 3x3 CONV layers of 64 filters with padding 1 on 224x224x3:
    3 * 224 * 224 * 64 = 9,633,792, "about 10M activations"."""
    _, H, W = input_shape
    total = 0
    for K in filters:
        _int_at_least("filters", K)
        H, W = conv2d_output_shape((H, W), kernel_size, stride=stride, padding=padding, dilation=dilation)
        total += K * H * W
    return total


# Per-parameter arrays each optimizer of nbconv.optim keeps (its ``state_names``): momentum's
# velocity, Adagrad's and RMSprop's sum of squares, Adam's two moments.
OPTIMIZER_STATE = {"sgd": 0, "momentum": 1, "nesterov": 1, "adagrad": 1, "rmsprop": 1, "adam": 2}


@dataclass(frozen=True)
class TrainingMemory:
    """Values held while training on a batch, by kind (multiply by ``dtype_bytes`` for bytes).

    The notes' three sources: the activations and their gradients (same size), the parameters
    with their gradients and the optimizer's state (``OPTIMIZER_STATE`` copies of the
    parameters), and the rest (here: batch norm's running statistics, ``buffers``)."""

    batch_size: int
    optimizer: str
    activations: int           # forward values of the whole batch
    activation_grads: int      # their gradients in the backward pass, the same count
    params: int
    param_grads: int
    optimizer_state: int
    buffers: int = 0
    dtype_bytes: int = 4

    @property
    def values(self) -> int:
        return (self.activations + self.activation_grads + self.params + self.param_grads
                + self.optimizer_state + self.buffers)

    @property
    def bytes(self) -> int:
        return self.values * self.dtype_bytes

    @property
    def param_multiple(self) -> int:
        """Parameters, gradients and optimizer state as a multiple of the parameters: 2 for SGD,
        3 for momentum (the notes' "at least 3x"), 4 for Adam."""
        return 2 + OPTIMIZER_STATE[self.optimizer]


def training_memory(activations: int, params: int, *, batch_size: int = 1, optimizer: str = "sgd",
                    buffers: int = 0, dtype_bytes: int = 4) -> TrainingMemory:
    """What training holds, from a network's counts per sample:

        activations * B   the forward values of a batch of B
        activations * B   their gradients
        params            the weights and biases
        params            their gradients
        params * k        the optimizer's state, k = OPTIMIZER_STATE[optimizer]
                          (sgd 0, momentum 1, adam 2, ...)
        buffers           batch norm's running statistics

    ``activations`` and ``params`` are per-sample counts such as ``summarize(model, shape)``'s
    ``total_activations`` and ``total_params``."""
    for name, value, minimum in (("activations", activations, 0), ("params", params, 0),
                                 ("batch_size", batch_size, 1), ("buffers", buffers, 0),
                                 ("dtype_bytes", dtype_bytes, 1)):
        _int_at_least(name, value, minimum)
    if optimizer not in OPTIMIZER_STATE:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_STATE)}, got {optimizer!r}")
    batch = activations * batch_size
    return TrainingMemory(batch_size, optimizer, batch, batch, params, params,
                          OPTIMIZER_STATE[optimizer] * params, buffers, dtype_bytes)
