"""``nbconv bench --train``: how long one training step of a whole network takes, and where it goes.

    nbconv bench --train                    the three nets below, with a share table for each
    nbconv bench --train --repeat 10        10 timed steps per net instead of 5
    nbconv bench --train --json out.json    also save every number

A training step is what nbconv.training runs for each mini-batch, nothing more::

    logits = model.forward(x)
    loss, cache = F.cross_entropy_forward(logits, y)
    (dlogits,) = F.cross_entropy_backward(1.0, cache)
    optimizer.zero_grad()
    model.backward(dlogits)
    optimizer.step()                                   # Adam, lr 1e-3

on float32 inputs drawn from a standard normal and random integer labels (the numbers do not
change the time).  Three LeNet-style nets (nbconv.models.lenet, NETS below):

    digits        lenet() on (64, 1, 8, 8): channels (32, 64), hidden 128
    cifar-small   lenet(in_channels=3, image_size=32, channels=(32, 64), hidden=256) on (64, 3, 32, 32)
    cifar-wide    lenet(in_channels=3, image_size=32, channels=(64, 128), hidden=256) on (128, 3, 32, 32)

What is measured, per net:

- the step time: WARMUP untimed steps (the first one compiles the kernels), then ``--repeat``
  timed steps (default 5), each timed whole with ``time.perf_counter``, wall clock, nothing timed
  inside it.  The headline is the **best** of the timed steps (as everywhere in ``nbconv bench``:
  the least disturbed run on a shared machine); the median is printed beside it;
- the share table: the same step again, written out layer by layer with a clock around every
  ``layer.forward`` and ``layer.backward`` of the Sequential, the loss and the optimizer
  (``instrumented_step``).  One such step follows each timed step (both kinds then see the same
  load), and the table takes the parts of the instrumented step that was fastest in all.  The
  layers are summed by kind (PARTS: conv, linear, normalization, activations, pooling), and "the
  rest" is the step time above minus all measured parts: the Python between the calls (the
  Sequential's loop and error context, argument checks, allocations), the layers not timed apart
  (Flatten, Dropout, anything unclassified), and the noise between two steps.  The instrumented
  steps are separate from the timed ones, so the clocks' own overhead never enters the step time;
  parts and rest add up to it by construction.  On a noisy machine the rest can come out negative;
- PyTorch, only when it happens to be importable: the same net built with torch.nn (Conv2d
  without bias, BatchNorm2d, ReLU, MaxPool2d, Flatten, Linear; the same shapes and the same
  initial weights), the same batch, torch.optim.Adam and cross-entropy, best of ``--repeat``
  steps after WARMUP untimed ones; and the ratio ours / torch of the best times.  Without torch
  the column says "not installed".

The header gives the setting (CPU, Numba and BLAS threads) as ``nbconv bench`` does; like it, this
command changes no thread setting.  Times on a machine shared with other work are noisy: compare
within one run.  On a small machine that is busy with other work, threads that wait for a
descheduled sibling at every parallel region can make a step many times slower than on one
thread (nbconv.training.thread_limit): to compare, run with NUMBA_NUM_THREADS=1
OPENBLAS_NUM_THREADS=1 (and OMP_NUM_THREADS=1 for torch).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import measure
from . import functional as F
from .layers import (ELU, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Flatten, GlobalAvgPool2d,
                     GroupNorm, InstanceNorm2d, LayerNorm, LeakyReLU, Linear, LocalResponseNorm, LPPool2d, Maxout,
                     MaxPool2d, PReLU, ReLU, Sequential, Sigmoid, Tanh)
from .models import lenet
from .optim import Adam

__all__ = ["NetSpec", "NETS", "WARMUP", "PARTS", "REST", "Share", "NetResult", "build", "train_step",
           "layer_part", "instrumented_step", "StepTimes", "time_steps", "share_table", "torch_net",
           "torch_step_time", "bench_net", "format_net", "format_summary", "run"]

WARMUP = 2          # untimed steps before the timed ones; the first compiles every kernel
LR = 1e-3           # Adam's learning rate (it does not change the time)


# --------------------------------------------------------------------------- the nets

@dataclass(frozen=True)
class NetSpec:
    """One benchmark net: ``lenet(...)`` with these arguments, trained on batches of ``batch``."""

    name: str
    batch: int
    in_channels: int = 1
    image_size: int = 8
    channels: tuple = (32, 64)
    hidden: int = 128
    num_classes: int = 10

    @property
    def input_shape(self) -> tuple:
        return (self.batch, self.in_channels, self.image_size, self.image_size)

    def describe(self) -> str:
        return (f"lenet(in_channels={self.in_channels}, image_size={self.image_size}, "
                f"channels={self.channels}, hidden={self.hidden})")


NETS = (
    NetSpec("digits", batch=64),
    NetSpec("cifar-small", batch=64, in_channels=3, image_size=32, channels=(32, 64), hidden=256),
    NetSpec("cifar-wide", batch=128, in_channels=3, image_size=32, channels=(64, 128), hidden=256),
)


def build(spec: NetSpec, seed: int = 0):
    """(model, optimizer, x, y) for one net: the lenet in training mode, Adam over its parameters,
    a float32 batch from a standard normal and random integer labels, all seeded."""
    model = lenet(seed=seed, channels=spec.channels, hidden=spec.hidden, num_classes=spec.num_classes,
                  in_channels=spec.in_channels, image_size=spec.image_size, dtype=np.float32)
    model.train()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(spec.input_shape, dtype=np.float32)
    y = rng.integers(0, spec.num_classes, size=spec.batch)
    return model, Adam(model.parameters(), lr=LR), x, y


# --------------------------------------------------------------------------- one step

def train_step(model, optimizer, x, y) -> float:
    """One training step, as nbconv.training's loop runs it: forward, cross-entropy (mean over the
    batch), backward, Adam's update.  Returns the loss before the update."""
    logits = model.forward(x)
    loss, cache = F.cross_entropy_forward(logits, y)
    (dlogits,) = F.cross_entropy_backward(1.0, cache)
    optimizer.zero_grad()
    model.backward(dlogits)
    optimizer.step()
    return float(loss)


