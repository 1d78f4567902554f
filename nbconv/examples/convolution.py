"""The course's convolution worked examples, replayed through nbconv (``nbconv example NAME``).

    conv-4x6        the lecture's 4x6 image and 3x3 kernel with P=0 S=1, P=1 S=1, P=1 S=2
    cs231n-demo     the notes' demo: a 5x5x3 volume, K=2 filters 3x3x3, S=2, P=1
    volume-11x11x4  the notes' V[0,0,0] = np.sum(X[:5,:5,:] * W0) + b0 and its neighbours
    im2col-4x6      the 4x6 example as one matrix product: X_col, W_row, W_row @ X_col
    alexnet-im2col  AlexNet's conv1 as im2col: X_col 363 x 3025, W_row 96 x 363
    output-size     floor((W - F + 2P) / S) + 1 on the texts' settings, strict mode's refusals

Every convolution here is the texts' (and nbconv's) cross-correlation, the kernel not flipped:

    y[i, j] = b + sum_{a, b'} x_pad[i*S + a, j*S + b'] * k[a, b']      (a, b' = 0 .. F-1)

The expected values are the texts' own figures, or an independent computation written out
here in plain Python/NumPy (loops, slices): never nbconv's function under test called again.
The small text pictures (``grid``, ``side_by_side``, ``marked``) serve the pooling examples too.
"""

from __future__ import annotations

import math
import re
import textwrap

import numpy as np

import nbconv.functional as F
from nbconv.kernels import im2col as im2col_kernels
from nbconv.shapes import conv2d_output_shape, conv2d_param_count, conv_output_size
from nbconv.summary import ALEXNET_INPUT, alexnet_conv1, im2col_sizes

from .replay import Example, Replay, fmt

# ------------------------------------------------------------------------------ the lecture's data

# the lecture's 4x6 image and 3x3 kernel ("Introduction to neural networks", convolution)
IMAGE = np.array([[6, 5, 3, -1, 6, 7],
                  [4, 6, 2, 4, 6, 2],
                  [1, 3, 6, 0, 0, 1],
                  [5, 7, 2, 1, 5, 8]], dtype=np.float64)
KERNEL = np.array([[3, 2, -1],
                   [-1, 1, 4],
                   [1, 3, 2]], dtype=np.float64)

# (padding P, stride S) -> the output map as the lecture prints it (all three are right)
TEXT_MAPS = {
    (0, 1): [[57, 55, 33, 14],
             [78, 36, 17, 58]],
    (1, 1): [[50, 37, 14, 46, 61, 13],
             [44, 57, 55, 33, 14, 31],
             [44, 78, 36, 17, 58, 52],
             [32, 13, 20, 37, 35, 5]],
    (1, 2): [[50, 14, 61],
             [44, 36, 58]],
}

# (padding, stride) -> the output whose window conv-4x6 works out: the lecture's first sum
# (57), its first padded window (50, zeros in it), and a strided window at the padded edge (61)
SHOWN_OUTPUT = {(0, 1): (0, 0), (1, 1): (0, 0), (1, 2): (0, 2)}

# the first row the lecture's formula would give as printed, with the kernel flipped
FLIPPED_KERNEL_ROW = [73, 49, 9, 46]

CONV_METHODS = ("direct", "im2col", "blocked")   # nbconv's three ways to compute a convolution


# ------------------------------------------------------------------------------ text pictures

def grid(a) -> list[str]:
    """A 2-D array as lines of text, every number right-aligned in columns of one width."""
    cells = [[fmt(v) for v in row] for row in np.asarray(a)]
    width = max((len(c) for row in cells for c in row), default=0)
    return [" ".join(c.rjust(width) for c in row) for row in cells]


def side_by_side(blocks: list[list[str]], titles: list[str] | None = None, gap: int = 5,
                 indent: int = 2) -> list[str]:
    """Blocks of lines (pictures) next to each other, each under its title, tops aligned."""
    titles = titles or [""] * len(blocks)
    widths = [max([len(t)] + [len(line) for line in block]) for t, block in zip(titles, blocks)]
    height = max(len(block) for block in blocks)
    rows = [titles] if any(titles) else []
    rows += [[block[k] if k < len(block) else "" for block in blocks] for k in range(height)]
    pad = " " * indent
    return [(pad + (" " * gap).join(cell.ljust(w) for cell, w in zip(row, widths))).rstrip()
            for row in rows]


