"""A whole class-incremental run, ours against the same run written in plain
PyTorch: wall time, peak memory and the time of each phase, in one run.

    python benchmarks/bench_protocol.py --data-dir /work/shared/data/fashion-mnist [--quick]

The protocol: iCaRL (Rebuffi et al. 2017) with a ResNet-20 on Fashion-MNIST,
5 steps of 2 classes, random crop (4 px of zero padding) + horizontal flip,
200 exemplars chosen by herding, nearest-mean-of-exemplars and head
classifiers evaluated after every step, a checkpoint written after every step;
``--per-class`` training images and ``--test-per-class`` test images of each
class (a fixed subset, so that the run is short), ``--epochs`` per step.

Ours runs through ``run_experiment`` (what ``aidge-incremental run`` does,
results and plot included) with the opt-in phase profiler
(``aidge_incremental.profiling``). PyTorch's side is the same algorithm in
plain PyTorch + NumPy: the same ResNet-20 (benchmarks/common.py, layer for
layer) starting from our model's very weights, the same samples, class order,
batches and augmentation draws (one NumPy generator per run, drawn in our
loop's order), SGD with momentum (torch.optim.SGD), cross-entropy + iCaRL's
sigmoid distillation, herding and NME in vectorised NumPy float64, a
``torch.save`` checkpoint per step. Each side runs in a process of its own
(peak RSS is then its own: the PyTorch process never loads Aidge), and the
sides alternate (ours, PyTorch, ours, ...).

Every configuration: ``--threads`` (OMP_NUM_THREADS for ours, torch threads
and NumPy's BLAS threads for PyTorch's) x ``--load`` (busy background
processes for the duration). Before the timed runs of a thread count, one
untimed run of ours fills the convolution autotune cache (its first-use
measurements; see aidge_incremental/backend/cpu.py).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Fashion-MNIST's training-set statistics of the pixels scaled to [0, 1]
# (computed on the 60,000 training images; the values quoted with the dataset's
# usual PyTorch recipes)
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530
PHASES = ("train", "augment", "teacher", "features", "herding", "nme", "evaluation", "checkpoint", "results")


def _module_from_file(name: str, path: pathlib.Path):
    """One of our NumPy-only modules without importing the package (which loads Aidge)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ the plan


def make_plan(args, path: pathlib.Path) -> dict:
    """The data subset, class order and initial weights both sides use, in one .npz."""
    import aidge_incremental  # noqa: F401
    from aidge_incremental.datasets import DATASETS, load_mnist
    from aidge_incremental.models import IncrementalModel
    if "fashion-mnist" in DATASETS:
        data = DATASETS["fashion-mnist"].load(args.data_dir, args.seed)
    else:  # until the dataset is registered: its IDX files read as MNIST's
        data = load_mnist(args.data_dir)
    rng = np.random.default_rng(args.seed)

    def subset(y, per_class):
        keep = [np.sort(rng.permutation(np.flatnonzero(y == c))[:per_class]) for c in np.unique(y)]
        return np.sort(np.concatenate(keep))
    tr, te = subset(data.y_train, args.per_class), subset(data.y_test, args.test_per_class)
    classes = np.unique(data.y_train)
    order = np.random.default_rng(args.seed).permutation(classes)
    n_steps = 1 + (len(classes) - args.initial) // args.increment
    model = IncrementalModel("resnet20", data.input_shape, seed=args.seed)
    heads = {}
    for t in range(n_steps):
        n_new = args.initial if t == 0 else args.increment
        model.grow(n_new)
        state = model.state_dict()
        heads[f"head_w_{t}"] = state["head_w"][-n_new:]
    init = {f"init:{k}": v for k, v in model.state_dict().items() if not k.startswith("head_")}
    np.savez(path, x_train=data.x_train[tr], y_train=data.y_train[tr], x_test=data.x_test[te],
             y_test=data.y_test[te], class_order=order, **heads, **init)
    return {"train": len(tr), "test": len(te), "steps": n_steps, "order": order.tolist(),
            "shape": list(data.input_shape)}


def settings(args) -> dict:
    return dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=0.9,
                weight_decay=args.weight_decay, memory=args.memory, initial=args.initial,
                increment=args.increment, seed=args.seed, crop_padding=4)


# ------------------------------------------------------------------ our side


