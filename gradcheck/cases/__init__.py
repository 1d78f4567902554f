"""Gradient-check cases, one module per op family, each exposing ``CASES``.

``ORDER`` sets the order of the families in ``nbconv gradcheck`` (the order of
the course); a module not named there is still found and listed after them.
"""

ORDER = ["linear", "conv", "pool", "activation", "loss", "dropout", "norm"]