def marked(a, top: int, left: int, height: int, width: int) -> list[str]:
    """``grid`` of ``a`` with the cells of one window in brackets, [6], the others as  6 ."""
    a = np.asarray(a)
    cells = [[(f"[{fmt(v)}]" if top <= r < top + height and left <= c < left + width
               else f" {fmt(v)} ") for c, v in enumerate(row)] for r, row in enumerate(a)]
    w = max(len(c) for row in cells for c in row)
    return ["".join(c.rjust(w) for c in row).rstrip() for row in cells]


def indented(lines: list[str], by: int = 2) -> list[str]:
    return [" " * by + line for line in lines]


def wrapped(text: str, indent: int = 4, width: int = 98) -> list[str]:
    """A long line (an error message) cut into lines of at most ``width`` characters."""
    return textwrap.wrap(text, width, initial_indent=" " * indent, subsequent_indent=" " * (indent + 2))


def difference(value, expected) -> float:
    """max |value - expected| over the elements; infinite when the shapes differ."""
    value, expected = np.asarray(value, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return float(np.abs(value - expected).max()) if value.shape == expected.shape else math.inf


def _factor(v) -> str:
    """A factor of the lecture's sums: 3, or (-1) when negative."""
    text = fmt(v)
    return f"({text})" if text.startswith("-") else text


def sum_of_products(window, kernel) -> str:
    """The lecture's line: 6*3 + 5*2 + 3*(-1) + ... = 57 (the window times the kernel, summed)."""
    window, kernel = np.asarray(window), np.asarray(kernel)
    terms = [f"{_factor(a)}*{_factor(b)}" for a, b in zip(window.ravel(), kernel.ravel())]
    return " + ".join(terms) + " = " + fmt((window * kernel).sum())


# this module's independent truths: plain loops and slices, no nbconv

def columns_by_slicing(image, size: int, padding: int, stride: int) -> np.ndarray:
    """X_col of one channel by NumPy slicing: column (i, j) is the window of output (i, j),
    read row by row.  Returns (size*size, OH*OW)."""
    xp = np.pad(np.asarray(image, dtype=np.float64), padding)
    OH = (xp.shape[0] - size) // stride + 1
    OW = (xp.shape[1] - size) // stride + 1
    return np.stack([xp[i * stride:i * stride + size, j * stride:j * stride + size].ravel()
                     for i in range(OH) for j in range(OW)], axis=1)


# ------------------------------------------------------------------------------ conv-4x6

def conv_4x6() -> Replay:
    r = Replay("conv-4x6", "The lecture's 4x6 image and 3x3 kernel: padding P and stride S")
    r.say("image, 4x6:", *indented(grid(IMAGE)),
          "kernel, 3x3:", *indented(grid(KERNEL)),
          "y[i, j] = sum over a, b = 0..2 of x_pad[i*S + a, j*S + b] * k[a, b]: the window under",
          "the kernel, multiplied cell by cell and added (cross-correlation, the kernel not flipped)")
    for (P, S), text_map in TEXT_MAPS.items():
        _conv_setting(r, P, S, np.array(text_map, dtype=np.float64))
    _flipped_kernel(r)
    return r


def _conv_setting(r: Replay, P: int, S: int, text_map: np.ndarray) -> None:
    x, k = IMAGE[None, None], KERNEL[None, None]
    y, _ = F.conv2d_forward(x, k, padding=P, stride=S, method="direct")
    OH, OW = y.shape[2:]
    r.say("", f"--- P = {P}, S = {S}: rows floor((4 + 2*{P} - 3)/{S}) + 1 = {OH}, "
              f"columns floor((6 + 2*{P} - 3)/{S}) + 1 = {OW}")

    i, j = SHOWN_OUTPUT[(P, S)]
    padded = np.pad(IMAGE, P)
    top, left = i * S, j * S
    window = padded[top:top + 3, left:left + 3]
    where = f"rows {top}..{top + 2}, columns {left}..{left + 2}"
    r.say(f"output ({i}, {j}): the window at {where} of the "
          + (f"image padded with {P} ring of zeros ({padded.shape[0]}x{padded.shape[1]})" if P
             else "image"),
          *indented(marked(padded, top, left, 3, 3)),
          *side_by_side([grid(window), grid(KERNEL), grid(window * KERNEL)],
                        ["window", "kernel", "products"]),
          "  " + sum_of_products(window, KERNEL))
    r.check(f"P={P} S={S} y[{i}, {j}]", y[0, 0, i, j], text_map[i, j], lecture=fmt(text_map[i, j]))

    r.say(f"the whole {OH}x{OW} map (nbconv's naive loop nest, method='direct'):",
          *side_by_side([grid(y[0, 0]), grid(text_map)], ["nbconv", "the text"]))
    r.check(f"map P={P} S={S}", y[0, 0], text_map, lecture=f"the {OH}x{OW} map above")
    for method in CONV_METHODS[1:]:
        ym, _ = F.conv2d_forward(x, k, padding=P, stride=S, method=method)
        r.check(f"  P={P} S={S} {method}: max|y - text|", difference(ym[0, 0], text_map), 0.0, tol=1e-9)


def _flipped_kernel(r: Replay) -> None:
    flipped = np.ascontiguousarray(KERNEL[::-1, ::-1])
    y, _ = F.conv2d_forward(IMAGE[None, None], flipped[None, None])
    r.say("", "The lecture's formula, sum_{x=0}^{f_w} sum_{y=0}^{f_h} input(i - x, j - y) * filter(x, y),",
          "is true convolution: it flips the kernel (and its sums should stop at f_w - 1, f_h - 1).",
          "Its worked examples above do not flip; flipped, the kernel would give another first row:",
          *side_by_side([grid(flipped)], ["kernel flipped"]))
    r.check("row 0, kernel flipped", y[0, 0, 0], np.array(FLIPPED_KERNEL_ROW, dtype=np.float64),
            note="the text's examples do not flip: 57 55 33 14")


# ------------------------------------------------------------------------------ cs231n-demo

# The notes' demo (W1 = H1 = 5, D1 = 3, K = 2, F = 3, S = 2, P = 1) is an animation with numbers
# of its own; these are small integers of the same sizes (inputs 0..2, weights -1..1), as depth
# slices: DEMO_X[d] is x[:, :, d], DEMO_W[k][d] is filter k's w[:, :, d].
DEMO_X = [[[0, 1, 0, 2, 1], [0, 0, 1, 0, 1], [2, 1, 2, 1, 2], [0, 1, 2, 2, 0], [2, 1, 1, 2, 0]],
          [[0, 0, 0, 0, 2], [0, 1, 0, 0, 1], [2, 2, 1, 2, 2], [1, 2, 1, 1, 2], [0, 2, 0, 2, 1]],
          [[0, 1, 1, 2, 0], [2, 0, 1, 2, 1], [1, 1, 2, 1, 2], [2, 1, 2, 1, 1], [2, 1, 1, 0, 1]]]
DEMO_W = [[[[1, 0, 0], [1, 1, 0], [0, 1, 1]], [[0, 1, 0], [1, 1, 0], [-1, 1, 1]],
           [[0, 0, 0], [0, 1, 1], [1, -1, -1]]],
          [[[0, 1, 1], [0, 1, 0], [0, -1, 0]], [[0, -1, -1], [-1, 1, 0], [-1, 0, 1]],
           [[-1, -1, -1], [0, 0, 1], [0, 0, 0]]]]
DEMO_B = [1, 0]
DEMO_STRIDE, DEMO_PAD = 2, 1
DEMO_OUTPUT_SHAPE = (3, 3, 2)          # the notes: (5 - 3 + 2)/2 + 1 = 3, and K = 2 filters
DEMO_SHOWN = (1, 2, 0)                 # o[1, 2, 0]: the padded column on its right


def volume_loops(x_slices, filters, biases, stride: int, pad: int) -> list:
    """A CONV layer in plain Python loops: o[k][i][j] =
    b[k] + sum over d, a, c of x_pad[d][i*S + a][j*S + c] * w[k][d][a][c].  Returns o[k][i][j]."""
    D, H, W = len(x_slices), len(x_slices[0]), len(x_slices[0][0])
    F_ = len(filters[0][0])

    def xpad(d, r, c):
        r, c = r - pad, c - pad
        return x_slices[d][r][c] if 0 <= r < H and 0 <= c < W else 0

    OH, OW = (H + 2 * pad - F_) // stride + 1, (W + 2 * pad - F_) // stride + 1
    return [[[biases[k] + sum(xpad(d, i * stride + a, j * stride + c) * filters[k][d][a][c]
                              for d in range(D) for a in range(F_) for c in range(F_))
              for j in range(OW)] for i in range(OH)] for k in range(len(filters))]


def cs231n_demo() -> Replay:
    r = Replay("cs231n-demo", "The notes' CONV demo: 5x5x3 input, K = 2 filters 3x3x3, S = 2, P = 1")
    x = np.array(DEMO_X, dtype=np.float64)[None]           # (N, C, H, W) = (1, 3, 5, 5)
    w = np.array(DEMO_W, dtype=np.float64)                 # (K, C, F, F) = (2, 3, 3, 3)
    b = np.array(DEMO_B, dtype=np.float64)
    y, _ = F.conv2d_forward(x, w, b, stride=DEMO_STRIDE, padding=DEMO_PAD)
    o = y[0].transpose(1, 2, 0)                            # the notes' o[i, j, k]
    xpad = np.pad(x[0], ((0, 0), (DEMO_PAD, DEMO_PAD), (DEMO_PAD, DEMO_PAD)))

    r.say("The notes' demo is an animation with numbers of its own; here is a volume of the same sizes",
          "(small integers, so the sums read easily), every volume as its depth slices, the input",
          "padded with P = 1:",
          *side_by_side([grid(xpad[d]) for d in range(3)], [f"x[:, :, {d}]" for d in range(3)]))
    for k in range(2):
        r.say(*side_by_side([grid(w[k, d]) for d in range(3)] + [[fmt(b[k])]],
                            [f"w{k}[:, :, {d}]" for d in range(3)] + [f"b{k}"]))
    r.say(f"output: (5 - 3 + 2*{DEMO_PAD})/{DEMO_STRIDE} + 1 = 3 per side, K = 2 slices:",
          *side_by_side([grid(o[:, :, k]) for k in range(2)], [f"o[:, :, {k}]" for k in range(2)]))
    r.check("output volume shape", np.array(o.shape), np.array(DEMO_OUTPUT_SHAPE),
            lecture="(5 - 3 + 2)/2 + 1 = 3, K = 2")
    expected = np.array(volume_loops(DEMO_X, DEMO_W, DEMO_B, DEMO_STRIDE, DEMO_PAD), float)
    r.check("o: max|nbconv - loops|", difference(o, expected.transpose(1, 2, 0)), 0.0, tol=1e-9,
            note="every value against plain Python loops")

    i, j, k = DEMO_SHOWN
    top, left = i * DEMO_STRIDE, j * DEMO_STRIDE
    r.say("", f"o[{i}, {j}, {k}]: the window at rows {top}..{top + 2}, columns {left}..{left + 2} "
              "of every padded slice,", f"times filter w{k}, summed, plus b{k}:")
    partial = []
    for d in range(3):
        window = xpad[d, top:top + 3, left:left + 3]
        partial.append((window * w[k, d]).sum())
        r.say(*side_by_side([grid(window), grid(w[k, d]), grid(window * w[k, d])],
                            [f"x[:, :, {d}] window", f"w{k}[:, :, {d}]", "products"]),
              f"  depth {d}: the products add up to {fmt(partial[-1])}")
    total = sum(partial) + b[k]
    r.say(f"  o[{i}, {j}, {k}] = " + " + ".join(_factor(p) for p in partial)
          + f" + b{k} ({fmt(b[k])}) = {fmt(total)}")
    r.check(f"o[{i}, {j}, {k}]", o[i, j, k], total, note="the sum above")
    return r


# ------------------------------------------------------------------------------ volume-11x11x4

# The notes' lines, as they print them: X is 11x11x4 (X[x, y, :] is the depth column at (x, y)),
# W0 and W1 are 5x5x4, S = 2, P = 0, so V is 4x4x2: (11 - 5)/2 + 1 = 4.
# (output, the notes' line as they print it, (rows, columns) of its window, its filter)
VOLUME_LINES = [
    ("V[0,0,0]", "np.sum(X[:5,:5,:] * W0) + b0", (slice(0, 5), slice(0, 5)), 0),
    ("V[1,0,0]", "np.sum(X[2:7,:5,:] * W0) + b0", (slice(2, 7), slice(0, 5)), 0),
    ("V[2,0,0]", "np.sum(X[4:9,:5,:] * W0) + b0", (slice(4, 9), slice(0, 5)), 0),
    ("V[3,0,0]", "np.sum(X[6:11,:5,:] * W0) + b0", (slice(6, 11), slice(0, 5)), 0),
    ("V[0,0,1]", "np.sum(X[:5,:5,:] * W1) + b1", (slice(0, 5), slice(0, 5)), 1),
    ("V[0,1,1]", "np.sum(X[:5,2:7,:] * W1) + b1", (slice(0, 5), slice(2, 7)), 1),
    ("V[2,3,1]", "np.sum(X[4:9,6:11,:] * W1) + b1", (slice(4, 9), slice(6, 11)), 1),
]
VOLUME_OUTPUT_SHAPE = (4, 4, 2)
VOLUME_SEED = 11                        # small integers, so that the sums read easily


def volume_11x11x4() -> Replay:
    r = Replay("volume-11x11x4", "The notes' 11x11x4 input, F = 5, S = 2, P = 0: V[0,0,0] ... V[3,0,0]")
    rng = np.random.default_rng(VOLUME_SEED)
    X = rng.integers(-2, 3, size=(11, 11, 4)).astype(np.float64)
    W0, W1 = (rng.integers(-1, 2, size=(5, 5, 4)).astype(np.float64) for _ in range(2))
    b0, b1 = 1.0, -2.0
    # nbconv takes (N, C, H, W): X's first axis becomes H, its second W, its third the channels,
    # so that V[x, y, d] = y[0, d, x, y]
    x = X.transpose(2, 0, 1)[None]
    w = np.stack([W0, W1]).transpose(0, 3, 1, 2)
    y, _ = F.conv2d_forward(x, w, np.array([b0, b1]), stride=2, padding=0)
    V = y[0].transpose(1, 2, 0)

    r.say("X: 11x11x4 integers in -2..2, W0 and W1: 5x5x4 in -1..1, b0 = 1, b1 = -2 (a fixed draw).",
          "nbconv computes V with conv2d_forward(X as (1, 4, 11, 11), W as (2, 4, 5, 5), stride=2);",
          "each line of the notes is then run as they print it, with NumPy:",
          *side_by_side([grid(X[:, :, 0])], ["X[:, :, 0], the first depth slice"]))
    r.check("V shape", np.array(V.shape), np.array(VOLUME_OUTPUT_SHAPE), lecture="(11 - 5)/2 + 1 = 4")
    filters, biases = (W0, W1), (b0, b1)
    for label, line, (rows, cols), k in VOLUME_LINES:
        s, bv = np.sum(X[rows, cols, :] * filters[k]), biases[k]     # the notes' line, in NumPy
        idx = tuple(int(v) for v in re.findall(r"\d+", label))
        r.say(f"  {label} = {line}")
        r.say(f"           = {fmt(s)} + {_factor(bv)} = {fmt(s + bv)}")
        r.check(f"{label} (nbconv)", V[idx], s + bv)
    return r


# ------------------------------------------------------------------------------ im2col-4x6

IM2COL_SETTINGS = ((0, 1), (1, 2))     # (padding, stride): the lecture's first and last maps


def im2col_4x6() -> Replay:
    r = Replay("im2col-4x6", "The 4x6 example as one matrix product: X_col, W_row and W_row @ X_col")
    r.say("im2col stretches the window of every output position into a column of X_col",
          "(nbconv.kernels.im2col.im2col); the kernel becomes the row W_row; the whole convolution",
          "is the one product W_row @ X_col, reshaped into the output map.")
    for P, S in IM2COL_SETTINGS:
        _im2col_setting(r, P, S, np.array(TEXT_MAPS[(P, S)], dtype=np.float64))
    return r


def _im2col_setting(r: Replay, P: int, S: int, text_map: np.ndarray) -> None:
    x = IMAGE[None, None]
    OH, OW = conv2d_output_shape(IMAGE.shape, 3, stride=S, padding=P)
    cols = np.empty((1, 9, OH * OW))                      # (groups, C*KH*KW, N*OH*OW)
    im2col_kernels.im2col(x, cols, 3, 3, S, S, P, P, 1, 1, OH, OW)
    X_col = cols[0]
    W_row = KERNEL.reshape(1, 9)                          # one filter, one row
    product = W_row @ X_col                               # the notes' np.dot(W_row, X_col)
    y_map = product.reshape(OH, OW)

    r.say("", f"--- P = {P}, S = {S}: X_col is 9 x {OH * OW} (9 = 3*3 values per window, "
              f"{OH}*{OW} = {OH * OW} windows)")
    heads = [f"({i},{j})" for i in range(OH) for j in range(OW)]
    labels = [f"k[{a},{b}]" for a in range(3) for b in range(3)]
    cell = max(len(h) for h in heads)
    table = ["      " + " ".join(h.rjust(cell) for h in heads)]
    table += [f"{lab}" + " " + " ".join(fmt(v).rjust(cell) for v in row)
              for lab, row in zip(labels, X_col)]
    r.say("X_col: column (i, j) is the window of output (i, j), row k[a,b] meets kernel weight "
          "k[a, b]:", *indented(table))
    r.check(f"X_col P={P} S={S}: max|diff|", difference(X_col, columns_by_slicing(IMAGE, 3, P, S)), 0.0,
            note="against slices of the padded image")
    r.say("W_row, the kernel read row by row (1 x 9):", *indented(grid(W_row)),
          f"W_row @ X_col (1 x {OH * OW}):", *indented(grid(product)),
          f"reshaped {OH}x{OW}, beside the text's map:",
          *side_by_side([grid(y_map), grid(text_map)], ["W_row @ X_col", "the text"]))
    r.check(f"W_row @ X_col, P={P} S={S}", y_map, text_map, lecture=f"the {OH}x{OW} map above")
    y, _ = F.conv2d_forward(x, KERNEL[None, None], padding=P, stride=S, method="im2col")
    r.check(f"  P={P} S={S} conv2d im2col: max|y - text|", difference(y[0, 0], text_map), 0.0, tol=1e-9)


# ------------------------------------------------------------------------------ alexnet-im2col

# the notes' numbers for AlexNet's first CONV layer and its im2col
ALEXNET_TEXT = {
    "output side": 55,              # (227 - 11)/4 + 1 = 55
    "X_col": (363, 3025),           # 11*11*3 = 363 rows, 55*55 = 3025 columns
    "W_row": (96, 363),
    "product": (96, 3025),
    "output": (55, 55, 96),
    "weights": 34_848,              # 96*11*11*3
    "parameters": 34_944,           # + 96 biases
    "without sharing": 105_705_600,  # 55*55*96 = 290,400 neurons, 363 weights + 1 bias each
}
ALEXNET_PROBES = ((0, 0, 0), (5, 0, 1), (47, 27, 13), (95, 54, 54))   # outputs (f, i, j) checked


def alexnet_im2col() -> Replay:
    r = Replay("alexnet-im2col", "AlexNet conv1 as im2col: X_col 363 x 3025, W_row 96 x 363, 55x55x96")
    C, H, W = ALEXNET_INPUT
    conv = alexnet_conv1()[0]                 # shapes only, no weights: Conv2d(3, 96, 11, stride=4)
    OH, OW = conv2d_output_shape((H, W), 11, stride=4, padding=0)
    sizes = im2col_sizes(conv, ALEXNET_INPUT)
    r.say(f"input {H}x{W}x{C}, 96 filters 11x11x3, stride 4, no padding (nbconv.shapes, nbconv.summary):")
    r.check("output side", OH, ALEXNET_TEXT["output side"], lecture="(227 - 11)/4 + 1 = 55")
    r.check("X_col rows x columns", np.array(sizes["X_col"]), np.array(ALEXNET_TEXT["X_col"]),
            lecture="[363 x 3025]")
    r.check("W_row rows x columns", np.array(sizes["W_row"]), np.array(ALEXNET_TEXT["W_row"]),
            lecture="[96 x 363]")
    r.check("W_row @ X_col", np.array(sizes["out"]), np.array(ALEXNET_TEXT["product"]),
            lecture="[96 x 3025]")
    weights = conv2d_param_count(3, 96, 11, bias=False)
    r.check("weights 96*11*11*3", weights, ALEXNET_TEXT["weights"], lecture="34,848")
    r.check("with the 96 biases", conv2d_param_count(3, 96, 11), ALEXNET_TEXT["parameters"],
            lecture="34,944")
    neurons = OH * OW * 96
    r.check("without sharing", neurons * (sizes["X_col"][0] + 1), ALEXNET_TEXT["without sharing"],
            lecture="290400 * 364 = 105,705,600")

    # the lowering itself, on one random image
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, C, H, W))
    cols = np.empty((1,) + sizes["X_col"])
    im2col_kernels.im2col(x, cols, 11, 11, 4, 4, 0, 0, 1, 1, OH, OW)
    windows = np.lib.stride_tricks.sliding_window_view(x[0], (11, 11), axis=(1, 2))[:, ::4, ::4]
    by_slicing = windows.transpose(0, 3, 4, 1, 2).reshape(363, OH * OW)   # rows (c, a, b)
    r.say("", "nbconv's im2col on one random 227x227x3 image:")
    r.check("X_col: max|diff|", difference(cols[0], by_slicing), 0.0,
            note="every column against NumPy's sliding windows")
    r.say(f"  X_col holds {cols[0].size:,} numbers for an input of {x.size:,}: every pixel is "
          f"copied into up to {math.ceil(11 / 4) ** 2} columns",
          "  (the receptive fields overlap), about "
          f"{cols[0].size / x.size:.1f}x the input.")
    w = rng.standard_normal((96, C, 11, 11))
    b = rng.standard_normal(96)
    y, _ = F.conv2d_forward(x, w, b, stride=4, method="im2col")
    r.check("conv2d output H x W x K", np.array(y.shape[2:] + y.shape[1:2]),
            np.array(ALEXNET_TEXT["output"]), lecture="[55x55x96]")
    for f, i, j in ALEXNET_PROBES:
        direct = np.sum(x[0, :, 4 * i:4 * i + 11, 4 * j:4 * j + 11] * w[f]) + b[f]
        r.check(f"y[{f}, {i}, {j}]", y[0, f, i, j], direct, tol=1e-9,
                note="sum(x window * w[f]) + b[f], by NumPy")
    return r


