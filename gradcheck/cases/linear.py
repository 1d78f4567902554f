
import nbconv.functional as F

from ..registry import Case

CASES = [
    Case("linear", "x (4, 5), w (3, 5), b (3,)", F.linear_forward, F.linear_backward,
         lambda rng: (rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)),
         names=("x", "w", "b")),
    Case("linear", "no bias", F.linear_forward, F.linear_backward,
         lambda rng: (rng.standard_normal((2, 6)), rng.standard_normal((4, 6))),
         names=("x", "w")),
]
