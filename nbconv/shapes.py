"""Shape arithmetic of convolution and pooling, and parameter counts.

    out = floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1

With ``dilation = 1`` this is the lecture's ``floor((W - F + 2P) / S) + 1``.
By default the division floors, as the lecture does; ``strict=True`` applies
the cs231n rule and rejects settings where the kernel does not tile the padded
input evenly (``(W - F + 2P) / S`` must be whole).
"""

from __future__ import annotations

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
    as the lecture (seeds/002) counts them.  Only half of them, 2 * L * M, are trained.
    """
    counts = (num_layers, maps_per_layer)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
        raise ValueError(f"num_layers and maps_per_layer must be ints >= 0, got {counts}")
    return 4 * num_layers * maps_per_layer
