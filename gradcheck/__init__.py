"""nbconv.gradcheck: finite-difference proof of every backward pass.

Public API for checking any layer, including a student's own::

    from nbconv.gradcheck import check_gradients, assert_gradients
    print(check_gradients(my_forward, my_backward, [x, w], names=["x", "w"]))   # the summary
    assert_gradients(my_forward, my_backward, [x, w])   # raises AssertionError on failure
    print(check_layer(my_layer, x))                     # a layer object: dx and every param.grad

docs/gradcheck.md explains the method, the report and its diagnosis.
"""

from .harness import (DEFAULT_H, GradientCheck, GradientReport, InPlaceWarning, assert_gradients,
                      check_gradients, diagnose, numeric_gradient, rel_error)
from .registry import Case, all_cases, ops
from .layer import check_layer

__all__ = ["DEFAULT_H", "GradientCheck", "GradientReport", "InPlaceWarning", "assert_gradients",
           "check_gradients", "diagnose", "numeric_gradient", "rel_error", "Case", "all_cases", "ops", "check_layer"]