# --------------------------------------------------------------------------- where the time goes

# The parts of a step that are timed, in the order of the share table; "the rest" comes last.
PARTS = ("conv", "linear", "normalization", "activations", "pooling", "loss", "optimizer")
REST = "the rest"

# Layer classes by part (subclasses included: WSConv2d is a Conv2d).  A layer of any other class
# (Flatten, Dropout, containers) is not timed apart: its time stays in the rest.
_LAYER_PARTS = (
    ("conv", (Conv2d, Conv1d)),
    ("linear", (Linear,)),
    ("normalization", (BatchNorm1d, BatchNorm2d, LayerNorm, InstanceNorm2d, GroupNorm, LocalResponseNorm)),
    ("activations", (ReLU, Sigmoid, Tanh, LeakyReLU, ELU, PReLU, Maxout)),
    ("pooling", (MaxPool2d, AvgPool2d, LPPool2d, GlobalAvgPool2d)),
)


def layer_part(layer) -> str | None:
    """The part of the share table a layer's time counts to, or None (the rest) for other layers."""
    for part, classes in _LAYER_PARTS:
        if isinstance(layer, classes):
            return part
    return None


def instrumented_step(model, optimizer, x, y) -> dict[str, float]:
    """The step of ``train_step`` written out layer by layer, with ``time.perf_counter`` around
    every layer's forward and backward, the loss's forward and backward, and the optimizer's
    zero_grad and step.  Returns seconds per part (PARTS); the layers that ``layer_part`` leaves
    out, and everything between the calls, are not counted.  ``model`` must be a flat Sequential."""
    if not isinstance(model, Sequential):
        raise TypeError(f"instrumented_step times the layers of a Sequential, got {type(model).__name__}")
    spent = dict.fromkeys(PARTS, 0.0)
    clock = time.perf_counter

    def timed(part, fn, *args):
        start = clock()
        out = fn(*args)
        if part is not None:
            spent[part] += clock() - start
        return out

    h = x
    for layer in model.layers:
        h = timed(layer_part(layer), layer.forward, h)
    loss, cache = timed("loss", F.cross_entropy_forward, h, y)
    (d,) = timed("loss", F.cross_entropy_backward, 1.0, cache)
    timed("optimizer", optimizer.zero_grad)
    for layer in reversed(model.layers):
        d = timed(layer_part(layer), layer.backward, d)
    timed("optimizer", optimizer.step)
    return spent


# --------------------------------------------------------------------------- timing

@dataclass
class StepTimes:
    """What time_steps measured: the clean steps' seconds, the parts of the fastest instrumented
    step, and the loss of each clean step (it falls: the net trains)."""

    times: list
    parts: dict
    losses: list


