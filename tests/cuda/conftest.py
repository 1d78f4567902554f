"""Test setup for the CUDA kernels: Numba's CUDA simulator unless a real GPU is asked for.

NUMBA_ENABLE_CUDASIM must be set before ``numba.cuda`` is first imported in the process (it
picks the simulator or the real driver at import).  The line below sets it unless the caller
chose (NUMBA_ENABLE_CUDASIM=0 runs these tests on a real GPU).  The root tests/conftest.py
should set it too, since other test modules import numba early: numba reads its NUMBA_*
variables when numba itself is imported, so if numba came first we ask it to re-read them,
and if numba.cuda itself came first with the other setting we stop with a clear error.
"""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import importlib  # noqa: E402
import importlib.util  # noqa: E402
import pkgutil  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

WANT_SIMULATOR = os.environ["NUMBA_ENABLE_CUDASIM"].strip() not in ("", "0")
HAVE_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None

# Without numba-cuda only the test of the install hint can run.
collect_ignore_glob = [] if HAVE_NUMBA_CUDA else ["test_cuda_[!i]*.py"]

if HAVE_NUMBA_CUDA:
    if "numba.cuda" not in sys.modules and "numba" in sys.modules:
        from numba.core import config as _numba_config
        _numba_config.reload_config()          # numba was imported before the variable was set
    from numba import cuda

    USING_SIMULATOR = cuda.jit.__module__.startswith("numba.cuda.simulator")
    if USING_SIMULATOR != WANT_SIMULATOR:
        raise pytest.UsageError(
            f"numba.cuda was imported before tests/cuda/conftest.py could apply "
            f"NUMBA_ENABLE_CUDASIM={os.environ['NUMBA_ENABLE_CUDASIM']!r} (it runs "
            f"{'the simulator' if USING_SIMULATOR else 'the real driver'}); set the variable before "
            f"anything imports numba.cuda, e.g. at the top of tests/conftest.py: "
            f'os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")')

    if USING_SIMULATOR:
        import threading

        from numba.core import types as numba_types
        from numba.cuda.simulator.kernelapi import FakeCUDAShared
        from numba.np import numpy_support

        # The simulator runs a block's threads as Python threads, and each thread's
        # cuda.shared.array(...) looks up the block's array for that source line, creating it when
        # missing, without a lock: two threads that miss at the same moment get two different
        # "shared" arrays, and a block-tree sum then adds the wrong halves (seen about once in a
        # few hundred blocks).  A real GPU has one array per block; so does the simulator with the
        # lookup under a lock.
        _shared_array = FakeCUDAShared.array
        _shared_lock = threading.Lock()

        def _locked_shared_array(self, shape, dtype, alignment=None):
            """FakeCUDAShared.array with its lookup-or-create under a lock.  The simulator keys a
            block's shared arrays by the caller's file and line (one call per line), so the key
            is taken here from the caller's frame, as the original takes it from its own."""
            if shape == 0 or alignment is not None:          # dynamic shared memory, or its error
                return _shared_array(self, shape, dtype, alignment)
            if isinstance(dtype, numba_types.Type):
                dtype = numpy_support.as_dtype(dtype)
            frame = sys._getframe(1)
            caller = (frame.f_code.co_filename, frame.f_lineno)
            with _shared_lock:
                found = self._allocations.get(caller)
                if found is None:
                    found = self._allocations[caller] = np.empty(shape, dtype)
            return found

        if not getattr(FakeCUDAShared.array, "_nbconv_locked", False):
            _locked_shared_array._nbconv_locked = True
            FakeCUDAShared.array = _locked_shared_array


@pytest.fixture(autouse=True)
def _need_a_device():
    if HAVE_NUMBA_CUDA and not USING_SIMULATOR and not cuda.is_available():
        pytest.skip("NUMBA_ENABLE_CUDASIM=0 but no CUDA GPU is available")


TOLERANCE = {np.dtype(np.float64): dict(rtol=1e-9, atol=1e-9),
             np.dtype(np.float32): dict(rtol=1e-5, atol=1e-5)}


def _run_both(cpu_kernel, cuda_kernel, *args):
    """Run the CPU kernel on NumPy copies of ``args`` and the CUDA launcher on device copies.

    -> (cpu_args, cuda_args, cpu_return, cuda_return), the arrays after the runs (device
    arrays copied back to the host).  Outputs should come in filled with NaN (or a sentinel)
    so that an element a kernel forgot to write shows up.
    """
    cpu_args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    dev_args = [cuda.to_device(a.copy()) if isinstance(a, np.ndarray) else a for a in args]
    cpu_ret = cpu_kernel(*cpu_args)
    cuda_ret = cuda_kernel(*dev_args)
    host_args = [d.copy_to_host() if isinstance(a, np.ndarray) else d for a, d in zip(args, dev_args)]
    return cpu_args, host_args, cpu_ret, cuda_ret


