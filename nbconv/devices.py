"""Where an array lives, and moving it: the CPU for NumPy arrays, the GPU for CUDA device arrays.

    from nbconv import devices
    devices.device_of(x=x, w=w)          # "cpu" or "cuda"; a TypeError naming both if they are mixed
    d = devices.to_device(x, "cuda")     # a copy on the GPU (numba.cuda.to_device)
    h = devices.to_host(d)               # a NumPy copy (a NumPy array is returned as is)

Every op of ``nbconv.functional`` asks ``device_of`` where its array arguments live, and
``nbconv.functional.dispatch`` takes the kernels of that device from its table:

    "cpu"   NumPy arrays in, the @njit kernels of ``nbconv.kernels.<family>``, NumPy arrays out;
    "cuda"  numba CUDA device arrays in (``numba.cuda.to_device(x)``, or anything exposing
            ``__cuda_array_interface__``, such as a CuPy array, which is wrapped with
            ``numba.cuda.as_cuda_array`` without a copy), the @cuda.jit launchers of
            ``nbconv.kernels.cuda.<family>``, device arrays out.

One call never mixes the two: a host array and a device array in the same call is a TypeError
naming both arguments (a host array handed to a CUDA kernel would be copied to the device and
back silently at every launch, and the result would land on the host copy).  Move arrays with
``to_device(a, "cuda")`` and ``to_host(d)``; layers and models move with ``.to("cuda")``.

``numba.cuda`` is imported here only when a device array arrives: ``import nbconv`` and every
CPU path work without the numba-cuda package, and a device array without it raises an
ImportError that says ``pip install "nbconv[cuda]"``.  ``cuda_unavailable()`` says why the GPU
path cannot run here (or None when it can); ``simulator()`` whether Numba's CUDA simulator runs it.

What the module offers:

    where            device_of(**arrays), array_device(a), is_device_array(a), check_device(name)
    moving           to_device(a, device), to_host(a), as_device_array(a)
    allocating       empty, zeros, full (shape, dtype, device); empty_like(a), copy(a)
    in place         assign(dst, src), flat(a) (the 1-D view), add(a, b)
    the GPU          cuda_unavailable(), simulator(), tuned_cuda_run (a context for many small launches)
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

CPU, CUDA = "cpu", "cuda"
DEVICES = (CPU, CUDA)

_INSTALL_HINT = ('CUDA arrays need the numba-cuda package (and, on a real GPU, the CUDA toolkit wheels): '
                 'pip install "nbconv[cuda]"')


def is_device_array(a) -> bool:
    """True for a numba CUDA device array (also under the simulator) or any object exposing
    ``__cuda_array_interface__``; checked without importing numba.cuda."""
    if isinstance(a, np.ndarray) or a is None:
        return False
    return bool(getattr(a, "__cuda_ndarray__", False)) or hasattr(a, "__cuda_array_interface__")


def _cuda():
    """numba.cuda, imported on first use through nbconv.kernels.cuda (which names the extra to install)."""
    try:
        import nbconv.kernels.cuda  # noqa: F401
    except ImportError as exc:             # the cause (numba-cuda or its CUDA bindings) is chained
        raise ImportError(_INSTALL_HINT) from exc
    from numba import cuda
    return cuda


def simulator() -> bool:
    """True when numba.cuda runs Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)."""
    return _cuda().jit.__module__.startswith("numba.cuda.simulator")


class tuned_cuda_run:
    """``with tuned_cuda_run(): ...`` around a run of many small CUDA launches (the gradient
    checks, the tests).

    Under Numba's CUDA simulator:

    - Python's thread switch interval is shortened to 0.5 ms.  The simulator runs every GPU
      thread of a block as a Python thread and a manager thread polls them to release each
      ``syncthreads()`` barrier; with the default 5 ms each barrier waits for a GIL hand-over,
      and kernels with barriers (the matrix product, the block reductions) run 3 to 4 times slower.
    - The simulator's warnings about dropout's mask are silenced: it runs the SplitMix64 draw
      on uint64 NumPy scalars, which wrap around by design (RuntimeWarning: overflow).

    On a real GPU: numba's warning that a grid of a few blocks under-uses the GPU is silenced
    (small launches are the point of the small check shapes).
    """

    INTERVAL = 5e-4

    def __enter__(self):
        self._before = sys.getswitchinterval()
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        if simulator():
            sys.setswitchinterval(min(self._before, self.INTERVAL))
            warnings.filterwarnings("ignore", "overflow encountered in scalar", RuntimeWarning,
                                    r"nbconv\.kernels\.cuda\.dropout")
        else:
            warnings.filterwarnings("ignore", r"Grid size \d+ will likely result in GPU under-utilization")
        return self

    def __exit__(self, *exc):
        sys.setswitchinterval(self._before)
        self._warnings.__exit__(*exc)
        return False


def cuda_unavailable() -> str | None:
    """Why the CUDA kernels cannot run here (numba-cuda missing, or no GPU and no simulator),
    or None when they can: the command line's check before it moves anything to the device."""
    try:
        cuda = _cuda()
    except ImportError as exc:
        return str(exc)
    if not cuda.is_available():
        return ("no CUDA GPU is available (numba.cuda.is_available() is False); without one, set "
                "NUMBA_ENABLE_CUDASIM=1 to run the CUDA kernels in Numba's (slow) simulator")
    return None


