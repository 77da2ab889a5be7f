"""Speed of aidge_incremental's fast CPU kernels (accelerate) against Aidge's
own CPU kernels and PyTorch CPU, measured in one run, interleaved, best of N.

    python benchmarks/bench_kernels.py [--repeats 5] [--batch 128] [--skip-aidge-resnet]

Prints forward+backward per op at representative sizes, then one full SGD
step (forward, cross-entropy, backward, update) of ResNet-32 on
128x3x32x32 and of the split-MNIST MLP (784-256-256-10, batch 128).
Aidge's own kernels cannot train BatchNorm (and have no GlobalAveragePooling
backward): its ResNet-32 row is the BatchNorm-free variant (models built with
batchnorm=False, pooling as a frozen Conv2D), and its BatchNorm/GAP op rows are
"n/a". Ratios are computed within this run; the machine may be shared, so
only ratios are meaningful. Every timed call follows an untimed call of the
same function (see best_of). On a machine shared with other busy processes run
it with OMP_WAIT_POLICY=passive (see aidge_incremental/accelerate.py).
OPENBLAS_CORETYPE, when set, forces OpenBLAS's kernels (PyTorch ignores it):
`env -u OPENBLAS_CORETYPE python benchmarks/bench_kernels.py` measures with the
kernels OpenBLAS picks for this CPU.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import aidge_incremental as ai  # first: one OpenMP runtime (see backend/_openmp_preload.py)
import aidge_core as ac
import aidge_backend_cpu  # noqa: F401
import aidge_learning as al

from aidge_incremental.backend.cpu import blas_config, openmp_runtimes
from aidge_incremental.loss import cross_entropy
from aidge_incremental.training.loop import fast_sgd
from aidge_incremental.models import IncrementalModel

try:
    import torch
except ImportError:  # PyTorch is optional: its columns are then "n/a"
    torch = None


def best_of(fns, repeats, settle=True):
    """Interleaved best-of-``repeats`` wall time of each callable (None = skipped).

    With ``settle``, each timed call follows one untimed call of the same
    callable: PyTorch brings its own OpenMP runtime (torch/lib/libgomp), whose
    worker threads keep spinning for a while after a PyTorch call and would
    otherwise steal the cores from whatever is timed next (and ours from it).
    """
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            if fn is None:
                continue
            if settle:
                fn()
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return [b if b != float("inf") else None for b in best]


def fmt_ms(t):
    return "n/a" if t is None else f"{1e3 * t:9.2f}"


def ratio(a, b):
    return "n/a" if a is None or b is None else f"{a / b:6.2f}x"


# ------------------------------------------------------------------ ops

def aidge_op_runner(node, x, accelerate, training=None):
    graph = ac.sequential([node])
    graph.compile("cpu", ac.dtype.float32, dims=[list(x.shape)])
    op = node.get_operator()
    rng = np.random.default_rng(0)
    for i in range(1, op.nb_inputs()):
        t = op.get_input(i)
        if t is not None and t.size > 0:
            np.asarray(t)[...] = rng.uniform(0.5, 1.5, t.dims)
    if training is not None:
        op.attr.training_mode = training
    if accelerate:
        assert ai.accelerate(graph) >= 1
    sched = ac.SequentialScheduler(graph)
    xt = ac.Tensor(x)

    def step(backward=True):
        sched.forward(data=[xt])
        if backward:
            np.asarray(op.get_output(0).grad)[...] = 1.0
            sched.backward()
    step()
    return step


def torch_op_runner(module, x):
    xt = torch.from_numpy(x).requires_grad_(True)

    def step():
        y = module(xt)
        y.backward(torch.ones_like(y))
    step()
    return step


def bench_ops(batch, repeats):
    B = batch
    rng = np.random.default_rng(0)
    cases = []
    x = rng.standard_normal((B, 784)).astype(np.float32)
    cases.append(("FC 784->256", lambda: ac.FC(784, 256, name="op"), x,
                  (lambda: torch.nn.Linear(784, 256)) if torch else None, None, True))
    for c, s in [(16, 32), (32, 16), (64, 8)]:
        x = rng.standard_normal((B, c, s, s)).astype(np.float32)
        # ResNet convolutions: 3x3, pad 1, no bias (PaddedConv2D = Pad + Conv2D)
        cases.append((f"Conv3x3 {c}->{c} @{s}x{s} pad1", (lambda c=c: ac.PaddedConv2D(
            c, c, [3, 3], name="op", padding_dims=[1, 1, 1, 1], no_bias=True)), x,
            (lambda c=c: torch.nn.Conv2d(c, c, 3, padding=1, bias=False)) if torch else None, None, True))
    x = rng.standard_normal((B, 16, 32, 32)).astype(np.float32)
    cases.append(("BatchNorm2D 16 @32x32 train", lambda: ac.BatchNorm2D(16, name="op"), x,
                  (lambda: torch.nn.BatchNorm2d(16).train()) if torch else None, True, False))
    x = rng.standard_normal((B, 64, 8, 8)).astype(np.float32)
    cases.append(("GlobalAvgPool 64 @8x8", lambda: ac.GlobalAveragePooling(name="op"), x,
                  (lambda: torch.nn.AdaptiveAvgPool2d(1)) if torch else None, None, False))

    print(f"\n== forward+backward per op, batch {B} (ms, best of {repeats}) ==")
    print(f"{'op':32s} {'ours':>9s} {'aidge':>9s} {'torch':>9s} {'aidge/ours':>11s} {'ours/torch':>11s}")
    for name, make, x, make_torch, training, aidge_backward in cases:
        ours = aidge_op_runner(make(), x, True, training)
        # Aidge cannot run these backward (BatchNorm2D, GAP): no Aidge row
        theirs = aidge_op_runner(make(), x, False, training) if aidge_backward else None
        tstep = torch_op_runner(make_torch(), x) if torch else None
        t_ours, t_aidge, t_torch = best_of([ours, theirs, tstep], repeats)
        print(f"{name:32s} {fmt_ms(t_ours)} {fmt_ms(t_aidge)} {fmt_ms(t_torch)} "
              f"{ratio(t_aidge, t_ours):>11s} {ratio(t_ours, t_torch):>11s}")


# ----------------------------------------------------------- full steps

def aidge_model_step(model, x, y, lr=0.05):
    """One SGD step (momentum 0.9) of an IncrementalModel, as our training loop
    does it when the model runs our kernels (our cross-entropy node and FastSGD),
    and with aidge_learning's CELoss and SGD when it runs Aidge's own kernels."""
    model.set_training(True)
    sched = model.scheduler
    xt, yt = ac.Tensor(x), ac.Tensor(y)
    if model.kernels == "fast":
        opt = fast_sgd(model.parameter_nodes(), 0.9, 0.0)

        def step():
            sched.forward(data=[xt])
            cross_entropy(model.output, yt)
            opt.reset_grad()
            sched.backward()
            opt.update(lr)
        return step
    opt = al.SGD(momentum=0.9)
    opt.set_learning_rate_scheduler(al.constant_lr(lr))
    opt.set_parameters(model.parameter_nodes())

    def step():
        sched.forward(data=[xt])
        al.loss.CELoss(model.output, yt)
        opt.reset_grad()
        sched.backward()
        opt.update()
    return step


def torch_resnet32(n_classes=10):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)
            self.pad = cout - cin
            self.stride = stride

        def forward(self, x):
            y = torch.relu(self.b1(self.c1(x)))
            y = self.b2(self.c2(y))
            s = x
            if self.stride != 1 or self.pad:  # option A: subsample + zero channels
                s = torch.nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 0, self.pad))
            return torch.relu(y + s)

    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for w, stride in [(16, 1), (32, 2), (64, 2)]:
        for i in range(5):
            layers.append(Block(cin, w, stride if i == 0 else 1))
            cin = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, n_classes)]
    return nn.Sequential(*layers)


def torch_mlp():
    nn = torch.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def torch_step(net, x, y):
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y.argmax(1))

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
    return step


def bench_steps(batch, repeats, skip_aidge_resnet):
    rng = np.random.default_rng(0)
    print(f"\n== one SGD step (forward, CE, backward, update), batch {batch} (ms, best of N) ==")
    print(f"{'model':44s} {'time':>9s} {'vs ours':>9s}  (ours in the same variant)")

    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    rows = []
    m_fast = IncrementalModel("resnet32", (3, 32, 32), n_classes=10, kernels="fast")
    m_fast_nobn = IncrementalModel("resnet32", (3, 32, 32), n_classes=10, kernels="fast", batchnorm=False)
    fns = [aidge_model_step(m_fast, x, y), aidge_model_step(m_fast_nobn, x, y)]
    names = ["ResNet-32 ours (BatchNorm)", "ResNet-32 ours (BN-free)"]
    if torch:
        fns.append(torch_step(torch_resnet32(), x, y))
        names.append("ResNet-32 PyTorch (BatchNorm)")
    for fn in fns:
        fn()  # warm-up (allocations, first-touch)
    times = best_of(fns, repeats)
    if not skip_aidge_resnet:
        m_aidge = IncrementalModel("resnet32", (3, 32, 32), n_classes=10, kernels="aidge", batchnorm=False)
        aidge_fn = aidge_model_step(m_aidge, x, y)
        # tens of seconds a step: best of 2, interleaved with ours (BN-free)
        t = best_of([aidge_fn, fns[1]], 2, settle=False)
        names.append("ResNet-32 Aidge kernels (BN-free)")
        times.append(t[0])
    for n, t in zip(names, times):
        # each row against ours in the same variant (BatchNorm or BN-free)
        base = times[1] if "BN-free" in n else times[0]
        print(f"{n:44s} {fmt_ms(t)} {ratio(t, base):>9s}")
    rows.append(("resnet32", dict(zip(names, times))))

    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    m_fast = IncrementalModel("mlp", (1, 28, 28), hidden=(256, 256), n_classes=10, kernels="fast")
    m_aidge = IncrementalModel("mlp", (1, 28, 28), hidden=(256, 256), n_classes=10, kernels="aidge")
    fns = [aidge_model_step(m_fast, x, y), aidge_model_step(m_aidge, x, y)]
    names = ["MLP 784-256-256-10 ours", "MLP 784-256-256-10 Aidge kernels"]
    if torch:
        fns.append(torch_step(torch_mlp(), x, y))
        names.append("MLP 784-256-256-10 PyTorch")
    for fn in fns:
        fn()
    times = best_of(fns, max(repeats, 20))
    for n, t in zip(names, times):
        print(f"{n:44s} {fmt_ms(t)} {ratio(t, times[0]):>9s}")
    rows.append(("mlp", dict(zip(names, times))))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--skip-aidge-resnet", action="store_true",
                   help="skip the (slow: tens of seconds) ResNet-32 step on Aidge's own kernels")
    p.add_argument("--only", choices=["ops", "steps"], default=None)
    args = p.parse_args(argv)
    print(f"aidge_incremental fast kernels; BLAS: {blas_config()}")
    print(f"CPU cores: {os.cpu_count()}, " + ", ".join(
        f"{k}={os.environ.get(k, 'unset')}" for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "OPENBLAS_CORETYPE"))
        + f", torch threads: {torch.get_num_threads() if torch else 'n/a'}")
    runtimes = openmp_runtimes()
    ours = [r for r in runtimes if "/torch/" not in r]
    print("OpenMP runtimes loaded: " + ", ".join(
        os.path.basename(r) + (" (PyTorch's)" if r not in ours else "") for r in runtimes))
    if len(ours) > 1:
        print("  WARNING: Aidge's kernels run on several OpenMP runtimes that spin against each other "
              "(import aidge_incremental before aidge_core)")
    if os.environ.get("OPENBLAS_CORETYPE"):
        print(f"  NOTE: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} forces OpenBLAS's kernels for that CPU "
              "type (PyTorch's oneDNN ignores it); unset it to let OpenBLAS pick this CPU's own")
    if args.only in (None, "ops"):
        bench_ops(args.batch, args.repeats)
    if args.only in (None, "steps"):
        bench_steps(args.batch, args.repeats, args.skip_aidge_resnet)


if __name__ == "__main__":
    main()