# ------------------------------------------------------------------------------ output-size

# (what, size W, kernel F, stride S, padding P, the texts' answer, the text's own arithmetic)
OUTPUT_SIZES = [
    ("7x7, F=3, S=1, P=0", 7, 3, 1, 0, 5, "5x5"),
    ("7x7, F=3, S=2, P=0", 7, 3, 2, 0, 3, "3x3"),
    ("W=5, F=3, S=1, P=1", 5, 3, 1, 1, 5, "(5 - 3 + 2)/1 + 1 = 5"),
    ("W=5, F=3, S=2, P=1", 5, 3, 2, 1, 3, "(5 - 3 + 2)/2 + 1 = 3"),
    ("demo: W=5, F=3, S=2, P=1", 5, 3, 2, 1, 3, "(5 - 3 + 2)/2 + 1 = 3"),
    ("11x11x4: F=5, S=2, P=0", 11, 5, 2, 0, 4, "(11 - 5)/2 + 1 = 4"),
    ("AlexNet 227, F=11, S=4", 227, 11, 4, 0, 55, "(227 - 11)/4 + 1 = 55"),
    ("pool 224x224x64, F=2, S=2", 224, 2, 2, 0, 112, "[112x112x64]"),
]

# settings where (W - F + 2P)/S is not whole: floor takes the whole part, strict mode refuses
# (what, W, F, S, P, the floored size, what the texts say)
NOT_WHOLE = [
    ("W=10, F=3, S=2, P=0", 10, 3, 2, 0, 4, "4.5, invalid"),
    ("W=5, F=3, S=3, P=1", 5, 3, 3, 1, 2, "4 is not divisible by 3, cannot be used"),
    ("AlexNet 224, F=11, S=4", 224, 11, 4, 0, 54, "not an integer"),
]

