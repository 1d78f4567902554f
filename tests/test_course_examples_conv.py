"""The convolution and pooling worked examples (``nbconv example``): every replay agrees with the
texts, a wrong expected value or a broken op makes it disagree, and conv-4x6's printed windows,
products and sums add up."""

import re

import numpy as np
import pytest

import nbconv.functional as F
from nbconv.cli import main
from nbconv.examples import EXAMPLES, convolution, pooling

OURS = {ex.name: ex for ex in convolution.EXAMPLES + pooling.EXAMPLES}

# the lecture's 4x6 example, written out again here: the test's own truth
IMAGE = np.array([[6, 5, 3, -1, 6, 7], [4, 6, 2, 4, 6, 2], [1, 3, 6, 0, 0, 1], [5, 7, 2, 1, 5, 8]], float)
KERNEL = np.array([[3, 2, -1], [-1, 1, 4], [1, 3, 2]], float)
MAPS = {
    (0, 1): [[57, 55, 33, 14], [78, 36, 17, 58]],
    (1, 1): [[50, 37, 14, 46, 61, 13], [44, 57, 55, 33, 14, 31], [44, 78, 36, 17, 58, 52],
             [32, 13, 20, 37, 35, 5]],
    (1, 2): [[50, 14, 61], [44, 36, 58]],
}


def failing(replay) -> list[str]:
    return [c.quantity.strip() for c in replay.failures()]


# ----------------------------------------------------------------------------- every replay agrees

def test_the_examples_are_listed():
    assert set(OURS) == {"conv-4x6", "cs231n-demo", "volume-11x11x4", "im2col-4x6", "alexnet-im2col",
                         "output-size", "max-pool"}
    assert all(EXAMPLES[name] is OURS[name] for name in OURS)


@pytest.mark.parametrize("name", sorted(OURS))
def test_replay_agrees_with_the_texts(name):
    replay = OURS[name].run()
    assert replay.name == name
    assert replay.checks and replay.ok, failing(replay)
    text = replay.render()
    assert text.endswith(f"all {len(replay.checks)} checked values agree")
    assert max(len(line) for line in text.splitlines()) <= 100


def test_cli_replays_and_exits_1_on_a_disagreement(capsys, monkeypatch):
    assert main(["example", "max-pool"]) == 0
    assert "all 8 checked values agree" in capsys.readouterr().out
    monkeypatch.setitem(pooling.BLANK_CELLS, (0, 1, 1), 3)        # the blank cell is max(2, 3, 1, 4) = 4
    assert main(["example", "max-pool"]) == 1
    assert "4x4: pooled map" in capsys.readouterr().out.splitlines()[-1]


# ----------------------------------------------------------------------------- conv-4x6

