"""bench/gpu_check.py's timing code drives the functional ops with device arrays; run it on tiny
shapes under the simulator so the script is known to work before it meets a real GPU."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("numba_cuda")

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"


def test_gpu_check_times_every_op_on_tiny_shapes(capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    rows = gpu_check.time_kernels(conv_shapes=[(1, 2, 4, 4, 2, 3, 1, 1)], memory_shape=(1, 2, 4, 4), repeats=1)
    assert [(op, method) for op, _, method, _ in rows] == [
        ("conv2d", "direct"), ("conv2d", "im2col"), ("max_pool2d", ""), ("avg_pool2d", ""), ("batch_norm", "train")]
    assert all(seconds > 0 for *_, seconds in rows)
    assert "conv2d" in capsys.readouterr().out