SIZES_KEPT = (4, 6, 7, 32, 224)        # F = 3, P = 1, S = 1 keeps every one of them
ODD_KERNELS = (1, 3, 5, 7, 11)         # P = (F - 1)/2, S = 1 keeps the size for every odd F
SIZES_5X3 = tuple(range(1, 11))        # the lecture's F = 5x3 (w x h), P = 3, S = 2 example


def _strict_refusal(size, kernel, stride, padding) -> str | None:
    """The ValueError strict mode raises, as its message; None if it accepts the setting."""
    try:
        conv_output_size(size, kernel, stride=stride, padding=padding, strict=True)
    except ValueError as error:
        return str(error)
    return None


def output_size() -> Replay:
    r = Replay("output-size", "Output sizes floor((W - F + 2P)/S) + 1 on the texts' settings; strict mode")
    r.say("nbconv.shapes.conv_output_size(W, F, stride=S, padding=P) floors, as the lecture does;",
          "strict=True applies the notes' rule and raises ValueError where (W - F + 2P)/S is not whole.",
          "")
    for what, W, F_, S, P, answer, text in OUTPUT_SIZES:
        r.check(what, conv_output_size(W, F_, stride=S, padding=P), answer, lecture=text)
    r.check("4x6 image, F=3, P=0, S=1", np.array(conv2d_output_shape((4, 6), 3)), np.array([2, 4]),
            lecture="2x4")
    r.check("4x6 image, F=3, P=1, S=1", np.array(conv2d_output_shape((4, 6), 3, padding=1)),
            np.array([4, 6]), lecture="4x6")
    r.check("4x6 image, F=3, P=1, S=2", np.array(conv2d_output_shape((4, 6), 3, stride=2, padding=1)),
            np.array([2, 3]), lecture="2x3")

    r.say("", f"Sizes the formula keeps (S = 1), on W_in = {' '.join(map(str, SIZES_KEPT))}:")
    kept = [conv_output_size(W, 3, padding=1) for W in SIZES_KEPT]
    r.check("F=3, P=1: W_out", np.array(kept), np.array(SIZES_KEPT), lecture="W_out = W_in")
    r.say(f"and on W_in = 32 with F = {' '.join(map(str, ODD_KERNELS))}:")
    odd = [conv_output_size(32, F_, padding=(F_ - 1) // 2) for F_ in ODD_KERNELS]
    r.check("P=(F-1)/2: W_out", np.array(odd), np.array([32] * len(ODD_KERNELS)),
            lecture="W_out = W_in for odd F")

    r.say("", "The lecture's F = 5x3 (width x height), P = 3, S = 2, on W_in = H_in = "
              f"{SIZES_5X3[0]}..{SIZES_5X3[-1]}:")
    shapes = np.array([conv2d_output_shape((n, n), (3, 5), stride=2, padding=3) for n in SIZES_5X3])
    r.check("W_out", shapes[:, 1], np.array([(n + 1) // 2 + 1 for n in SIZES_5X3]),
            lecture="floor((W_in + 1)/2) + 1")
    r.check("H_out", shapes[:, 0], np.array([(n + 3) // 2 + 1 for n in SIZES_5X3]),
            lecture="floor((H_in + 3)/2) + 1")

    r.say("", "Settings where the window does not tile the padded input evenly:")
    for what, W, F_, S, P, floored, text in NOT_WHOLE:
        r.say(f"  {what}: ({W} - {F_} + {2 * P})/{S} + 1 = {fmt((W - F_ + 2 * P) / S + 1)}"
              f"   [text: {text}]")
        r.check(f"  W={W} S={S}: floor (default)", conv_output_size(W, F_, stride=S, padding=P), floored)
        refusal = _strict_refusal(W, F_, S, P)
        r.check(f"  W={W} S={S}: strict refuses", refusal is not None, True)
        if refusal:
            r.say(*wrapped("ValueError: " + refusal))
    r.say("", "The notes guess that 3 extra pixels of zero padding made AlexNet's 224 into 227,",
          "where (227 - 11)/4 is whole, so strict mode accepts it:")
    r.check("  strict=True, 227", _strict_refusal(227, 11, 4, 0) is None, True)
    return r


EXAMPLES = [
    Example("conv-4x6", "the lecture's 4x6 image and 3x3 kernel with P=0 S=1, P=1 S=1, P=1 S=2", conv_4x6),
    Example("cs231n-demo", "the notes' CONV demo: 5x5x3 input, two 3x3x3 filters, S=2, P=1", cs231n_demo),
    Example("volume-11x11x4", "the notes' V[0,0,0] = np.sum(X[:5,:5,:] * W0) + b0 and its neighbours",
            volume_11x11x4),
    Example("im2col-4x6", "the 4x6 example as one matrix product W_row @ X_col", im2col_4x6),
    Example("alexnet-im2col", "AlexNet conv1 as im2col: X_col 363 x 3025, W_row 96 x 363", alexnet_im2col),
    Example("output-size", "floor((W - F + 2P)/S) + 1 on the texts' settings, and what strict mode refuses",
            output_size),
]
