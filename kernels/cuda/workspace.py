"""Device memory reused from call to call: the scratch arrays of the fast GPU paths, and the
column matrices a forward keeps for its backward.

Allocating device memory costs more than a small kernel (``cuMemAlloc``, and numba's deferred
frees add synchronizing ``cuMemFree`` calls), and a training step of constant shapes needs the
same arrays at every step.  The device's "fast" convolution (``nbconv.functional.conv_fast``)
therefore takes them from a ``DeviceWorkspace``:

- ``scratch(role, shape, dtype)``: an array that lives for one call (the GEMM's output rows
  y_rows, the backward's dy_rows and dX_col).  One flat buffer per (role, dtype), kept and
  reused by every later call, grown when a call needs more; the array returned is a view of
  its first prod(shape) elements.  Layers of different shapes share the buffer (one call
  runs at a time, and the GPU runs the kernels of one stream in order), so the workspace holds
  the largest, not the sum.
- ``keep(owner, key, shape, dtype)``: an array that lives from a forward to its backward, X_col,
  built once by the forward and read again by the backward.  It is kept for ``owner`` (the
  forward's input x) under ``key`` (the convolution's geometry): ``kept(owner, key)`` finds it,
  ``release(owner, key)`` hands it back when the backward is done, and it is handed back too
  when the owner is garbage-collected (a forward without a backward, e.g. evaluation).  An
  array handed back is reused by the next ``keep`` of the same shape and dtype, so in a
  training loop of constant shapes each layer's X_col is allocated in the first steps only.

Not thread-safe: one workspace serves the calling thread's launches on the default stream.
"""

from __future__ import annotations

import weakref

import numpy as np
from numba import cuda


class DeviceWorkspace:
    """Scratch device arrays, and the arrays kept from a forward for its backward."""

    def __init__(self):
        self.buffers = {}        # (role, dtype) -> flat device array, grown on demand
        self.kept_arrays = {}    # id(owner) -> {key: device array}
        self.spare = {}          # (shape, dtype) -> [device arrays handed back]
        self._finalizers = {}    # id(owner) -> weakref.finalize (hands the owner's arrays back)

    def scratch(self, role: str, shape: tuple, dtype):
        """A C-contiguous device array of ``shape`` for one call: a view of the (role, dtype) buffer."""
        size = int(np.prod(shape, dtype=np.int64))
        key = (role, np.dtype(dtype))
        buffer = self.buffers.get(key)
        if buffer is None or buffer.size < size:
            buffer = cuda.device_array(max(size, 1), dtype=dtype)
            self.buffers[key] = buffer
        return buffer[:size].reshape(shape)

    def keep(self, owner, key, shape: tuple, dtype):
        """The device array kept for ``owner`` under ``key``: the one already kept there, else a
        spare of that shape and dtype, else a new one."""
        arrays = self.kept_arrays.setdefault(id(owner), {})
        array = arrays.get(key)
        if array is None:
            spares = self.spare.get((tuple(shape), np.dtype(dtype)))
            array = spares.pop() if spares else cuda.device_array(shape, dtype=dtype)
            arrays[key] = array
        if id(owner) not in self._finalizers:
            self._finalizers[id(owner)] = weakref.finalize(owner, self._forget, id(owner))
        return array

    def kept(self, owner, key):
        """The array kept for ``owner`` under ``key``, or None."""
        return self.kept_arrays.get(id(owner), {}).get(key)

    def release(self, owner, key) -> None:
        """Hand back the array kept for ``owner`` under ``key`` (nothing if there is none)."""
        arrays = self.kept_arrays.get(id(owner), {})
        array = arrays.pop(key, None)
        if array is not None:
            self.spare.setdefault((array.shape, np.dtype(array.dtype)), []).append(array)

    def _forget(self, owner_id) -> None:
        """The owner is gone: every array kept for it is handed back."""
        self._finalizers.pop(owner_id, None)
        for array in self.kept_arrays.pop(owner_id, {}).values():
            self.spare.setdefault((array.shape, np.dtype(array.dtype)), []).append(array)

    def clear(self) -> None:
        """Drop every array (numba frees the device memory once nothing else refers to it)."""
        for finalizer in self._finalizers.values():
            finalizer.detach()
        self.buffers.clear()
        self.kept_arrays.clear()
        self.spare.clear()
        self._finalizers.clear()
