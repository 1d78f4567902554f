"""Small helpers shared by the layer modules."""

from __future__ import annotations

import numpy as np

from .. import devices

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def describe(layer) -> str:
    """The layer on one line: its repr, or ``Name(...)`` for a container whose repr spans lines."""
    text = repr(layer)
    return text if "\n" not in text else f"{type(layer).__name__}(...)"


def weights(layer, x) -> dict:
    """The layer's parameters, after checking that the layer can compute on ``x``.

    Refused, each with a message naming the layer and the fix: a layer built with
    allocate=False (shapes only); a float x of the other float dtype than the layer's
    parameters (float64 NumPy data into a float32 layer); an x of the wrong shape for the
    layer's sizes (the message of ``layer.output_shape``).  Anything else (an int x, a list)
    is left to the functional op's checks."""
    params = layer.params()
    if layer.param_shapes() and not params:
        raise ValueError(f"{type(layer).__name__} was built with allocate=False (shapes only, for summaries): "
                         f"it has no weights to compute with; build it with allocate=True")
    check_dtype(layer, x, params)
    shape = getattr(x, "shape", None)
    if shape is not None:
        layer.output_shape(tuple(shape))
    return params


def check_dtype(layer, x, params: dict) -> None:
    """Refuse a float32 x in a float64 layer and the other way round: the layer does not convert."""
    try:
        x_dtype = np.dtype(x.dtype)
    except (AttributeError, TypeError):
        return                                  # not an array: the functional op names what it needs
    ours = np.dtype(next(iter(params.values())).data.dtype)
    if x_dtype == ours or x_dtype not in _FLOATS or ours not in _FLOATS:
        return
    cast = (f"numba.cuda.to_device(x_host.astype(np.{ours}))" if devices.is_device_array(x)
            else f"x.astype(np.{ours})")
    raise TypeError(f"{describe(layer)} holds {ours} parameters but x is {x_dtype}: pass {cast}, "
                    f"or build the layer with dtype=np.{x_dtype}")


def check_rank(layer, x, ranks: tuple, layout: str) -> None:
    """Refuse an x whose rank the layer does not take (the functional op may accept more ranks)."""
    ndim = getattr(x, "ndim", None)
    if ndim is not None and ndim not in ranks:
        raise ValueError(f"{type(layer).__name__} expects x of shape {layout}, got a {ndim}-D array "
                         f"of shape {x.shape}")
