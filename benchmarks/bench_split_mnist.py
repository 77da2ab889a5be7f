"""Split MNIST (5 steps of 2 classes): Finetune, LwF, iCaRL and Joint, accuracy
and wall time per method, in one run.

    python benchmarks/bench_split_mnist.py --data-dir ../shared/data/mnist

With only the 10,000-image MNIST test split (t10k) in the directory, it is
split 80/20 (stratified, fixed seed) into train and test parts; the output
says so.

When PyTorch is installed, the same Finetune run is also written in PyTorch
(same scenario and class order, same inputs, MLP, SGD settings, batch size,
epochs and evaluation after every step; a head over the classes seen so far)
and both runs are timed, interleaved, best of --repeats: the last lines
compare the wall time of the whole run, training and evaluation included.
"""
import argparse
import os
import sys
import time

import numpy as np

import aidge_incremental  # noqa: F401  (first: one OpenMP runtime, see its _openmp_preload)
from aidge_incremental.datasets import load_mnist
from aidge_incremental.experiment import ExperimentConfig, run_experiment
from aidge_incremental.scenario import ClassIncrementalScenario

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import interleaved  # noqa: E402

try:
    import torch
except ImportError:  # the PyTorch comparison is then skipped
    torch = None


def torch_finetune(dataset, config):
    """Finetune on the scenario of ``config`` in PyTorch; returns the last step's accuracy."""
    torch.manual_seed(config.seed)
    dataset = dataset if config.normalize else dataset.replace(normalization=None)
    scenario = ClassIncrementalScenario(dataset, config.initial, config.increment, config.class_order,
                                        seed=config.seed)
    sizes = [int(np.prod(dataset.input_shape)), *config.hidden]
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    body = torch.nn.Sequential(torch.nn.Flatten(), *layers)
    head = torch.nn.Linear(sizes[-1], scenario.n_classes)
    params = list(body.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    accuracy = 0.0
    for t in range(scenario.n_steps):
        step = scenario.step(t)
        n_seen = step.n_seen
        for _ in range(config.epochs):
            order = rng.permutation(len(step.y_train))
            for i in range(0, len(order), config.batch_size):
                rows = order[i:i + config.batch_size]
                x = torch.from_numpy(dataset.to_input(step.x_train[rows]))
                y = torch.from_numpy(step.y_train[rows].astype(np.int64))
                loss = torch.nn.functional.cross_entropy(head(body(x))[:, :n_seen], y)
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            logits = head(body(torch.from_numpy(dataset.to_input(step.x_test))))[:, :n_seen]
            accuracy = float((logits.argmax(1).numpy() == step.y_test).mean())
    return accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--methods", nargs="+", default=["finetune", "lwf", "icarl", "joint"])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--memory", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=3, help="PyTorch comparison: best of this many runs")
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

    if torch is None:
        print("\nPyTorch is not installed: no comparison with the same run written in PyTorch")
        return
    config = ExperimentConfig(method="finetune", hidden=list(args.hidden), epochs=args.epochs, lr=args.lr,
                              seed=args.seeds[0])
    acc = {}

    def run_ours():
        acc["ours"] = run_experiment(config, dataset).metrics()["head"]["last_accuracy"]

    def run_torch():
        acc["torch"] = torch_finetune(dataset, config)
    ours, theirs = interleaved([run_ours, run_torch], args.repeats, settle=False)
    print(f"\nFinetune run, wall time best of {args.repeats} (torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads):")
    print(f"  aidge_incremental {min(ours):7.2f} s  (last-step accuracy {100 * acc['ours']:.2f}%)")
    print(f"  PyTorch           {min(theirs):7.2f} s  (last-step accuracy {100 * acc['torch']:.2f}%)")
    print(f"  ours / PyTorch    {min(ours) / min(theirs):7.2f}x")


if __name__ == "__main__":
    main()
