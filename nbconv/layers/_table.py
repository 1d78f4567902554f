"""The summary table of a network: per layer the output shape, activations and parameters, and
the memory totals, for one sample.  ``Layer.summary`` prints it; nbconv.summary is its public
home (with the notes' networks and the ``nbconv summary`` command) and says how memory is counted.

Only the Layer interface is read: ``output_shape``, ``param_shapes``, ``num_params`` and the
hints ``in_place``, ``buffer_shapes()`` and ``summary_detail()``; a container (Sequential,
Residual) lays out its own rows with ``summary_rows``.  So this module imports no layer, and
every layer module may import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._args import _int_at_least

__all__ = ["Row", "ModelSummary", "summarize", "summary", "format_summary", "walk", "child_name"]


@dataclass(frozen=True)
class Row:
    """One line of a summary."""

    name: str                 # dotted path as in named_parameters ("3", "5.block.0"); "input" for the input
    kind: str                 # the layer's class name, or "Input" / "Residual add"
    detail: str               # parameter shapes or window, e.g. "w 64x3x3x3, b 64"
    output_shape: tuple       # per sample, batch axis dropped
    activations: int          # values stored per sample by this row (0 for in-place layers)
    params: int               # trainable values
    buffers: int = 0          # non-trained state (batch norm's running statistics)
    in_place: bool = False
    depth: int = 0            # nesting level, for indentation


@dataclass(frozen=True)
class ModelSummary:
    input_shape: tuple
    output_shape: tuple
    rows: list = field(default_factory=list)
    dtype_bytes: int = 4

    @property
    def total_activations(self) -> int:
        return sum(r.activations for r in self.rows)

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def total_buffers(self) -> int:
        return sum(r.buffers for r in self.rows)

    @property
    def activation_bytes(self) -> int:
        """Bytes of the activations of one image in the forward pass."""
        return self.total_activations * self.dtype_bytes

    @property
    def param_bytes(self) -> int:
        return self.total_params * self.dtype_bytes

    def __str__(self) -> str:
        return format_summary(self)


def summarize(model, input_shape, dtype_bytes: int = 4) -> ModelSummary:
    """The rows and totals of ``model`` on one sample of ``input_shape`` (no batch axis)."""
    input_shape = _sample_shape(input_shape)
    _int_at_least("dtype_bytes", dtype_bytes, hint=" (4 for float32, 8 for float64)")
    rows = [Row("input", "Input", "", input_shape, math.prod(input_shape), 0)]
    out = walk(model, "", (1,) + input_shape, 0, rows)
    return ModelSummary(input_shape, tuple(out[1:]), rows, dtype_bytes)


def summary(model, input_shape, dtype_bytes: int = 4) -> str:
    """The summary table of ``model`` on one sample of ``input_shape`` (no batch axis), as text."""
    return str(summarize(model, input_shape, dtype_bytes))


def _sample_shape(input_shape) -> tuple:
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if not shape or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in shape):
        raise ValueError(f"input_shape must be the shape of one sample without the batch axis, a non-empty "
                         f"tuple of ints >= 1 such as (3, 224, 224), got {input_shape!r}")
    return tuple(int(s) for s in shape)


def walk(layer, name: str, shape: tuple, depth: int, rows: list) -> tuple:
    """Append the rows of ``layer`` to ``rows``; return its output shape (batch axis included).

    A container lays out its own rows through its ``summary_rows(name, shape, depth, rows)``
    (Sequential: its layers in order; Residual: its block and the add), calling ``walk`` on
    its children; any other layer is one row."""
    own_rows = getattr(layer, "summary_rows", None)
    if own_rows is not None:
        return own_rows(name, shape, depth, rows)
    out = tuple(layer.output_shape(shape))
    in_place = bool(getattr(layer, "in_place", False))
    buffer_shapes = getattr(layer, "buffer_shapes", lambda: {})()
    rows.append(Row(name or "0", type(layer).__name__, _describe(layer), out[1:],
                    0 if in_place else math.prod(out[1:]), layer.num_params(),
                    sum(math.prod(s) for s in buffer_shapes.values()), in_place, depth))
    return out


def child_name(name: str, key) -> str:
    """The dotted path of a child, as in named_parameters ("3", "5.block.0")."""
    return f"{name}.{key}" if name else str(key)


def _dims(shape) -> str:
    return "x".join(str(s) for s in shape)


def _describe(layer) -> str:
    shapes = layer.param_shapes()
    if shapes:
        return ", ".join(f"{k} {_dims(s)}" for k, s in shapes.items())
    if hasattr(layer, "kernel_size") and hasattr(layer, "stride"):
        k, s = layer.kernel_size, layer.stride
        return f"{_dims(k) if isinstance(k, tuple) else k} stride {_dims(s) if isinstance(s, tuple) else s}"
    detail = getattr(layer, "summary_detail", None)      # a layer's own words, such as Dropout's "p=0.5"
    return detail() if detail is not None else ""


def _bytes(n: int) -> str:
    """'60,950,432 bytes (61.0 MB, 58.1 MiB)'."""
    return f"{n:,} bytes ({n / 1e6:,.1f} MB, {n / 2 ** 20:,.1f} MiB)"


def format_summary(s: ModelSummary) -> str:
    dtype = {4: "float32", 8: "float64", 2: "float16"}.get(s.dtype_bytes, f"{s.dtype_bytes}-byte values")
    name_w = max(24, max(len("  " * r.depth + r.name + " " + r.kind) for r in s.rows) + 2)
    detail_header = "parameter shapes / window"
    detail_w = max(len(detail_header), max(len(r.detail) for r in s.rows)) + 2
    shape_w = max(12, max(len(_dims(r.output_shape)) for r in s.rows) + 4)
    header = (f"{'layer':<{name_w}}{detail_header:<{detail_w}}{'output':<{shape_w}}"
              f"{'activations':>14}{'parameters':>16}")
    rule = "-" * len(header)
    lines = [header, rule]
    for r in s.rows:
        label = "  " * r.depth + (r.name if r.kind == "Input" else f"{r.name} {r.kind}")
        acts = "(in place)" if r.in_place else f"{r.activations:,}"
        lines.append(f"{label:<{name_w}}{r.detail:<{detail_w}}{'[' + _dims(r.output_shape) + ']':<{shape_w}}"
                     f"{acts:>14}{r.params:>16,}")
    lines.append(rule)
    lines.append(f"total activations: {s.total_activations:,} per image (input included) = "
                 f"{_bytes(s.activation_bytes)} in {dtype},")
    lines.append("                   forward only (about twice that with the gradients of the backward pass)")
    lines.append(f"total parameters: {s.total_params:,} = {_bytes(s.param_bytes)} in {dtype}")
    if s.total_buffers:
        lines.append(f"buffers (running statistics, not trained): {s.total_buffers:,} = "
                     f"{_bytes(s.total_buffers * s.dtype_bytes)}")
    return "\n".join(lines)