def as_device_array(a):
    """A numba device array for ``a``: itself when it is one, else the zero-copy view
    ``numba.cuda.as_cuda_array(a)`` of an object with ``__cuda_array_interface__``."""
    if getattr(a, "__cuda_ndarray__", False):
        _cuda()                    # the install hint also for arrays made by numba.cuda directly
        return a
    cuda = _cuda()
    wrap = getattr(cuda, "as_cuda_array", None)
    if wrap is None:               # Numba's CUDA simulator has no real device memory to wrap
        raise TypeError(f"cannot use a {type(a).__name__} (an object with __cuda_array_interface__) under "
                        f"Numba's CUDA simulator; pass numba.cuda device arrays, or run on a GPU")
    return wrap(a)


def _where(a) -> str | None:
    if isinstance(a, np.ndarray):
        return CPU
    if is_device_array(a):
        return CUDA
    return None                    # scalars, None, and wrong types (the checks that follow refuse those)


def _describe(a, device: str) -> str:
    kind = "a numpy.ndarray on the host" if device == CPU else "a CUDA device array"
    return f"{kind} ({device})"


def device_of(**arrays) -> str:
    """The device of the arrays, by argument name: "cpu" (NumPy) or "cuda" (device arrays).

    None, Python scalars and other non-arrays are ignored (the argument checks refuse wrong
    types with their own message); no array at all means "cpu".  Host and device arrays in one
    call raise TypeError naming the first argument of each kind.
    """
    for a in arrays.values():              # the common case first: no device array at all
        if a is not None and not isinstance(a, np.ndarray) and is_device_array(a):
            break
    else:
        return CPU
    first = {}
    for name, a in arrays.items():
        where = _where(a)
        if where is not None and where not in first:
            first[where] = name
    if len(first) > 1:
        cpu_name, cuda_name = first[CPU], first[CUDA]
        raise TypeError(
            f"{cpu_name} is {_describe(arrays[cpu_name], CPU)} but {cuda_name} is "
            f"{_describe(arrays[cuda_name], CUDA)}; the arrays of one call must be on the same device: "
            f"move them with numba.cuda.to_device(a) or d.copy_to_host() (a model with .to(device))")
    if CUDA in first:
        _cuda()                    # the install hint, before any CUDA kernel is looked up
        return CUDA
    return CPU


def check_device(device) -> str:
    """A device name, "cpu" or "cuda"."""
    if device not in DEVICES:
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return device


