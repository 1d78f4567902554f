"""What every layer has: named parameters with their gradients, train/eval, forward/backward.

A layer wraps one functional pair::

    y = layer.forward(x)        # calls F.<op>_forward and keeps the cache
    dx = layer.backward(dout)   # calls F.<op>_backward with it and stores each
                                # parameter's gradient in param.grad (overwritten, not accumulated)

Shapes without arrays: ``output_shape(input_shape)`` and ``param_shapes()``
describe a layer from its hyper-parameters alone, so a summary of a network
as large as VGG16 needs no weights (build it with ``allocate=False``).

Devices: ``layer.to("cuda")`` moves every parameter (data and grad) and every buffer of the
layer and its children to the GPU as numba device arrays, ``layer.to("cpu")`` copies them back
into NumPy arrays; the functional ops then run where their inputs are, so a model on the GPU
takes device inputs (``numba.cuda.to_device(x)``) and returns device arrays.

Dtypes: layers hold float32 by default (half the memory of float64), while NumPy
makes float64 arrays (``np.random.randn``, ``np.array([0.5])``).  A layer does not convert
its input silently: a float64 x into a float32 layer (or float32 into a float64 one) is
refused with a TypeError naming the layer and the two fixes, ``x.astype(np.float32)`` or a
layer built with ``dtype=np.float64``.

Errors name the layer and the fix: ``backward`` before any ``forward`` is a RuntimeError
(read the saved cache through ``self.cache``); an x whose shape does not fit the layer's
sizes is refused by the layer, with the message of ``output_shape``; and inside a
Sequential every error is prefixed by where the failing layer sits, e.g.
``layer [3] Linear(256, 10, bias=True), forward: ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import devices
from . import _table
from ._util import describe


@dataclass
class Parameter:
    """A trainable array and the gradient of the loss with respect to it."""

    data: np.ndarray
    grad: np.ndarray = field(default=None)

    def __post_init__(self):
        if self.grad is None:
            self.grad = devices.zeros(self.data.shape, self.data.dtype, devices.array_device(self.data))

    @property
    def shape(self):
        return self.data.shape


class Layer:
    """The small interface shared by all layers; subclasses override what applies to them."""

    training: bool = True
    _cache = None            # what the last forward saved for backward; read it through self.cache

    # -- computation
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    @property
    def cache(self):
        """What the last forward saved for backward; a RuntimeError before any forward."""
        if self._cache is None:
            raise RuntimeError(f"{describe(self)}.backward called before forward: backward uses what the last "
                               f"forward saved; call forward(x) first")
        return self._cache

    def __call__(self, x):
        return self.forward(x)

    # -- structure
    def init_params(self, shapes: dict[str, tuple], init: dict, *, allocate: bool = True,
                    dtype=np.float32) -> None:
        """Declare this layer's parameters: their shapes, and arrays drawn by ``init[name](shape)``
        unless ``allocate`` is False (shapes only, for summaries of large networks)."""
        self._shapes = {name: tuple(shape) for name, shape in shapes.items()}
        self._params = {name: Parameter(np.asarray(init[name](shape), dtype=dtype))
                        for name, shape in self._shapes.items()} if allocate else {}

    def params(self) -> dict[str, Parameter]:
        """This layer's own parameters by name (not its children's)."""
        return getattr(self, "_params", {})

    def buffers(self) -> dict[str, np.ndarray]:
        """State that is not trained but must be saved, such as batch norm's running statistics.

        Return the layer's live dict (``to`` replaces its arrays when moving the layer)."""
        return {}

    def children(self) -> dict[str, "Layer"]:
        return {}

    def param_shapes(self) -> dict[str, tuple]:
        """Parameter shapes from the hyper-parameters alone (works with allocate=False)."""
        return getattr(self, "_shapes", {})

    def output_shape(self, input_shape: tuple) -> tuple:
        """The output shape for an input of ``input_shape`` (batch axis included)."""
        raise NotImplementedError

    # -- the whole tree
    def named_parameters(self, prefix: str = "") -> list[tuple[str, Parameter]]:
        out = [(prefix + name, p) for name, p in self.params().items()]
        for child_name, child in self.children().items():
            out += child.named_parameters(f"{prefix}{child_name}.")
        return out

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> list[tuple[str, np.ndarray]]:
        out = [(prefix + name, b) for name, b in self.buffers().items()]
        for child_name, child in self.children().items():
            out += child.named_buffers(f"{prefix}{child_name}.")
        return out

    def summary(self, input_shape, dtype_bytes: int = 4) -> None:
        """Print the table of nbconv.summary.summary: per layer the output shape, activations and
        parameters, and the memory totals, for one sample of ``input_shape`` (no batch axis)."""
        print(_table.summary(self, input_shape, dtype_bytes=dtype_bytes))

    def num_params(self) -> int:
        own = sum(int(np.prod(s)) for s in self.param_shapes().values())
        return own + sum(child.num_params() for child in self.children().values())

    def train(self, mode: bool = True) -> "Layer":
        self.training = mode
        for child in self.children().values():
            child.train(mode)
        return self

    def eval(self) -> "Layer":
        return self.train(False)

    def set_method(self, method: str) -> "Layer":
        """Run every op of this layer and its children in ``method``: "naive" (the teaching loop
        nests), "fast" (the optimized kernels) or "auto" (fast where it pays; see
        nbconv.functional.dispatch).  Layers whose op has one form only keep it.  Returns the layer.

        ``model.set_method("naive")`` runs a whole network on the loops, to time the difference."""
        if method not in ("naive", "fast", "auto"):
            raise ValueError(f"method must be 'naive', 'fast' or 'auto', got {method!r}")
        if hasattr(self, "method"):
            self.method = method
        for child in self.children().values():
            child.set_method(method)
        return self

    # -- devices
    def to(self, device: str) -> "Layer":
        """Move every parameter (data and grad) and buffer of this layer and its children to
        ``device``: "cuda" copies them to the GPU (numba.cuda.to_device), "cpu" back to NumPy
        arrays (copy_to_host).  Arrays already there stay as they are.  Returns the layer.

        An optimizer built before the move keeps working: its state follows each parameter to
        its device at the next step."""
        device = devices.check_device(device)
        for p in self.params().values():
            p.data = devices.to_device(p.data, device)
            p.grad = devices.to_device(p.grad, device)
        buffers = self.buffers()
        for name in list(buffers):
            buffers[name] = devices.to_device(buffers[name], device)
        if any(devices.array_device(b) != device for b in self.buffers().values()):
            raise NotImplementedError(f"{type(self).__name__}.buffers() returns a new dict, so .to() cannot "
                                      f"move the buffers: return the live dict, or override to()")
        for child in self.children().values():
            child.to(device)
        return self

    @property
    def device(self) -> str:
        """"cuda" when the layer's parameters and buffers (its children's included) are on the GPU,
        "cpu" otherwise (also for a layer without any)."""
        arrays = [p.data for _, p in self.named_parameters()] + [b for _, b in self.named_buffers()]
        return devices.array_device(arrays[0]) if arrays else devices.CPU

    def store_grads(self, **grads) -> None:
        """Write each gradient into its parameter's ``grad`` (a None, such as db of a layer
        without bias, is skipped)."""
        params = self.params()
        for name, grad in grads.items():
            if grad is not None:
                devices.assign(params[name].grad, grad)      # params[name].grad[...] = grad, on either device

    def zero_grad(self) -> None:
        for p in self.parameters():
            devices.assign(p.grad, 0.0)                      # p.grad[...] = 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return ""