def run_ours(plan_path: str, s: dict) -> dict:
    import aidge_incremental  # noqa: F401  (first: one OpenMP runtime)
    from aidge_incremental.datasets import Augmentation, Normalization, from_arrays
    from aidge_incremental.experiment import ExperimentConfig, run_experiment
    from aidge_incremental.profiling import profile
    plan = np.load(plan_path)
    dataset = from_arrays(plan["x_train"], plan["y_train"], plan["x_test"], plan["y_test"],
                          name="fashion-mnist").replace(normalization=Normalization((FASHION_MEAN,), (FASHION_STD,)),
                                                        augmentation=Augmentation(s["crop_padding"], True))
    with tempfile.TemporaryDirectory() as out:
        config = ExperimentConfig(method="icarl", model="resnet20", dataset="mnist", epochs=s["epochs"],
                                  batch_size=s["batch_size"], lr=s["lr"], momentum=s["momentum"],
                                  weight_decay=s["weight_decay"], memory=s["memory"], initial=s["initial"],
                                  increment=s["increment"], class_order=plan["class_order"].tolist(),
                                  seed=s["seed"], augment=True, output_dir=os.path.join(out, "run"))
        with profile() as p:
            start, cpu = time.perf_counter(), time.process_time()
            result = run_experiment(config, dataset)
            wall = time.perf_counter() - start
    metrics = result.metrics()
    return {"wall": wall, "cpu": time.process_time() - cpu, "phases": dict(p.seconds),
            "rss_mb": common.peak_rss_mb(),
            "nme": metrics["nme"]["last_accuracy"], "head": metrics["head"]["last_accuracy"]}


# -------------------------------------------------------------- PyTorch's side


