"""Optimizers: the lecture's update formulas (004, "adaptive gradient descent"), written out.

Every optimizer holds a list of ``Parameter`` objects (``.data`` and ``.grad``
arrays, see ``nbconv.layers.base``) and, in ``step()``, updates each ``.data``
in place from its ``.grad``::

    opt = Adam(model.parameters(), lr=1e-3)
    for x, y in batches:
        opt.zero_grad()
        loss = ...forward...; ...backward...     # fills every param.grad
        opt.step()

Symbols are the lecture's: theta the parameters, eta the learning rate
(``lr``), nabla L(theta) the gradient (``param.grad``), beta a decay rate
(``momentum`` / ``beta`` / ``betas``), epsilon (``eps``) the small constant.

    SGD                  theta = theta - eta * nabla L(theta)
    SGD(momentum=beta)   m_t = beta m_{t-1} + eta * nabla L(theta);  theta = theta - m_t
    SGD(momentum=beta,   v_t = beta v_{t-1} + eta * nabla L(theta - beta v_{t-1});  theta = theta - v_t
        nesterov=True)
    Adagrad              G_t = G_{t-1} + nabla L(theta)^2;  theta = theta - eta nabla L / sqrt(G_t + eps)
    RMSprop              s_t = beta s_{t-1} + (1 - beta) nabla L^2;  theta = theta - eta nabla L / sqrt(s_t + eps)
    Adam                 m_t, v_t moving averages of nabla L and nabla L^2, bias-corrected (see Adam)

SGD with momentum is ``SGD(params, lr, momentum=0.9)`` and Nesterov is
``SGD(params, lr, momentum=0.9, nesterov=True)``, as in PyTorch;
``make_optimizer("momentum" | "nesterov", ...)`` builds them by name.

As in the lecture, epsilon sits *inside* the square root (sqrt(G + eps));
PyTorch and the Adam paper put it outside (sqrt(G) + eps).  Both keep the
division finite; the numbers differ slightly.

Weight decay (L2 regularization, ``weight_decay=wd``) adds ``wd * theta`` to the
gradient before the update, i.e. the gradient of L + wd/2 * ||theta||^2.
``param.grad`` itself is not modified.

Optimizer state (velocities, squared-gradient sums, Adam's m, v and step
count t, and the current ``lr``) is a flat ``dict[str, np.ndarray]`` from
``state_dict()``: names like ``"v.0"`` (state ``v`` of parameter 0),
``"m.3"``, ``"t"``, ``"lr"``; ``load_state_dict`` restores it so that training
continues exactly as if it had never stopped.

The learning-rate schedules ``StepLR`` and ``CosineLR`` (``nbconv.schedule``)
are importable from here too.

Each update is one compiled loop per parameter (``nbconv.kernels.optim``: every element read
once, no temporary arrays).  Parameters on the GPU (a model moved with ``.to("cuda")``) are
updated by its twins in ``nbconv.kernels.cuda.optim``, one thread per element, with the same formulas; each state
array lives on its parameter's device (and follows it there at the next step if the parameter
was moved after the optimizer was built).  ``state_dict()`` always returns host copies.
"""

from __future__ import annotations


import numpy as np

from nbconv.kernels import optim as cpu_steps

from ._args import _non_negative, _positive, _real
from . import devices
from .functional._checks import SUPPORTED_DTYPES
from .schedule import CosineLR, LRSchedule, StepLR  # noqa: F401  (the schedules, re-exported)

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "OPTIMIZERS", "make_optimizer",
           "LRSchedule", "StepLR", "CosineLR"]


# ----------------------------------------------------------------------------- argument checks

def _decay(name: str, value) -> float:
    """A decay rate beta in [0, 1): beta = 1 would never forget (and Adam's bias correction divides by 0)."""
    value = _real(name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


def _as_param_list(params) -> list:
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()                       # a model was given
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"params must be a list of Parameter (or a model), got {type(params).__name__}") from None
    if not params:
        raise ValueError("params is empty: the optimizer has nothing to update")
    seen = {}
    for i, p in enumerate(params):
        data, grad = getattr(p, "data", None), getattr(p, "grad", None)
        if not _is_array(data) or not _is_array(grad):
            raise TypeError(f"params[{i}] must be a Parameter with .data and .grad numpy arrays, "
                            f"got {type(p).__name__}")
        if np.dtype(data.dtype) not in SUPPORTED_DTYPES:
            raise TypeError(f"params[{i}].data has dtype {data.dtype}; supported dtypes are float32 or float64")
        if id(p) in seen:
            raise ValueError(f"params[{i}] is the same Parameter as params[{seen[id(p)]}]; "
                             f"it would be updated twice per step")
        seen[id(p)] = i
    return params


