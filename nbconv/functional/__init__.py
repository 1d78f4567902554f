"""nbconv.functional: validated forward/backward pairs over the loop kernels.

Every differentiable op is a pair::

    out, cache = <op>_forward(inputs..., *, hyper-parameters)
    grads = <op>_backward(dout, cache)   # one gradient per differentiable input, in forward's order

Arguments are checked here, before any kernel runs (the kernels do no bounds
checking); inputs keep their dtype (float32 or float64) and non-contiguous
inputs are copied to contiguous memory first.
"""

from .activation import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .residual import *  # noqa: F401,F403
