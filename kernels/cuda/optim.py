"""The optimizers' update steps on the GPU, one thread per parameter element.

The GPU twins of nbconv.kernels.optim (same names and signatures): the same formulas
(nbconv/optim.py's docstrings, the lecture's symbols), one thread per element instead of the loop.

Shapes: theta (the parameter), grad and every state array are flat 1-D device arrays of one
length and dtype (the optimizer passes ``a.reshape(a.size)``).  Every kernel first adds the
weight decay, g = grad[i] + wd * theta[i] (the gradient of L + wd/2 ||theta||^2; grad itself
is not changed), then updates theta and its state in place.  The arithmetic runs in float64
and rounds once on store, as in the CPU loops.
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
    launch(_sgd_kernel, theta.shape[0], theta, grad, lr, wd)


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
    launch(_momentum_kernel, theta.shape[0], theta, grad, m, lr, beta, wd)


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
    launch(_nesterov_kernel, theta.shape[0], theta, grad, v, lr, beta, wd)


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
    launch(_adagrad_kernel, theta.shape[0], theta, grad, G, lr, eps, wd)


@cuda.jit
def _rmsprop_kernel(theta, grad, s, lr, beta, eps, wd):
    """s[i] = beta s[i] + (1 - beta) g^2;  theta[i] = theta[i] - eta g / sqrt(s[i] + eps)        one thread per i"""
    i = cuda.grid(1)
    if i >= theta.shape[0]:
        return
    g = grad[i] + wd * theta[i]
    s[i] = beta * s[i] + (1.0 - beta) * g * g
    theta[i] = theta[i] - lr * g / math.sqrt(s[i] + eps)


def rmsprop_step(theta, grad, s, lr, beta, eps, wd):
    """s_t = beta s_{t-1} + (1 - beta) nabla L^2;  theta = theta - eta nabla L / sqrt(s_t + eps)"""
    launch(_rmsprop_kernel, theta.shape[0], theta, grad, s, lr, beta, eps, wd)


@cuda.jit
def _adam_kernel(theta, grad, m, v, lr, beta1, beta2, eps, correction1, correction2, wd):
    """m[i] = beta_1 m[i] + (1 - beta_1) g;  v[i] = beta_2 v[i] + (1 - beta_2) g^2;
    theta[i] = theta[i] - eta (m[i] / correction1) / sqrt(v[i] / correction2 + eps)

    one thread per i; correction_k = 1 - beta_k^t, computed once per step on the host
    """
    i = cuda.grid(1)
    if i >= theta.shape[0]:
        return
    g = grad[i] + wd * theta[i]
    m[i] = beta1 * m[i] + (1.0 - beta1) * g
    v[i] = beta2 * v[i] + (1.0 - beta2) * g * g
    m_hat = m[i] / correction1
    v_hat = v[i] / correction2
    theta[i] = theta[i] - lr * m_hat / math.sqrt(v_hat + eps)


def adam_step(theta, grad, m, v, lr, beta1, beta2, eps, t, wd):
    """m_t = beta_1 m_{t-1} + (1 - beta_1) nabla L;  v_t = beta_2 v_{t-1} + (1 - beta_2) nabla L^2;
    m^_t = m_t / (1 - beta_1^t);  v^_t = v_t / (1 - beta_2^t);  theta = theta - eta m^_t / sqrt(v^_t + eps)"""
    launch(_adam_kernel, theta.shape[0], theta, grad, m, v, lr, beta1, beta2, eps,
           1.0 - beta1 ** t, 1.0 - beta2 ** t, wd)
