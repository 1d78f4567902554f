"""nbconv.roofline: the FLOP and byte counts against hand computations at small shapes, the
roofline's identities, and the printed table."""

import subprocess
import sys

import pytest

from nbconv import bench
from nbconv.roofline import (GPUS, H200, T4, Cost, conv2d_cost, conv2d_row, format_roofline, gpus_for,
                             linear_cost, map_cost, map_row, roofline_rows)


# --------------------------------------------------------------------------- the counts by hand

def test_conv2d_counts_by_hand():
    # N=2, C=3, 5x5, F=4, K=3, stride 1, pad 1: OH = OW = 5.
    # forward: 2 * N*F*OH*OW * C*K*K = 2 * (2*4*25) * (3*9) = 10800 FLOPs;
    # x 2*3*25 = 150, w 4*3*9 = 108, b 4, y 2*4*25 = 200 floats: 462 * 4 bytes.
    # backward: 21600 FLOPs; reads dy 200, x 150, w 108, writes dx 150, dw 108, db 4: 720 * 4 bytes.
    forward, backward = conv2d_cost((2, 3, 5, 5, 4, 3, 1, 1))
    assert forward == Cost(10800, 1848)
    assert backward == Cost(21600, 2880)


def test_conv2d_counts_with_stride_and_no_padding():
    # N=1, C=2, 6x6, F=3, K=3, stride 2, pad 1: OH = OW = (6 + 2 - 3) // 2 + 1 = 3.
    # forward 2 * (1*3*9) * (2*9) = 972; x 72, w 54, b 3, y 27 floats.
    forward, backward = conv2d_cost((1, 2, 6, 6, 3, 3, 2, 1))
    assert forward == Cost(972, 4 * (72 + 54 + 3 + 27))
    assert backward == Cost(1944, 4 * (27 + 72 + 54 + 72 + 54 + 3))
    # 1x1 kernel, no padding: a plain product of C by F at every pixel, 2*N*F*C*H*W.
    forward, _ = conv2d_cost((2, 5, 4, 4, 3, 1, 1, 0))
    assert forward.flops == 2 * 2 * 3 * 5 * 16


def test_linear_counts_by_hand():
    # x (3, 5), w (2, 5), b (2,), y (3, 2): 30 multiply-adds.
    forward, backward = linear_cost((3, 5, 2))
    assert forward == Cost(60, 4 * (15 + 10 + 2 + 6))
    assert backward == Cost(120, 4 * (6 + 15 + 10 + 15 + 10 + 2))     # dy x w | dx dw db


def test_pooling_counts_by_hand():
    # x (2, 3, 4, 4): 96 floats, 2x2 windows of stride 2: 24 outputs.
    forward, backward = map_cost("max_pool2d", (2, 3, 4, 4))
    assert forward == Cost(24 * 3, 4 * 96 + 4 * 24 + 8 * 24)          # 3 compares a window; x, out, int64 switches
    assert backward == Cost(24, 4 * 24 + 8 * 24 + 4 * 96)             # dout, switches, dx
    forward, backward = map_cost("avg_pool2d", (2, 3, 4, 4))
    assert forward == Cost(24 * 5, 4 * (96 + 24))                     # 4 adds and a multiply a window
    assert backward == Cost(96, 4 * (24 + 96))


def test_memory_bound_bytes_agree_with_nbconv_bench():
    # nbconv.bench.BYTES counts each op's traffic in units of the input's bytes, written separately.
    shape = (2, 3, 4, 4)
    size = 4 * 2 * 3 * 4 * 4
    for op in ("max_pool2d", "avg_pool2d", "batch_norm", "relu", "sigmoid", "softmax"):
        forward, backward = map_cost(op, shape)
        assert (forward.bytes / size, backward.bytes / size) == bench.BYTES[op], op


