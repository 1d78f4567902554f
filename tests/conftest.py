import os

# Numba's CUDA simulator must be chosen before numba.cuda is first imported anywhere in the run:
# without a GPU the CUDA kernels (tests/cuda/) run under it.  A real GPU run sets it to 0.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)
