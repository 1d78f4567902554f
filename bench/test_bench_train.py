"""One training step (forward, cross-entropy, backward, Adam) of the three nets of ``nbconv bench
--train``, float32: digits (64 x 1x8x8), cifar-small (64 x 3x32x32), cifar-wide (128 x 3x32x32).

    pytest bench/test_bench_train.py --benchmark-only

One benchmark group per net; where torch happens to be installed, the same net built with
torch.nn (``nbconv.bench_train.torch_net``) is timed beside it.  Not part of the default test run
(pytest's testpaths is tests/).  ``nbconv bench --train`` prints the same step times with each
layer type's share of them.
"""

import pytest

import nbconv.bench_train as bt


@pytest.mark.parametrize("spec", bt.NETS, ids=lambda spec: spec.name)
def test_train_step(benchmark, spec):
    model, optimizer, x, y = bt.build(spec)
    bt.train_step(model, optimizer, x, y)                   # compile outside the timing
    benchmark.group = f"training step {spec.name}"
    benchmark.pedantic(bt.train_step, args=(model, optimizer, x, y), rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("spec", bt.NETS, ids=lambda spec: spec.name)
def test_train_step_torch(benchmark, spec):
    """The peer: the same net, batch and step in PyTorch, when it is installed."""
    torch = pytest.importorskip("torch")
    model, _, x, y = bt.build(spec)
    net = bt.torch_net(torch, model)
    optimizer = torch.optim.Adam(net.parameters(), lr=bt.LR)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(tx), ty)
        loss.backward()
        optimizer.step()

    step()
    benchmark.group = f"training step {spec.name}"
    benchmark.pedantic(step, rounds=5, warmup_rounds=1)
