"""The optimizers' update steps on the GPU, one thread per parameter element.

The GPU twins of nbconv.kernels.optim (same names and signatures): the same formulas
(nbconv/optim.py's docstrings, the lecture's symbols), one thread per element instead of the loop.

Shapes: theta (the parameter), grad and every state array are flat 1-D device arrays of one
length and dtype (the optimizer passes ``a.reshape(a.size)``).  Every kernel first adds the
weight decay, g = grad[i] + wd * theta[i] (the gradient of L + wd/2 ||theta||^2; grad itself
is not changed), then updates theta and its state in place.

Precision: the arithmetic runs in theta's dtype.  The hyperparameters arrive as Python floats,
float64, and a float32 kernel that touches one computes in float64, which a T4-class GPU runs
at 1/32 of the float32 rate; so each launcher casts them to theta's dtype first (``cast``).  The
complements 1 - beta are taken on the host, in float64, before the cast: float32(1) -
float32(0.999) is 0.00099998713, 1.3e-5 (relative) away from 0.001, where float32(1 - 0.999)
is 0.001 to float32 rounding (6e-8).  A float32 parameter then agrees with the CPU loops
(float64 arithmetic, rounded once on store) to float32 rounding; a float64 one computes as the
CPU does.
"""

import math

from numba import cuda

from ._launch import launch


@cuda.jit
def _sgd_kernel(theta, grad, lr, wd):
    """theta[i] = theta[i] - eta * g        one thread per i"""
    i = cuda.grid(1)
    if i >= theta.shape[0]:
        return
    g = grad[i] + wd * theta[i]
    theta[i] = theta[i] - lr * g


def sgd_step(theta, grad, lr, wd):
    """theta = theta - eta * nabla L(theta)"""
    cast = theta.dtype.type         # the scalars in theta's dtype (the module's docstring)
    launch(_sgd_kernel, theta.shape[0], theta, grad, cast(lr), cast(wd))


@cuda.jit
def _momentum_kernel(theta, grad, m, lr, beta, wd):
    """m[i] = beta m[i] + eta g;  theta[i] = theta[i] - m[i]        one thread per i"""
    i = cuda.grid(1)
    if i >= theta.shape[0]:
        return
    g = grad[i] + wd * theta[i]
    m[i] = beta * m[i] + lr * g
    theta[i] = theta[i] - m[i]


def momentum_step(theta, grad, m, lr, beta, wd):
    """m_t = beta m_{t-1} + eta nabla L(theta);  theta = theta - m_t"""
    cast = theta.dtype.type
    launch(_momentum_kernel, theta.shape[0], theta, grad, m, cast(lr), cast(beta), cast(wd))


@cuda.jit
def _nesterov_kernel(theta, grad, v, lr, beta, wd):
    """v[i] = beta v[i] + eta g;  theta[i] = theta[i] - eta g - beta v[i]        one thread per i

    theta holds the look-ahead point phi = theta - beta v (see nbconv.optim.SGD).
    """
    i = cuda.grid(1)
    if i >= theta.shape[0]:
        return
    g = grad[i] + wd * theta[i]
    step = lr * g
    v[i] = beta * v[i] + step
    theta[i] = theta[i] - step - beta * v[i]


def nesterov_step(theta, grad, v, lr, beta, wd):
    """v_t = beta v_{t-1} + eta nabla L(phi);  phi_t = phi_{t-1} - eta nabla L(phi) - beta v_t"""
    cast = theta.dtype.type
    launch(_nesterov_kernel, theta.shape[0], theta, grad, v, cast(lr), cast(beta), cast(wd))


@cuda.jit
def _adagrad_kernel(theta, grad, G, lr, eps, wd):
    """G[i] = G[i] + g^2;  theta[i] = theta[i] - eta g / sqrt(G[i] + eps)        one thread per i"""
    i = cuda.grid(1)
    if i >= theta.shape[0]:
        return
    g = grad[i] + wd * theta[i]
    G[i] = G[i] + g * g
    theta[i] = theta[i] - lr * g / math.sqrt(G[i] + eps)


def adagrad_step(theta, grad, G, lr, eps, wd):
    """G_t = G_{t-1} + nabla L^2;  theta = theta - eta nabla L / sqrt(G_t + eps)"""
    cast = theta.dtype.type
    launch(_adagrad_kernel, theta.shape[0], theta, grad, G, cast(lr), cast(eps), cast(wd))


@cuda.jit
def _rmsprop_kernel(theta, grad, s, lr, beta, one_minus_beta, eps, wd):
    """s[i] = beta s[i] + (1 - beta) g^2;  theta[i] = theta[i] - eta g / sqrt(s[i] + eps)        one thread per i

    one_minus_beta = 1 - beta, taken on the host (the module's docstring)
    """
    i = cuda.grid(1)
    if i >= theta.shape[0]:
        return
    g = grad[i] + wd * theta[i]
    s[i] = beta * s[i] + one_minus_beta * g * g
    theta[i] = theta[i] - lr * g / math.sqrt(s[i] + eps)


def rmsprop_step(theta, grad, s, lr, beta, eps, wd):
    """s_t = beta s_{t-1} + (1 - beta) nabla L^2;  theta = theta - eta nabla L / sqrt(s_t + eps)"""
    cast = theta.dtype.type
    launch(_rmsprop_kernel, theta.shape[0], theta, grad, s, cast(lr), cast(beta), cast(1.0 - beta), cast(eps),
           cast(wd))


@cuda.jit
def _adam_kernel(theta, grad, m, v, lr, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, correction1,
                 correction2, wd):
    """m[i] = beta_1 m[i] + (1 - beta_1) g;  v[i] = beta_2 v[i] + (1 - beta_2) g^2;
    theta[i] = theta[i] - eta (m[i] / correction1) / sqrt(v[i] / correction2 + eps)

    one thread per i; one_minus_beta_k = 1 - beta_k and correction_k = 1 - beta_k^t, computed
    once per step on the host (the module's docstring)
    """
    i = cuda.grid(1)
    if i >= theta.shape[0]:
        return
    g = grad[i] + wd * theta[i]
    m[i] = beta1 * m[i] + one_minus_beta1 * g
    v[i] = beta2 * v[i] + one_minus_beta2 * g * g
    m_hat = m[i] / correction1
    v_hat = v[i] / correction2
    theta[i] = theta[i] - lr * m_hat / math.sqrt(v_hat + eps)


def adam_step(theta, grad, m, v, lr, beta1, beta2, eps, t, wd):
    """m_t = beta_1 m_{t-1} + (1 - beta_1) nabla L;  v_t = beta_2 v_{t-1} + (1 - beta_2) nabla L^2;
    m^_t = m_t / (1 - beta_1^t);  v^_t = v_t / (1 - beta_2^t);  theta = theta - eta m^_t / sqrt(v^_t + eps)"""
    cast = theta.dtype.type
    launch(_adam_kernel, theta.shape[0], theta, grad, m, v, cast(lr), cast(beta1), cast(beta2),
           cast(1.0 - beta1), cast(1.0 - beta2), cast(eps), cast(1.0 - beta1 ** t), cast(1.0 - beta2 ** t),
           cast(wd))
