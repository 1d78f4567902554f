"""nbconv.gradcheck: finite-difference proof of every backward pass.

Public API for checking any layer, including a student's own::

    from nbconv.gradcheck import check_gradients, assert_gradients
    print(check_gradients(my_forward, my_backward, [x, w], names=["x", "w"]))   # the summary
    assert_gradients(my_forward, my_backward, [x, w])   # raises AssertionError on failure
    print(check_layer(my_layer, x))                     # a layer object: dx and every param.grad
    print(check_op("conv2d", my_forward, my_backward))  # an exercise: against nbconv, on the registry's cases
    assert_op("conv2d", my_forward, my_backward)        # raises AssertionError with the table

docs/gradcheck.md explains the method, the report and its diagnosis; docs/exercises.md the
exercises (``nbconv exercise``, ``nbconv check``).
"""

from .harness import (DEFAULT_H, GradientCheck, GradientReport, InPlaceWarning, assert_gradients,
                      check_gradients, diagnose, numeric_gradient, rel_error)
from .registry import Case, all_cases, ops
from .layer import check_layer
from .exercise import EXERCISES, ContractError, ExerciseReport, assert_op, check_op, exercise_ops

__all__ = ["DEFAULT_H", "GradientCheck", "GradientReport", "InPlaceWarning", "assert_gradients",
           "check_gradients", "diagnose", "numeric_gradient", "rel_error", "Case", "all_cases", "ops", "check_layer",
           "EXERCISES", "ContractError", "ExerciseReport", "assert_op", "check_op", "exercise_ops"]
