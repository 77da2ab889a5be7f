"""Where one SGD step of a model's graph spends its time, by Aidge operator type.

    python benchmarks/profile_model_step.py --model resnet32 --input 3 32 32 --batch 128
    python benchmarks/profile_model_step.py --model resnet20 --kernels aidge --batchnorm off

Times come from Aidge's own scheduler record (``save_scheduling_diagram``) of
the last of ``--steps`` forward + backward passes in train mode; the wall time
of the whole step (forward, loss, backward, SGD update) is printed beside it.
"""
from __future__ import annotations

import argparse
import collections
import pathlib
import re
import tempfile
import time

import aidge_incremental  # noqa: F401  (first: one OpenMP runtime, see its _openmp_preload)
import aidge_core
import aidge_learning
import numpy as np

from aidge_incremental.loss import cross_entropy
from aidge_incremental.training.loop import fast_sgd
from aidge_incremental.backend import KERNELS
from aidge_incremental.models import ARCHITECTURES, IncrementalModel
from aidge_incremental.training import one_hot

_LINE = re.compile(r"\s*(\S+) \((\w+)#\d+\) :(\d+), (\d+)")


def _by_type(path: pathlib.Path) -> collections.Counter:
    """Sum of (end - start) per operator type in a scheduling diagram (microseconds)."""
    totals = collections.Counter()
    for line in path.read_text().splitlines():
        match = _LINE.match(line)
        if match:
            totals[match.group(2)] += int(match.group(4)) - int(match.group(3))
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet32", choices=sorted(ARCHITECTURES))
    parser.add_argument("--input", type=int, nargs=3, default=[3, 32, 32], metavar=("C", "H", "W"))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--kernels", default="fast", choices=KERNELS)
    parser.add_argument("--batchnorm", default="on", choices=["on", "off"], help="ResNets only")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    options = {} if args.model in ("mlp", "lenet") else {"batchnorm": args.batchnorm == "on"}
    model = IncrementalModel(args.model, args.input, n_classes=args.classes, kernels=args.kernels, **options)
    rng = np.random.default_rng(0)
    x = aidge_core.Tensor(rng.random((args.batch, *args.input), dtype=np.float32))
    y = aidge_core.Tensor(one_hot(rng.integers(0, args.classes, args.batch), args.classes))
    if args.kernels == "fast":  # what the training loop uses on the cpu backend
        optimizer = fast_sgd(model.parameter_nodes(), 0.9, 0.0)
        update = lambda: optimizer.update(0.01)  # noqa: E731
    else:
        optimizer = aidge_learning.SGD(momentum=0.9)
        optimizer.set_learning_rate_scheduler(aidge_learning.constant_lr(0.01))
        optimizer.set_parameters(model.parameter_nodes())
        update = optimizer.update
    scheduler = model.scheduler
    seconds = []
    with model.mode(training=True):
        for _ in range(args.steps):
            start = time.perf_counter()
            scheduler.forward(data=[x])
            cross_entropy(model.output, y)
            optimizer.reset_grad()
            scheduler.backward()
            update()
            seconds.append(time.perf_counter() - start)
    print(f"{args.model} {'x'.join(map(str, args.input))}, batch {args.batch}, kernels {args.kernels}, "
          f"{model.n_parameters()} parameters, {model.accelerated_nodes} nodes accelerated")
    print(f"SGD step: best {1e3 * min(seconds):.1f} ms, median {1e3 * np.median(seconds):.1f} ms over {args.steps}")
    with tempfile.TemporaryDirectory() as tmp:
        scheduler.save_scheduling_diagram(str(pathlib.Path(tmp) / "step"))
        for phase in ("forward", "backward"):
            path = pathlib.Path(tmp) / f"step_{phase}.mmd"
            if not path.exists():
                continue
            totals = _by_type(path)
            total = sum(totals.values()) or 1
            print(f"{phase}: {total / 1e3:.1f} ms")
            for op, us in totals.most_common():
                if us:
                    print(f"  {op:<22} {us / 1e3:9.1f} ms {100 * us / total:6.1f}%")


if __name__ == "__main__":
    main()
