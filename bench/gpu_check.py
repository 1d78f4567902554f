"""Check and time the CUDA kernels on a real GPU.

    python bench/gpu_check.py            # the CUDA tests without the simulator, then the timings
    python bench/gpu_check.py --no-tests # the timings only

1. Runs ``tests/cuda`` with ``NUMBA_ENABLE_CUDASIM=0``, so every CUDA kernel is compared with
   its CPU twin on the real device.
2. Times forward + backward of conv2d (direct and im2col), max/avg pooling and batch norm at
   the shapes of the performance issue, float32, on the device (the arrays stay there; each
   time is the best of a few runs after a warm-up, synchronized with ``cuda.synchronize()``).
   Beside each time: the roofline's expected time (nbconv.roofline, from the published peaks)
   of the GPU whose name matches, H200 or T4 (both when neither does), the FP64 bound of the
   kernels that sum in float64, and measured / expected; and PyTorch's time for the same op
   (cuDNN for the convolution) when torch with CUDA is importable.

Needs ``pip install -e ".[cuda]"`` and an NVIDIA GPU; without one it says so and exits 2.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# (N, C, H, W, F, K, stride, pad), as in bench/test_bench_conv.py and issue 7
CONV_SHAPES = [
    (32, 3, 32, 32, 32, 3, 1, 1), (32, 32, 32, 32, 32, 3, 1, 1), (16, 64, 32, 32, 64, 3, 1, 1),
    (16, 128, 16, 16, 128, 3, 1, 1), (8, 64, 56, 56, 64, 3, 1, 1), (32, 64, 16, 16, 128, 1, 1, 0),
    (16, 64, 32, 32, 128, 3, 2, 1),
]
MEMORY_SHAPE = (32, 64, 32, 32)


def best_time(step, repeats: int) -> float:
    from numba import cuda
    step()
    cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def torch_cuda():
    """torch, when it imports and sees a CUDA GPU; None otherwise (the peer column is left out)."""
    try:
        import torch
        return torch if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001  (not installed, or broken)
        return None


def torch_best_time(torch, step, repeats: int) -> float:
    step()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def torch_step(torch, op, shape):
    """A callable running PyTorch's forward + backward of op on CUDA tensors of shape."""
    rng = np.random.default_rng(1)
    cuda_tensor = lambda shape: torch.tensor(rng.standard_normal(shape), dtype=torch.float32,  # noqa: E731
                                             device="cuda", requires_grad=True)
    functional = torch.nn.functional
    if op == "conv2d":
        N, C, H, W, Fn, K, stride, pad = shape
        x, w, b = cuda_tensor((N, C, H, W)), cuda_tensor((Fn, C, K, K)), cuda_tensor((Fn,))
        return lambda: functional.conv2d(x, w, b, stride=stride, padding=pad).sum().backward()
    x = cuda_tensor(shape)
    if op == "max_pool2d":
        return lambda: functional.max_pool2d(x, 2).sum().backward()
    if op == "avg_pool2d":
        return lambda: functional.avg_pool2d(x, 2).sum().backward()
    C = shape[1]
    gamma, beta = cuda_tensor((C,)), cuda_tensor((C,))
    mean, var = torch.zeros(C, device="cuda"), torch.ones(C, device="cuda")
    return lambda: functional.batch_norm(x, mean, var, gamma, beta, training=True).sum().backward()


def paper_columns(row, seconds, gpus) -> str:
    """The roofline's expected time of row on each GPU, its FP64 bound ('-' when the kernels
    do not sum in float64) and measured / expected (at the FP32 rate)."""
    cells = []
    for gpu in gpus:
        expected = row.seconds(gpu)
        fp64 = f"{row.seconds(gpu, float64=True) * 1e6:.1f}" if row.float64 else "-"
        cells.append(f"{expected * 1e6:>9.1f} {fp64:>9} {seconds / expected:>8.3g}")
    return " ".join(cells)


def torch_column(torch, op, shape, repeats) -> str:
    """PyTorch's fwd+bwd ms for op at shape, as a column ('' without torch, 'failed' when it
    cannot run it)."""
    if torch is None:
        return ""
    try:
        return f" {torch_best_time(torch, torch_step(torch, op, shape), repeats) * 1e3:>9.3f}"
    except Exception:  # noqa: BLE001  (out of memory, an op torch lacks on this build, ...)
        return f" {'failed':>9}"