def _compare(cpu_kernel, cuda_kernel, *args, rtol=None, atol=None):
    """Assert that the CUDA launcher leaves every array argument (and its return value) equal
    to what the CPU kernel gives: integer and bool arrays exactly, floats to the precision of
    the least precise float array involved: 1e-9 (rtol and atol) when all are float64, 1e-5
    when one is float32 (a float64 statistic of float32 data is only that precise).
    Returns the CPU's arrays."""
    cpu_args, host_args, cpu_ret, cuda_ret = _run_both(cpu_kernel, cuda_kernel, *args)
    floats = {a.dtype for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"}
    tol = dict(TOLERANCE[np.dtype(np.float32) if np.dtype(np.float32) in floats else np.dtype(np.float64)])
    tol.update({key: v for key, v in (("rtol", rtol), ("atol", atol)) if v is not None})
    for k, (c, g) in enumerate(zip(cpu_args, host_args)):
        if not isinstance(c, np.ndarray):
            continue
        assert g.dtype == c.dtype and g.shape == c.shape
        if c.dtype.kind == "f":
            np.testing.assert_allclose(g, c, err_msg=f"argument {k}", **tol)
        else:
            np.testing.assert_array_equal(g, c, err_msg=f"argument {k}")
    if cpu_ret is None:
        assert cuda_ret is None
    else:                           # a loss: a Python float on the CPU, a 0-d device array on the GPU
        if not isinstance(cuda_ret, float):
            assert np.shape(cuda_ret) == ()
            cuda_ret = float(np.asarray(cuda_ret))
        assert cuda_ret == pytest.approx(cpu_ret, rel=tol["rtol"], abs=tol["atol"])
    return cpu_args


@pytest.fixture
def compare():
    """compare(cpu_kernel, cuda_kernel, *args): both kernels on copies of args, every array equal."""
    return _compare


@pytest.fixture
def run_both():
    return _run_both


@pytest.fixture(params=[np.float64, np.float32], ids=["float64", "float32"])
def dtype(request):
    return np.dtype(request.param)


# ---------------------------------------------------------------- block sizes in the simulator

SIMULATED_THREADS = 4       # the reductions' blocks under the simulator (128 on a GPU)
SIMULATED_TILES = dict(BM=8, BN=8, BK=4, TM=2, TN=2, THREADS_Y=4, THREADS_X=4, THREADS=16,
                       A_SLICE=(8, 5), B_SLICE=(4, 9))      # gemm.matmul's 64 x 64 tiles, shrunk
# and the other launch sizes: the one-thread-per-element kernels' blocks (an array of 6 elements
# would start a block of 128 Python threads), loss's rows (32) and its mean's first pass (256 blocks)
SIMULATED_OTHERS = {"_launch": dict(THREADS=8), "loss": dict(ROW_THREADS=4, SUM_BLOCKS=4)}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "real_blocks: run the CUDA kernels with the block and tile sizes of a GPU under the "
                   "simulator too (blocks of 128 threads, 64 x 64 product tiles; slow there)")


@pytest.fixture(autouse=True, scope="session")
def _tuned_cuda_run():
    """Every CUDA test in nbconv.devices.tuned_cuda_run: under the simulator a short thread switch
    interval for its barriers and its uint64 overflow warnings silenced; on a GPU the warning
    about small grids silenced."""
    if not HAVE_NUMBA_CUDA:
        yield
        return
    from nbconv import devices
    with devices.tuned_cuda_run():
        yield


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 8 threads for every reduction and 8 x 8 tiles for the matrix product, under the
    simulator only (on a GPU nothing changes): for tests whose sizes are chosen around a block of
    8 (several rounds of the block-stride loop, a last round partly idle)."""
    if not (HAVE_NUMBA_CUDA and USING_SIMULATOR):
        return
    _set_block_sizes(monkeypatch, 8)


def _set_block_sizes(monkeypatch, threads):
    """Every module's reduction blocks to ``threads`` threads, and the sizes above."""
    import nbconv.kernels.cuda as package
    for module in pkgutil.iter_modules(package.__path__):
        kernels = importlib.import_module(f"nbconv.kernels.cuda.{module.name}")
        if module.name == "gemm":
            sizes = SIMULATED_TILES
        elif isinstance(getattr(kernels, "THREADS", None), int) and module.name != "_launch":
            sizes = dict(THREADS=threads)
        else:
            sizes = {}
        for name, value in {**sizes, **SIMULATED_OTHERS.get(module.name, {})}.items():
            monkeypatch.setattr(kernels, name, value)


@pytest.fixture(autouse=True)
def _small_blocks_in_the_simulator(request, monkeypatch):
    """Under the simulator, the reductions run in blocks of SIMULATED_THREADS threads, the
    matrix product in 8 x 8 tiles and the element-wise kernels in blocks of 8 (SIMULATED_OTHERS),
    unless a test is marked ``real_blocks``.

    Why: the simulator runs every GPU thread as a Python thread, and each level of a block's tree
    sum is a barrier that all of them must reach: a block of 128 threads costs 0.1 to 0.2 s of
    Python, and the reductions launch one block per channel, filter, weight or row.  The kernels
    read their block size (each module's THREADS, gemm's tile constants) when they run there, so
    the same code runs in smaller blocks, with more rounds of its block-stride loops: the sums,
    their edges (a size that is not a multiple of the block, a block with idle threads) and the
    tree are the same code paths.  The tests marked ``real_blocks`` run at the GPU's sizes; on a
    GPU the compiled kernels have their sizes built in and nothing here changes them.
    """
    if not (HAVE_NUMBA_CUDA and USING_SIMULATOR) or request.node.get_closest_marker("real_blocks"):
        return
    _set_block_sizes(monkeypatch, SIMULATED_THREADS)
