"""Check and time the CUDA kernels on a real GPU.

    python bench/gpu_check.py            # the CUDA tests without the simulator, then the timings
    python bench/gpu_check.py --no-tests # the timings only

1. Runs ``tests/cuda`` with ``NUMBA_ENABLE_CUDASIM=0``, so every CUDA kernel is compared with
   its CPU twin on the real device.
2. Times forward + backward of conv2d (direct and im2col), max/avg pooling and batch norm at
   the shapes of the performance issue, float32, on the device (the arrays stay there; each
   time is the best of a few runs after a warm-up, synchronized with ``cuda.synchronize()``).

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


def time_kernels(conv_shapes=CONV_SHAPES, memory_shape=MEMORY_SHAPE, repeats: int = 5) -> list[tuple]:
    """Print (and return) one row per op and shape: (op, shape, method, seconds)."""
    from numba import cuda

    import nbconv.functional as F

    rng = np.random.default_rng(0)
    dev = lambda a: cuda.to_device(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    name = getattr(cuda.get_current_device(), "name", "Numba's CUDA simulator")
    print(f"device: {name.decode() if isinstance(name, bytes) else name}")
    rows = []
    print(f"{'op':<12} {'shape':<34} {'method':<8} {'fwd+bwd ms':>10} {'GFLOP/s':>9}")
    for N, C, H, W, Fn, K, stride, pad in conv_shapes:
        x, w, b = dev(rng.standard_normal((N, C, H, W))), dev(rng.standard_normal((Fn, C, K, K))), dev(np.zeros(Fn))
        OH, OW = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
        flops = 3 * 2.0 * N * Fn * OH * OW * C * K * K               # forward, dx and dw
        dy = dev(np.ones((N, Fn, OH, OW)))
        for method in ("direct", "im2col"):
            def step():
                _, cache = F.conv2d_forward(x, w, b, stride=stride, padding=pad, method=method)
                F.conv2d_backward(dy, cache)
            t = best_time(step, repeats)
            rows.append(("conv2d", (N, C, H, W, Fn, K, stride, pad), method, t))
            print(f"{'conv2d':<12} {f'N{N} C{C} {H}x{W} F{Fn} K{K} s{stride} p{pad}':<34} {method:<8} "
                  f"{t * 1e3:>10.2f} {flops / t / 1e9:>9.1f}")
    x = dev(rng.standard_normal(memory_shape))
    N, C, H, W = memory_shape
    for name, forward, backward, out_shape in (
        ("max_pool2d", lambda: F.max_pool2d_forward(x, kernel_size=2), F.max_pool2d_backward, (N, C, H // 2, W // 2)),
        ("avg_pool2d", lambda: F.avg_pool2d_forward(x, kernel_size=2), F.avg_pool2d_backward, (N, C, H // 2, W // 2)),
    ):
        dy = dev(np.ones(out_shape))
        t = best_time(lambda: backward(dy, forward()[1]), repeats)
        rows.append((name, memory_shape, "", t))
        print(f"{name:<12} {'x ' + 'x'.join(map(str, memory_shape)):<34} {'':<8} {t * 1e3:>10.2f}")
    gamma, beta = dev(np.ones(C)), dev(np.zeros(C))
    mean, var = dev(np.zeros(C)), dev(np.ones(C))
    dy = dev(np.ones(memory_shape))

    def bn_step():
        _, cache = F.batch_norm_forward(x, gamma, beta, mean, var, training=True)
        F.batch_norm_backward(dy, cache)
    t = best_time(bn_step, repeats)
    rows.append(("batch_norm", memory_shape, "train", t))
    print(f"{'batch_norm':<12} {'x ' + 'x'.join(map(str, memory_shape)):<34} {'train':<8} {t * 1e3:>10.2f}")
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