def run_torch(plan_path: str, s: dict, threads: int) -> dict:
    import torch
    torch.set_num_threads(threads)
    F = torch.nn.functional
    transforms = _module_from_file("_bench_transforms", ROOT / "aidge_incremental" / "datasets" / "transforms.py")
    profiling = _module_from_file("_bench_profiling", ROOT / "aidge_incremental" / "profiling.py")
    phase = profiling.phase
    plan = np.load(plan_path)
    order = plan["class_order"]
    relabel = np.full(int(order.max()) + 1, -1, np.int64)
    relabel[order] = np.arange(len(order))
    x_train, y_train = plan["x_train"], relabel[plan["y_train"]]
    x_test, y_test = plan["x_test"], relabel[plan["y_test"]]
    augmentation = transforms.Augmentation(s["crop_padding"], True)

    def to_input(raw):
        return (np.ascontiguousarray(raw, np.float32) / np.float32(255.0) - np.float32(FASHION_MEAN)) \
            / np.float32(FASHION_STD)

    def run_batches(net, x, fn, batch=256):
        out = []
        with torch.no_grad():
            for i in range(0, len(x), batch):
                out.append(fn(net, torch.from_numpy(to_input(x[i:i + batch]))).numpy())
        return np.concatenate(out)

    with profiling.profile() as p, tempfile.TemporaryDirectory() as out:
        start, cpu = time.perf_counter(), time.process_time()
        net = common.torch_cifar_resnet(20, x_train.shape[1], 0)
        common.load_our_weights(net, {k[5:]: plan[k] for k in plan.files if k.startswith("init:")}
                                | {"head_w": np.zeros((0, 64), np.float32), "head_b": np.zeros(0, np.float32)})
        rng = np.random.default_rng(s["seed"])
        memory = []  # (label, exemplars) in insertion order
        n_steps = 1 + (len(order) - s["initial"]) // s["increment"]
        teacher, n_known = None, 0
        for t in range(n_steps):
            lo = 0 if t == 0 else s["initial"] + (t - 1) * s["increment"]
            hi = s["initial"] + t * s["increment"]
            train = (y_train >= lo) & (y_train < hi)
            step_x, step_y = x_train[train], y_train[train]
            if n_known:
                teacher = common.torch_cifar_resnet(20, x_train.shape[1], n_known)
                teacher.load_state_dict(net.state_dict())
                teacher.eval()
            old_w, old_b = net.head.weight.data, net.head.bias.data
            net.head = torch.nn.Linear(64, hi)
            with torch.no_grad():
                net.head.weight.copy_(torch.cat([old_w, torch.from_numpy(plan[f"head_w_{t}"])]))
                net.head.bias.copy_(torch.cat([old_b, torch.zeros(hi - n_known)]))
            x = np.concatenate([step_x] + [m for _, m in memory]) if memory else step_x
            y = np.concatenate([step_y] + [np.full(len(m), c) for c, m in memory]) if memory else step_y
            opt = torch.optim.SGD(net.parameters(), lr=s["lr"], momentum=s["momentum"],
                                  weight_decay=s["weight_decay"])
            net.train()
            with phase("train"):
                for _ in range(s["epochs"]):
                    perm = rng.permutation(len(x))
                    for i in range(0, len(x), s["batch_size"]):
                        rows = perm[i:i + s["batch_size"]]
                        with phase("augment"):
                            raw = augmentation(x[rows], rng)
                        inputs = torch.from_numpy(to_input(raw))
                        labels = torch.from_numpy(y[rows].astype(np.int64))
                        logits = net(inputs)
                        loss = F.cross_entropy(logits, labels)
                        if teacher is not None:
                            with phase("teacher"), torch.no_grad():
                                target = torch.sigmoid(teacher(inputs)[:, :n_known])
                            loss = loss + F.binary_cross_entropy_with_logits(
                                logits[:, :n_known], target, reduction="sum") / len(rows)
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
            net.eval()
            # memory: shrink the old classes' sets, herding for the new ones
            n_after = len(memory) + (hi - lo)
            quotas = [s["memory"] // n_after + (1 if i < s["memory"] % n_after else 0) for i in range(n_after)]
            memory = [(c, m[:q]) for (c, m), q in zip(memory, quotas)]
            with phase("features"):
                feats = run_batches(net, step_x, lambda n, v: n.features(v))
            for c, q in zip(range(lo, hi), quotas[len(memory):]):
                idx = np.flatnonzero(step_y == c)
                with phase("herding"):
                    chosen = common.numpy_herding(feats[idx], min(q, len(idx)))
                memory.append((c, step_x[idx[chosen]]))
            samples = np.concatenate([m for _, m in memory])
            labels = np.concatenate([np.full(len(m), c) for c, m in memory])
            with phase("features"):
                mem_feats = run_batches(net, samples, lambda n, v: n.features(v))
            with phase("nme"):
                means = common.numpy_class_means(mem_feats, labels, hi)
            with phase("evaluation"):
                test = y_test < hi
                logits = run_batches(net, x_test[test], lambda n, v: n(v))
                head_acc = float(np.mean(logits.argmax(1) == y_test[test]))
                with phase("features"):  # as ours: NME's test features count as features
                    feats_test = run_batches(net, x_test[test], lambda n, v: n.features(v))
            with phase("nme"):
                nme_acc = float(np.mean(common.numpy_nme(feats_test, means) == y_test[test]))
            with phase("checkpoint"):
                torch.save({"model": net.state_dict(), "memory": memory, "means": means,
                            "rng": rng.bit_generator.state, "step": t}, os.path.join(out, f"step-{t:03d}.pt"))
            n_known = hi
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "phases": dict(p.seconds), "rss_mb": common.peak_rss_mb(), "nme": nme_acc,
            "head": head_acc}


# -------------------------------------------------------------------- parent


