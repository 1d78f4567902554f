"""nbconv.layers: one small class per layer over the functional pairs.

Each layer has ``forward(x)``, ``backward(dout)`` (which stores the gradient
of every parameter in ``param.grad`` and returns dx), ``named_parameters()``,
``train()`` / ``eval()``.  A network's backward is its layers' backward in
reverse, nothing hidden.

Layers hold float32 parameters by default and refuse a float64 x rather than convert it
(pass ``x.astype(np.float32)``, or build the layer with ``dtype=np.float64``); an error
raised inside a Sequential names the failing layer and where it sits (see ``base``).
"""

from .base import Layer, Parameter
from .container import Flatten, Sequential
from .conv import Conv2d
from .linear import Linear
from .activation import ELU, LeakyReLU, Maxout, PReLU, ReLU, Sigmoid, Tanh
from .container import Residual
from .conv import Conv1d, WSConv2d
from .dropout import Dropout
from .norm import BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm, LocalResponseNorm
from .pool import AvgPool2d, GlobalAvgPool2d, LPPool2d, MaxPool2d
