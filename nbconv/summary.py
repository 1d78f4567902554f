"""Model summaries: per layer the output shape, activations, parameters and receptive field, and
the memory totals, for one sample or for training on a batch.

    from nbconv.summary import summary, vgg16
    print(summary(vgg16(), (3, 224, 224)))                          # the notes' VGGNet table
    print(summary(vgg16(), (3, 224, 224), receptive_field=True))    # with the receptive fields
    model.summary((1, 8, 8))                    # the table of any model (prints)

``input_shape`` is the shape of ONE sample, without the batch axis: (C, H, W) for images.
Everything is computed from the layers' hyper-parameters (``output_shape`` and
``param_shapes``), so no weights are needed: ``vgg16()`` builds its layers with
``allocate=False`` and allocates nothing.

How memory is counted (the convention of the VGGNet table of the cs231n notes):

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

Receptive fields (``receptive_fields``, the last two columns of ``nbconv summary``): for each
row, how many input pixels along each axis one of its outputs depends on, and the jump, the
distance in input pixels between two neighbouring outputs (the product of the strides so
far), by the recursion of ``nbconv.shapes.receptive_field_steps``, dilation included.  VGG16's
reaches 212 after its fifth pool, with a jump of 32.

Training memory (``training_memory``, ``--batch-size`` and ``--optimizer``): the activations
of a batch and their gradients, the parameters, their gradients and the optimizer's state
(``nbconv.shapes.training_memory``).

The command line: ``nbconv summary lenet|residual|vgg16|alexnet-conv1 [--batch-size B]
[--optimizer sgd|momentum|adam|...]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable


from . import models
from .layers import Conv2d, Flatten, GlobalAvgPool2d, Linear, Residual, Sequential
# the table itself is nbconv.layers._table (Layer.summary prints it); its public names are here
from .layers._table import ModelSummary, Row, _sample_shape, format_summary, summarize, walk  # noqa: F401
from .layers._table import summary as _table_summary
from .models import ALEXNET_INPUT, VGG16_INPUT, alexnet_conv1, vgg16  # noqa: F401  (their home was here)
from .shapes import OPTIMIZER_STATE, TrainingMemory, training_memory as _training_memory

__all__ = ["Row", "ModelSummary", "Field", "summarize", "summary", "receptive_fields", "training_memory",
           "format_training_memory", "vgg16", "alexnet_conv1", "im2col_sizes", "VGG16_INPUT", "ALEXNET_INPUT",
           "MODELS", "report", "register", "run"]

# The notes' TOTAL lines under the VGGNet table, which the rows do not add up to.
VGG16_TEXT_TOTALS = ("TOTAL memory: 24M * 4 bytes ~= 93MB / image (only forward! ~*2 for bwd)",
                     "TOTAL params: 138M parameters")


# --------------------------------------------------------------------------- receptive fields

@dataclass(frozen=True)
class Field:
    """The receptive field of one row's outputs, in input pixels, per spatial axis (H, W).

    ``size``: how many input pixels along each axis one output depends on; ``jump``: the distance
    in input pixels between two neighbouring outputs, the product of the strides so far.
    ``whole``: every input value (an FC layer, global average pooling).  ``size`` is None where
    the field is not defined (an input without spatial axes, or a layer that changes the
    spatial shape without a window nbconv knows)."""

    size: tuple | None
    jump: tuple | None
    whole: bool = False

    @property
    def size_text(self) -> str:
        return "all" if self.whole else _axes_text(self.size)

    @property
    def jump_text(self) -> str:
        return "-" if self.whole else _axes_text(self.jump)


def _axes_text(values) -> str:
    if values is None:
        return "-"
    return str(values[0]) if len(set(values)) == 1 else "x".join(str(v) for v in values)


def receptive_fields(model, input_shape) -> list[Field]:
    """The receptive field and jump of every row of ``summarize(model, input_shape).rows``, in order.

    Windows (convolutions, pooling) grow the field by the recursion of
    ``nbconv.shapes.receptive_field_steps``; layers that keep the spatial shape (activations,
    normalizations, dropout) keep it (their statistics are not counted, as is usual); Flatten
    keeps it; an FC layer or global average pooling sees the whole input; a Residual's sum
    sees what its block sees (which covers the shortcut's pixel)."""
    input_shape = _sample_shape(input_shape)
    axes = len(input_shape) - 1
    start = Field((1,) * axes, (1,) * axes) if axes else Field(None, None)
    fields = [start]
    _walk_fields(model, (1,) + input_shape, start, fields)
    return fields


def _walk_fields(layer, shape: tuple, field: Field, fields: list) -> tuple[tuple, Field]:
    """Append the fields of ``layer``'s rows (the order of nbconv.layers._table.walk); return its
    output shape and field."""
    if isinstance(layer, Sequential):
        for sub in layer.layers:
            shape, field = _walk_fields(sub, shape, field, fields)
        return shape, field
    if isinstance(layer, Residual):
        out, inner = _walk_fields(layer.block, shape, field, fields)
        merged = inner if inner.whole or inner.size is None or field.size is None else \
            Field(tuple(map(max, inner.size, field.size)), inner.jump)
        fields.append(merged)                                   # the row of the add
        return out, merged
    if hasattr(layer, "summary_rows"):                          # another container: rows, no fields
        rows = []
        out = walk(layer, "", shape, 0, rows)
        fields.extend([Field(None, None)] * len(rows))
        return out, Field(None, None)
    out = tuple(layer.output_shape(shape))
    field = _step(layer, shape, out, field)
    fields.append(field)
    return out, field


def _step(layer, shape: tuple, out: tuple, field: Field) -> Field:
    """The field after one layer (see receptive_fields)."""
    if field.whole or field.size is None:
        return field
    if isinstance(layer, (Linear, GlobalAvgPool2d)):
        return Field(None, None, whole=True)
    window = _window(layer, len(field.size))
    if window is not None:
        size, jump = [], []
        for r, j, (k, s, d) in zip(field.size, field.jump, window):
            size.append(r + d * (k - 1) * j)                    # r_l = r_(l-1) + d (k - 1) j_(l-1)
            jump.append(j * s)                                  # j_l = j_(l-1) s
        return Field(tuple(size), tuple(jump))
    if isinstance(layer, Flatten) or tuple(out[2:]) == tuple(shape[2:]):
        return field                                            # pointwise in space
    return Field(None, None)


def _window(layer, axes: int):
    """((kernel, stride, dilation) per axis) of a convolution or pooling layer, or None."""
    kernel, stride = getattr(layer, "kernel_size", None), getattr(layer, "stride", None)
    if kernel is None or stride is None:
        return None
    dilation = getattr(layer, "dilation", 1)
    per_axis = [v if isinstance(v, (tuple, list)) else (v,) * axes for v in (kernel, stride, dilation)]
    return list(zip(*per_axis))


# --------------------------------------------------------------------------- the table

def summary(model, input_shape, dtype_bytes: int = 4, *, receptive_field: bool = False) -> str:
    """The summary table of ``model`` on one sample of ``input_shape`` (no batch axis), as text;
    ``receptive_field=True`` adds the receptive field and the jump of every row."""
    text = _table_summary(model, input_shape, dtype_bytes)
    if not receptive_field:
        return text
    return _with_fields(text, receptive_fields(model, input_shape))


def _with_fields(text: str, fields: list[Field]) -> str:
    """The table of format_summary with two more columns: the receptive field and the jump."""
    lines = text.split("\n")
    header = lines[0] + f"{'receptive field':>17}{'jump':>6}"
    rule = "-" * len(header)
    rows = [line + f"{f.size_text:>17}{f.jump_text:>6}" for line, f in zip(lines[2:2 + len(fields)], fields)]
    return "\n".join([header, rule, *rows, rule, *lines[3 + len(fields):]])


# --------------------------------------------------------------------------- training memory

def training_memory(model, input_shape, *, batch_size: int = 1, optimizer: str = "sgd",
                    dtype_bytes: int = 4) -> TrainingMemory:
    """The values training ``model`` holds on batches of ``batch_size`` samples of ``input_shape``
    with ``optimizer`` (see nbconv.shapes.training_memory): activations of the batch and their
    gradients, parameters, their gradients, the optimizer's state and the running statistics."""
    s = summarize(model, input_shape, dtype_bytes)
    return _training_memory(s.total_activations, s.total_params, batch_size=batch_size, optimizer=optimizer,
                            buffers=s.total_buffers, dtype_bytes=dtype_bytes)


_STATE_WORDS = {"sgd": "none", "momentum": "the velocity", "nesterov": "the velocity",
                "adagrad": "the sum of squared gradients", "rmsprop": "the running mean of squared gradients",
                "adam": "the two moments m and v"}


def format_training_memory(m: TrainingMemory) -> str:
    """The training memory as a small table of values and bytes, with the total."""
    per_sample = m.activations // m.batch_size
    k = OPTIMIZER_STATE[m.optimizer]
    parts = [
        (f"activations ({per_sample:,} per sample x {m.batch_size})", m.activations),
        ("their gradients (backward pass)", m.activation_grads),
        ("parameters", m.params),
        ("their gradients", m.param_grads),
        (f"{m.optimizer} state: {k} x the parameters ({_STATE_WORDS[m.optimizer]})", m.optimizer_state),
    ]
    if m.buffers:
        parts.append(("running statistics (batch norm)", m.buffers))
    parts.append(("total", m.values))
    width = max(len(label) for label, _ in parts) + 2
    lines = [f"training memory: batch of {m.batch_size}, optimizer {m.optimizer}, {m.dtype_bytes} bytes a value",
             f"  {'':<{width}}{'values':>16}{'bytes':>18}"]
    for label, count in parts:
        size = count * m.dtype_bytes
        lines.append(f"  {label:<{width}}{count:>16,}{size:>18,}  {_size(size)}".rstrip())
    lines.append(_multiple_note(m))
    return "\n".join(lines)


def _size(n: int) -> str:
    """'(3.90 GB, 3.63 GiB)': decimal and binary units, the larger that fits."""
    for unit, power in (("GB", 3), ("MB", 2), ("kB", 1)):
        if n >= 1000 ** power:
            binary = {"GB": "GiB", "MB": "MiB", "kB": "KiB"}[unit]
            return f"({n / 1000 ** power:,.2f} {unit}, {n / 1024 ** power:,.2f} {binary})"
    return ""


def _multiple_note(m: TrainingMemory) -> str:
    head = f"parameters + gradients + optimizer state = {m.param_multiple}x the parameters"
    k = OPTIMIZER_STATE[m.optimizer]
    if k == 0:
        return f"{head}: plain SGD keeps no state (the notes count about 3x with momentum, Adagrad or RMSprop)"
    if k == 1:
        return f"{head}: the notes' \"at least 3x\" for momentum, Adagrad or RMSprop"
    return f"{head}: Adam keeps two moments, one more copy than the notes' 3x for momentum-style optimizers"


# --------------------------------------------------------------------------- im2col sizes

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


# --------------------------------------------------------------------------- the built-in models

def _vgg16_notes(model, s: ModelSummary) -> list[str]:
    fc1 = next(layer for layer in model.layers if isinstance(layer, Linear))
    fc1_weights = math.prod(fc1.param_shapes()["w"])
    return [
        f"first FC layer: 7*7*512*4096 = {fc1_weights:,} weights (+ {fc1.out_features:,} biases), "
        f"{fc1_weights / s.total_params:.0%} of all parameters",
        "",
        "The notes' TOTAL lines read:",
        *(f"    {line}" for line in VGG16_TEXT_TOTALS),
        f"but the table's rows add up to {s.total_activations:,} activations "
        f"({s.activation_bytes / 1e6:.0f} MB per image forward in float32, not 24M / 93 MB) "
        f"and to {s.total_params:,} parameters with biases (the text rounds to 138M).",
    ]


def _alexnet_conv1_notes(model, s: ModelSummary) -> list[str]:
    conv = model[0]
    sizes = im2col_sizes(conv, ALEXNET_INPUT)
    w_count = math.prod(conv.param_shapes()["w"])
    OH, OW = s.output_shape[1:]
    return [
        f"output: (227 - 11) / 4 + 1 = {OH}, so {OH}x{OW}x{s.output_shape[0]}",
        f"parameters: 96*11*11*3 = {w_count:,} weights + 96 biases = {s.total_params:,}",
        "as one matrix product (im2col):",
        f"    X_col {sizes['X_col'][0]} x {sizes['X_col'][1]}   (11*11*3 = {sizes['X_col'][0]} values per "
        f"receptive field, {OH}*{OW} = {sizes['X_col'][1]} positions)",
        f"    W_row {sizes['W_row'][0]} x {sizes['W_row'][1]}   (one row per filter)",
        f"    W_row @ X_col = {sizes['out'][0]} x {sizes['out'][1]}, reshaped to {OH}x{OW}x{sizes['out'][0]}",
    ]


@dataclass(frozen=True)
class BuiltIn:
    """A network ``nbconv summary`` knows: how to build it, its input, a title, notes after the table."""

    build: Callable
    input_shape: tuple
    title: str
    notes: Callable | None = None


MODELS = {
    "lenet": BuiltIn(models.lenet, (1, 8, 8),
                     "lenet, the default of `nbconv train`, on one 1x8x8 digits image"),
    "residual": BuiltIn(models.residual_net, (1, 8, 8),
                        "residual (`nbconv train --model residual`) on one 1x8x8 digits image"),
    "pattern": BuiltIn(models.pattern, (1, 8, 8),
                       "pattern, the notes' INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC "
                       "(`nbconv train --model pattern`, N, M, K = 2, 2, 1) on one 1x8x8 digits image"),
    "mlp": BuiltIn(models.mlp, (1, 8, 8),
                   "mlp, a plain multilayer perceptron (`nbconv train --model mlp`) on one 1x8x8 digits image"),
    "vgg16": BuiltIn(models.vgg16, VGG16_INPUT,
                     "VGG16 on a 224x224x3 image (the VGGNet table of the cs231n notes), shapes as [C x H x W]",
                     _vgg16_notes),
    "alexnet-conv1": BuiltIn(models.alexnet_conv1, ALEXNET_INPUT,
                             "AlexNet CONV1: 96 filters 11x11x3, stride 4, padding 0, on a 227x227x3 image",
                             _alexnet_conv1_notes),
}


def report(name: str, *, batch_size: int | None = None, optimizer: str | None = None) -> str:
    """What ``nbconv summary NAME`` prints: the table with receptive fields, the model's notes and,
    when ``batch_size`` or ``optimizer`` is given, the training memory (batch 1 and plain SGD
    unless given)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    built = MODELS[name]
    model = built.build()
    s = summarize(model, built.input_shape)
    lines = [built.title, summary(model, built.input_shape, receptive_field=True)]
    if built.notes is not None:
        lines += built.notes(model, s)
    if batch_size is not None or optimizer is not None:
        memory = _training_memory(s.total_activations, s.total_params, batch_size=batch_size or 1,
                                  optimizer=optimizer or "sgd", buffers=s.total_buffers, dtype_bytes=s.dtype_bytes)
        lines += ["", format_training_memory(memory)]
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line

def register(subparsers) -> None:
    from .cli import int_option
    p = subparsers.add_parser("summary", help="per-layer shapes, activations, parameters, receptive fields and "
                                              "memory of the built-in networks",
                              description="Per layer: output shape, activations, parameters, receptive field "
                                          "and jump; with --batch-size or --optimizer, the memory of training.")
    p.add_argument("model", choices=list(MODELS),
                   help="lenet, residual, pattern, mlp: the digits networks of nbconv train; vgg16: the notes' VGGNet table; "
                        "alexnet-conv1: AlexNet's first layer and its im2col")
    p.add_argument("--batch-size", type=int_option(1), metavar="B",
                   help="add the memory of training on batches of B (activations and their gradients for the "
                        "batch, parameters, gradients, optimizer state)")
    p.add_argument("--optimizer", choices=list(OPTIMIZER_STATE),
                   help="the optimizer whose state the training memory counts (default sgd: none; momentum: "
                        "1 copy of the parameters; adam: 2)")
    p.set_defaults(func=run)


def run(args) -> int:
    print(report(args.model, batch_size=getattr(args, "batch_size", None), optimizer=getattr(args, "optimizer", None)))
    return 0