def test_the_main_conv_shape_on_a_t4_by_hand():
    # N=16 C=64 32x32 F=64 K=3: 3 * 2 * 16*64*32*32 * 64*9 FLOPs at 8.1 TFLOP/s (compute-bound).
    row = conv2d_row((16, 64, 32, 32, 64, 3, 1, 1), "direct")
    flops = 3 * 2 * 16 * 64 * 32 * 32 * 64 * 9
    assert row.flops == flops
    assert row.seconds(T4) == pytest.approx(flops / 8.1e12)
    assert row.seconds(T4, float64=True) == pytest.approx(flops / (8.1e12 / 32))
    assert row.seconds(H200) == pytest.approx(flops / 67e12)


# --------------------------------------------------------------------------- the roofline

def test_published_peaks():
    assert (H200.fp32, H200.fp64, H200.bandwidth) == (67e12, 34e12, 4.8e12)
    assert (T4.fp32, T4.bandwidth) == (8.1e12, 320e9)
    assert T4.fp64 == pytest.approx(0.253e12, rel=0.01)              # 1/32 of FP32 on Turing
    assert H200.ridge == pytest.approx(67 / 4.8) and T4.ridge == pytest.approx(8.1 / 0.32)


def test_expected_time_is_the_larger_bound_and_the_ridge_decides():
    for row in roofline_rows():
        assert row.intensity == pytest.approx(row.flops / row.bytes)
        for gpu in GPUS:
            compute, memory = row.flops / gpu.fp32, row.bytes / gpu.bandwidth
            assert row.seconds(gpu) == max(compute, memory)
            assert row.bound(gpu) == ("compute" if row.intensity > gpu.ridge else "memory")
            assert row.seconds(gpu, float64=True) >= row.seconds(gpu)   # FP64 is never faster


def test_rows_cover_every_family_at_the_benchmark_shapes():
    rows = roofline_rows()
    conv = [(row.shape, row.method) for row in rows if row.op == "conv2d"]
    assert conv == [(shape, method) for shape in bench.CONV_SHAPES for method in ("direct", "im2col")]
    others = [(row.op, row.shape) for row in rows if row.op != "conv2d"]
    assert others == [("linear", bench.LINEAR_SHAPE)] + [
        (op, bench.MAP_SHAPE) for op in ("max_pool2d", "avg_pool2d", "batch_norm", "relu", "sigmoid", "softmax")]
    # convs are compute-bound on both GPUs, except the 3-channel first layer on the T4; pooling
    # and the activations are memory-bound.
    assert all(row.bound(H200) == "compute" for row in rows if row.op in ("conv2d", "linear"))
    assert conv2d_row(bench.CONV_SHAPES[0], "direct").bound(T4) == "memory"
    assert all(map_row(op, bench.MAP_SHAPE).bound(gpu) == "memory"
               for op in ("max_pool2d", "avg_pool2d", "relu", "sigmoid") for gpu in GPUS)


def test_gpus_for_a_device_name():
    assert gpus_for("NVIDIA H200") == (H200,)
    assert gpus_for("Tesla T4") == (T4,)
    assert gpus_for("NVIDIA A100-SXM4-80GB") == GPUS
    assert gpus_for("Numba's CUDA simulator") == GPUS


# --------------------------------------------------------------------------- the table

def test_format_roofline_has_a_line_per_row():
    rows = roofline_rows(conv_shapes=[(2, 3, 5, 5, 4, 3, 1, 1)], map_shape=(2, 3, 4, 4), linear_shape=(3, 5, 2))
    lines = format_roofline(rows).splitlines()
    assert lines[0].startswith("| op | shape | method | GFLOP | MB | FLOP/B | H200 us")
    assert len([line for line in lines if line.startswith("| ")]) == 1 + len(rows)
    assert "| conv2d | N2 C3 5x5 F4 K3 s1 p1 | direct | 0.000 |" in lines[2]


def test_the_module_prints_the_table_without_numba_cuda():
    code = ("import runpy, sys; runpy.run_module('nbconv.roofline', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "| conv2d | N16 C64 32x32 F64 K3 s1 p1 | direct |" in result.stdout
    assert "| softmax | x 32x64x32x32 |" in result.stdout
    check = "import sys, nbconv.roofline; print('numba_cuda' in sys.modules, 'numba.cuda' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert imported.stdout.split() == ["False", "False"], imported.stderr
