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
    rows = gpu_check.time_kernels(conv_shapes=[(1, 2, 4, 4, 2, 3, 1, 1)], memory_shape=(1, 2, 4, 4),
                                  linear_shape=(2, 3, 4), repeats=1)
    assert [(op, method) for op, _, method, _ in rows] == [
        ("conv2d", "direct"), ("conv2d", "im2col"), ("conv2d", "fast"), ("linear", "naive"), ("linear", "fast"),
        ("max_pool2d", ""), ("avg_pool2d", ""), ("batch_norm", "train")]
    assert all(seconds > 0 for *_, seconds in rows)
    assert "conv2d" in capsys.readouterr().out


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    return gpu_check


def test_gpu_check_times_a_training_step_of_a_tiny_net(capsys):
    from nbconv.bench_train import NetSpec
    gpu_check = _script()
    rows = gpu_check.time_training(nets=[NetSpec("tiny", batch=1, channels=(1, 1), hidden=2, num_classes=2)],
                                   repeats=1)
    assert [name for name, _, _ in rows] == ["tiny"]
    assert rows[0][1] > 0
    assert "tiny" in capsys.readouterr().out


def test_gpu_check_runs_the_large_conv_step_on_a_small_shape(capsys):
    result = _script().large_conv(shape=(1, 2, 4, 4, 2, 3, 1, 1))
    assert result["first step s"] > 0 and result["second step s"] > 0
    assert "memory in use" in capsys.readouterr().out
