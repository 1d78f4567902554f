"""Model summaries: per layer the output shape, activations and parameters, and the memory totals.

    from nbconv.summary import summary, vgg16
    print(summary(vgg16(), (3, 224, 224)))      # the notes' VGGNet table, from a real Sequential
    model.summary((1, 8, 8))                    # the same for any model (prints)

``input_shape`` is the shape of ONE sample, without the batch axis: (C, H, W) for images.
Everything is computed from the layers' hyper-parameters (``output_shape`` and
``param_shapes``), so no weights are needed: ``vgg16()`` builds its layers with
``allocate=False`` and allocates nothing.

How memory is counted (the convention of the notes' VGGNet table, seeds/003):

- activations are the values stored per image in the forward pass: the INPUT row counts,
  every CONV/POOL/FC/normalization output counts;
- layers marked ``in_place`` (elementwise activations such as ReLU, Dropout, and Flatten,
  which is a view) add nothing: the notes fold the ReLU into its CONV row.  nbconv's
  functional ops do allocate a new output for them; the count is what an in-place
  implementation needs, as the table assumes;
- the backward pass stores a gradient of the same size, so training needs about twice that;
- parameters are the trainable arrays (weights and biases); batch norm's running statistics
  are reported separately as buffers.

With these rules the rows of the notes' table add up to 15,237,608 activations (60,950,432
bytes, 61 MB per image in float32) and 138,357,544 parameters; the notes' own TOTAL line
prints 24M / 93 MB and 138M (`nbconv summary vgg16` prints both and says why they differ).

The command line: ``nbconv summary vgg16`` and ``nbconv summary alexnet-conv1``.
"""

from __future__ import annotations

import math

import numpy as np

from .layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential
# the table itself is nbconv.layers._table (Layer.summary prints it); its public names are here
from .layers._table import ModelSummary, Row, _sample_shape, format_summary, summarize, summary  # noqa: F401

__all__ = ["Row", "ModelSummary", "summarize", "summary", "vgg16", "alexnet_conv1", "im2col_sizes",
           "VGG16_INPUT", "ALEXNET_INPUT", "register", "run"]

VGG16_INPUT = (3, 224, 224)
ALEXNET_INPUT = (3, 227, 227)

# The notes' TOTAL lines under the VGGNet table (seeds/003), which the rows do not add up to.
VGG16_TEXT_TOTALS = ("TOTAL memory: 24M * 4 bytes ~= 93MB / image (only forward! ~*2 for bwd)",
                     "TOTAL params: 138M parameters")


# --------------------------------------------------------------------------- the notes' networks

def vgg16(allocate: bool = False, *, dtype=np.float32, seed=None, method: str = "im2col") -> Sequential:
    """VGG16 (configuration D) for 224x224x3 inputs: 13 CONV 3x3 (stride 1, pad 1) + ReLU in five
    blocks, each block closed by a 2x2 max pool of stride 2, then FC 4096, FC 4096, FC 1000
    (ReLU and dropout 0.5 between).  ``allocate=False`` (the default) builds the shapes only."""
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


def im2col_sizes(conv: Conv2d, input_shape) -> dict:
    """The matrices of conv as one matrix product, for ONE image and one group:

        X_col (C/groups * KH * KW, OH * OW)   one column per output position (a stretched receptive field)
        W_row (F/groups, C/groups * KH * KW)  one row per filter
        out   (F/groups, OH * OW)             W_row @ X_col, reshaped to (F, OH, OW)

    (nbconv's im2col stacks the N images side by side: X_col has N * OH * OW columns.)"""
    input_shape = _sample_shape(input_shape)
    _, F_, OH, OW = conv.output_shape((1,) + input_shape)
    C, G = input_shape[0], conv.groups
    k = (C // G) * conv.kernel_size[0] * conv.kernel_size[1]
    return {"X_col": (k, OH * OW), "W_row": (F_ // G, k), "out": (F_ // G, OH * OW)}


def vgg16_report() -> str:
    model = vgg16()
    s = summarize(model, VGG16_INPUT)
    fc1 = next(layer for layer in model.layers if isinstance(layer, Linear))
    fc1_weights = math.prod(fc1.param_shapes()["w"])
    return "\n".join([
        "VGG16 on a 224x224x3 image (the notes' VGGNet table, seeds/003), shapes as [C x H x W]",
        str(s),
        f"first FC layer: 7*7*512*4096 = {fc1_weights:,} weights (+ {fc1.out_features:,} biases), "
        f"{fc1_weights / s.total_params:.0%} of all parameters",
        "",
        "The notes' TOTAL lines read:",
        *(f"    {line}" for line in VGG16_TEXT_TOTALS),
        f"but the table's rows add up to {s.total_activations:,} activations "
        f"({s.activation_bytes / 1e6:.0f} MB per image forward in float32, not 24M / 93 MB) "
        f"and to {s.total_params:,} parameters with biases (the text rounds to 138M).",
    ])


def alexnet_conv1_report() -> str:
    model = alexnet_conv1()
    conv = model[0]
    s = summarize(model, ALEXNET_INPUT)
    sizes = im2col_sizes(conv, ALEXNET_INPUT)
    w_count = math.prod(conv.param_shapes()["w"])
    C, H, W = ALEXNET_INPUT
    OH, OW = s.output_shape[1:]
    return "\n".join([
        "AlexNet CONV1: 96 filters 11x11x3, stride 4, padding 0, on a 227x227x3 image",
        str(s),
        f"output: (227 - 11) / 4 + 1 = {OH}, so {OH}x{OW}x{s.output_shape[0]}",
        f"parameters: 96*11*11*3 = {w_count:,} weights + 96 biases = {s.total_params:,}",
        "as one matrix product (im2col):",
        f"    X_col {sizes['X_col'][0]} x {sizes['X_col'][1]}   (11*11*3 = {sizes['X_col'][0]} values per "
        f"receptive field, {OH}*{OW} = {sizes['X_col'][1]} positions)",
        f"    W_row {sizes['W_row'][0]} x {sizes['W_row'][1]}   (one row per filter)",
        f"    W_row @ X_col = {sizes['out'][0]} x {sizes['out'][1]}, reshaped to {OH}x{OW}x{sizes['out'][0]}",
    ])


REPORTS = {"vgg16": vgg16_report, "alexnet-conv1": alexnet_conv1_report}


# --------------------------------------------------------------------------- command line

def register(subparsers) -> None:
    p = subparsers.add_parser("summary", help="per-layer shapes, activations, parameters and memory "
                                              "of the notes' networks")
    p.add_argument("model", choices=sorted(REPORTS), help="vgg16: the notes' VGGNet table; "
                                                          "alexnet-conv1: AlexNet's first layer and its im2col")
    p.set_defaults(func=run)


def run(args) -> int:
    print(REPORTS[args.model]())
    return 0