def elementwise():
    """The GPU-only helper kernels of nbconv.kernels.cuda.elementwise (add, copy, fill, scale,
    count_outside: what NumPy does on the host)."""
    _cuda()                        # the install hint first
    from nbconv.kernels.cuda import elementwise as gpu_elementwise
    return gpu_elementwise


# ---------------------------------------------------------------- allocation

def empty(shape, dtype, device: str):
    """An uninitialized array of ``shape`` and ``dtype`` on ``device``."""
    if device == CPU:
        return np.empty(shape, dtype=dtype)
    return _cuda().device_array(shape, dtype=np.dtype(dtype))


def full(shape, value, dtype, device: str):
    """An array of ``shape`` and ``dtype`` filled with ``value`` on ``device`` (a kernel fills it on the GPU)."""
    if device == CPU:
        return np.full(shape, value, dtype=dtype)
    out = empty(shape, dtype, device)
    if out.size:
        elementwise().fill(out.reshape(out.size), value)
    return out


def zeros(shape, dtype, device: str):
    """An array of zeros of ``shape`` and ``dtype`` on ``device``."""
    if device == CPU:
        return np.zeros(shape, dtype=dtype)
    return full(shape, 0, dtype, device)


def empty_like(a):
    """An uninitialized array of a's shape and dtype on a's device."""
    if isinstance(a, np.ndarray):
        return np.empty_like(a)
    return empty(a.shape, a.dtype, CUDA)


def copy(a):
    """A contiguous copy of ``a`` on its own device."""
    if isinstance(a, np.ndarray):
        return a.copy()
    out = empty(a.shape, a.dtype, CUDA)
    if a.size:
        elementwise().copy(flat(a), flat(out))
    return out


def flat(a):
    """The 1-D view of a C-contiguous array of either kind (reshape(size): valid for size 0 too)."""
    return a.reshape(a.size)


# ---------------------------------------------------------------- moving arrays

def to_device(a, device: str):
    """``a`` on ``device``: a device array copied from the host (C-contiguous), or a host copy of a
    device array; an array already there is returned as is."""
    device = check_device(device)
    if device == CUDA:
        if is_device_array(a):
            return as_device_array(a)
        return _cuda().to_device(np.ascontiguousarray(a))
    return to_host(a)


def to_host(a):
    """A NumPy array: ``a`` itself when it is one, else a host copy of the device array."""
    if isinstance(a, np.ndarray):
        return a
    if is_device_array(a):
        return as_device_array(a).copy_to_host()
    return np.asarray(a)


def array_device(a) -> str:
    """"cuda" for a device array, "cpu" otherwise."""
    return CUDA if is_device_array(a) else CPU


def assign(dst, src) -> None:
    """dst[...] = src for a live array ``dst`` of either device, ``src`` of the same shape
    (a host or device array) or a scalar; the data of ``dst`` is overwritten in place."""
    if isinstance(dst, np.ndarray):
        dst[...] = to_host(src) if is_device_array(src) else src
        return
    if np.isscalar(src):
        if dst.size:
            elementwise().fill(flat(dst), src)
        return
    if tuple(src.shape) != tuple(dst.shape):
        raise ValueError(f"cannot copy an array of shape {tuple(src.shape)} into one of shape {tuple(dst.shape)}")
    if dst.size == 0:
        return
    if is_device_array(src):
        src = as_device_array(src)
        if np.dtype(src.dtype) == np.dtype(dst.dtype):
            dst.copy_to_device(src)
        else:
            elementwise().copy(flat(src), flat(dst))     # the kernel converts the dtype
    else:
        dst.copy_to_device(np.ascontiguousarray(src, dtype=dst.dtype))


def add(a, b):
    """A new array a + b of a's shape, on their device (NumPy's + on the host, a kernel on the GPU)."""
    if isinstance(a, np.ndarray):
        return a + b
    a, b = as_device_array(a), as_device_array(b)
    out = empty(a.shape, a.dtype, CUDA)
    if out.size:
        elementwise().add(flat(a), flat(b), flat(out))
    return out
