"""The gradient checks on the GPU path: every op of the registry (nbconv.gradcheck.device_cases)
through Case.run(device="cuda"), and ``nbconv gradcheck --device cuda``."""

import numpy as np
import pytest

from nbconv import devices
from nbconv.gradcheck import all_cases, check_gradients
from nbconv.gradcheck.device_cases import cuda_cases
from nbconv.gradcheck.harness import on_device

pytest.importorskip("numba_cuda", reason="the GPU path needs numba-cuda (pip install -e '.[dev]')")

pytestmark = [
    pytest.mark.filterwarnings("ignore:overflow encountered in scalar:RuntimeWarning"),
    pytest.mark.filterwarnings(r"ignore:\s*Compilation is falling back to object mode:numba.core.errors.NumbaWarning"),
]

CASES = cuda_cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.op}-{k}" for k, c in enumerate(CASES)])
def test_every_gradient_passes_on_the_device(case):
    reports = case.run(device="cuda")
    assert [r.name for r in reports] == [n for n in case.names if n not in case.in_place]
    for r in reports:
        assert r.passed, str(r)


def test_on_device_really_runs_the_device_path():
    seen = []

    def forward(x):
        seen.append(devices.array_device(x))
        from nbconv.functional import relu_forward
        return relu_forward(x)

    from nbconv.functional import relu_backward

    def backward(dout, cache):
        seen.append(devices.array_device(dout))
        return relu_backward(dout, cache)

    f, b = on_device(forward, backward, "cuda")
    reports = check_gradients(f, b, [np.array([[0.5, -1.0], [2.0, -0.25]])], names=["x"])
    assert reports[0].passed
    assert set(seen) == {"cuda"} and len(seen) == 1 + 1 + 2 * 4      # forward, backward, 2 per element
    assert on_device(forward, backward, "cpu") == (forward, backward)


def test_a_registry_case_runs_on_the_device_too():
    case = next(c for c in all_cases() if c.op == "linear")
    assert all(r.passed for r in case.run(device="cuda"))


def test_the_cli_checks_every_op_on_the_device(capsys):
    from nbconv.cli import main
    status = main(["gradcheck", "--device", "cuda", "--op", "relu", "--op", "mse"])
    out = capsys.readouterr().out
    assert status == 0
    assert "device cuda" in out
    rows = [line for line in out.splitlines() if line.startswith(("relu ", "mse "))]
    assert len(rows) == 2 and all(line.endswith("PASS") for line in rows)
