"""The optimizers' update steps: one loop over the elements of one parameter.

Shapes: theta (the parameter), grad and every state array are flat 1-D arrays of one length and
dtype (the optimizer passes ``a.reshape(a.size)``, a view).  Every step first adds the weight
decay, g = grad[i] + wd * theta[i] (the gradient of L + wd/2 ||theta||^2; grad itself is not
changed), then updates theta and its state in place, element by element, with the formulas of
nbconv/optim.py's docstrings (the lecture's symbols: eta = lr, beta the decay rates).

Why loops and not NumPy expressions: ``theta -= lr * m_hat / np.sqrt(v_hat + eps)`` allocates a
temporary array per operator and walks memory once per operator (Adam: about ten passes and six
temporaries); the loop reads each element once and allocates nothing, so a step over a small
network costs one compiled call per parameter.  ``error_model="numpy"``: a division by zero gives
inf as in NumPy instead of raising, which drops the check per element that would keep LLVM
from vectorizing the loop (eps > 0 keeps the divisions finite anyway).  The arithmetic runs in float64 (the scalars are
Python floats) and rounds once on store: a float32 parameter agrees with the NumPy formula to
float32 precision, a float64 one to rounding.

nbconv.kernels.cuda.optim holds the same functions, same names and signatures, one GPU thread
per element.
"""

import math

from numba import njit


@njit(cache=True, error_model="numpy")
def sgd_step(theta, grad, lr, wd):
    """theta = theta - eta * g"""
    for i in range(theta.shape[0]):
        g = grad[i] + wd * theta[i]
        theta[i] = theta[i] - lr * g


@njit(cache=True, error_model="numpy")
def momentum_step(theta, grad, m, lr, beta, wd):
    """m_t = beta m_{t-1} + eta g;  theta = theta - m_t"""
    for i in range(theta.shape[0]):
        g = grad[i] + wd * theta[i]
        m[i] = beta * m[i] + lr * g
        theta[i] = theta[i] - m[i]


@njit(cache=True, error_model="numpy")
def nesterov_step(theta, grad, v, lr, beta, wd):
    """v_t = beta v_{t-1} + eta g;  phi_t = phi_{t-1} - eta g - beta v_t

    theta holds the look-ahead point phi = theta - beta v (see nbconv.optim.SGD)."""
    for i in range(theta.shape[0]):
        g = grad[i] + wd * theta[i]
        step = lr * g
        v[i] = beta * v[i] + step
        theta[i] = theta[i] - step - beta * v[i]


@njit(cache=True, error_model="numpy")
def adagrad_step(theta, grad, G, lr, eps, wd):
    """G_t = G_{t-1} + g^2;  theta = theta - eta g / sqrt(G_t + eps)"""
    for i in range(theta.shape[0]):
        g = grad[i] + wd * theta[i]
        G[i] = G[i] + g * g
        theta[i] = theta[i] - lr * g / math.sqrt(G[i] + eps)


@njit(cache=True, error_model="numpy")
def rmsprop_step(theta, grad, s, lr, beta, eps, wd):
    """s_t = beta s_{t-1} + (1 - beta) g^2;  theta = theta - eta g / sqrt(s_t + eps)"""
    for i in range(theta.shape[0]):
        g = grad[i] + wd * theta[i]
        s[i] = beta * s[i] + (1.0 - beta) * g * g
        theta[i] = theta[i] - lr * g / math.sqrt(s[i] + eps)


@njit(cache=True, error_model="numpy")
def adam_step(theta, grad, m, v, lr, beta1, beta2, eps, t, wd):
    """m_t = beta_1 m_{t-1} + (1 - beta_1) g;  v_t = beta_2 v_{t-1} + (1 - beta_2) g^2;
    m^_t = m_t / (1 - beta_1^t);  v^_t = v_t / (1 - beta_2^t);  theta = theta - eta m^_t / sqrt(v^_t + eps)"""
    correction1 = 1.0 - beta1 ** t            # once per parameter, not per element
    correction2 = 1.0 - beta2 ** t
    for i in range(theta.shape[0]):
        g = grad[i] + wd * theta[i]
        m[i] = beta1 * m[i] + (1.0 - beta1) * g
        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g
        m_hat = m[i] / correction1
        v_hat = v[i] / correction2
        theta[i] = theta[i] - lr * m_hat / math.sqrt(v_hat + eps)