def time_kernels(conv_shapes=CONV_SHAPES, memory_shape=MEMORY_SHAPE, repeats: int = 5) -> list[tuple]:
    """Print (and return) one row per op and shape: (op, shape, method, seconds)."""
    from numba import cuda

    import nbconv.functional as F
    from nbconv.roofline import conv2d_row, gpus_for, map_row

    rng = np.random.default_rng(0)
    dev = lambda a: cuda.to_device(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    name = getattr(cuda.get_current_device(), "name", "Numba's CUDA simulator")
    name = name.decode() if isinstance(name, bytes) else name
    print(f"device: {name}")
    gpus = gpus_for(name)
    torch = torch_cuda()
    rows = []
    print(f"{'op':<12} {'shape':<34} {'method':<8} {'fwd+bwd ms':>10} {'GFLOP/s':>9} "
          + " ".join(f"{gpu.name + ' us':>9} {gpu.name + ' f64':>9} {'x' + gpu.name:>8}" for gpu in gpus)
          + (f" {'torch ms':>9}" if torch is not None else ""))
    print("  us: the roofline's expected time in microseconds from the published peaks (python -m nbconv.roofline); "
          "f64: its bound at the FP64 rate for kernels summing in float64; x: measured / expected")
    for N, C, H, W, Fn, K, stride, pad in conv_shapes:
        x, w, b = dev(rng.standard_normal((N, C, H, W))), dev(rng.standard_normal((Fn, C, K, K))), dev(np.zeros(Fn))
        OH, OW = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
        flops = 3 * 2.0 * N * Fn * OH * OW * C * K * K               # forward, dx and dw
        dy = dev(np.ones((N, Fn, OH, OW)))
        shape = (N, C, H, W, Fn, K, stride, pad)
        peer = torch_column(torch, "conv2d", shape, repeats)
        for method in ("direct", "im2col"):
            def step():
                _, cache = F.conv2d_forward(x, w, b, stride=stride, padding=pad, method=method)
                F.conv2d_backward(dy, cache)
            t = best_time(step, repeats)
            rows.append(("conv2d", shape, method, t))
            print(f"{'conv2d':<12} {f'N{N} C{C} {H}x{W} F{Fn} K{K} s{stride} p{pad}':<34} {method:<8} "
                  f"{t * 1e3:>10.2f} {flops / t / 1e9:>9.1f} {paper_columns(conv2d_row(shape, method), t, gpus)}"
                  f"{peer}")
    x = dev(rng.standard_normal(memory_shape))
    N, C, H, W = memory_shape
    for name, forward, backward, out_shape in (
        ("max_pool2d", lambda: F.max_pool2d_forward(x, kernel_size=2), F.max_pool2d_backward, (N, C, H // 2, W // 2)),
        ("avg_pool2d", lambda: F.avg_pool2d_forward(x, kernel_size=2), F.avg_pool2d_backward, (N, C, H // 2, W // 2)),
    ):
        dy = dev(np.ones(out_shape))
        t = best_time(lambda: backward(dy, forward()[1]), repeats)
        rows.append((name, memory_shape, "", t))
        print(f"{name:<12} {'x ' + 'x'.join(map(str, memory_shape)):<34} {'':<8} {t * 1e3:>10.2f} {'':>9} "
              f"{paper_columns(map_row(name, memory_shape), t, gpus)}{torch_column(torch, name, memory_shape, repeats)}")
    gamma, beta = dev(np.ones(C)), dev(np.zeros(C))
    mean, var = dev(np.zeros(C)), dev(np.ones(C))
    dy = dev(np.ones(memory_shape))

    def bn_step():
        _, cache = F.batch_norm_forward(x, gamma, beta, mean, var, training=True)
        F.batch_norm_backward(dy, cache)
    t = best_time(bn_step, repeats)
    rows.append(("batch_norm", memory_shape, "train", t))
    print(f"{'batch_norm':<12} {'x ' + 'x'.join(map(str, memory_shape)):<34} {'train':<8} {t * 1e3:>10.2f} {'':>9} "
          f"{paper_columns(map_row('batch_norm', memory_shape), t, gpus)}"
          f"{torch_column(torch, 'batch_norm', memory_shape, repeats)}")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-tests", action="store_true", help="skip the CUDA test run, time only")
    args = parser.parse_args(argv)
    os.environ["NUMBA_ENABLE_CUDASIM"] = "0"      # real hardware only: set before numba.cuda is imported
    try:
        from numba import cuda
        available = cuda.is_available()
    except Exception as error:  # noqa: BLE001  (no numba-cuda, no driver, ...)
        print(f"gpu_check: the CUDA target is not usable here ({error}); "
              f'install it with pip install -e ".[cuda]" on a machine with an NVIDIA GPU')
        return 2
    if not available:
        print("gpu_check: no CUDA GPU found; this script is for real hardware (the tests use the simulator)")
        return 2
    if not args.no_tests:
        env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", str(ROOT / "tests" / "cuda")], env=env)
        if result.returncode != 0:
            print("gpu_check: the CUDA tests failed on the device")
            return 1
    time_kernels()
    return 0


if __name__ == "__main__":
    sys.exit(main())
