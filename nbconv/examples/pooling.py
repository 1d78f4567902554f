"""The course's pooling worked examples, replayed through nbconv (``nbconv example NAME``).

    max-pool   2x2 max pooling with stride 2 of the lecture's 4x4 and 4x6 images: the pooled
               maps, the switches (where each maximum sits), and where the gradient goes

    out[i, j] = max over the window x[i*S : i*S + 2, j*S : j*S + 2]

The backward pass of max(a, b, c, d) hands the whole upstream gradient to the input that won
and 0 to the others; the forward pass remembers the winners (the notes' "switches"), so the
backward only routes: dx[switch of (i, j)] += dout[i, j].  nbconv keeps each switch as the flat
index row * W + col of its pixel, and breaks ties by the first maximum in row-major window order.

The expected values are the texts' figures, or an independent loop written out here.
"""

from __future__ import annotations

import numpy as np

import nbconv.functional as F

from .convolution import difference, grid, side_by_side
from .replay import Example, Replay, fmt

# (name, the image, the pooled map as the text prints it, None where it leaves a cell blank,
#  what the text shows)
IMAGES = [
    ("the 4x4 image of lecture 3 (pooling)",
     [[1, 3, 2, 9],
      [7, 4, 1, 5],
      [8, 5, 2, 3],
      [4, 2, 1, 4]],
     [[7, 9],
      [8, None]],
     "the slide leaves its last cell blank: max(2, 3, 1, 4) = 4"),
    ("the 4x6 image of the convolution example",
     [[6, 5, 3, -1, 6, 7],
      [4, 6, 2, 4, 6, 2],
      [1, 3, 6, 0, 0, 1],
      [5, 7, 2, 1, 5, 8]],
     [[6, 4, 7],
      [7, 6, 8]],
     ""),
]
# the blank cells of the texts' maps, filled in (the maximum of the window)
BLANK_CELLS = {(0, 1, 1): 4}           # (image, row, column) -> the value
WINDOW, STRIDE = 2, 2


def blocks(a, bh: int, bw: int) -> list[str]:
    """A 2-D array as text cut into bh x bw blocks (the pooling windows) by | and -+- lines."""
    cells = [[fmt(v) for v in row] for row in np.asarray(a)]
    w = max(len(c) for row in cells for c in row)
    parts = [[" ".join(c.rjust(w) for c in row[k:k + bw]) for k in range(0, len(row), bw)]
             for row in cells]
    rule = "-+-".join("-" * len(p) for p in parts[0])
    lines = []
    for r, row in enumerate(parts):
        if r and r % bh == 0:
            lines.append(rule)
        lines.append(" | ".join(row))
    return lines


def text_map(printed) -> list[str]:
    """The text's map as a picture, its blank cells as _."""
    return _cells([["_" if v is None else fmt(v) for v in row] for row in printed])


def corrected_map(k: int, printed) -> np.ndarray:
    """The text's map with its blank cells filled in from BLANK_CELLS."""
    return np.array([[BLANK_CELLS[(k, i, j)] if v is None else v for j, v in enumerate(row)]
                     for i, row in enumerate(printed)], dtype=np.float64)


# the independent truth: plain loops over the windows