def child_env(threads: int) -> dict:
    return {"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = next((d for d in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if d.is_dir()),
                       ROOT.parent / "shared") / "data" / "fashion-mnist"
    p.add_argument("--data-dir", default=str(default_dir), help=f"Fashion-MNIST IDX files (default {default_dir})")
    p.add_argument("--per-class", type=int, default=500, help="training images per class")
    p.add_argument("--test-per-class", type=int, default=200)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--weight-decay", type=float, default=1e-5, help="iCaRL's")
    p.add_argument("--memory", type=int, default=200)
    p.add_argument("--initial", type=int, default=2)
    p.add_argument("--increment", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--load", type=int, nargs="+", default=[0, 2], help="busy background processes")
    p.add_argument("--repeats", type=int, default=2, help="timed runs of each side per configuration")
    p.add_argument("--quick", action="store_true", help="300 images a class, 2 epochs, 1 timed run")
    p.add_argument("--side", choices=["ours", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--plan", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.per_class, args.epochs, args.repeats = 300, 2, 1
    if args.side:
        s = settings(args)
        result = run_ours(args.plan, s) if args.side == "ours" else \
            run_torch(args.plan, s, int(os.environ.get("OMP_NUM_THREADS", "1")))
        common.emit(result)
        return

    common.print_environment("bench_protocol: whole iCaRL run, ours vs plain PyTorch")
    with tempfile.TemporaryDirectory() as tmp:
        plan_path = os.path.join(tmp, "plan.npz")
        info = make_plan(args, pathlib.Path(plan_path))
        print(f"protocol: ResNet-20, Fashion-MNIST {info['train']} training / {info['test']} test images "
              f"({args.per_class} / {args.test_per_class} a class), {info['steps']} steps of "
              f"{args.increment} classes, class order {info['order']}, {args.epochs} epochs a step, batch "
              f"{args.batch_size}, SGD lr {args.lr} momentum 0.9 weight decay {args.weight_decay}, crop 4 px + "
              f"flip, memory {args.memory} (herding), NME + head evaluated, checkpoint every step")
        me = [os.path.abspath(__file__), "--plan", plan_path] + [
            a for a in (argv if argv is not None else sys.argv[1:]) if a not in ("--quick",)]
        forwarded = ["--per-class", str(args.per_class), "--epochs", str(args.epochs)]
        rows = []
        for threads in args.threads:
            env = child_env(threads)
            common.run_child(me + forwarded + ["--side", "ours"], env)  # fills the autotune cache
            for load in args.load:
                ours, theirs = [], []
                with common.BackgroundLoad(load):
                    for _ in range(args.repeats):
                        ours.append(common.run_child(me + forwarded + ["--side", "ours"], env))
                        theirs.append(common.run_child(me + forwarded + ["--side", "torch"], env))
                rows.append((threads, load, ours, theirs))
                o, t = min(ours, key=lambda r: r["wall"]), min(theirs, key=lambda r: r["wall"])
                print(f"  threads {threads}, load {load}: ours {o['wall']:.1f} s, PyTorch {t['wall']:.1f} s "
                      f"({o['wall'] / t['wall']:.2f}x)", flush=True)

    print(f"\n== whole run (best of {args.repeats}; wall s, process CPU s, peak RSS MB; last-step accuracy "
          "NME / head) ==")
    print(f"{'threads':>7} {'load':>4} | {'ours s':>7} {'torch s':>7} {'ratio':>6} | {'ours cpu':>8} "
          f"{'torch cpu':>9} {'ratio':>6} | {'ours MB':>7} {'torch MB':>8} {'ratio':>6} | {'ours acc':>13} "
          f"{'torch acc':>13}")
    by_config = {}
    for threads, load, ours, theirs in rows:
        o, t = min(ours, key=lambda r: r["wall"]), min(theirs, key=lambda r: r["wall"])
        by_config[(threads, load)] = (o, t)
        print(f"{threads:>7} {load:>4} | {o['wall']:7.1f} {t['wall']:7.1f} {o['wall'] / t['wall']:5.2f}x | "
              f"{o['cpu']:8.1f} {t['cpu']:9.1f} {o['cpu'] / t['cpu']:5.2f}x | "
              f"{o['rss_mb']:7.0f} {t['rss_mb']:8.0f} {o['rss_mb'] / t['rss_mb']:5.2f}x | "
              f"{100 * o['nme']:5.1f}/{100 * o['head']:5.1f}% {100 * t['nme']:6.1f}/{100 * t['head']:5.1f}%")
    threads = sorted(args.threads)
    if len(threads) > 1:
        print("\nthread scaling (wall at the fewest threads / at the most, same load):")
        for load in args.load:
            lo, hi = by_config[(threads[0], load)], by_config[(threads[-1], load)]
            print(f"  load {load}: ours {lo[0]['wall'] / hi[0]['wall']:.2f}x, PyTorch "
                  f"{lo[1]['wall'] / hi[1]['wall']:.2f}x ({threads[0]} -> {threads[-1]} threads)")
    print("\n== time per phase (s, best run; 'other' = wall - phases: model building, loop bookkeeping) ==")
    for (threads, load), (o, t) in by_config.items():
        print(f"threads {threads}, load {load}:")
        names = [n for n in PHASES if n in o["phases"] or n in t["phases"]]
        for side, r in (("ours", o), ("PyTorch", t)):
            other = r["wall"] - sum(r["phases"].values())
            print(f"  {side:<8} " + "  ".join(f"{n} {r['phases'].get(n, 0.0):.2f}" for n in names)
                  + f"  other {other:.2f}")
    print("\n" + json.dumps({f"{k[0]}t-load{k[1]}": {"ours": v[0], "torch": v[1]} for k, v in by_config.items()}))


if __name__ == "__main__":
    main()
