"""Check and time the CUDA kernels on a real GPU.

    python bench/gpu_check.py              # everything below, in this order
    python bench/gpu_check.py --no-tests   # the timings only (steps 3 to 5)
    python bench/gpu_check.py --sanitize   # also step 2 (slow: minutes)

1. Runs ``tests/cuda`` with ``NUMBA_ENABLE_CUDASIM=0``, so every CUDA kernel is compared with
   its CPU twin on the real device (float32 results may move by a rounding where the compiler
   contracts a multiply and an add into one FMA).
2. (--sanitize) NVIDIA's compute-sanitizer (racecheck, synccheck, memcheck) over the CUDA tests
   of the kernels that use shared memory (the tiled and register-blocked matrix products and
   every block-tree reduction): a race on a shared array, a missing syncthreads or an
   out-of-bounds access is reported there, which neither the simulator nor a wrong result
   always shows.  Needs the ``compute-sanitizer`` of a CUDA toolkit on the PATH (or in
   /usr/local/cuda/bin); without it the step says so and is skipped.
3. Times forward + backward of conv2d (direct, im2col and fast), linear (naive and fast),
   max/avg pooling and batch norm at
   the shapes of the performance issue, float32, on the device (the arrays stay there; each
   time is the best of a few runs after a warm-up, synchronized with ``cuda.synchronize()``).
   Beside each time: the roofline's expected time (nbconv.roofline, from the published peaks)
   of the GPU whose name matches, H200 or T4 (both when neither does), and measured / expected;
   and PyTorch's time for the same op
   (cuDNN for the convolution) when torch with CUDA is importable.
4. Times a training step (forward, cross-entropy, backward, Adam) of the three LeNet-style nets of
   ``nbconv bench --train`` on the device, method "auto" (the fast forms), against the same net
   in PyTorch on CUDA when it is installed, and prints the ratio (the target: within 2x).
5. One large convolution, N=64, C=256, 56x56, F=256, K=3 (X_col alone is 1.85 GB in float32),
   forward and backward with method "fast", printing the GPU memory in use before, at the peak
   step and after the second step (which should allocate nothing new: the workspace is reused).

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
CONV_METHODS = ("direct", "im2col", "fast")
LINEAR_SHAPE = (128, 4096, 256)           # (N, D, M): the first fully connected layer of cifar-wide
LARGE_CONV = (64, 256, 56, 56, 256, 3, 1, 1)
SANITIZER_TOOLS = ("racecheck", "synccheck", "memcheck")
# the CUDA tests of the kernels with shared memory (matrix products, block-tree reductions)
SANITIZER_TESTS = ("tests/cuda/test_cuda_linear.py", "tests/cuda/test_cuda_norm.py", "tests/cuda/test_cuda_loss.py")


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
    if op == "linear":
        N, D, M = shape
        x, w, b = cuda_tensor((N, D)), cuda_tensor((M, D)), cuda_tensor((M,))
        return lambda: functional.linear(x, w, b).sum().backward()
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
    """The roofline's expected time of row on each GPU (at the FP32 rate) and measured / expected."""
    cells = []
    for gpu in gpus:
        expected = row.seconds(gpu)
        cells.append(f"{expected * 1e6:>9.1f} {seconds / expected:>8.3g}")
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


def time_kernels(conv_shapes=CONV_SHAPES, memory_shape=MEMORY_SHAPE, linear_shape=LINEAR_SHAPE,
                 repeats: int = 5) -> list[tuple]:
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
          + " ".join(f"{gpu.name + ' us':>9} {'x' + gpu.name:>8}" for gpu in gpus)
          + (f" {'torch ms':>9}" if torch is not None else ""))
    print("  us: the roofline's expected time in microseconds from the published peaks (python -m nbconv.roofline); "
          "x: measured / expected")
    for N, C, H, W, Fn, K, stride, pad in conv_shapes:
        x, w, b = dev(rng.standard_normal((N, C, H, W))), dev(rng.standard_normal((Fn, C, K, K))), dev(np.zeros(Fn))
        OH, OW = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
        flops = 3 * 2.0 * N * Fn * OH * OW * C * K * K               # forward, dx and dw
        dy = dev(np.ones((N, Fn, OH, OW)))
        shape = (N, C, H, W, Fn, K, stride, pad)
        peer = torch_column(torch, "conv2d", shape, repeats)
        for method in CONV_METHODS:
            def step():
                _, cache = F.conv2d_forward(x, w, b, stride=stride, padding=pad, method=method)
                F.conv2d_backward(dy, cache)
            t = best_time(step, repeats)
            rows.append(("conv2d", shape, method, t))
            print(f"{'conv2d':<12} {f'N{N} C{C} {H}x{W} F{Fn} K{K} s{stride} p{pad}':<34} {method:<8} "
                  f"{t * 1e3:>10.2f} {flops / t / 1e9:>9.1f} {paper_columns(conv2d_row(shape, method), t, gpus)}"
                  f"{peer}")
    N, D, M = linear_shape
    x, w, b, dy = (dev(rng.standard_normal(shape)) for shape in ((N, D), (M, D), (M,), (N, M)))
    for method in ("naive", "fast"):
        def linear_step():
            _, cache = F.linear_forward(x, w, b, method=method)
            F.linear_backward(dy, cache)
        t = best_time(linear_step, repeats)
        rows.append(("linear", linear_shape, method, t))
        print(f"{'linear':<12} {f'N{N} D{D} M{M}':<34} {method:<8} {t * 1e3:>10.2f} "
              f"{3 * 2.0 * N * D * M / t / 1e9:>9.1f}{torch_column(torch, 'linear', linear_shape, repeats)}")
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


