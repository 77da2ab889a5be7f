"""Blending replay on split MNIST or Fashion-MNIST (5 steps of 2 classes, MLP):
iCaRL vs iCaRL + mixup vs attentive knowledge replay and its controls, average
incremental and last accuracy (NME and head), mean ± sd over seeds, the paired
difference to mixup, and the quantiles of the blend weights attentive replay used.

    OMP_NUM_THREADS=1 python benchmarks/bench_blending.py --dataset fashion-mnist \\
        --data-dir ../shared/data/fashion-mnist --train-per-class 1000 --epochs 30 --seeds 0 1 2 3 4

Variants: ``name=method[:option=value,...]``, e.g. ``attentive-untrained=attentive:scorer_objective=frozen``;
the default set holds the controls that say whether the attention matters
(``blend_source=permuted``: the scorer's weights shuffled across the pairs).
With MNIST's t10k split only, it is split 80/20 (stratified, seed 0; the
output says so). Without the data files the benchmark says so and exits 0.
"""
import argparse
import pathlib
import sys
import time

import numpy as np

from aidge_incremental.datasets import load_dataset
from aidge_incremental.experiment import ExperimentConfig, run_experiment

DEFAULT_VARIANTS = ["icarl=icarl", "mixup=mixup", "attentive=attentive",
                    "attentive-untrained=attentive:scorer_objective=frozen",
                    "attentive-permuted=attentive:blend_source=permuted",
                    "attentive-drift=attentive:blend_source=drift"]


def parse_variant(text):
    name, _, spec = text.partition("=")
    method, _, opts = spec.partition(":")
    options = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                pass
        options[key] = value
    return name, method or name, options


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--train-per-class", type=int, default=None)
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128])
    parser.add_argument("--memory", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()

    folder = pathlib.Path(args.data_dir)
    if not folder.is_dir() or not list(folder.glob("t10k-images-idx3-ubyte*")):
        print(f"skipped: no {args.dataset} IDX files in {args.data_dir} (--data-dir)")
        return 0
    dataset = load_dataset(args.dataset, args.data_dir)
    print(f"{args.dataset}: {len(dataset.x_train)} train / {len(dataset.x_test)} test images"
          + (f" ({dataset.note})" if dataset.note else "")
          + (f"; {args.train_per_class} training images per class (drawn with the seed)" if args.train_per_class
             else ""))
    print(f"5 steps of 2 classes, MLP {'-'.join(map(str, args.hidden))}, {args.epochs} epochs/step, "
          f"SGD lr {args.lr} momentum 0.9, batch 64, memory {args.memory}, seeds {args.seeds}")
    header = (f"{'variant':<20} {'clf':<5} {'avg incremental':>16} {'last':>16} {'vs mixup (paired)':>22} "
              f"{'s/run':>6}  blend weights q05/q25/q50/q75/q95")
    print(header)
    print("-" * len(header))
    runs = {}
    for text in args.variants:
        name, method, options = parse_variant(text)
        rows, seconds, quantiles = {}, [], []
        for seed in args.seeds:
            config = ExperimentConfig(method=method, hidden=tuple(args.hidden), epochs=args.epochs,
                                      memory=args.memory, lr=args.lr, seed=seed, dataset=args.dataset,
                                      train_per_class=args.train_per_class, **options)
            start = time.perf_counter()
            result = run_experiment(config, dataset)
            seconds.append(time.perf_counter() - start)
            for clf, m in result.metrics().items():
                rows.setdefault(clf, []).append(m)
            blending = result.trained_method.parts[-1]
            quantiles.extend(getattr(blending, "blend_weight_quantiles", []))
        runs[name] = rows
        for clf, ms in rows.items():
            avg = 100 * np.array([m["average_incremental_accuracy"] for m in ms])
            last = 100 * np.array([m["last_accuracy"] for m in ms])
            paired = ""
            if "mixup" in runs and name != "mixup" and clf in runs["mixup"]:
                ref = 100 * np.array([m["average_incremental_accuracy"] for m in runs["mixup"][clf]])
                if len(ref) == len(avg):
                    paired = f"{(avg - ref).mean():+6.2f} ± {(avg - ref).std(ddof=1) if len(avg) > 1 else 0:4.2f}"
            q = "/".join(f"{v:.2f}" for v in np.mean(quantiles, axis=0)) if quantiles and clf == "nme" else ""
            sd = (lambda v: v.std(ddof=1) if len(v) > 1 else 0.0)
            print(f"{name:<20} {clf:<5} {avg.mean():7.2f} ± {sd(avg):5.2f} {last.mean():7.2f} ± {sd(last):5.2f} "
                  f"{paired:>22} {np.mean(seconds):6.0f}  {q}", flush=True)
    print("paired: mean ± sd over seeds of (variant − mixup) in average incremental accuracy; blend weights: "
          "mean over seeds and steps of each step's quantiles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
