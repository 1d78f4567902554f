import numpy as np
import pytest

import nbconv.functional as F
from nbconv import layers as L
from nbconv.optim import OPTIMIZERS, make_optimizer
from nbconv.shapes import (OPTIMIZER_STATE, conv1d_param_count, conv2d_output_shape, conv2d_param_count,
                           conv_output_size, conv_stack_activations, conv_stack_param_count, linear_param_count,
                           receptive_field, receptive_field_steps, training_memory, unshared_param_count)
from nbconv.summary import receptive_fields


@pytest.mark.parametrize("F", [1, 3, 5, 7, 9])
def test_same_padding_keeps_the_size_for_odd_kernels(F):
    for W in (5, 8, 13):
        assert conv_output_size(W, F, stride=1, padding=(F - 1) // 2) == W


def test_7x7_input_3x3_filter():
    assert conv2d_output_shape((7, 7), 3, stride=1) == (5, 5)
    assert conv2d_output_shape((7, 7), 3, stride=2) == (3, 3)


@pytest.mark.parametrize("W_in", [8, 9, 10, 11, 32])
def test_5x3_filter_padding_3_stride_2(W_in):
    # F = 5x3 (width x height): W_out = floor((W_in + 1)/2) + 1, H_out = floor((H_in + 3)/2) + 1
    H_in = W_in + 1
    assert conv2d_output_shape((H_in, W_in), (3, 5), stride=2, padding=3) == ((H_in + 3) // 2 + 1, (W_in + 1) // 2 + 1)


def test_1d_sizes_and_strict_mode():
    assert conv_output_size(5, 3, stride=1, padding=1) == 5
    assert conv_output_size(5, 3, stride=2, padding=1) == 3
    assert conv_output_size(5, 3, stride=3, padding=1) == 2            # the lecture floors
    assert conv_output_size(5, 3, stride=2, padding=1, strict=True) == 3
    with pytest.raises(ValueError, match=r"stride 3 does not fit evenly: .* 4/3 is not whole"):
        conv_output_size(5, 3, stride=3, padding=1, strict=True)        # the cs231n rule


def test_dilation():
    # floor((W + 2P - D(F - 1) - 1) / S) + 1
    assert conv_output_size(10, 3, dilation=2) == 6
    assert conv_output_size(10, 3, dilation=2, padding=2) == 10
    assert conv_output_size(10, 3, dilation=3, stride=2) == 2


def test_demo_and_cs231n_examples():
    assert conv2d_output_shape((5, 5), 3, stride=2, padding=1) == (3, 3)   # demo: 3x3x2
    assert conv2d_output_shape((11, 11), 5, stride=2) == (4, 4)
    assert conv2d_output_shape((227, 227), 11, stride=4) == (55, 55)       # AlexNet conv1


def test_parameter_counts():
    assert conv2d_param_count(3, 96, 11, bias=False) == 34_848              # AlexNet conv1 weights
    assert conv2d_param_count(3, 96, 11) == 34_944                          # with biases
    F, D1, K = 5, 7, 9
    assert conv2d_param_count(D1, K, F) == (F * F * D1) * K + K             # (F*F*D1)*K weights + K biases
    assert conv2d_param_count(4, 6, 3, groups=2) == 6 * 2 * 9 + 6
    assert conv1d_param_count(4, 6, 3) == 6 * 4 * 3 + 6
    assert linear_param_count(7 * 7 * 512, 4096, bias=False) == 102_760_448  # VGG16's first FC layer
    assert linear_param_count(10, 3) == 33


def test_window_larger_than_input_is_an_error():
    with pytest.raises(ValueError, match=r"kernel of size 5 .* larger than the padded input of size 3"):
        conv_output_size(3, 5)
    with pytest.raises(ValueError, match=r"stride must be an int >= 1, got 0"):
        conv_output_size(5, 3, stride=0)


# ----------------------------------------------------------------------------- the notes' comparisons
# (the cs231n notes, "ConvNet architectures" and "Computational considerations")


def test_three_3x3_layers_see_7x7_like_one_7x7_layer():
    assert receptive_field([3]) == 3
    assert receptive_field([3, 3]) == 5                 # the notes: the second layer sees 5x5
    assert receptive_field([3, 3, 3]) == 7 == receptive_field([7])
    assert receptive_field([]) == 1                     # no layer: one pixel


@pytest.mark.parametrize("C", [1, 3, 64, 512])
def test_27_c_squared_against_49_c_squared(C):
    assert conv_stack_param_count(C, 3, depth=3) == 27 * C ** 2
    assert conv_stack_param_count(C, 7, depth=1) == 49 * C ** 2
    assert conv_stack_param_count(C, 3, depth=3, bias=True) == 27 * C ** 2 + 3 * C


def test_dilated_stacks_grow_faster():
    assert receptive_field([3, 3, 3], dilations=[1, 2, 4]) == 15          # 1 + 2 + 4 + 8
    assert receptive_field([3, 3], dilations=2) == 9
    for depth in range(1, 7):
        plain = receptive_field([3] * depth)
        dilated = receptive_field([3] * depth, dilations=[2 ** l for l in range(depth)])
        assert plain == 2 * depth + 1 and dilated == 2 ** (depth + 1) - 1


def test_alexnet_conv1_without_parameter_sharing():
    assert 55 * 55 * 96 == 290_400 and 11 * 11 * 3 + 1 == 364
    assert unshared_param_count(3, 96, 11, (55, 55)) == 290_400 * 364 == 105_705_600
    assert unshared_param_count(3, 96, 11, 55, bias=False) == 290_400 * 363


def test_three_3x3x64_layers_on_224x224x3_make_about_10m_activations():
    n = conv_stack_activations((3, 224, 224), [64, 64, 64])
    assert n == 224 * 224 * 64 * 3 == 9_633_792
    assert round(n / 1e6) == 10                         # the notes: "about 10 million"
    # without padding the volumes shrink: 222, 220, 218
    assert conv_stack_activations((3, 224, 224), [64, 64, 64], padding=0) == 64 * (222 ** 2 + 220 ** 2 + 218 ** 2)


def test_training_memory_counts():
    m = training_memory(1000, 200, batch_size=8, optimizer="adam", buffers=10, dtype_bytes=4)
    counts = (m.activations, m.activation_grads, m.params, m.param_grads, m.optimizer_state)
    assert counts == (8000, 8000, 200, 200, 400)
    assert m.values == 8000 + 8000 + 200 + 200 + 400 + 10 and m.bytes == 4 * m.values
    assert training_memory(0, 100, optimizer="momentum").param_multiple == 3      # the notes: "at least 3x"
    assert training_memory(0, 100, optimizer="sgd").param_multiple == 2
    assert training_memory(0, 100, optimizer="adam").param_multiple == 4


def test_optimizer_state_copies_match_the_optimizers():
    """OPTIMIZER_STATE against the state arrays nbconv.optim really allocates."""
    model = L.Sequential(L.Conv2d(1, 3, 3, seed=0), L.Flatten(), L.Linear(12, 2, seed=0))
    P = sum(p.data.size for p in model.parameters())
    assert set(OPTIMIZER_STATE) == set(OPTIMIZERS)
    for name in OPTIMIZERS:
        opt = make_optimizer(name, model.parameters(), 0.1)
        held = sum(np.asarray(a).size for arrays in opt.state.values() for a in arrays)
        assert held == OPTIMIZER_STATE[name] * P, name


def test_receptive_field_and_memory_errors():
    with pytest.raises(ValueError, match=r"strides must be one int or one per layer \(3\), got \[1, 2\]"):
        receptive_field([3, 3, 3], strides=[1, 2])
    with pytest.raises(ValueError, match=r"dilation must be an int >= 1, got 0"):
        receptive_field([3], dilations=0)
    with pytest.raises(ValueError, match=r"optimizer must be one of sgd, .*adam, got 'lbfgs'"):
        training_memory(1, 1, optimizer="lbfgs")
    with pytest.raises(ValueError, match=r"batch_size must be an int >= 1, got 0"):
        training_memory(1, 1, batch_size=0)


# ----------------------------------------------------------------------------- brute force
# The receptive field found without the recursion: which input pixels one output depends on,
# walked back through the stack with NumPy slices (a pixel of a layer reads k taps d apart,
# starting at its index times s).

def _dependence(layers, output: int) -> np.ndarray:
    """Boolean mask over the input of the pixels that output ``output`` of the last layer reads."""
    mask = np.zeros(output + 1, dtype=bool)
    mask[output] = True
    for k, s, d in reversed(layers):
        below = np.zeros((len(mask) - 1) * s + d * (k - 1) + 1, dtype=bool)
        for t in range(k):
            below[t * d: t * d + (len(mask) - 1) * s + 1: s] |= mask
        mask = below
    return mask


def _random_stacks(count, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        depth = int(rng.integers(1, 5))
        yield [(int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 4))) for _ in range(depth)]


@pytest.mark.parametrize("layers", list(_random_stacks(40)))
def test_recursion_equals_brute_force_on_random_stacks(layers):
    kernels, strides, dilations = zip(*layers)
    steps = receptive_field_steps(kernels, strides, dilations)
    for depth in range(1, len(layers) + 1):
        first = np.flatnonzero(_dependence(layers[:depth], 0))
        second = np.flatnonzero(_dependence(layers[:depth], 1))
        rf, jump = steps[depth - 1]
        assert first.min() == 0 and first.max() + 1 == rf          # the span output 0 reads
        assert second.min() - first.min() == jump                  # where output 1's field starts
        assert second.max() - second.min() + 1 == rf               # the same size everywhere


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_recursion_equals_the_gradient_reach_of_nbconv_conv2d(seed):
    """2-D, with nbconv's own convolution: the gradient of one output, through all-ones filters,
    is nonzero exactly on the input pixels it depends on (no cancellation: every product is >= 0)."""
    rng = np.random.default_rng(seed)
    layers = [((int(rng.integers(1, 4)), int(rng.integers(1, 4))),        # kernel (h, w)
               (int(rng.integers(1, 3)), int(rng.integers(1, 3))),        # stride
               (int(rng.integers(1, 3)), int(rng.integers(1, 3))))        # dilation
              for _ in range(3)]
    x = np.zeros((1, 1, 40, 40))
    caches = []
    for k, s, d in layers:
        x, cache = F.conv2d_forward(x, np.ones((1, 1) + k), stride=s, dilation=d)
        caches.append(cache)
    dout = np.zeros(x.shape)
    dout[0, 0, 1, 1] = 1.0
    for cache in reversed(caches):
        dout, _, _ = F.conv2d_backward(dout, cache)
    rows, cols = np.nonzero(dout[0, 0])
    for axis, reached in enumerate((rows, cols)):
        per_axis = [(k[axis], s[axis], d[axis]) for k, s, d in layers]
        expected = np.flatnonzero(_dependence(per_axis, 1))
        assert np.array_equal(np.unique(reached), expected)        # the brute force, pixel for pixel
        rf, jump = receptive_field_steps(*zip(*per_axis))[-1]
        assert reached.max() - reached.min() + 1 == rf and reached.min() == jump
    model = L.Sequential(*(L.Conv2d(1, 1, k, stride=s, dilation=d, allocate=False) for k, s, d in layers))
    field = receptive_fields(model, (1, 40, 40))[-1]
    assert field.size == (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)


# ----------------------------------------------------------------------------- the replays

def test_the_shapes_replays_agree_and_show_the_notes_figures():
    from nbconv.examples import shapes as replays
    assert [ex.name for ex in replays.EXAMPLES] == ["receptive-field", "parameter-count"]
    texts = {}
    for ex in replays.EXAMPLES:
        r = ex.run()
        assert r.ok, [c.quantity for c in r.failures()]
        texts[ex.name] = r.render()
    assert "212" in texts["receptive-field"] and "15 x 15" in texts["receptive-field"]
    for figure in ("105705600", "9633792", "27 C^2", "49 C^2", "at least 3x"):
        assert figure in texts["parameter-count"], figure


def test_the_replays_catch_a_wrong_value(monkeypatch):
    from nbconv import shapes
    from nbconv.examples import shapes as replays
    monkeypatch.setattr(shapes, "receptive_field", lambda *a, **k: 9)
    monkeypatch.setattr(shapes, "unshared_param_count", lambda *a, **k: 105_705_601)
    bad_field, bad_count = replays.receptive_field(), replays.parameter_count()
    assert not bad_field.ok and "one 7x7 layer" in [c.quantity for c in bad_field.failures()]
    assert [c.quantity for c in bad_count.failures()] == ["without sharing"]