def _step_kernels(device: str):
    """The module of step kernels for parameters on ``device``: plain import on the CPU, the GPU
    twins imported on the first device parameter (numba.cuda is imported only then)."""
    if device == devices.CPU:
        return cpu_steps
    from nbconv.kernels.cuda import optim as cuda_steps
    return cuda_steps


def _is_array(a) -> bool:
    """A NumPy array or a CUDA device array."""
    return isinstance(a, np.ndarray) or devices.is_device_array(a)


# ----------------------------------------------------------------------------- the base class

class Optimizer:
    """What all optimizers share: the parameter list, ``lr``, weight decay, state, ``zero_grad``.

    A subclass lists its per-parameter state in ``state_names`` (one zero array
    of the parameter's shape and dtype per name, e.g. ``("v",)``), its scalar
    state in ``scalar_names`` (e.g. Adam's step count ``("t",)``), and writes
    ``update(K, theta, grad, state)``: the lecture's formula for one parameter, as a call of
    its step kernel in ``K`` (``nbconv.kernels.optim`` for a NumPy parameter,
    ``nbconv.kernels.cuda.optim`` for one on the GPU: same names and signatures), on flat
    views of the parameter, its gradient and its state; the kernel adds the weight decay itself.
    """

    state_names: tuple[str, ...] = ()
    scalar_names: tuple[str, ...] = ()

    def __init__(self, params, lr, weight_decay=0.0):
        self.params = _as_param_list(params)
        self.lr = _positive("lr", lr)               # > 0 here; a schedule may later anneal it to 0
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        self.state = {name: [devices.zeros(p.data.shape, p.data.dtype, devices.array_device(p.data))
                             for p in self.params] for name in self.state_names}
        for name in self.scalar_names:
            setattr(self, name, 0)

    # -- the learning rate, which a schedule changes between steps
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = _non_negative("lr", value)

    # -- one update
    def step(self) -> None:
        """Update every parameter's ``.data`` in place from its ``.grad``."""
        self.begin_step()
        for i, p in enumerate(self.params):
            if p.grad.shape != p.data.shape:
                raise ValueError(f"params[{i}].grad has shape {p.grad.shape} but params[{i}].data has "
                                 f"shape {p.data.shape}")
            for name in self.state_names:
                if self.state[name][i].shape != p.data.shape:
                    raise ValueError(f"params[{i}].data has shape {p.data.shape} but the optimizer state "
                                     f"{name}.{i} has shape {self.state[name][i].shape}; was the "
                                     f"parameter replaced by one of another shape?")
            device = devices.array_device(p.data)
            for name in self.state_names:        # the state follows its parameter (moved by .to())
                self.state[name][i] = devices.to_device(self.state[name][i], device)
            if device == devices.CUDA and not devices.is_device_array(p.grad):
                raise TypeError(f"params[{i}].data is a CUDA device array but params[{i}].grad is not; "
                                f"move the whole model with .to('cuda')")
            if isinstance(p.data, np.ndarray) and not p.data.flags.c_contiguous:
                raise ValueError(f"params[{i}].data must be C-contiguous (it is updated in place through "
                                 f"a flat view); got strides {p.data.strides} for shape {p.data.shape}")
            flat = devices.flat                  # 1-D views: the kernels loop over elements
            self.update(_step_kernels(device), flat(p.data), flat(p.grad),
                        {name: flat(self.state[name][i]) for name in self.state_names})

    def begin_step(self) -> None:
        """Once per step, before the parameters (Adam counts t here)."""

    def update(self, K, theta, grad, state: dict) -> None:
        """The formula for one parameter: a call of the step kernel of module ``K``
        (nbconv.kernels.optim, or its GPU twin), which adds the weight decay itself."""
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0."""
        for p in self.params:
            devices.assign(p.grad, 0.0)             # p.grad[...] = 0.0, on either device

    # -- checkpoints
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the state: ``"<state>.<parameter index>"`` arrays, scalars such as ``"t"``, and ``"lr"``."""
        d = {"lr": np.array(self.lr, dtype=np.float64)}
        for name in self.scalar_names:
            d[name] = np.array(getattr(self, name), dtype=np.int64)
        for name in self.state_names:
            for i, arr in enumerate(self.state[name]):
                d[f"{name}.{i}"] = np.array(devices.to_host(arr))      # a host copy
        return d

    def load_state_dict(self, d) -> None:
        """Restore a ``state_dict()``; refuses (ValueError, nothing changed) keys or shapes that do not match."""
        if not hasattr(d, "keys"):
            raise TypeError(f"state must be a dict of numpy arrays, got {type(d).__name__}")
        kind = type(self).__name__
        expected = {"lr": (), **{name: () for name in self.scalar_names},
                    **{f"{name}.{i}": p.data.shape for name in self.state_names
                       for i, p in enumerate(self.params)}}
        missing = sorted(set(expected) - set(d.keys()))
        unexpected = sorted(set(d.keys()) - set(expected))
        if missing or unexpected:
            parts = ([f"missing {_listing(missing)}"] if missing else []) + \
                    ([f"unexpected {_listing(unexpected)}"] if unexpected else [])
            raise ValueError(f"optimizer state does not match this {kind} over {len(self.params)} "
                             f"parameters: {'; '.join(parts)}")
        values = {}
        for key, shape in expected.items():
            value = np.asarray(d[key])
            if value.dtype.kind not in "iuf":
                raise TypeError(f"optimizer state {key!r} has dtype {value.dtype}; expected a real number array")
            if value.shape != shape:
                what = f"parameter {key.split('.')[1]} has shape {shape}" if shape else "expected a scalar"
                raise ValueError(f"optimizer state {key!r} has shape {value.shape} but {what}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"optimizer state {key!r} holds NaN or Inf")
            values[key] = value
        for name in self.scalar_names:
            if values[name] < 0 or values[name] != np.floor(values[name]):
                raise ValueError(f"optimizer state {name!r} must be a non-negative integer, got {values[name]}")
        if values["lr"] < 0:
            raise ValueError(f"optimizer state 'lr' must be >= 0, got {float(values['lr'])}")
        # everything checked: now restore
        self.lr = float(values["lr"])
        for name in self.scalar_names:
            setattr(self, name, int(values[name]))
        for name in self.state_names:
            for i, arr in enumerate(self.state[name]):
                devices.assign(arr, values[f"{name}.{i}"])          # arr[...] = value, on either device

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return f"lr={self.lr:g}, weight_decay={self.weight_decay:g}"


def _listing(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


# ----------------------------------------------------------------------------- the optimizers

class SGD(Optimizer):
    """Stochastic gradient descent, plain, with momentum, or Nesterov's.

    ``momentum=0`` (the default), the lecture's SGD::

        theta = theta - eta * nabla L(theta)

    ``momentum=beta > 0``, the lecture's "SGD with momentum" (state ``v.i`` holds m_t)::

        m_t = beta * m_{t-1} + eta * nabla L(theta)
        theta = theta - m_t

    ``momentum=beta > 0, nesterov=True``, the lecture's "Nesterov accelerated gradient"::

        v_t = beta * v_{t-1} + eta * nabla L(theta - beta * v_{t-1})
        theta = theta - v_t

    The gradient is wanted at the look-ahead point theta - beta v_{t-1}, but the
    backward pass gives it where the parameters are.  So, as every framework
    does, the parameters hold the look-ahead point itself,
    phi_{t-1} = theta_{t-1} - beta v_{t-1}, and the backward pass computes
    nabla L(phi_{t-1}) = nabla L(theta_{t-1} - beta v_{t-1}), the lecture's
    gradient.  Substituting theta_t = phi_t + beta v_t into theta_t = theta_{t-1} - v_t::

        v_t   = beta * v_{t-1} + eta * nabla L(phi_{t-1})
        phi_t = phi_{t-1} - eta * nabla L(phi_{t-1}) - beta * v_t

    The iterates are the lecture's shifted by beta v_t, which vanishes as the
    optimizer converges (tests/test_optim.py runs both forms side by side).
    """

    state_names = ("v",)

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.momentum = _decay("momentum", momentum)
        if not isinstance(nesterov, bool):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0.0")
        self.nesterov = nesterov
        if self.momentum == 0:
            self.state_names = ()                # plain SGD keeps no state
        super().__init__(params, lr, weight_decay)

    def update(self, K, theta, grad, state):
        wd = self.weight_decay
        if self.momentum == 0:
            K.sgd_step(theta, grad, self.lr, wd)
        elif not self.nesterov:
            K.momentum_step(theta, grad, state["v"], self.lr, self.momentum, wd)
        else:
            K.nesterov_step(theta, grad, state["v"], self.lr, self.momentum, wd)

    def extra_repr(self):
        extra = f", momentum={self.momentum:g}" if self.momentum else ""
        extra += ", nesterov=True" if self.nesterov else ""
        return f"lr={self.lr:g}{extra}, weight_decay={self.weight_decay:g}"


class Adagrad(Optimizer):
    """Adagrad, the lecture's formula (state ``G.i``)::

        G_t = G_{t-1} + nabla L(theta)^2
        theta = theta - eta * nabla L(theta) / sqrt(G_t + eps)

    (squares and the division elementwise).  Each parameter's step shrinks as
    its squared gradients accumulate: large for rarely-updated weights, small
    for often-updated ones.
    """

    state_names = ("G",)

    def __init__(self, params, lr=1e-2, eps=1e-8, weight_decay=0.0):
        self.eps = _positive("eps", eps)
        super().__init__(params, lr, weight_decay)

    def update(self, K, theta, grad, state):
        K.adagrad_step(theta, grad, state["G"], self.lr, self.eps, self.weight_decay)

    def extra_repr(self):
        return f"lr={self.lr:g}, eps={self.eps:g}, weight_decay={self.weight_decay:g}"


class RMSprop(Optimizer):
    """RMSprop (Hinton, lecture 6e of "Neural Networks for Machine Learning"), state ``s.i``::

        s_t = beta * s_{t-1} + (1 - beta) * nabla L(theta)^2
        theta = theta - eta * nabla L(theta) / sqrt(s_t + eps)

    The lecture names RMSprop but gives no formula: this is its Adagrad with
    the sum G_t replaced by an exponential moving average (the same average as
    Adam's v_t), so old gradients are forgotten and the step does not shrink
    to zero.  eps inside the root, as the lecture's Adagrad and Adam have it.
    """

    state_names = ("s",)

    def __init__(self, params, lr=1e-3, beta=0.9, eps=1e-8, weight_decay=0.0):
        self.beta = _decay("beta", beta)
        self.eps = _positive("eps", eps)
        super().__init__(params, lr, weight_decay)

    def update(self, K, theta, grad, state):
        K.rmsprop_step(theta, grad, state["s"], self.lr, self.beta, self.eps, self.weight_decay)

    def extra_repr(self):
        return f"lr={self.lr:g}, beta={self.beta:g}, eps={self.eps:g}, weight_decay={self.weight_decay:g}"


class Adam(Optimizer):
    """Adam with bias correction, the lecture's formula (state ``m.i``, ``v.i`` and the step count ``t``)::

        m_t = beta_1 m_{t-1} + (1 - beta_1) * nabla L(theta)
        v_t = beta_2 v_{t-1} + (1 - beta_2) * nabla L(theta)^2
        m^_t = m_t / (1 - beta_1^t),   v^_t = v_t / (1 - beta_2^t)
        theta = theta - eta * m^_t / sqrt(v^_t + eps)

    with ``betas=(beta_1, beta_2)``.  m and v start at 0, so early averages are
    biased towards 0; dividing by 1 - beta^t removes that bias (on the first
    step m^_1 = nabla L and v^_1 = nabla L^2 exactly).
    """

    state_names = ("m", "v")
    scalar_names = ("t",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta_1, beta_2), got {betas!r}")
        self.betas = (_decay("betas[0]", betas[0]), _decay("betas[1]", betas[1]))
        self.eps = _positive("eps", eps)
        super().__init__(params, lr, weight_decay)

    def begin_step(self):
        self.t += 1

    def update(self, K, theta, grad, state):
        beta1, beta2 = self.betas
        K.adam_step(theta, grad, state["m"], state["v"], self.lr, beta1, beta2, self.eps, self.t, self.weight_decay)

    def extra_repr(self):
        return (f"lr={self.lr:g}, betas=({self.betas[0]:g}, {self.betas[1]:g}), eps={self.eps:g}, "
                f"weight_decay={self.weight_decay:g}")


# ----------------------------------------------------------------------------- by name, for the CLI

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def make_optimizer(name: str, params, lr, **kw) -> Optimizer:
    """Build an optimizer by name: "sgd", "momentum" (SGD, momentum 0.9 unless given),
    "nesterov" (SGD, momentum 0.9 unless given, nesterov=True), "adagrad", "rmsprop", "adam".
    Extra keywords go to the class (weight_decay, momentum, beta, betas, eps)."""
    key = name.lower() if isinstance(name, str) else name
    if key == "sgd":
        return SGD(params, lr, **kw)
    if key == "momentum":
        return SGD(params, lr, **{"momentum": 0.9, **kw})
    if key == "nesterov":
        return SGD(params, lr, **{"momentum": 0.9, **kw, "nesterov": True})
    if key == "adagrad":
        return Adagrad(params, lr, **kw)
    if key == "rmsprop":
        return RMSprop(params, lr, **kw)
    if key == "adam":
        return Adam(params, lr, **kw)
    raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