def time_steps(model, optimizer, x, y, *, steps: int = 5, warmup: int = WARMUP) -> StepTimes:
    """A moment of quiet (measure.settle: no thread pool still spinning), ``warmup`` untimed steps
    (the clocks and caches awake again), then ``steps`` rounds of one clean step (train_step, timed whole with time.perf_counter, no
    clock inside) and one instrumented step (instrumented_step, also timed whole).

    The two kinds alternate, so that both run under the same load of a shared machine.  The parts
    are those of the instrumented step that took the least time in all: like the best clean step,
    the least disturbed one, and a whole step, so its parts belong together."""
    measure.settle()
    for _ in range(warmup):
        train_step(model, optimizer, x, y)
    clock = time.perf_counter
    times, losses, instrumented = [], [], []
    for _ in range(max(1, steps)):
        start = clock()
        losses.append(train_step(model, optimizer, x, y))
        times.append(clock() - start)
        start = clock()
        parts = instrumented_step(model, optimizer, x, y)
        instrumented.append((clock() - start, parts))
    return StepTimes(times, min(instrumented, key=lambda run: run[0])[1], losses)


# --------------------------------------------------------------------------- the share table

@dataclass
class Share:
    """One row of the share table: a part, its seconds per step and its fraction of the step."""

    part: str
    seconds: float
    fraction: float


def share_table(total: float, parts: dict[str, float]) -> list[Share]:
    """The rows PARTS then "the rest" = total - the sum of the parts, each with its fraction of
    ``total`` (the clean step time); the rows' seconds add up to ``total``."""
    rows = [Share(part, parts[part], parts[part] / total) for part in PARTS]
    rest = total - sum(parts[part] for part in PARTS)
    return rows + [Share(REST, rest, rest / total)]


# --------------------------------------------------------------------------- PyTorch, when present

def torch_net(torch, model):
    """The nbconv Sequential rebuilt with torch.nn, layer by layer, with the same shapes and a copy
    of its weights.  Layers other than Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten and Linear
    raise NotImplementedError."""
    nn = torch.nn

    def copy(param, array):
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.ascontiguousarray(array)))

    out = []
    for layer in model.layers:
        p = layer.params()
        if type(layer) is Conv2d:
            t = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                          padding=layer.padding, dilation=layer.dilation, groups=layer.groups, bias=layer.bias)
            copy(t.weight, p["w"].data)
            if layer.bias:
                copy(t.bias, p["b"].data)
        elif type(layer) is BatchNorm2d:
            t = nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum)
        elif type(layer) is ReLU:
            t = nn.ReLU()
        elif type(layer) is MaxPool2d:
            t = nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
        elif type(layer) is Flatten:
            t = nn.Flatten()
        elif type(layer) is Linear:
            t = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
            copy(t.weight, p["w"].data)
            if layer.bias:
                copy(t.bias, p["b"].data)
        else:
            raise NotImplementedError(f"no torch twin for {type(layer).__name__}")
        out.append(t)
    return nn.Sequential(*out).train()


def torch_step_time(torch, model, x, y, steps: int) -> float | None:
    """Best seconds of ``steps`` torch training steps (forward, cross-entropy, backward, Adam) of the
    net rebuilt by torch_net on the same batch, after WARMUP untimed steps as for ours (the last of
    them inside measure.torch_time, which also stops timing after about 3 s of steps); None when
    torch cannot run it."""
    def make_step():
        net = torch_net(torch, model)
        optimizer = torch.optim.Adam(net.parameters(), lr=LR)
        tx, ty = torch.from_numpy(x), torch.from_numpy(np.asarray(y, dtype=np.int64))

        def step():
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(tx), ty)
            loss.backward()
            optimizer.step()
        for _ in range(WARMUP - 1):
            step()
        return step

    measure.settle()
    return measure.torch_time(make_step, steps)


# --------------------------------------------------------------------------- one net, all numbers

@dataclass
class NetResult:
    name: str
    net: str                     # the lenet call
    input_shape: tuple
    parameters: int
    times: list                  # seconds of each timed step
    shares: list                 # Share rows: the parts and the rest, adding up to ``best``
    torch_status: str            # "not installed", "off (--no-torch)", "failed" or "PyTorch <version>"
    torch_seconds: float | None = None
    loss: list = field(default_factory=list)    # the loss of each timed step (it falls: the net trains)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def ratio(self) -> float | None:
        """ours / torch, of the best times; None without a torch time."""
        return None if self.torch_seconds is None else self.best / self.torch_seconds

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(best=self.best, median=self.median, ratio=self.ratio, statistic="best")
        return d


