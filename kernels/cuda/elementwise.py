"""Element-wise helpers on the GPU: add, copy, fill, scale, and a count of the values outside a
range (the input checks of the losses).

These have NO CPU twin in nbconv.kernels: on the CPU, NumPy does these steps in the functional
layer (``conv_out + x`` of the residual connection, ``np.zeros``, ``x.copy()``, ``(p < 0) | (p > 1)`` of bce's check).  A numba device array has no
arithmetic operators, so on the GPU each of them is a kernel of its own, one thread per element.

Shapes: add, copy, scale, fill and count_outside take flat 1-D arrays (the functional layer passes
``a.reshape(a.size)`` of C-contiguous arrays).

The scalars (fill's value, scale's factor, the bounds of count_outside) reach the kernels in the
array's dtype, cast by the launcher: a Python float is a float64, and a float32 kernel that
touches one computes in float64, which a T4-class GPU runs at 1/32 of the float32 rate.
"""

from numba import cuda

from ._launch import launch


@cuda.jit
def _add_kernel(a, b, out):
    """out[i] = a[i] + b[i]        one thread per i"""
    i = cuda.grid(1)
    if i >= out.shape[0]:
        return
    out[i] = a[i] + b[i]


def add(a, b, out):
    """out[i] = a[i] + b[i]   (flat device arrays of one length; out may be a or b)"""
    launch(_add_kernel, out.shape[0], a, b, out)


@cuda.jit
def _copy_kernel(src, dst):
    """dst[i] = src[i]        one thread per i (converts the dtype when they differ)"""
    i = cuda.grid(1)
    if i >= dst.shape[0]:
        return
    dst[i] = src[i]


def copy(src, dst):
    """dst[i] = src[i]   (flat device arrays of one length)"""
    launch(_copy_kernel, dst.shape[0], src, dst)


@cuda.jit
def _fill_kernel(out, value):
    """out[i] = value        one thread per i"""
    i = cuda.grid(1)
    if i >= out.shape[0]:
        return
    out[i] = value


def fill(out, value):
    """out[i] = value   (a flat device array and a Python number)"""
    launch(_fill_kernel, out.shape[0], out, out.dtype.type(value))     # value in out's dtype (module docstring)


@cuda.jit
def _scale_kernel(a, s, out):
    """out[i] = s * a[i]        one thread per i"""
    i = cuda.grid(1)
    if i >= out.shape[0]:
        return
    out[i] = s * a[i]


def scale(a, s, out):
    """out[i] = s * a[i]   (flat device arrays of one length, s a Python number; out may be a)"""
    launch(_scale_kernel, out.shape[0], a, a.dtype.type(s), out)     # s in a's dtype (module docstring)


@cuda.jit
def _count_outside_kernel(a, lo, hi, count):
    """count[0] += 1 for every a[i] < lo or a[i] > hi        one thread per i (an atomic add)"""
    i = cuda.grid(1)
    if i >= a.shape[0]:
        return
    if a[i] < lo or a[i] > hi:
        cuda.atomic.add(count, 0, 1)


def count_outside(a, lo, hi, count):
    """count[0] += the number of a[i] outside [lo, hi]   (a flat device array, count an int64
    device array of one element, set to 0 by the caller).  The one scatter of this module: every
    thread that finds a value outside adds 1 to the same counter, with cuda.atomic.add, the
    simple choice for a rare event; NaN compares False and is not counted.  For a float array the
    bounds are compared in a's dtype (for a float32 a, v < lo and v < float32(lo) agree, ties of
    the rounding aside); integer bounds of an integer array stay Python ints."""
    if a.dtype.kind == "f":
        lo, hi = a.dtype.type(lo), a.dtype.type(hi)
    launch(_count_outside_kernel, a.shape[0], a, lo, hi, count)
