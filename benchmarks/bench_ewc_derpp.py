"""EWC and DER++ against Finetune, each with its distinctive part switched off:
average incremental and last accuracy (head), mean ± std over seeds, in one run.

    OMP_NUM_THREADS=1 python benchmarks/bench_ewc_derpp.py                     # digits, 5 steps of 2
    OMP_NUM_THREADS=1 python benchmarks/bench_ewc_derpp.py --dataset mnist --data-dir /work/shared/data/mnist

Variants: ``name=method[:option=value,...]``, e.g. ``ewc-head=ewc:penalise_head=true``
(values typed by the method's declared options).
Split MNIST uses the 10,000-image t10k split (80/20, stratified, seed 0) when
that is all the directory holds; without MNIST files the benchmark says so and
exits 0. CPU seconds are process time (the machine is shared).
"""
import argparse
import pathlib
import time

import numpy as np

from aidge_incremental.datasets import load_dataset
from aidge_incremental.experiment import ExperimentConfig, run_experiment
from aidge_incremental.methods import METHODS

DEFAULT_VARIANTS = ["finetune=finetune", "ewc=ewc", "ewc-lambda0=ewc:ewc_lambda=0", "derpp=derpp",
                    "derpp-alpha0=derpp:der_alpha=0", "derpp-beta0=derpp:der_beta=0"]


def parse_variant(text):
    """``name=method:option=value,...``; each value converted to its option's declared type."""
    name, _, spec = text.partition("=")
    method, _, opts = spec.partition(":")
    method = method or name
    types = {o.name: o.type for o in METHODS[method].declared_options()}
    options = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        kind = types.get(key, str)
        options[key] = value.lower() == "true" if kind is bool else kind(value)
    return name, method, options


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("digits", "mnist"), default="digits")
    parser.add_argument("--data-dir", default="/work/shared/data/mnist")
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()

    if args.dataset == "mnist":
        folder = pathlib.Path(args.data_dir)
        if not (folder.is_dir() and list(folder.glob("t10k-images-idx3-ubyte*"))):
            print(f"skipped: no MNIST t10k files in {args.data_dir} (--data-dir)")
            return 0
        dataset = load_dataset("mnist", args.data_dir)
    else:
        dataset = load_dataset("digits")
    print(f"{args.dataset}: {len(dataset.x_train)} train / {len(dataset.x_test)} test samples"
          + (f" ({dataset.note})" if dataset.note else ""))
    print(f"5 steps of 2 classes, MLP {'-'.join(map(str, args.hidden))}, {args.epochs} epochs/step, "
          f"SGD lr {args.lr} momentum 0.9, batch 64, seeds {args.seeds}")
    header = f"{'variant':<16} {'avg incremental':>17} {'last':>16} {'forgetting':>16} {'cpu s/run':>9}"
    print(header)
    print("-" * len(header))
    for text in args.variants:
        name, method, options = parse_variant(text)
        metrics, seconds = [], []
        for seed in args.seeds:
            config = ExperimentConfig(method=method, hidden=tuple(args.hidden), epochs=args.epochs, lr=args.lr,
                                      seed=seed, **options)
            start = time.process_time()
            metrics.append(run_experiment(config, dataset).metrics()["head"])
            seconds.append(time.process_time() - start)
        cells = []
        for key in ("average_incremental_accuracy", "last_accuracy", "average_forgetting"):
            values = 100 * np.array([m[key] for m in metrics])
            cells.append(f"{values.mean():7.2f} ± {values.std():5.2f}%")
        print(f"{name:<16} {cells[0]:>17} {cells[1]:>16} {cells[2]:>16} {np.mean(seconds):9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