def bench_net(spec: NetSpec, *, steps: int = 5, warmup: int = WARMUP, torch=None,
              torch_note: str = "not installed") -> NetResult:
    """Build the net, time its steps and take the share table (time_steps: ``warmup`` untimed
    steps, then ``steps`` clean steps alternating with as many instrumented ones), then (with
    ``torch``) its torch twin; ``torch_note`` says why there is no torch time when ``torch`` is None."""
    model, optimizer, x, y = build(spec)
    measured = time_steps(model, optimizer, x, y, steps=steps, warmup=warmup)
    result = NetResult(spec.name, spec.describe(), spec.input_shape, sum(p.data.size for p in model.parameters()),
                       measured.times, share_table(min(measured.times), measured.parts), torch_note,
                       loss=measured.losses)
    if torch is not None:
        result.torch_seconds = torch_step_time(torch, model, x, y, steps)
        result.torch_status = f"PyTorch {torch.__version__}" if result.torch_seconds is not None else "failed"
    return result


# --------------------------------------------------------------------------- tables

def format_net(result: NetResult) -> str:
    """The net's heading, its step time and its share table (ms and percent of the step)."""
    lines = [f"{result.name}: {result.net}, input {'x'.join(map(str, result.input_shape))}, "
             f"{result.parameters:,} parameters",
             f"  step: best {result.best * 1e3:.2f} ms, median {result.median * 1e3:.2f} ms "
             f"of {len(result.times)} steps; torch: {_torch_cell(result)}",
             f"  {'part':<14} {'ms':>9} {'share':>7}"]
    for share in result.shares:
        lines.append(f"  {share.part:<14} {share.seconds * 1e3:>9.2f} {share.fraction:>7.1%}")
    lines.append(f"  {'total':<14} {result.best * 1e3:>9.2f} {1:>7.1%}")
    if result.shares[-1].seconds < 0:
        lines.append("  (the rest is negative: the parts, timed in other steps, ran slower than the best step; noise)")
    return "\n".join(lines)


def _torch_cell(result: NetResult) -> str:
    return f"{result.torch_seconds * 1e3:.2f} ms" if result.torch_seconds is not None else result.torch_status


def format_summary(results) -> str:
    """One row per net: input shape, best and median ms per step, torch ms per step and ours / torch."""
    head = f"{'net':<12} {'input':>14} {'best ms':>9} {'median ms':>10} {'torch ms':>14} {'ours/torch':>10}"
    lines = [head]
    for r in results:
        torch_ms = f"{r.torch_seconds * 1e3:.2f}" if r.torch_seconds is not None else r.torch_status
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        lines.append(f"{r.name:<12} {'x'.join(map(str, r.input_shape)):>14} {r.best * 1e3:>9.2f} "
                     f"{r.median * 1e3:>10.2f} {torch_ms:>14} {ratio:>10}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the command

def run(args, nets=None) -> int:
    """``nbconv bench --train``: every net of ``nets`` (default NETS), timed, its share table
    printed as it is measured, then the summary; ``--json`` saves the numbers.  Uses the options
    ``--repeat`` (timed steps), ``--json`` and ``--no-torch`` of ``nbconv bench``."""
    nets = NETS if nets is None else nets
    steps = max(1, args.repeat)
    torch = None if args.no_torch else measure.torch_module()
    torch_note = "off (--no-torch)" if args.no_torch else "not installed"
    threads = getattr(args, "threads", None)
    if torch is not None and threads is not None:     # the peer gets the same thread budget
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return _run(args, nets, steps, torch, torch_note)
        finally:
            torch.set_num_threads(torch_threads)
    return _run(args, nets, steps, torch, torch_note)


def _run(args, nets, steps, torch, torch_note) -> int:
    started = time.perf_counter()

    info = measure.machine_info()
    print(f"nbconv bench --train: ms per training step (forward, cross-entropy, backward, Adam), float32, "
          f"best of {steps} timed steps after {WARMUP} warm-up steps (median beside it), wall clock")
    print(measure.format_machine(info))
    if torch is not None:
        print(measure.torch_header(torch.__version__, torch.get_num_threads()))
    else:
        print(f"PyTorch: {torch_note}")
    print("share tables: the parts of the fastest instrumented step (one after each timed step); "
          "the rest = best step time - parts")
    print()
    results = []
    for spec in nets:
        result = bench_net(spec, steps=steps, torch=torch, torch_note=torch_note)
        results.append(result)
        print(format_net(result), flush=True)
        print()
    print(format_summary(results))
    print(f"({time.perf_counter() - started:.0f} s; a shared machine makes these numbers noisy: compare within a run)")
    if args.json:
        payload = {"machine": info, "mode": "train", "statistic": "best", "warmup": WARMUP, "steps": steps,
                   "torch": f"PyTorch {torch.__version__}" if torch is not None else torch_note,
                   "nets": [r.to_dict() for r in results]}
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1)
        print(f"saved {args.json}")
    return 0
