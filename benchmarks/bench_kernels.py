"""Speed of aidge_incremental's fast CPU kernels against PyTorch CPU (and Aidge's
own kernels, and NumPy for herding and NME), measured in one run, interleaved.

    python benchmarks/bench_kernels.py [--quick] [--aidge-resnet]

1. Per operation, in this process (forward + backward, batch 128): FC, each
   3x3 convolution of a ResNet by each of our algorithms (shifted products,
   Winograd F(2x2,3x3), F(4x4,3x3)) and by PyTorch, BatchNorm, pooling.
2. The summary: for each BLAS kernel set (OpenBLAS's own choice for this CPU,
   and OPENBLAS_CORETYPE=Haswell, which some machines set), thread count (1, 2)
   and background load (0 or 2 busy processes), a fresh process measures
   ours / PyTorch for one SGD step of ResNet-32 (3x32x32, batch 128, BatchNorm)
   and of the 784-256-256-10 MLP, and ours / NumPy for herding (5000 x 512,
   200 picks) and NME (10,000 queries, 100 classes, d = 512); then the thread
   scaling from 1 to 2 threads. Threads and OPENBLAS_CORETYPE are read when a
   library loads, hence a process per setting; ours and PyTorch share it (and
   the OpenMP waiting policy printed at the top).

Every timed call follows an untimed call of the same function (common.interleaved);
figures are the best of --repeats. The convolution algorithms are chosen by
measurement at first use (autotune; the table is printed): each child warms
its model up first.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def _torch():
    try:
        import torch
        return torch
    except ImportError:  # PyTorch is optional: its columns are then "n/a"
        return None


# ------------------------------------------------------------------ ops


def aidge_op_runner(node, x, accelerate, training=None):
    import aidge_core as ac
    import aidge_incremental as ai
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

    def step():
        sched.forward(data=[xt])
        np.asarray(op.get_output(0).grad)[...] = 1.0
        sched.backward()
    step()
    return step


def torch_op_runner(module, x):
    torch = _torch()
    xt = torch.from_numpy(x).requires_grad_(True)

    def step():
        y = module(xt)
        y.backward(torch.ones_like(y))
    step()
    return step


def conv_runner(x, w, algorithm):
    from aidge_incremental import _core
    dy = np.ones((x.shape[0], w.shape[0], x.shape[2], x.shape[3]), np.float32)

    def step():
        _core.conv2d_forward(x, w, padding=(1, 1, 1, 1), algorithm=algorithm)
        _core.conv2d_backward(x, w, dy, padding=(1, 1, 1, 1), algorithm=algorithm)
    return step


def bench_ops(batch, repeats, aidge_ops):
    import aidge_core as ac
    torch = _torch()
    B, rng = batch, np.random.default_rng(0)
    print(f"\n== forward + backward per operation, batch {B} (ms, best of {repeats}; this process) ==")
    print(f"{'operation':36s} {'ours':>9s} {'aidge':>9s} {'torch':>9s} {'ours/torch':>11s}")
    cases = []
    x = rng.standard_normal((B, 784)).astype(np.float32)
    cases.append(("FC 784->256", lambda: ac.FC(784, 256, name="op"), x,
                  (lambda: torch.nn.Linear(784, 256)) if torch else None, None, True))
    x = rng.standard_normal((B, 16, 32, 32)).astype(np.float32)
    cases.append(("BatchNorm2D 16 @32x32 train", lambda: ac.BatchNorm2D(16, name="op"), x,
                  (lambda: torch.nn.BatchNorm2d(16).train()) if torch else None, True, False))
    x = rng.standard_normal((B, 64, 8, 8)).astype(np.float32)
    cases.append(("GlobalAvgPool 64 @8x8", lambda: ac.GlobalAveragePooling(name="op"), x,
                  (lambda: torch.nn.AdaptiveAvgPool2d(1)) if torch else None, None, False))
    for name, make, x, make_torch, training, aidge_backward in cases:
        ours = aidge_op_runner(make(), x, True, training)
        theirs = aidge_op_runner(make(), x, False, training) if aidge_ops and aidge_backward else None
        tstep = torch_op_runner(make_torch(), x) if torch else None
        t = [common.best(s) for s in common.interleaved([ours, theirs, tstep], repeats)]
        print(f"{name:36s} {common.fmt_ms(t[0])} {common.fmt_ms(t[1])} {common.fmt_ms(t[2])} "
              f"{common.ratio(t[0], t[2]):>11s}")
    print("3x3 convolutions, pad 1 (ResNet stages), by algorithm:")
    for c, s in [(16, 32), (32, 16), (64, 8)]:
        x = rng.standard_normal((B, c, s, s)).astype(np.float32)
        w = (rng.standard_normal((c, c, 3, 3)) * 0.1).astype(np.float32)
        algorithms = ("shifted", "winograd2", "winograd4")
        fns = [conv_runner(x, w, a) for a in algorithms]
        fns.append(torch_op_runner(torch.nn.Conv2d(c, c, 3, padding=1, bias=False), x) if torch else None)
        t = [common.best(s) for s in common.interleaved(fns, repeats)]
        ours = min(v for v in t[:3])
        print(f"  {c}->{c} @{s}x{s}: " + ", ".join(f"{a} {common.fmt_ms(v, 0)}" for a, v in zip(algorithms, t))
              + f"; torch {common.fmt_ms(t[3], 0)} ms; best of ours / torch {common.ratio(ours, t[3])}")


# ----------------------------------------------------------- full steps


def aidge_model_step(model, x, y, lr=0.05):
    """One SGD step (momentum 0.9) of an IncrementalModel, as our training loop
    does it when the model runs our kernels (our cross-entropy node and FastSGD),
    and with aidge_learning's CELoss and SGD when it runs Aidge's own kernels."""
    import aidge_core as ac
    from aidge_incremental.loss import cross_entropy
    from aidge_incremental.training.loop import fast_sgd
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
    import aidge_learning as al
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


def torch_mlp():
    nn = _torch().nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def torch_step(net, x, y):
    torch = _torch()
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.argmax(1))

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return step


def resnet32_steps(batch):
    """(ours, PyTorch's) one-step callables on the same batch."""
    from aidge_incremental.models import IncrementalModel
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    ours = aidge_model_step(IncrementalModel("resnet32", (3, 32, 32), n_classes=10), x, y)
    torch = _torch()
    theirs = torch_step(common.torch_cifar_resnet(32, 3, 10), x, y) if torch else None
    return ours, theirs


def mlp_steps(batch):
    from aidge_incremental.models import IncrementalModel
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    ours = aidge_model_step(IncrementalModel("mlp", (1, 28, 28), hidden=(256, 256), n_classes=10), x, y)
    return ours, (torch_step(torch_mlp(), x, y) if _torch() else None)


def memory_calls():
    """(ours, NumPy's) callables for herding and for NME, checked to agree."""
    from aidge_incremental.memory import class_means, herding_selection, nme_classify
    rng = np.random.default_rng(0)
    f = rng.normal(size=(5000, 512)).astype(np.float32)
    f64 = f.astype(np.float64)
    assert np.array_equal(herding_selection(f, 200), common.numpy_herding(f64, 200))
    means = class_means(f, np.arange(5000) % 100, 100)
    q = rng.normal(size=(10000, 512)).astype(np.float32)
    q64, m64 = q.astype(np.float64), means.astype(np.float64)
    assert np.array_equal(nme_classify(q, means), common.numpy_nme(q64, m64))
    return ((lambda: herding_selection(f, 200), lambda: common.numpy_herding(f64, 200)),
            (lambda: nme_classify(q, means), lambda: common.numpy_nme(q64, m64)))


def child(args) -> dict:
    """One setting's figures (run in a fresh process)."""
    import aidge_incremental  # noqa: F401  (first: one OpenMP runtime)
    from aidge_incremental.backend import cpu
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    out = {"blas": cpu.blas_core_name()}
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    for name, make in (("resnet32", resnet32_steps), ("mlp", mlp_steps)):
        ours, theirs = make(args.batch)
        for fn in (ours, theirs):  # allocations, first touch, the autotune's measurements
            if fn is not None:
                fn()
                fn()
        repeats = args.repeats if name == "resnet32" else 4 * args.repeats
        t = common.interleaved([ours, theirs], repeats, clock=clock)
        out[name] = [common.best(t[0]), common.best(t[1])]
    herding, nme = memory_calls()
    for name, (ours, theirs) in (("herding", herding), ("nme", nme)):
        t = common.interleaved([ours, theirs], args.repeats, clock=clock)
        out[name] = [common.best(t[0]), common.best(t[1])]
    out["autotune"] = cpu.conv_autotune_table()
    return out


def aidge_resnet_row(batch):
    """ResNet-32 without BatchNorm on Aidge's own kernels (the only variant they can
    train) against ours: tens of seconds a step."""
    from aidge_incremental.models import IncrementalModel
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    fns = [aidge_model_step(IncrementalModel("resnet32", (3, 32, 32), n_classes=10, kernels=k, batchnorm=False),
                            x, y) for k in ("aidge", "fast")]
    t = [common.best(s) for s in common.interleaved(fns, 2, settle=False)]
    print(f"\nResNet-32 without BatchNorm, one step: Aidge's kernels {common.fmt_ms(t[0])} ms, ours "
          f"{common.fmt_ms(t[1])} ms ({common.ratio(t[0], t[1])} ours)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--load", type=int, nargs="+", default=[0, 2], help="busy background processes")
    p.add_argument("--coretypes", nargs="+", default=["own", "Haswell"],
                   help="'own' (OPENBLAS_CORETYPE unset) and/or OpenBLAS core types")
    p.add_argument("--quick", action="store_true", help="3 repeats, no per-operation table")
    p.add_argument("--aidge-resnet", action="store_true",
                   help="also time a ResNet-32 step on Aidge's own kernels (tens of seconds a step)")
    p.add_argument("--aidge-ops", action="store_true", help="also time Aidge's own kernel for each operation")
    p.add_argument("--only", choices=["ops", "summary"], default=None)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: the process's CPU time (meaningful at 1 thread on a loaded machine, where wall "
                        "time measures the other processes)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 3)
    if args.child:
        common.emit(child(args))
        return
    import aidge_incremental  # noqa: F401  (first: one OpenMP runtime)
    common.print_environment("bench_kernels: our CPU kernels against PyTorch and NumPy")
    start = time.perf_counter()
    if args.only in (None, "ops") and not args.quick:
        bench_ops(args.batch, args.repeats, args.aidge_ops)
    if args.aidge_resnet:
        aidge_resnet_row(args.batch)
    if args.only == "ops":
        return
    me = [os.path.abspath(__file__), "--child", "--repeats", str(args.repeats), "--batch", str(args.batch),
          "--clock", args.clock]
    results = {}
    print(f"\n== one setting per process (best of {args.repeats}, {args.clock} time) ==", flush=True)
    for core in args.coretypes:
        for threads in args.threads:
            env = {"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
                   "OPENBLAS_CORETYPE": None if core == "own" else core}
            for load in args.load:
                with common.BackgroundLoad(load):
                    r = common.run_child(me, env)
                results[(core, threads, load)] = r
                print(f"  BLAS {r['blas']:9s} threads {threads} load {load}: ResNet-32 step ours "
                      f"{common.fmt_ms(r['resnet32'][0], 0)} ms / PyTorch {common.fmt_ms(r['resnet32'][1], 0)} ms",
                      flush=True)
    print(f"\n== ours / reference (< 1: ours faster), {args.batch}-sample steps ==")
    print(f"{'BLAS kernels':14s} {'thr':>3s} {'load':>4s} | {'ResNet-32 step':>15s} {'MLP step':>9s} | "
          f"{'herding':>8s} {'NME':>6s}   (ours / PyTorch | ours / NumPy)")
    for (core, threads, load), r in results.items():
        label = f"{r['blas']}" + (" (own)" if core == "own" else "")
        print(f"{label:14s} {threads:3d} {load:4d} | {common.ratio(*r['resnet32']):>15s} "
              f"{common.ratio(*r['mlp']):>9s} | {common.ratio(*r['herding']):>8s} {common.ratio(*r['nme']):>6s}")
    print("\nabsolute (ms): ResNet-32 ours/PyTorch, MLP ours/PyTorch, herding ours/NumPy, NME ours/NumPy")
    for (core, threads, load), r in results.items():
        print(f"  {r['blas']:9s} {threads}t load {load}: " + ", ".join(
            f"{common.fmt_ms(r[k][0], 0)}/{common.fmt_ms(r[k][1], 0)}" for k in ("resnet32", "mlp", "herding", "nme")))
    threads = sorted(args.threads)
    if len(threads) > 1:
        print(f"\nthread scaling, time at {threads[0]} thread(s) / at {threads[-1]} (same BLAS, load):")
        for core in args.coretypes:
            for load in args.load:
                lo, hi = results[(core, threads[0], load)], results[(core, threads[-1], load)]
                print(f"  {lo['blas']:9s} load {load}: " + ", ".join(
                    f"{k} ours {lo[k][0] / hi[k][0]:.2f}x ref {lo[k][1] / hi[k][1]:.2f}x"
                    for k in ("resnet32", "mlp", "herding", "nme") if None not in lo[k] + hi[k]))
    print("\nconvolution algorithms chosen for the ResNet-32 step (autotune table, per setting):")
    resnet32 = re.compile(r"(forward|backward)/N128/C(3|16|32|64)/H(32xW32|16xW16|8xW8)/O(16|32|64)/K3x3/S1x1/")
    for (core, threads, load), r in results.items():
        if load != args.load[0]:
            continue
        chosen = {k: v for k, v in r["autotune"].items() if resnet32.match(k) and f"/t{threads}/{r['blas']}" in k}
        print(f"  {r['blas']:9s} {threads}t: " + ", ".join(
            f"{k.split('/')[0][:3]} C{k.split('/')[2][1:]}@{k.split('/')[3].split('x')[0][1:]} {v}"
            for k, v in sorted(chosen.items())))
    print(f"\n(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
