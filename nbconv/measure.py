"""How ``nbconv bench`` times and what it measures against: the same rules for every table.

- ``measure(fn, repeat)``: the best of two bursts of ``repeat`` calls, each after SETTLE seconds
  of quiet (no thread pool still spinning from the previous measurement) and WARMUP seconds of
  untimed calls (the virtual CPUs' clocks and caches wake up);
- the machine's limits, measured in the same run as the op: ``gemm_rate`` (np.dot of float32
  matrices) for the compute-bound ops, ``copy_rate`` (copying the same bytes) for the
  memory-bound ones;
- ``machine_info`` / ``format_machine``: the CPU, its SIMD width, Numba's threads, every BLAS
  library, the thread settings of the environment: the header of every bench run;
- ``torch_module`` / ``torch_time``: PyTorch as a peer column, timed as ours, when it is installed.

nbconv.bench (the kernel tables) and nbconv.bench_train (the training step) both use it.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

__all__ = ["SETTLE", "WARMUP", "best_time", "settle", "warm_up", "measure", "gemm_rate", "copy_rate",
           "simd_width", "blas_info", "machine_info", "format_machine", "threads_text", "torch_header", "torch_module",
           "torch_time"]


# --------------------------------------------------------------------------- timing and limits

def best_time(fn, repeat: int, budget: float = 3.0) -> tuple[float, list[float]]:
    """(best, all) wall-clock seconds of ``repeat`` calls of fn (the caller warms it up first).

    Slow calls (the naive loop nests on large shapes) stop early once ``budget`` seconds are
    spent, after at least one call."""
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if sum(times) > budget:
            break
    return min(times), times


# Seconds of quiet before each measurement.  After a GEMM, OpenBLAS's idle threads keep spinning
# for up to ~0.1 s (OPENBLAS_THREAD_TIMEOUT), and after a parallel kernel Numba's OpenMP threads
# spin for milliseconds (OMP_WAIT_POLICY); either slows whatever runs next on a small machine
# (measured here: the blocked conv right after a GEMM ran 2-3x slower).  Each measurement starts
# from a quiet machine, so that it times its own method and not the previous one's tail.
SETTLE = 0.2

# Seconds of untimed calls after the quiet: on this project's virtual machine the first calls
# after a pause run 2-5x slower than the steady state (a 0.2 ms op took 1.0, 0.9, 0.6, 0.6 ms in
# its first burst: the virtual CPUs' clocks and caches wake up), so a burst of 5 timed calls
# from cold reported the wake-up, not the op.  The calls of the warm-up are not timed.
WARMUP = 0.02


def settle() -> None:
    time.sleep(SETTLE)


def warm_up(fn) -> list[float]:
    """Call fn until WARMUP seconds have passed (at least once).  A first call that alone takes
    longer is a measurement of its own (a wake-up is small beside it): [its time], else []."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    if first > WARMUP:
        return [first]
    while time.perf_counter() < start + WARMUP:
        fn()
    return []


def measure(fn, repeat: int) -> tuple[float, list[float]]:
    """Best time of fn over two bursts of ``repeat`` calls, each after SETTLE seconds of quiet
    and WARMUP seconds of untimed calls.

    On a shared or virtual machine a burst now and then runs at a fraction of the speed (another
    process, a descheduled virtual CPU); a second burst a moment later rarely does too.  Calls
    slower than a second get one burst only."""
    times = []
    for burst in range(2):
        settle()
        times += warm_up(fn)                    # a slow first call counts
        if sum(times) < 1.0:
            times += best_time(fn, repeat)[1]
        if sum(times) >= 1.0:
            break
    return min(times), times