def time_training(nets=None, repeats: int = 5) -> list[tuple]:
    """Print (and return) one row per net of ``nbconv bench --train``: (name, seconds per step of
    ours on the device, PyTorch CUDA's or None).  The step is bench_train.train_step's, the arrays
    already on the device; it reads the loss back (4 bytes), where best_time waits for the GPU
    anyway."""
    from numba import cuda

    from nbconv import bench_train

    torch = torch_cuda()
    rows = []
    print(f"\n{'net':<12} {'input':<18} {'ms/step':>9}" + (f" {'torch ms':>9} {'ratio':>7}" if torch else ""))
    for spec in nets or bench_train.NETS:
        model, optimizer, x, y = bench_train.build(spec)
        model.to("cuda")
        dx, dy = cuda.to_device(x), cuda.to_device(np.asarray(y, dtype=np.int64))
        ours = best_time(lambda: bench_train.train_step(model, optimizer, dx, dy), repeats)
        peer = None
        if torch is not None:
            try:
                net = bench_train.torch_net(torch, model.to("cpu")).cuda()
                model.to("cuda")
                opt = torch.optim.Adam(net.parameters(), lr=bench_train.LR)
                tx, ty = torch.from_numpy(x).cuda(), torch.from_numpy(np.asarray(y, dtype=np.int64)).cuda()

                def torch_train_step():
                    opt.zero_grad()
                    torch.nn.functional.cross_entropy(net(tx), ty).backward()
                    opt.step()
                peer = torch_best_time(torch, torch_train_step, repeats)
            except Exception as error:  # noqa: BLE001  (report, keep going)
                print(f"  torch failed on {spec.name}: {error}")
        rows.append((spec.name, ours, peer))
        line = f"{spec.name:<12} {'x'.join(map(str, spec.input_shape)):<18} {ours * 1e3:>9.2f}"
        if peer is not None:
            line += f" {peer * 1e3:>9.2f} {ours / peer:>7.2f}"
        print(line)
    return rows


def large_conv(shape=LARGE_CONV) -> dict:
    """Forward + backward of one large convolution (method "fast") twice, printing the GPU memory
    in use before, after the first step and after the second (the workspace is reused, so the
    second step should need no more)."""
    from numba import cuda

    import nbconv.functional as F

    N, C, H, W, Fn, K, stride, pad = shape
    context = cuda.current_context()

    def used():
        free, total = context.get_memory_info()
        return (total - free) / 2**30
    rng = np.random.default_rng(0)
    dev = lambda a: cuda.to_device(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    before = used()
    x, w, b = dev(rng.standard_normal((N, C, H, W))), dev(rng.standard_normal((Fn, C, K, K))), dev(np.zeros(Fn))
    OH, OW = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
    dy = dev(np.ones((N, Fn, OH, OW)))
    steps = []
    for _ in range(2):
        start = time.perf_counter()
        _, cache = F.conv2d_forward(x, w, b, stride=stride, padding=pad, method="fast")
        F.conv2d_backward(dy, cache)
        cuda.synchronize()
        del cache
        steps.append((time.perf_counter() - start, used()))
    result = {"before GB": before, "first step GB": steps[0][1], "second step GB": steps[1][1],
              "first step s": steps[0][0], "second step s": steps[1][0]}
    print(f"\nlarge conv N{N} C{C} {H}x{W} F{Fn} K{K}, method fast: memory in use {before:.2f} GB before, "
          f"{steps[0][1]:.2f} GB after the first step ({steps[0][0] * 1e3:.0f} ms), "
          f"{steps[1][1]:.2f} GB after the second ({steps[1][0] * 1e3:.0f} ms)")
    return result


def sanitize() -> int:
    """compute-sanitizer's racecheck, synccheck and memcheck over SANITIZER_TESTS; the number of
    tools that reported an error (0 when the sanitizer is missing: it says so)."""
    from shutil import which
    tool = which("compute-sanitizer") or (
        "/usr/local/cuda/bin/compute-sanitizer" if Path("/usr/local/cuda/bin/compute-sanitizer").exists() else None)
    if tool is None:
        print("\nsanitizer: compute-sanitizer not found (it comes with the CUDA toolkit); skipped")
        return 0
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    failed = 0
    for name in SANITIZER_TOOLS:
        run = subprocess.run([tool, "--tool", name, "--error-exitcode", "3", sys.executable, "-m", "pytest", "-q",
                              "-p", "no:cacheprovider", *(str(ROOT / t) for t in SANITIZER_TESTS)], env=env,
                             capture_output=True, text=True)
        summary = [line for line in (run.stdout + run.stderr).splitlines() if "ERROR SUMMARY" in line]
        print(f"sanitizer {name}: exit {run.returncode}; {summary[-1] if summary else 'no summary line'}")
        failed += run.returncode != 0
    return failed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-tests", action="store_true", help="skip the CUDA test run, time only")
    parser.add_argument("--sanitize", action="store_true", help="also run compute-sanitizer over the shared-memory kernels")
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
    failed = sanitize() if args.sanitize else 0
    time_kernels()
    time_training()
    large_conv()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
