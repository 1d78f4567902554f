"""Optimizers and learning-rate schedules (issue 6, item 3).

The truth here is the lecture (004): its gradient-descent iterates on f(x) = x^2 - 2,
and its update formulas, worked by hand on small numbers chosen so the square roots
come out whole (the comments show the arithmetic).  Nesterov is compared with the
lecture's look-ahead form, run directly in the test.
"""

import math

import numpy as np
import pytest

from nbconv.layers.base import Parameter
from nbconv.optim import OPTIMIZERS, SGD, Adagrad, Adam, RMSprop, make_optimizer
from nbconv.schedule import CosineLR, StepLR


def params(*arrays, dtype=np.float64):
    return [Parameter(np.array(a, dtype=dtype)) for a in arrays]


def set_grads(ps, *grads):
    for p, g in zip(ps, grads):
        p.grad[...] = g


# Settings under which every optimizer converges on the quadratic below.
SETTINGS = {
    "sgd": dict(lr=0.2),
    "momentum": dict(lr=0.05, momentum=0.9),
    "nesterov": dict(lr=0.05, momentum=0.9),
    "adagrad": dict(lr=0.5),
    "rmsprop": dict(lr=0.01),
    "adam": dict(lr=0.05),
}


def quadratic(seed=0, n=5):
    """f(x) = 1/2 x^T A x - b^T x with A symmetric positive definite (eigenvalues 1..3): minimum at A^-1 b."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = q @ np.diag(np.linspace(1.0, 3.0, n)) @ q.T
    b = rng.standard_normal(n)
    return a, b


# --------------------------------------------------------------------------- the lecture's SGD example

def test_sgd_reproduces_the_lecture_iterates():
    # f(x) = x^2 - 2, x0 = 3, alpha = 0.4, grad f = 2x  (the lecture's worked example, with the text's misprints fixed)
    expected = [(0.6, -1.64), (0.12, -1.9856), (0.024, -1.999424), (0.0048, -1.99997696),
                (0.00096, -1.9999990784)]
    (x,) = ps = params([3.0])
    opt = SGD(ps, lr=0.4)
    for x_i, f_i in expected:
        x.grad[...] = 2 * x.data                    # the gradient by hand
        opt.step()
        assert x.data[0] == pytest.approx(x_i, rel=1e-12)
        assert x.data[0] ** 2 - 2 == pytest.approx(f_i, rel=1e-12)


# --------------------------------------------------------------------------- one step by hand

def test_sgd_step_by_hand():
    ps = params([1.0, -2.0])
    set_grads(ps, [0.5, 1.0])
    SGD(ps, lr=0.1).step()
    np.testing.assert_allclose(ps[0].data, [1 - 0.05, -2 - 0.1], rtol=1e-14)


def test_momentum_steps_by_hand():
    # m_t = beta m_{t-1} + eta grad;  theta = theta - m_t   with beta = 0.9, eta = 0.1
    ps = params([1.0, -2.0])
    opt = SGD(ps, lr=0.1, momentum=0.9)
    set_grads(ps, [0.5, 1.0])
    opt.step()                      # m_1 = 0.1 * [0.5, 1] = [0.05, 0.1]
    np.testing.assert_allclose(ps[0].data, [0.95, -2.1], rtol=1e-14)
    set_grads(ps, [1.0, -1.0])
    opt.step()                      # m_2 = 0.9 * [0.05, 0.1] + 0.1 * [1, -1] = [0.145, -0.01]
    np.testing.assert_allclose(opt.state["v"][0], [0.145, -0.01], rtol=1e-13)
    np.testing.assert_allclose(ps[0].data, [0.95 - 0.145, -2.1 + 0.01], rtol=1e-14)


def test_nesterov_steps_by_hand():
    # lecture: v_t = beta v_{t-1} + eta grad(theta - beta v_{t-1}); theta = theta - v_t.  The parameters
    # hold the look-ahead point phi_t = theta_t - beta v_t, where the next gradient is taken.
    ps = params([1.0, -2.0])
    opt = SGD(ps, lr=0.1, momentum=0.9, nesterov=True)
    set_grads(ps, [0.5, 1.0])       # grad at phi_0 = theta_0 (v_0 = 0)
    opt.step()                      # v_1 = [0.05, 0.1]; theta_1 = [0.95, -2.1]; phi_1 = theta_1 - 0.9 v_1
    np.testing.assert_allclose(ps[0].data, [0.95 - 0.045, -2.1 - 0.09], rtol=1e-14)
    set_grads(ps, [1.0, -1.0])      # grad at phi_1
    opt.step()                      # v_2 = [0.145, -0.01]; theta_2 = [0.805, -2.09]; phi_2 = theta_2 - 0.9 v_2
    np.testing.assert_allclose(ps[0].data, [0.805 - 0.1305, -2.09 + 0.009], rtol=1e-13)


def test_adagrad_steps_by_hand():
    # G_t = G_{t-1} + g^2;  theta = theta - eta g / sqrt(G_t + eps), with eps = 144 (inside the root) and eta = 1
    ps = params([1.0, -2.0])
    opt = Adagrad(ps, lr=1.0, eps=144.0)
    set_grads(ps, [5.0, -9.0])
    opt.step()                      # G = [25, 81]; sqrt(G + 144) = [13, 15]
    np.testing.assert_allclose(ps[0].data, [1 - 5 / 13, -2 + 9 / 15], rtol=1e-14)
    set_grads(ps, [0.0, 8.0])
    opt.step()                      # G = [25, 145]; sqrt(G + 144) = [13, 17]  (the sum, not the last g^2)
    np.testing.assert_allclose(opt.state["G"][0], [25, 145])
    np.testing.assert_allclose(ps[0].data, [1 - 5 / 13, -2 + 9 / 15 - 8 / 17], rtol=1e-14)


def test_rmsprop_steps_by_hand():
    # s_t = beta s_{t-1} + (1 - beta) g^2;  theta = theta - eta g / sqrt(s_t + eps); beta = 0.5, eps = 7, eta = 1
    ps = params([1.0, -2.0])
    opt = RMSprop(ps, lr=1.0, beta=0.5, eps=7.0)
    set_grads(ps, [2.0, -6.0])
    opt.step()                      # s = 0.5 * [4, 36] = [2, 18]; sqrt(s + 7) = [3, 5]
    np.testing.assert_allclose(ps[0].data, [1 - 2 / 3, -2 + 6 / 5], rtol=1e-14)
    set_grads(ps, [4.0, 0.0])
    opt.step()                      # s = 0.5 * [2, 18] + 0.5 * [16, 0] = [9, 9]; sqrt(s + 7) = 4
    np.testing.assert_allclose(opt.state["s"][0], [9, 9])
    np.testing.assert_allclose(ps[0].data, [1 - 2 / 3 - 4 / 4, -2 + 6 / 5], rtol=1e-14)


def test_adam_steps_by_hand():
    # betas = (0.5, 0.5), eps = 3, eta = 0.6
    ps = params([1.0, 2.0])
    opt = Adam(ps, lr=0.6, betas=(0.5, 0.5), eps=3.0)
    set_grads(ps, [1.0, 1.0])
    opt.step()
    # m_1 = 0.5 g = [0.5, 0.5], m^_1 = m_1 / (1 - 0.5) = [1, 1]; v_1 = 0.5 g^2, v^_1 = [1, 1]; sqrt(1 + 3) = 2
    np.testing.assert_allclose(ps[0].data, [1 - 0.6 / 2, 2 - 0.6 / 2], rtol=1e-14)
    set_grads(ps, [7.0, 1.0])
    opt.step()
    # m_2 = 0.5 [0.5, 0.5] + 0.5 [7, 1] = [3.75, 0.75], m^_2 = m_2 / (1 - 0.25) = [5, 1]
    # v_2 = 0.5 [0.5, 0.5] + 0.5 [49, 1] = [24.75, 0.75], v^_2 = [33, 1]; sqrt(v^_2 + 3) = [6, 2]
    assert opt.t == 2
    np.testing.assert_allclose(opt.state["m"][0], [3.75, 0.75], rtol=1e-14)
    np.testing.assert_allclose(opt.state["v"][0], [24.75, 0.75], rtol=1e-14)
    np.testing.assert_allclose(ps[0].data, [0.7 - 0.6 * 5 / 6, 1.7 - 0.6 * 1 / 2], rtol=1e-13)


def test_weight_decay_step_by_hand():
    # grad + wd * w = 1 + 0.5 * 2 = 2;  w = 2 - 0.1 * 2 = 1.8; param.grad is left as it was
    (w,) = ps = params([2.0])
    w.grad[...] = 1.0
    SGD(ps, lr=0.1, weight_decay=0.5).step()
    assert w.data[0] == pytest.approx(1.8, rel=1e-14)
    assert w.grad[0] == 1.0


# --------------------------------------------------------------------------- Nesterov = the lecture's look-ahead form

@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_nesterov_equals_the_lecture_look_ahead_form(weight_decay):
    a, b = quadratic(seed=1)
    a = a + weight_decay * np.eye(5)        # the decay is the gradient of wd/2 ||theta||^2

    def grad(x):
        return a @ x - b

    eta, beta = 0.05, 0.9
    theta, v = np.zeros(5), np.zeros(5)                 # the lecture's form, run directly
    (p,) = ps = params(np.zeros(5))
    opt = SGD(ps, lr=eta, momentum=beta, nesterov=True, weight_decay=weight_decay)
    for _ in range(40):
        v = beta * v + eta * grad(theta - beta * v)     # v_t = beta v_{t-1} + eta grad(theta - beta v_{t-1})
        theta = theta - v                               # theta = theta - v_t
        p.grad[...] = a @ p.data - b - weight_decay * p.data   # the loss gradient at the parameters
        opt.step()
        np.testing.assert_allclose(opt.state["v"][0], v, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(p.data, theta - beta * v, rtol=1e-10, atol=1e-13)
    # and plain momentum would not match: its iterate is theta itself, not the look-ahead point
    assert np.abs(v).max() > 1e-3


def test_momentum_and_nesterov_differ():
    a, b = quadratic()
    out = {}
    for nesterov in (False, True):
        (p,) = ps = params(np.zeros(5))
        opt = SGD(ps, lr=0.05, momentum=0.9, nesterov=nesterov)
        for _ in range(5):
            p.grad[...] = a @ p.data - b
            opt.step()
        out[nesterov] = p.data.copy()
    assert np.abs(out[True] - out[False]).max() > 1e-3


# --------------------------------------------------------------------------- convergence on a convex problem

@pytest.mark.parametrize("schedule", ["constant", "cosine"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_finds_the_minimum_of_a_quadratic(name, schedule):
    a, b = quadratic(seed=2)
    x_star = np.linalg.solve(a, b)
    (p,) = ps = params(np.zeros(5))
    opt = make_optimizer(name, ps, **SETTINGS[name])
    sched = CosineLR(opt, total_epochs=1500) if schedule == "cosine" else None
    for _ in range(1500):
        p.grad[...] = a @ p.data - b
        opt.step()
        if sched:
            sched.step()
    f = 0.5 * p.data @ a @ p.data - b @ p.data
    if name == "rmsprop" and schedule == "constant":
        # near the minimum g / sqrt(s) stays of order 1 whatever the size of g, so with a constant lr
        # RMSprop ends in a cycle of about lr around the minimum; annealing the lr (below) removes it
        np.testing.assert_allclose(p.data, x_star, atol=SETTINGS[name]["lr"])
    else:
        np.testing.assert_allclose(p.data, x_star, atol=1e-6)
        assert f == pytest.approx(-0.5 * b @ x_star, abs=1e-10)     # f(x*) = -1/2 b^T A^-1 b


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_weight_decay_adds_wd_times_w_to_the_gradient(name):
    rng = np.random.default_rng(3)
    w0 = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    with_wd, plain = params(*w0), params(*w0)
    opt_wd = make_optimizer(name, with_wd, weight_decay=0.25, **SETTINGS[name])
    opt_plain = make_optimizer(name, plain, **SETTINGS[name])
    for _ in range(5):
        grads = [rng.standard_normal(w.shape) for w in w0]
        set_grads(with_wd, *grads)
        set_grads(plain, *[g + 0.25 * p.data for g, p in zip(grads, plain)])
        opt_wd.step()
        opt_plain.step()
        for p, q, g in zip(with_wd, plain, grads):
            np.testing.assert_allclose(p.data, q.data, rtol=1e-13, atol=1e-15)
            np.testing.assert_array_equal(p.grad, g)        # the decay is not written into .grad


def test_weight_decay_shrinks_towards_zero_without_loss_gradient():
    (w,) = ps = params([4.0, -2.0])
    opt = SGD(ps, lr=0.5, weight_decay=0.2)
    for k in range(1, 4):
        opt.step()                                  # grad = 0: w = w - 0.5 * 0.2 w = 0.9 w
        np.testing.assert_allclose(w.data, np.array([4.0, -2.0]) * 0.9 ** k, rtol=1e-14)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float32_stays_float32_and_agrees_with_float64(name):
    rng = np.random.default_rng(4)
    w0 = rng.standard_normal((4, 3))
    p32, p64 = params(w0, dtype=np.float32), params(w0)
    o32 = make_optimizer(name, p32, weight_decay=0.01, **SETTINGS[name])
    o64 = make_optimizer(name, p64, weight_decay=0.01, **SETTINGS[name])
    for _ in range(5):
        g = rng.standard_normal((4, 3))
        set_grads(p32, g)
        set_grads(p64, g)
        o32.step()
        o64.step()
    assert p32[0].data.dtype == np.float32
    assert all(arr.dtype == np.float32 for states in o32.state.values() for arr in states)
    np.testing.assert_allclose(p32[0].data, p64[0].data, rtol=1e-5, atol=1e-6)


def test_training_a_linear_layer():
    # the optimizer over a real layer's parameters: least squares y = x w^T + b, gradients from backward
    from nbconv.layers import Linear

    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 3))
    w_true, b_true = np.array([[1.5, -2.0, 0.5]]), np.array([0.3])
    y = x @ w_true.T + b_true
    layer = Linear(3, 1, seed=0, dtype=np.float64)
    opt = Adam(layer, lr=0.05)                     # a model is accepted as well as a list of parameters
    for _ in range(600):
        opt.zero_grad()
        out = layer.forward(x)
        layer.backward(2 * (out - y) / len(x))    # d mean((out - y)^2) / d out
        opt.step()
    np.testing.assert_allclose(layer.params()["w"].data, w_true, atol=1e-4)
    np.testing.assert_allclose(layer.params()["b"].data, b_true, atol=1e-4)


def test_zero_grad():
    ps = params(np.ones((2, 2)), np.ones(3))
    set_grads(ps, 5.0, -1.0)
    Adam(ps).zero_grad()
    assert all(np.all(p.grad == 0) for p in ps)


# --------------------------------------------------------------------------- state for checkpoints

@pytest.mark.parametrize("name, keys", [
    ("sgd", {"lr"}),
    ("momentum", {"lr", "v.0", "v.1"}),
    ("nesterov", {"lr", "v.0", "v.1"}),
    ("adagrad", {"lr", "G.0", "G.1"}),
    ("rmsprop", {"lr", "s.0", "s.1"}),
    ("adam", {"lr", "t", "m.0", "m.1", "v.0", "v.1"}),
])
def test_state_dict_names_and_shapes(name, keys):
    ps = params(np.zeros((3, 2)), np.zeros(4))
    d = make_optimizer(name, ps, lr=0.1).state_dict()
    assert set(d) == keys
    assert all(isinstance(v, np.ndarray) for v in d.values())
    for key, value in d.items():
        if "." in key:
            assert value.shape == ps[int(key.split(".")[1])].shape
        else:
            assert value.shape == ()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip_continues_identically(name, tmp_path):
    a, b = quadratic(seed=6)
    rng = np.random.default_rng(6)
    noise = [rng.standard_normal(5) * 0.1 for _ in range(12)]     # some stochastic gradient

    def run(p, opt, steps):
        for k in steps:
            p.grad[...] = a @ p.data - b + noise[k]
            opt.step()
            yield p.data.copy()

    (ref,) = ref_ps = params(np.ones(5))
    reference = list(run(ref, make_optimizer(name, ref_ps, weight_decay=0.01, **SETTINGS[name]), range(12)))

    (first,) = first_ps = params(np.ones(5))
    opt = make_optimizer(name, first_ps, weight_decay=0.01, **SETTINGS[name])
    list(run(first, opt, range(6)))
    state = opt.state_dict()
    for arr in opt.state.values():                                 # state_dict holds copies, not views
        for x in arr:
            x += 100.0
    np.savez(tmp_path / "ckpt.npz", w=first.data, **{f"optim.{k}": v for k, v in state.items()})
    del opt, first

    saved = np.load(tmp_path / "ckpt.npz")
    (resumed,) = resumed_ps = params(saved["w"])
    settings = {**SETTINGS[name], "lr": 0.123}                     # the checkpoint's lr wins
    opt = make_optimizer(name, resumed_ps, weight_decay=0.01, **settings)
    opt.load_state_dict({k[len("optim."):]: saved[k] for k in saved.files if k.startswith("optim.")})
    assert opt.lr == SETTINGS[name]["lr"]
    for got, want in zip(run(resumed, opt, range(6, 12)), reference[6:]):
        np.testing.assert_array_equal(got, want)


def test_state_restores_adam_step_count():
    ps = params(np.zeros(2))
    opt = Adam(ps)
    for _ in range(3):
        opt.step()
    other = Adam(params(np.zeros(2)))
    other.load_state_dict(opt.state_dict())
    assert other.t == 3 and int(opt.state_dict()["t"]) == 3


def test_mismatched_state_is_refused():
    two = params(np.zeros((2, 2)), np.zeros(3))
    adam_state = Adam(two).state_dict()
    momentum = SGD(params(np.zeros((2, 2)), np.zeros(3)), lr=0.1, momentum=0.9)
    before = {k: v.copy() for k, v in momentum.state_dict().items()}

    with pytest.raises(ValueError, match=r"does not match this SGD over 2 parameters: unexpected 'm\.0', 'm\.1', 't'$"):
        momentum.load_state_dict(adam_state)
    with pytest.raises(ValueError, match=r"does not match this SGD over 2 parameters: missing 'v\.0', 'v\.1'; "
                                         r"unexpected 'G\.0', 'G\.1'"):
        momentum.load_state_dict(Adagrad(two).state_dict())
    with pytest.raises(ValueError, match=r"optimizer state 'v\.1' has shape \(4,\) but parameter 1 has shape \(3,\)"):
        momentum.load_state_dict({"lr": np.array(0.1), "v.0": np.ones((2, 2)), "v.1": np.ones(4)})
    with pytest.raises(ValueError, match=r"optimizer state 'v\.0' has shape \(2, 2\) but parameter 0 has shape \(2, 3\)"):
        SGD(params(np.zeros((2, 3)), np.zeros(3)), lr=0.1, momentum=0.9).load_state_dict(momentum.state_dict())
    with pytest.raises(ValueError, match=r"missing 'v\.2'"):        # a model with one more parameter
        SGD(params(np.zeros((2, 2)), np.zeros(3), np.zeros(1)), lr=0.1, momentum=0.9).load_state_dict(before)
    with pytest.raises(ValueError, match=r"unexpected 'v\.0', 'v\.1'"):
        SGD(params(np.zeros((2, 2)), np.zeros(3)), lr=0.1).load_state_dict(before)
    with pytest.raises(ValueError, match=r"optimizer state 'lr' has shape \(1,\) but expected a scalar"):
        momentum.load_state_dict({**before, "lr": np.array([0.1])})
    with pytest.raises(ValueError, match=r"optimizer state 'lr' must be >= 0, got -1.0"):
        momentum.load_state_dict({**before, "lr": np.array(-1.0)})
    with pytest.raises(ValueError, match=r"optimizer state 'v\.1' holds NaN or Inf"):
        momentum.load_state_dict({**before, "v.1": np.full(3, np.nan)})
    with pytest.raises(TypeError, match=r"optimizer state 'v\.1' has dtype <U1"):
        momentum.load_state_dict({**before, "v.1": np.array(["a", "b", "c"])})
    with pytest.raises(TypeError, match=r"state must be a dict of numpy arrays, got list"):
        momentum.load_state_dict([1, 2])
    adam = Adam(two)
    with pytest.raises(ValueError, match=r"optimizer state 't' must be a non-negative integer, got -1"):
        adam.load_state_dict({**adam_state, "t": np.array(-1)})
    with pytest.raises(ValueError, match=r"optimizer state 't' must be a non-negative integer, got 1.5"):
        adam.load_state_dict({**adam_state, "t": np.array(1.5)})
    # a refused load changes nothing
    after = momentum.state_dict()
    assert set(after) == set(before) and all(np.array_equal(after[k], before[k]) for k in before)


def test_step_refuses_a_gradient_of_the_wrong_shape():
    (p,) = ps = params(np.zeros((2, 3)))
    opt = SGD(ps, lr=0.1)
    p.grad = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"params\[0\]\.grad has shape \(3, 2\) but params\[0\]\.data has shape \(2, 3\)"):
        opt.step()
    (q,) = qs = params(np.zeros((2, 3)))
    opt = Adam(qs)
    q.data, q.grad = np.zeros(4), np.zeros(4)
    with pytest.raises(ValueError, match=r"params\[0\]\.data has shape \(4,\) but the optimizer state m\.0 "
                                         r"has shape \(2, 3\)"):
        opt.step()


# --------------------------------------------------------------------------- learning-rate schedules

def test_step_lr_sequence():
    opt = SGD(params([0.0]), lr=1.0)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    assert [sched.step() for _ in range(6)] == [1.0, 0.5, 0.5, 0.25, 0.25, 0.125]
    assert opt.lr == 0.125


def test_cosine_lr_sequence():
    opt = SGD(params([0.0]), lr=1.0)
    sched = CosineLR(opt, total_epochs=4)
    half_root2 = math.sqrt(2) / 2                       # cos(pi / 4)
    expected = [(1 + half_root2) / 2, 0.5, (1 - half_root2) / 2, 0.0, 0.0]
    np.testing.assert_allclose([sched.step() for _ in range(5)], expected, atol=1e-15)
    opt = SGD(params([0.0]), lr=1.2)
    sched = CosineLR(opt, total_epochs=4, min_lr=0.2)  # 0.2 + 1.0 * (1 + cos(pi e / 4)) / 2
    np.testing.assert_allclose([sched.step() for _ in range(5)],
                               [0.2 + (1 + half_root2) / 2, 0.7, 0.2 + (1 - half_root2) / 2, 0.2, 0.2],
                               atol=1e-15)


def test_schedule_changes_the_step_the_optimizer_takes():
    (w,) = ps = params([1.0])
    opt = SGD(ps, lr=1.0)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    w.grad[...] = 1.0
    opt.step()                          # 1 - 1.0 * 1
    sched.step()
    opt.step()                          # 0 - 0.5 * 1
    assert w.data[0] == -0.5


@pytest.mark.parametrize("make", [lambda o: StepLR(o, step_size=3, gamma=0.1),
                                  lambda o: CosineLR(o, total_epochs=7, min_lr=0.01)], ids=["step", "cosine"])
def test_schedule_state_round_trip(make):
    opt = Adam(params([0.0]), lr=0.1)
    sched = make(opt)
    for _ in range(4):
        sched.step()
    state = {"sched": sched.state_dict(), "optim": opt.state_dict()}
    rest = [sched.step() for _ in range(4)]
    opt2 = Adam(params([0.0]), lr=0.5)
    opt2.load_state_dict(state["optim"])           # lr is now the annealed one ...
    sched2 = make(opt2)                            # ... so base_lr must come from the schedule's state
    sched2.load_state_dict(state["sched"])
    assert sched2.epoch == 4
    assert [sched2.step() for _ in range(4)] == rest


def test_schedule_errors():
    opt = SGD(params([0.0]), lr=0.1)
    with pytest.raises(ValueError, match=r"step_size must be >= 1, got 0"):
        StepLR(opt, step_size=0)
    with pytest.raises(TypeError, match=r"step_size must be an int, got 1.5"):
        StepLR(opt, step_size=1.5)
    with pytest.raises(ValueError, match=r"gamma must be > 0, got 0.0"):
        StepLR(opt, step_size=1, gamma=0.0)
    with pytest.raises(ValueError, match=r"total_epochs must be >= 1, got 0"):
        CosineLR(opt, total_epochs=0)
    with pytest.raises(ValueError, match=r"min_lr must be >= 0, got -0.1"):
        CosineLR(opt, total_epochs=5, min_lr=-0.1)
    with pytest.raises(ValueError, match=r"min_lr must be <= the optimizer's lr 0.1, got 0.2"):
        CosineLR(opt, total_epochs=5, min_lr=0.2)
    with pytest.raises(TypeError, match=r"optimizer must have an lr attribute"):
        StepLR(object(), step_size=1)
    sched = StepLR(opt, step_size=1)
    with pytest.raises(ValueError, match=r"schedule state is missing base_lr"):
        sched.load_state_dict({"epoch": np.array(2)})
    with pytest.raises(ValueError, match=r"'epoch' must be a non-negative integer scalar"):
        sched.load_state_dict({"epoch": np.array(-2), "base_lr": np.array(0.1)})


# --------------------------------------------------------------------------- hyper-parameters and the factory

ONE = [Parameter(np.zeros(2))]


@pytest.mark.parametrize("build, error, message", [
    (lambda: SGD(ONE, lr=0), ValueError, r"lr must be > 0, got 0.0"),
    (lambda: SGD(ONE, lr=-0.1), ValueError, r"lr must be > 0, got -0.1"),
    (lambda: Adam(ONE, lr=float("nan")), ValueError, r"lr must be finite, got nan"),
    (lambda: SGD(ONE, lr="0.1"), TypeError, r"lr must be a real number, got '0.1'"),
    (lambda: SGD(ONE, lr=0.1, momentum=1.0), ValueError, r"momentum must be in \[0, 1\), got 1.0"),
    (lambda: SGD(ONE, lr=0.1, momentum=-0.5), ValueError, r"momentum must be in \[0, 1\), got -0.5"),
    (lambda: SGD(ONE, lr=0.1, nesterov=True), ValueError, r"nesterov=True needs momentum > 0"),
    (lambda: SGD(ONE, lr=0.1, momentum=0.9, nesterov=1), TypeError, r"nesterov must be True or False"),
    (lambda: SGD(ONE, lr=0.1, weight_decay=-1e-4), ValueError, r"weight_decay must be >= 0, got -0.0001"),
    (lambda: Adam(ONE, betas=(1.0, 0.999)), ValueError, r"betas\[0\] must be in \[0, 1\), got 1.0"),
    (lambda: Adam(ONE, betas=(0.9, -0.1)), ValueError, r"betas\[1\] must be in \[0, 1\), got -0.1"),
    (lambda: Adam(ONE, betas=(0.9, 1.5)), ValueError, r"betas\[1\] must be in \[0, 1\), got 1.5"),
    (lambda: Adam(ONE, betas=0.9), ValueError, r"betas must be a pair \(beta_1, beta_2\), got 0.9"),
    (lambda: Adam(ONE, eps=0), ValueError, r"eps must be > 0, got 0.0"),
    (lambda: Adagrad(ONE, eps=-1e-8), ValueError, r"eps must be > 0, got -1e-08"),
    (lambda: RMSprop(ONE, eps=0.0), ValueError, r"eps must be > 0, got 0.0"),
    (lambda: RMSprop(ONE, beta=1.0), ValueError, r"beta must be in \[0, 1\), got 1.0"),
    (lambda: SGD([], lr=0.1), ValueError, r"params is empty"),
    (lambda: SGD([np.zeros(3)], lr=0.1), TypeError, r"params\[0\] must be a Parameter with \.data and \.grad"),
    (lambda: SGD(5, lr=0.1), TypeError, r"params must be a list of Parameter \(or a model\), got int"),
    (lambda: SGD([Parameter(np.zeros(2, dtype=np.int64))], lr=0.1), TypeError,
     r"params\[0\]\.data has dtype int64; supported dtypes are float32 or float64"),
    (lambda: SGD(ONE + ONE, lr=0.1), ValueError, r"params\[1\] is the same Parameter as params\[0\]"),
    (lambda: make_optimizer("sgdd", ONE, 0.1), ValueError,
     r"unknown optimizer 'sgdd'; choose from sgd, momentum, nesterov, adagrad, rmsprop, adam"),
])
def test_invalid_hyper_parameters(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_lr_can_be_changed_between_steps_but_not_made_negative():
    opt = Adam(params([0.0]), lr=0.1)
    opt.lr = 0.0                         # a schedule may anneal to zero
    assert opt.lr == 0.0
    with pytest.raises(ValueError, match=r"lr must be >= 0, got -0.1"):
        opt.lr = -0.1
    assert opt.lr == 0.0


@pytest.mark.parametrize("name, cls, attrs", [
    ("sgd", SGD, {"momentum": 0.0, "nesterov": False}),
    ("momentum", SGD, {"momentum": 0.9, "nesterov": False}),
    ("nesterov", SGD, {"momentum": 0.9, "nesterov": True}),
    ("adagrad", Adagrad, {"eps": 1e-8}),
    ("rmsprop", RMSprop, {"beta": 0.9}),
    ("Adam", Adam, {"betas": (0.9, 0.999)}),
])
def test_make_optimizer(name, cls, attrs):
    opt = make_optimizer(name, params([0.0]), 0.01)
    assert type(opt) is cls and opt.lr == 0.01 and opt.weight_decay == 0.0
    for key, value in attrs.items():
        assert getattr(opt, key) == value
    assert repr(opt).startswith(f"{cls.__name__}(lr=0.01")


def test_make_optimizer_passes_keywords():
    opt = make_optimizer("momentum", params([0.0]), 0.01, momentum=0.5, weight_decay=1e-4)
    assert opt.momentum == 0.5 and opt.weight_decay == 1e-4
    assert make_optimizer("adam", params([0.0]), 0.01, betas=(0.8, 0.9)).betas == (0.8, 0.9)


def test_schedules_are_importable_from_optim():
    import nbconv.optim
    import nbconv.schedule

    assert nbconv.optim.StepLR is nbconv.schedule.StepLR and nbconv.optim.CosineLR is nbconv.schedule.CosineLR
