"""Small helpers shared by the layer modules."""

from __future__ import annotations


def weights(layer) -> dict:
    """The layer's parameters, refusing clearly a layer built with allocate=False (shapes only)."""
    params = layer.params()
    if layer.param_shapes() and not params:
        raise ValueError(f"{type(layer).__name__} was built with allocate=False (shapes only, for summaries): "
                         f"it has no weights to compute with; build it with allocate=True")
    return params


def check_rank(layer, x, ranks: tuple, layout: str) -> None:
    """Refuse an x whose rank the layer does not take (the functional op may accept more ranks)."""
    ndim = getattr(x, "ndim", None)
    if ndim is not None and ndim not in ranks:
        raise ValueError(f"{type(layer).__name__} expects x of shape {layout}, got a {ndim}-D array "
                         f"of shape {x.shape}")