def gemm_rate(M: int, K: int, N: int, repeat: int = 5, seed: int = 0) -> float:
    """GFLOP/s of np.dot on float32 (M, K) x (K, N), best of ``repeat``: the machine's GEMM limit."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K), dtype=np.float32)
    b = rng.standard_normal((K, N), dtype=np.float32)
    out = np.empty((M, N), dtype=np.float32)
    np.dot(a, b, out=out)
    seconds, _ = measure(lambda: np.dot(a, b, out=out), repeat)
    return 2.0 * M * K * N / seconds / 1e9


def copy_rate(nbytes: int, repeat: int = 5) -> float:
    """GB/s of copying nbytes / 2 bytes (read once, written once: nbytes moved), best of ``repeat``."""
    n = max(1, int(nbytes) // 2 // 4)
    src = np.ones(n, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    seconds, _ = measure(lambda: np.copyto(dst, src), repeat)
    return 2.0 * src.nbytes / seconds / 1e9


# --------------------------------------------------------------------------- the machine

def simd_width(flags) -> int:
    """The widest vector registers the CPU flags announce, in bits: avx512f 512, avx2/avx 256, sse 128."""
    flags = set(flags)
    if "avx512f" in flags:
        return 512
    if "avx2" in flags or "avx" in flags:
        return 256
    if flags & {"sse", "sse2", "sse4_1", "sse4_2", "neon", "asimd"}:
        return 128
    return 0


def _cpuinfo() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = value.split()
    except OSError:
        pass
    return model, flags


def blas_info() -> list[dict] | str:
    """Every BLAS library loaded in this process (threadpoolctl), or a sentence saying why not."""
    try:
        import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, which Numba's np.dot calls)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl is not installed (it comes with scikit-learn): BLAS library unknown"
    found = []
    for lib in threadpool_info():
        if lib.get("user_api") != "blas":
            continue
        path = lib.get("filepath") or ""
        role = ("NumPy's: np.dot, the GEMM limit and the im2col method" if "numpy" in path else
                "SciPy's: np.dot inside Numba kernels" if "scipy" in path else "")
        found.append({"library": lib.get("internal_api"), "version": lib.get("version"),
                      "core_type": lib.get("architecture"), "threads": lib.get("num_threads"),
                      "threading": lib.get("threading_layer"), "file": os.path.basename(path),
                      "role": role})
    return found or "threadpoolctl found no BLAS library"


def machine_info() -> dict:
    import numba

    from nbconv.kernels import activation

    model, flags = _cpuinfo()
    activation.relu_forward_parallel(np.zeros(1), np.zeros(1))   # starts Numba's thread pool
    try:
        layer = numba.threading_layer()
    except ValueError:                     # no parallel kernel has run
        layer = numba.config.THREADING_LAYER
    return {
        "cpu": model, "cores": os.cpu_count(), "simd_bits": simd_width(flags),
        "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(), "numba_threading_layer": layer,
        "blas": blas_info(),
        "env": {k: os.environ[k] for k in sorted(os.environ)
                if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "GOMP_", "MALLOC_", "NUMBA_NUM_THREADS",
                                 "NUMBA_THREADING"))},
    }


def threads_text(count: int) -> str:
    """'1 thread', '2 threads': a thread count for the headers."""
    return f"{count} thread" + ("" if count == 1 else "s")


def format_machine(info: dict) -> str:
    lines = [f"CPU: {info['cpu']}, {info['cores']} cores, SIMD {info['simd_bits']} bit",
             f"numpy {info['numpy']}, numba {info['numba']} ({threads_text(info['numba_threads'])}, "
             f"threading layer {info['numba_threading_layer']}), Python {info['python']}"]
    blas = info["blas"]
    if isinstance(blas, str):
        lines.append(f"BLAS: {blas}")
    else:
        for lib in blas:
            lines.append(f"BLAS: {lib['library']} {lib['version']}, core type {lib['core_type']}, "
                         f"{threads_text(lib['threads'])} ({lib['threading']})"
                         + (f", {lib['role']}" if lib["role"] else "")
                         + f" [{lib['file']}]")
    if info["env"]:
        lines.append("environment: " + ", ".join(f"{k}={v}" for k, v in info["env"].items()))
    return "\n".join(lines)


# --------------------------------------------------------------------------- PyTorch, when present

def torch_module():
    """torch, when it is installed and imports; None otherwise (the peer column is left out)."""
    try:
        import torch
    except Exception:                       # not installed, or broken: the column is left out
        return None
    return torch


def torch_header(version: str, thread_count: int, ops=(), methods=()) -> str:
    """The header line on the PyTorch peer: which of its convolutions each conv2d figure is set
    against (the oneDNN-off line only where im2col runs, as under the tables)."""
    line = f"PyTorch {version} ({threads_text(thread_count)}): peer column 'torch ms'"
    if "conv2d" in ops:
        line += "; for conv2d its default (oneDNN)"
        if "im2col" in methods:
            line += ", and under each table its own im2col + GEMM (oneDNN off)"
    return line


def torch_time(build, repeat):
    """Best time of the callable ``build()`` returns, or None when torch cannot run it."""
    try:
        fn = build()
        fn()
        return measure(fn, repeat)[0]                 # measured as ours: quiet, warm, two bursts
    except Exception:
        return None
