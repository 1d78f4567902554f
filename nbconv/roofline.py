"""Performance on paper: the roofline of every device kernel at the benchmark shapes.

    python -m nbconv.roofline          prints the table (docs/gpu.md explains how to read it)

For one op, forward + backward, float32, this counts

- FLOPs: 2 per multiply-add (a GEMM-like op of M*N*K multiply-adds is 2*M*N*K FLOPs), every
  other add, multiply, divide, compare, exp or sqrt counted as 1.  conv2d and linear are the
  dense products only (the bias add and db's sum, under 1 % of them, are left out); the
  backward is twice the forward (dx and dw are one product each, the size of the forward's).
  The memory-bound ops are counted from their formula, per element (see ``map_cost``).
- bytes: the least any implementation must move, each input read once and each output
  written once, 4 bytes a float32 (max pooling's int64 switches 8).  What a kernel really moves
  is more: the im2col path writes and reads its column matrix, a thread per output re-reads x.
- arithmetic intensity = FLOPs / bytes, and the expected time on a GPU
  ``max(FLOPs / peak FLOP rate, bytes / peak bandwidth)``: the roofline.  An op whose intensity
  is above the GPU's ridge point (peak FLOP rate / bandwidth) is compute-bound, below it
  memory-bound.

The peaks are the vendors' published peak rates (``GPUS``), never reached in practice: the
expected time is a lower bound, and measured / expected says how far a kernel is from it.

Float32: every CUDA kernel computes float32 data in float32 (``kernels/cuda/__init__.py``;
tests/cuda/test_ptx.py finds no float64 instruction in their float32 code), so the FP32 rate
bounds them all.  ``Row.seconds(gpu, float64=True)`` gives the bound of the same op on float64
data, at the FP64 rate: 1/2 of FP32 on an H200, 1/32 on a T4.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from .bench import CONV_SHAPES, LINEAR_SHAPE, MAP_SHAPE

__all__ = ["GPU", "H200", "T4", "GPUS", "Cost", "Row", "conv2d_cost", "linear_cost", "map_cost",
           "MAP_OPS", "roofline_rows", "gpus_for", "format_roofline", "main"]

FLOAT32 = 4        # bytes
INT64 = 8


@dataclass(frozen=True)
class GPU:
    name: str
    fp32: float          # FLOP/s, float32 without tensor cores
    fp64: float          # FLOP/s, float64 without tensor cores
    bandwidth: float     # bytes/s of the device memory

    @property
    def ridge(self) -> float:
        """FLOPs per byte above which an op is compute-bound at the float32 rate."""
        return self.fp32 / self.bandwidth


# Published peak rates (not measured).  Sources:
# - H200: NVIDIA H200 Tensor Core GPU datasheet, the SXM form factor: FP32 67 TFLOP/s, FP64
#   34 TFLOP/s (both without tensor cores), 141 GB of HBM3e at 4.8 TB/s.
# - T4: NVIDIA T4 Tensor Core GPU datasheet: FP32 8.1 TFLOP/s, 16 GB of GDDR6 at 320 GB/s.  The
#   datasheet gives no FP64 rate; Turing (TU104) runs float64 at 1/32 of float32, 0.25 TFLOP/s.
H200 = GPU("H200", fp32=67e12, fp64=34e12, bandwidth=4.8e12)
T4 = GPU("T4", fp32=8.1e12, fp64=8.1e12 / 32, bandwidth=320e9)
GPUS = (H200, T4)


@dataclass(frozen=True)
class Cost:
    flops: float
    bytes: float

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.flops + other.flops, self.bytes + other.bytes)


@dataclass(frozen=True)
class Row:
    """One op at one shape, forward + backward, float32."""
    op: str
    shape: tuple
    method: str              # conv2d's "direct" or "im2col"; "" for the others
    forward: Cost
    backward: Cost

    @property
    def flops(self) -> float:
        return self.forward.flops + self.backward.flops

    @property
    def bytes(self) -> float:
        return self.forward.bytes + self.backward.bytes

    @property
    def intensity(self) -> float:
        """FLOPs per byte."""
        return self.flops / self.bytes

    def seconds(self, gpu: GPU, float64: bool = False) -> float:
        """The roofline: max(FLOPs / peak FLOP rate, bytes / bandwidth), at the FP32 rate, or
        at the FP64 rate with ``float64=True`` (the op on float64 data)."""
        rate = gpu.fp64 if float64 else gpu.fp32
        return max(self.flops / rate, self.bytes / gpu.bandwidth)

    def bound(self, gpu: GPU, float64: bool = False) -> str:
        rate = gpu.fp64 if float64 else gpu.fp32
        return "compute" if self.flops / rate > self.bytes / gpu.bandwidth else "memory"


# ----------------------------------------------------------------------------- the counts

def conv2d_cost(shape) -> tuple[Cost, Cost]:
    """(forward, backward) of conv2d at (N, C, H, W, F, K, stride, padding).

    forward  y = conv(x, w) + b:   2*N*F*OH*OW*C*K*K FLOPs; reads x, w, b, writes y
    backward dx and dw:            twice that;           reads dy, x, w, writes dx, dw, db
    """
    N, C, H, W, F, K, stride, pad = shape
    OH = (H + 2 * pad - K) // stride + 1
    OW = (W + 2 * pad - K) // stride + 1
    x, w, b, y = N * C * H * W, F * C * K * K, F, N * F * OH * OW
    flops = 2.0 * N * F * OH * OW * C * K * K
    return (Cost(flops, FLOAT32 * (x + w + b + y)),
            Cost(2 * flops, FLOAT32 * ((y + x + w) + (x + w + b))))


def linear_cost(shape) -> tuple[Cost, Cost]:
    """(forward, backward) of y = x w^T + b at (N, D, M): x (N, D), w (M, D), y (N, M).

    forward 2*N*D*M FLOPs, reads x, w, b, writes y; backward (dx, dw) twice that, reads dy, x, w,
    writes dx, dw, db.
    """
    N, D, M = shape
    x, w, b, y = N * D, M * D, M, N * M
    flops = 2.0 * N * D * M
    return (Cost(flops, FLOAT32 * (x + w + b + y)),
            Cost(2 * flops, FLOAT32 * ((y + x + w) + (x + w + b))))


# The memory-bound ops at one (N, C, H, W) input of E elements, with the hyper-parameters of
# nbconv.bench (2x2 pooling of stride 2, softmax over the channels): FLOPs per element of x
# (forward, backward), and bytes in units of the input's bytes S = 4E (forward, backward), the
# same units as nbconv.bench.BYTES.
MAP_OPS = {
    # fwd: 3 compares per output (E/4 of them); bwd: one add of dout into the winner per output.
    # bytes: fwd x + out (S/4) + int64 switches (S/2); bwd dout + switches + dx
    "max_pool2d": ((0.75, 0.25), (1.75, 1.75)),
    # fwd: 4 adds + 1 multiply per output; bwd: dout / 4 per input pixel.  fwd x + out; bwd dout + dx
    "avg_pool2d": ((1.25, 1.0), (1.25, 1.25)),
    # fwd: mean (1), var (x - mean, square, add: 3), xhat (2), gamma * xhat + beta (2);
    # bwd: dbeta (1), dgamma (2), dxhat (1), its two means (1 + 2), dx (4).
    # fwd x + xhat (cached) + out; bwd dout + xhat + dx
    "batch_norm": ((8.0, 11.0), (3.0, 3.0)),
    # fwd: one compare; bwd: one compare-and-select.  fwd x + y; bwd dout + x + dx
    "relu": ((1.0, 1.0), (2.0, 3.0)),
    # fwd: 1 / (1 + exp(-x)): negate, exp, add, divide; bwd: dout * y * (1 - y).  fwd x + y; bwd dout + y + dx
    "sigmoid": ((4.0, 3.0), (2.0, 3.0)),
    # fwd: max (1), x - max and exp (2), the sum (1), the divide (1);
    # bwd: s * (dout - sum(dout * s)): the sum (2), subtract, multiply.  fwd x + s; bwd dout + s + dx
    "softmax": ((5.0, 4.0), (2.0, 3.0)),
}

def map_cost(op: str, shape) -> tuple[Cost, Cost]:
    """(forward, backward) of a memory-bound op of MAP_OPS on an (N, C, H, W) input."""
    N, C, H, W = shape
    E = N * C * H * W
    (flops_fwd, flops_bwd), (bytes_fwd, bytes_bwd) = MAP_OPS[op]
    return (Cost(flops_fwd * E, bytes_fwd * FLOAT32 * E), Cost(flops_bwd * E, bytes_bwd * FLOAT32 * E))


def conv2d_row(shape, method: str) -> Row:
    return Row("conv2d", tuple(shape), method, *conv2d_cost(shape))


def linear_row(shape) -> Row:
    return Row("linear", tuple(shape), "", *linear_cost(shape))


def map_row(op: str, shape) -> Row:
    return Row(op, tuple(shape), "", *map_cost(op, shape))


def roofline_rows(conv_shapes=CONV_SHAPES, map_shape=MAP_SHAPE, linear_shape=LINEAR_SHAPE,
                  map_ops=tuple(MAP_OPS)) -> list[Row]:
    """One row per device kernel family and benchmark shape: conv2d direct and im2col at every
    conv shape, then linear, then the memory-bound ops at map_shape."""
    rows = [conv2d_row(shape, method) for shape in conv_shapes for method in ("direct", "im2col")]
    rows.append(linear_row(linear_shape))
    rows += [map_row(op, map_shape) for op in map_ops]
    return rows


def gpus_for(device_name: str) -> tuple:
    """The GPUs of GPUS whose name is in device_name ("NVIDIA H200" -> (H200,)); all of them
    when none is."""
    matches = tuple(gpu for gpu in GPUS if gpu.name.lower() in device_name.lower())
    return matches or GPUS


# ----------------------------------------------------------------------------- the table

def shape_text(row: Row) -> str:
    if row.op == "conv2d":
        N, C, H, W, F, K, stride, pad = row.shape
        return f"N{N} C{C} {H}x{W} F{F} K{K} s{stride} p{pad}"
    if row.op == "linear":
        N, D, M = row.shape
        return f"N{N} D{D} M{M}"
    return "x " + "x".join(map(str, row.shape))


def _us(seconds) -> str:
    return f"{seconds * 1e6:.1f}"


def format_roofline(rows, gpus=GPUS) -> str:
    """The rows as a Markdown table: FLOPs, bytes, intensity, then per GPU the expected time at
    the FP32 rate with what bounds it."""
    head = ["op", "shape", "method", "GFLOP", "MB", "FLOP/B"]
    for gpu in gpus:
        head += [f"{gpu.name} us", f"{gpu.name} bound"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        cells = [row.op, shape_text(row), row.method or "-", f"{row.flops / 1e9:.3f}",
                 f"{row.bytes / 1e6:.1f}", f"{row.intensity:.2f}"]
        for gpu in gpus:
            cells += [_us(row.seconds(gpu)), row.bound(gpu)]
        lines.append("| " + " | ".join(cells) + " |")
    ridges = ", ".join(f"{gpu.name} {gpu.fp32 / 1e12:g} TFLOP/s FP32, {gpu.fp64 / 1e12:.3g} TFLOP/s FP64, "
                       f"{gpu.bandwidth / 1e12:g} TB/s, ridge {gpu.ridge:.1f} FLOP/B" for gpu in gpus)
    lines += ["", f"forward + backward, float32, 2 FLOPs per multiply-add, the least bytes (each input read "
                  f"once, each output written once); published peaks: {ridges}.",
              "us: max(FLOPs / FP32 rate, bytes / bandwidth)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    print(format_roofline(roofline_rows()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
