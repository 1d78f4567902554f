"""Gradient check of a layer object (or a whole model) of ``nbconv.layers``, or of your own.

A layer is checked through its two methods: ``y = layer.forward(x)`` and
``dx = layer.backward(dout)``, which also leaves each parameter's gradient in ``param.grad``.
``check_layer`` turns that into the functional pair the harness checks,

    forward(x, *parameter values) -> (layer.forward(x), None)
    backward(dout, None)          -> (dx, *[param.grad for every parameter])

so dx and every parameter's gradient are compared with central differences, at the layer's
current parameter values.  The check runs in float64 whatever the layer holds (parameters and
buffers are swapped for float64 copies during the check and put back afterwards, so the check
leaves the layer as it found it), and every random generator the layer owns (a dropout mask's)
is rewound before each forward, so that every evaluation draws the same mask.
"""

from __future__ import annotations

import numpy as np

from .harness import GradientCheck, check_gradients
from .registry import SMOOTH_THRESHOLD


def check_layer(layer, x, *, threshold: float = SMOOTH_THRESHOLD, seed: int = 0,
                verbose: bool = False) -> GradientCheck:
    """Finite differences of ``layer`` with respect to ``x`` and every parameter.

    ``layer`` is anything with ``forward(x)``, ``backward(dout)`` and ``named_parameters()``
    (an ``nbconv.layers.Layer``, a ``Sequential``, your own subclass).  Keep ``x`` small: two
    forward passes per element of x and of every parameter.  Use threshold 1e-6
    (``registry.KINK_THRESHOLD``) for layers with kinks (ReLU, max pooling), with inputs away
    from them.  Returns the ``GradientCheck`` of ``check_gradients`` (``print`` it, or test
    ``.passed``); the gradients are named ``x`` and by ``named_parameters()`` (``0.w``, ...).
    """
    named = layer.named_parameters()
    params = [p for _, p in named]
    layers = list(_walk(layer))
    kept_params = [(p, p.data, p.grad) for p in params]
    kept_buffers = [(owner.buffers(), dict(owner.buffers())) for owner in layers]
    generators = [(g, g.bit_generator.state) for owner in layers for g in vars(owner).values()
                  if isinstance(g, np.random.Generator)]
    try:
        for p in params:
            p.data = np.array(p.data, dtype=np.float64)
            p.grad = np.zeros_like(p.data)
        for live, _ in kept_buffers:
            for name in live:
                live[name] = np.array(live[name], dtype=np.float64)

        def forward(x, *values):
            for p, value in zip(params, values):
                p.data[...] = value
            for generator, state in generators:
                generator.bit_generator.state = state      # the same random draws every time
            return layer.forward(x), None

        def backward(dout, _):
            dx = layer.backward(dout)
            return (dx, *[p.grad.copy() for p in params])

        inputs = [np.asarray(x, dtype=np.float64), *[p.data.copy() for p in params]]
        return check_gradients(forward, backward, inputs, names=["x", *[name for name, _ in named]],
                               threshold=threshold, seed=seed, verbose=verbose)
    finally:
        for p, data, grad in kept_params:
            p.data, p.grad = data, grad
        for live, kept in kept_buffers:
            live.update(kept)
        for generator, state in generators:
            generator.bit_generator.state = state


def _walk(layer):
    yield layer
    children = getattr(layer, "children", None)
    for child in (children() if children else {}).values():
        yield from _walk(child)
