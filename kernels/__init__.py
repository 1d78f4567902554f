"""The loop kernels: ``@njit(cache=True)`` CPU kernels, one module per op family.

A kernel trusts its caller: shapes, dtypes and hyper-parameters are checked in
``nbconv.functional`` before any kernel runs.  Forward and backward of an op
sit side by side in the same module.
"""
