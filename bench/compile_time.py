"""Numba compile time: cold (empty cache) and warm (cached) ``import nbconv`` plus the first conv2d call.

    python bench/compile_time.py            import + first conv2d forward and backward, per method
    python bench/compile_time.py --all      also every kernel family, float32 and float64: what a
                                            cold test run pays, naive kernels against fast ones

Every measurement runs in a fresh interpreter whose NUMBA_CACHE_DIR is a temporary directory:
empty for the cold run, filled by it for the warm run.  The warm run also counts Numba's cache
misses: a kernel loaded from the cache has none, so any miss means it was compiled again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

# Runs in the child: times import nbconv and the first call(s), prints one JSON line.
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import nbconv
import nbconv.functional as F
t_import = time.perf_counter() - t0
what, method = sys.argv[1], sys.argv[2]
times = {"import": t_import}

def conv(method, dtype):
    x = np.ones((2, 3, 8, 8), dtype); w = np.ones((4, 3, 3, 3), dtype)
    t = time.perf_counter()
    y, cache = F.conv2d_forward(x, w, padding=1, method=method)
    times[f"conv2d {method} {np.dtype(dtype).name} forward"] = time.perf_counter() - t
    t = time.perf_counter()
    F.conv2d_backward(y, cache)
    times[f"conv2d {method} {np.dtype(dtype).name} backward"] = time.perf_counter() - t

def family(name, fn):
    t = time.perf_counter()
    fn()
    times[name] = time.perf_counter() - t

if what == "first":
    conv(method, np.float32)
else:                                             # every family, both dtypes
    form = "fast" if method == "parallel" else "naive"     # method: "naive" or "parallel" twins
    convs = ("direct",) if method == "naive" else ("im2col", "blocked")
    for dtype in (np.float32, np.float64):
        for m in convs:
            conv(m, dtype)
        x = np.ones((2, 4, 6, 6), dtype)
        def act():
            for op in ("relu", "leaky_relu", "elu", "sigmoid", "tanh"):
                y, c = getattr(F, op + "_forward")(x, method=form); getattr(F, op + "_backward")(y, c)
        def pool():
            for op in ("max_pool2d", "avg_pool2d"):
                y, c = getattr(F, op + "_forward")(x, kernel_size=2, method=form); getattr(F, op + "_backward")(y, c)
        def bn():
            g = np.ones(4, dtype)
            for training in (True, False):
                y, c = F.batch_norm_forward(x, g, g * 0, g * 0, g.copy(), training=training, method=form)
                F.batch_norm_backward(y, c)
        family(f"activations {np.dtype(dtype).name}", act)
        family(f"pooling {np.dtype(dtype).name}", pool)
        family(f"batch norm {np.dtype(dtype).name}", bn)

from nbconv.kernels import activation, conv as kconv, im2col, norm, pool
misses = sum(sum(k.stats.cache_misses.values()) for mod in (activation, kconv, im2col, norm, pool)
             for k in vars(mod).values() if hasattr(k, "stats") and getattr(k, "signatures", None))
times["cache misses"] = misses
print(json.dumps(times))
"""


def measure(cache_dir: str, what: str, method: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", CHILD, what, method], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def first_call_total(times: dict) -> float:
    return sum(v for k, v in times.items() if k not in ("cache misses",))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="also every kernel family in both dtypes")
    parser.add_argument("--json", metavar="PATH", help="save the numbers")
    args = parser.parse_args(argv)
    results = {}
    print("import nbconv + first conv2d call (float32, x 2x3x8x8, 3x3 kernel), fresh interpreter each")
    print(f"{'method':<9} {'run':<5} {'import s':>9} {'forward s':>10} {'backward s':>11} {'total s':>8} "
          f"{'recompiled':>10}")
    for method in ("direct", "im2col", "blocked"):
        with tempfile.TemporaryDirectory(prefix="nbconv-numba-cache-") as cache:
            for run in ("cold", "warm"):
                t = measure(cache, "first", method)
                results[f"{method} {run}"] = t
                fwd = t[f"conv2d {method} float32 forward"]
                bwd = t[f"conv2d {method} float32 backward"]
                print(f"{method:<9} {run:<5} {t['import']:>9.2f} {fwd:>10.2f} {bwd:>11.2f} "
                      f"{t['import'] + fwd + bwd:>8.2f} {t['cache misses']:>10}")
    if args.all:
        print()
        print("every family, float32 and float64 (what a cold test run compiles)")
        for method in ("naive", "parallel"):
            with tempfile.TemporaryDirectory(prefix="nbconv-numba-cache-") as cache:
                for run in ("cold", "warm"):
                    t = measure(cache, "all", method)
                    results[f"all {method} {run}"] = t
                    total = first_call_total(t) - t["import"]
                    print(f"{method:<9} {run:<5} import {t['import']:.2f} s, kernels {total:.1f} s, "
                          f"recompiled {t['cache misses']}")
                    if run == "cold":
                        for k, v in t.items():
                            if k not in ("import", "cache misses"):
                                print(f"    {k:<36} {v:6.2f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
