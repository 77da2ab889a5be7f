"""Split MNIST (5 steps of 2 classes, small memory): iCaRL vs iCaRL + mixup
replay vs attentive knowledge replay, average incremental and last accuracy
(NME and head), mean ± std over seeds, in one run.

    OMP_NUM_THREADS=1 python benchmarks/bench_blending.py --data-dir /work/shared/data/mnist

With only the 10,000-image MNIST test split (t10k) in the directory, it is
split 80/20 (stratified, fixed seed 0) into train and test parts; the output
says so. Without the MNIST files the benchmark says so and exits 0.
Variants: ``name=method[:option=value,...]``, e.g.
``attentive-frozen=attentive:scorer_objective=frozen``.
"""
import argparse
import pathlib
import sys
import time

import numpy as np

from aidge_incremental.datasets import load_mnist
from aidge_incremental.experiment import ExperimentConfig, run_experiment

DEFAULT_VARIANTS = ["icarl=icarl", "mixup=mixup", "attentive=attentive"]


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
    parser.add_argument("--data-dir", default="/work/shared/data/mnist")
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128])
    parser.add_argument("--memory", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()

    files = list(pathlib.Path(args.data_dir).glob("t10k-images-idx3-ubyte*")) if pathlib.Path(args.data_dir).is_dir() else []
    if not files:
        print(f"skipped: no MNIST t10k files in {args.data_dir} (--data-dir)")
        return 0
    dataset = load_mnist(args.data_dir)
    print(f"MNIST: {len(dataset.x_train)} train / {len(dataset.x_test)} test images"
          + (f" ({dataset.note})" if dataset.note else ""))
    print(f"5 steps of 2 classes, MLP 784-{'-'.join(map(str, args.hidden))}-10, {args.epochs} epochs/step, "
          f"SGD lr {args.lr} momentum 0.9, batch 64, memory {args.memory}, seeds {args.seeds}")
    header = (f"{'variant':<18} {'clf':<5} {'avg incremental':>18} {'last':>16} {'wall s/run':>10}")
    print(header)
    print("-" * len(header))
    for text in args.variants:
        name, method, options = parse_variant(text)
        rows, seconds = {}, []
        for seed in args.seeds:
            config = ExperimentConfig(method=method, hidden=tuple(args.hidden), epochs=args.epochs,
                                      memory=args.memory, lr=args.lr, seed=seed, **options)
            start = time.perf_counter()
            result = run_experiment(config, dataset)
            seconds.append(time.perf_counter() - start)
            for clf, m in result.metrics().items():
                rows.setdefault(clf, []).append(m)
        for clf, ms in rows.items():
            avg = 100 * np.array([m["average_incremental_accuracy"] for m in ms])
            last = 100 * np.array([m["last_accuracy"] for m in ms])
            print(f"{name:<18} {clf:<5} {avg.mean():8.2f} ± {avg.std():5.2f}% {last.mean():7.2f} ± "
                  f"{last.std():5.2f}% {np.mean(seconds):10.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
