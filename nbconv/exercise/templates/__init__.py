"""The exercise skeletons of ``nbconv exercise``: one file per op, copied as they are.

Each file holds the op's ``OP_forward`` and ``OP_backward`` with nbconv.functional's signatures
(without ``method``), the formula in the docstrings, the bookkeeping done (shapes, output
sizes, the arrays to fill) and the arithmetic left as TODO.  As they stand they run and return
zeros, so ``nbconv check`` grades them FAIL until the TODOs are filled in.
"""
