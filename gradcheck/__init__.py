"""nbconv.gradcheck: finite-difference proof of every backward pass.

Public API for checking any layer, including a student's own::

    from nbconv.gradcheck import check_gradients, assert_gradients
    reports = check_gradients(my_forward, my_backward, [x, w])
    assert_gradients(my_forward, my_backward, [x, w])   # raises AssertionError on failure
"""

from .harness import (DEFAULT_H, GradientReport, assert_gradients, check_gradients,
                      numeric_gradient, rel_error)
from .registry import Case, all_cases, ops

__all__ = ["DEFAULT_H", "GradientReport", "assert_gradients", "check_gradients", "numeric_gradient",
           "rel_error", "Case", "all_cases", "ops"]