def test_conv_4x6_printed_windows_products_and_sums_add_up():
    lines = convolution.conv_4x6().render().splitlines()
    heads = [k for k, line in enumerate(lines) if line.split() == ["window", "kernel", "products"]]
    assert len(heads) == 3
    for k, (P, S) in zip(heads, MAPS):
        rows = [[float(v) for v in lines[k + 1 + a].split()] for a in range(3)]
        assert all(len(row) == 9 for row in rows)
        window, kernel, products = (np.array([row[3 * b:3 * b + 3] for row in rows]) for b in range(3))
        np.testing.assert_array_equal(kernel, KERNEL)
        np.testing.assert_array_equal(products, window * KERNEL)

        # the window is one 3x3 slice of the padded image, at a multiple of the stride
        padded = np.pad(IMAGE, P)
        places = [(t, l) for t in range(padded.shape[0] - 2) for l in range(padded.shape[1] - 2)
                  if np.array_equal(padded[t:t + 3, l:l + 3], window)]
        assert places and all(t % S == 0 and l % S == 0 for t, l in places)
        (top, left), = places
        # ... the one the picture above it brackets
        picture = "\n".join(lines[k - padded.shape[0]:k])
        assert [float(v) for v in re.findall(r"\[(-?\d+)\]", picture)] == list(window.ravel())

        # the lecture's sum line: the nine products add up to the output at that window
        formula = lines[k + 4]
        left_side, total = formula.rsplit("=", 1)
        terms = [(float(a), float(b)) for a, b in re.findall(r"\(?(-?\d+)\)?\*\(?(-?\d+)\)?", left_side)]
        assert [a for a, _ in terms] == list(window.ravel())
        assert [b for _, b in terms] == list(KERNEL.ravel())
        assert sum(a * b for a, b in terms) == float(total) == products.sum()
        assert float(total) == MAPS[(P, S)][top // S][left // S]
        check = lines[k + 5].split()
        assert check[:3] == [f"P={P}", f"S={S}", f"y[{top // S},"] and check[4:6] == [total.strip(), "ok"]


def test_conv_4x6_fails_on_a_wrong_map_value(monkeypatch):
    wrong = {key: [row[:] for row in m] for key, m in MAPS.items()}
    wrong[(0, 1)][1][1] = 37                                     # the text's 36, mistyped
    monkeypatch.setattr(convolution, "TEXT_MAPS", wrong)
    bad = failing(convolution.conv_4x6())
    assert "map P=0 S=1" in bad and "P=0 S=1 im2col: max|y - text|" in bad
    assert "map P=1 S=1" not in bad


def test_conv_4x6_fails_on_a_wrong_sum_at_the_shown_window(monkeypatch):
    wrong = {key: [row[:] for row in m] for key, m in MAPS.items()}
    wrong[(1, 2)][0][2] = 60
    monkeypatch.setattr(convolution, "TEXT_MAPS", wrong)
    assert "P=1 S=2 y[0, 2]" in failing(convolution.conv_4x6())


def test_conv_4x6_fails_when_the_convolution_flips_the_kernel(monkeypatch):
    conv2d_forward = F.conv2d_forward

    def flipping(x, w, *args, **kwargs):                        # true convolution, as the formula writes it
        return conv2d_forward(x, np.ascontiguousarray(w[..., ::-1, ::-1]), *args, **kwargs)

    monkeypatch.setattr(F, "conv2d_forward", flipping)
    bad = failing(convolution.conv_4x6())
    assert {"map P=0 S=1", "map P=1 S=1", "map P=1 S=2", "row 0, kernel flipped"} <= set(bad)


# ----------------------------------------------------------------------------- the other conv examples

def test_cs231n_demo_fails_on_a_wrong_shape_or_a_lost_bias(monkeypatch):
    monkeypatch.setattr(convolution, "DEMO_OUTPUT_SHAPE", (3, 3, 3))
    assert failing(convolution.cs231n_demo()) == ["output volume shape"]
    monkeypatch.undo()

    conv2d_forward = F.conv2d_forward
    monkeypatch.setattr(F, "conv2d_forward", lambda x, w, b=None, **kw: conv2d_forward(x, w, None, **kw))
    bad = failing(convolution.cs231n_demo())
    assert "o: max|nbconv - loops|" in bad and "o[1, 2, 0]" in bad


def test_volume_11x11x4_fails_on_a_window_at_stride_1(monkeypatch):
    lines = list(convolution.VOLUME_LINES)
    lines[1] = ("V[1,0,0]", "np.sum(X[1:6,:5,:] * W0) + b0", (slice(1, 6), slice(0, 5)), 0)   # one step down, not two
    monkeypatch.setattr(convolution, "VOLUME_LINES", lines)
    assert failing(convolution.volume_11x11x4()) == ["V[1,0,0] (nbconv)"]


def test_im2col_4x6_fails_on_columns_read_in_the_wrong_order(monkeypatch):
    by_rows = convolution.columns_by_slicing

    def by_columns(image, size, padding, stride):               # each window read column by column
        cols = by_rows(image, size, padding, stride)
        return cols.reshape(size, size, -1).transpose(1, 0, 2).reshape(size * size, -1)

    monkeypatch.setattr(convolution, "columns_by_slicing", by_columns)
    assert failing(convolution.im2col_4x6()) == ["X_col P=0 S=1: max|diff|", "X_col P=1 S=2: max|diff|"]


def test_im2col_4x6_fails_on_a_wrong_map(monkeypatch):
    wrong = dict(MAPS)
    wrong[(1, 2)] = [[50, 14, 61], [44, 36, 57]]
    monkeypatch.setattr(convolution, "TEXT_MAPS", wrong)
    assert failing(convolution.im2col_4x6()) == ["W_row @ X_col, P=1 S=2", "P=1 S=2 conv2d im2col: max|y - text|"]


def test_alexnet_im2col_fails_on_wrong_sizes(monkeypatch):
    monkeypatch.setitem(convolution.ALEXNET_TEXT, "X_col", (363, 3136))      # 56*56: no
    monkeypatch.setitem(convolution.ALEXNET_TEXT, "parameters", 34_848)     # the biases forgotten
    assert failing(convolution.alexnet_im2col()) == ["X_col rows x columns", "with the 96 biases"]


def test_output_size_fails_on_wrong_sizes(monkeypatch):
    sizes = [row if row[0] != "AlexNet 227, F=11, S=4" else row[:5] + (54,) + row[6:]
             for row in convolution.OUTPUT_SIZES]
    monkeypatch.setattr(convolution, "OUTPUT_SIZES", sizes)
    not_whole = [row[:5] + (5,) + row[6:] if row[1] == 10 else row for row in convolution.NOT_WHOLE]
    monkeypatch.setattr(convolution, "NOT_WHOLE", not_whole)                 # 4.5 rounded up
    assert failing(convolution.output_size()) == ["AlexNet 227, F=11, S=4", "W=10 S=2: floor (default)"]


def test_output_size_fails_when_strict_mode_accepts_everything(monkeypatch):
    conv_output_size = convolution.conv_output_size
    monkeypatch.setattr(convolution, "conv_output_size",
                        lambda *args, strict=False, **kw: conv_output_size(*args, **kw))
    replay = convolution.output_size()
    assert failing(replay) == ["W=10 S=2: strict refuses", "W=5 S=3: strict refuses",
                               "W=224 S=4: strict refuses"]
    assert "ValueError: stride" not in replay.render()


def test_output_size_shows_the_strict_refusals():
    text = convolution.output_size().render()
    assert "(10 - 3 + 0)/2 + 1 = 4.5" in text and "(224 - 11 + 0)/4 + 1 = 54.25" in text
    assert text.count("ValueError: stride") == 3


# ----------------------------------------------------------------------------- max-pool

def test_max_pool_fails_on_a_wrong_pooled_value(monkeypatch):
    images = [list(entry) for entry in pooling.IMAGES]
    images[1][2] = [[6, 4, 7], [7, 5, 8]]
    monkeypatch.setattr(pooling, "IMAGES", [tuple(entry) for entry in images])
    assert failing(pooling.max_pool()) == ["4x6: pooled map"]


def test_max_pool_fails_when_the_gradient_is_spread_over_the_window(monkeypatch):
    def average_backward(dout, cache):                       # avg pooling's backward: a classic mix-up
        dx = np.repeat(np.repeat(np.asarray(dout), 2, axis=2), 2, axis=3) / 4.0
        return (dx,)

    monkeypatch.setattr(F, "max_pool2d_backward", average_backward)
    assert failing(pooling.max_pool()) == ["4x4: max|dx - loops|", "4x6: max|dx - loops|"]


def test_max_pool_draws_each_gradient_on_its_maximum():
    lines = pooling.max_pool().render().splitlines()
    # the 4x4 image: dout 1, 2, 3, 4 lands on 7 (1, 0), 9 (0, 3), 8 (2, 0), 4 (3, 3)
    k = next(k for k, line in enumerate(lines) if line.split() == ["dout", "dx", "(nbconv)"])
    dx = [[float(v) for v in line.split()[-5:] if v != "|"] for line in lines[k + 1:k + 6]
          if "-+-" not in line]
    assert dx == [[0, 0, 0, 2], [1, 0, 0, 0], [3, 0, 0, 0], [0, 0, 0, 4]]
