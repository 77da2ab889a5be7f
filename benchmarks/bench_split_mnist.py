"""Split MNIST (5 steps of 2 classes): Finetune, LwF, iCaRL and Joint, accuracy
and wall time per method, in one run.

    python benchmarks/bench_split_mnist.py --data-dir ../shared/data/mnist

With only the 10,000-image MNIST test split (t10k) in the directory, it is
split 80/20 (stratified, fixed seed) into train and test parts; the output
says so.
"""
import argparse
import time

import numpy as np

from aidge_incremental.datasets import load_mnist
from aidge_incremental.experiment import ExperimentConfig, run_experiment


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--methods", nargs="+", default=["finetune", "lwf", "icarl", "joint"])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--memory", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()

    dataset = load_mnist(args.data_dir)
    print(f"MNIST: {len(dataset.x_train)} train / {len(dataset.x_test)} test images"
          + (f" ({dataset.note})" if dataset.note else ""))
    print(f"5 steps of 2 classes, MLP 784-{'-'.join(map(str, args.hidden))}-10, {args.epochs} epochs/step, "
          f"SGD lr {args.lr} momentum 0.9, batch 64, memory {args.memory} (iCaRL), seeds {args.seeds}")
    header = f"{'method':<14} {'avg incremental':>16} {'last step':>10} {'forgetting':>11} {'wall s':>8}"
    print(header)
    print("-" * len(header))
    for method in args.methods:
        rows, seconds = {}, []
        for seed in args.seeds:
            replay = {"memory": args.memory} if method == "icarl" else {}  # the others without exemplars
            config = ExperimentConfig(method=method, hidden=list(args.hidden), epochs=args.epochs, lr=args.lr,
                                      seed=seed, **replay)
            start = time.perf_counter()
            result = run_experiment(config, dataset)
            seconds.append(time.perf_counter() - start)
            for clf, m in result.metrics().items():
                rows.setdefault(clf, []).append(m)
        for clf, ms in rows.items():
            label = method if len(rows) == 1 else f"{method} ({clf})"
            mean = {k: np.mean([m[k] for m in ms]) for k in ms[0]}
            print(f"{label:<14} {100 * mean['average_incremental_accuracy']:15.2f}% "
                  f"{100 * mean['last_accuracy']:9.2f}% {100 * mean['average_forgetting']:10.2f}% "
                  f"{np.mean(seconds):8.1f}")


if __name__ == "__main__":
    main()