def max_pool_loops(image, size: int, stride: int):
    """-> (pooled, winners): every window's maximum and its (row, col), the first maximum in
    row-major order winning a tie; plain Python loops."""
    image = np.asarray(image).tolist()
    H, W = len(image), len(image[0])
    pooled, winners = [], []
    for i in range((H - size) // stride + 1):
        pooled.append([])
        winners.append([])
        for j in range((W - size) // stride + 1):
            best, where = None, None
            for a in range(size):
                for b in range(size):
                    r, c = i * stride + a, j * stride + b
                    if best is None or image[r][c] > best:       # strictly greater: first one wins ties
                        best, where = image[r][c], (r, c)
            pooled[i].append(best)
            winners[i].append(where)
    return pooled, winners


def route_gradient_loops(shape, winners, dout) -> list[list[float]]:
    """dx of max pooling by hand: start from zeros, add dout[i][j] at the winner of window (i, j)."""
    dx = [[0.0] * shape[1] for _ in range(shape[0])]
    for i, row in enumerate(winners):
        for j, (r, c) in enumerate(row):
            dx[r][c] += dout[i][j]
    return dx


# ------------------------------------------------------------------------------ max-pool

def max_pool() -> Replay:
    r = Replay("max-pool", "2x2 max pooling with stride 2: pooled maps, switches, gradient routing")
    r.say("out[i, j] = max of the window x[2i : 2i + 2, 2j : 2j + 2]; the windows are cut out by | and -+-.",
          "The switches remember where each maximum sits; the backward pass routes dout[i, j] there.")
    for k, (name, image, printed, what) in enumerate(IMAGES):
        _pool_image(r, k, name, np.array(image, dtype=np.float64), printed, what)
    return r


def _pool_image(r: Replay, k: int, name: str, image: np.ndarray, printed, what: str) -> None:
    H, W = image.shape
    out, cache = F.max_pool2d_forward(image[None, None], kernel_size=WINDOW, stride=STRIDE)
    pooled = out[0, 0]
    OH, OW = pooled.shape
    r.say("", f"--- {name}, {H}x{W} -> {OH}x{OW}:",
          *side_by_side([blocks(image, WINDOW, WINDOW), grid(pooled), text_map(printed)],
                        ["image", "pooled (nbconv)", "the text"]))
    r.check(f"{H}x{W}: pooled map", pooled, corrected_map(k, printed),
            lecture=" / ".join(" ".join("_" if v is None else str(v) for v in row) for row in printed),
            note=what)
    loop_pooled, winners = max_pool_loops(image, WINDOW, STRIDE)
    r.check(f"{H}x{W}: max|pooled - loops|", difference(pooled, loop_pooled), 0.0,
            note="every window's maximum by a plain loop")
    switches = cache.switches[0, 0]
    rows, cols = np.divmod(switches, W)
    pairs = [[f"({fmt(rr)},{fmt(cc)})" for rr, cc in zip(rrow, crow)] for rrow, crow in zip(rows, cols)]
    r.say(f"switches: output (i, j) took its maximum from pixel (row, col) = row*{W} + col:",
          *side_by_side([_cells(pairs), grid(switches)], ["(row, col)", f"row*{W} + col"]))
    r.check(f"{H}x{W}: switches == loops", np.array_equal(switches, [[rr * W + cc for rr, cc in row]
                                                                 for row in winners]), True,
            note="the winners of a plain loop over the windows")
    for i, j in np.ndindex(OH, OW):
        window = image[i * STRIDE:i * STRIDE + WINDOW, j * STRIDE:j * STRIDE + WINDOW]
        if np.count_nonzero(window == window.max()) > 1:
            r.say(f"  window ({i}, {j}) {window.astype(int).tolist()} holds {fmt(window.max())} twice: "
                  f"the first in row-major order, {winners[i][j]}, wins the tie")

    dout = np.arange(1, OH * OW + 1, dtype=np.float64).reshape(OH, OW)
    (dx,) = F.max_pool2d_backward(dout[None, None], cache)
    r.say("backward: an upstream gradient dout numbered 1, 2, 3, ... lands, whole, on each window's",
          "maximum; every other pixel gets 0:",
          *side_by_side([grid(dout), blocks(dx[0, 0], WINDOW, WINDOW)], ["dout", "dx (nbconv)"]))
    routed = route_gradient_loops((H, W), winners, dout.tolist())
    r.check(f"{H}x{W}: max|dx - loops|", difference(dx[0, 0], routed), 0.0,
            note="dout added at each winner by a loop")


def _cells(texts: list[list[str]]) -> list[str]:
    w = max(len(t) for row in texts for t in row)
    return [" ".join(t.rjust(w) for t in row) for row in texts]


EXAMPLES = [
    Example("max-pool", "2x2 max pooling, stride 2, of the 4x4 and 4x6 images: switches and gradient routing",
            max_pool),
]
