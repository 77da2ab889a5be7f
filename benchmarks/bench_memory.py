"""Replay-memory core against vectorised NumPy, side by side in one run.

- herding selection (iCaRL Algorithm 4): our C++ core vs a vectorised NumPy
  implementation of the same O(n d)-per-pick algorithm (it keeps S . phi_i for
  every candidate and updates it with one matrix-vector product per pick, as
  the core does), run in float64, checked to return the same indices;
- NME classification: C++ vs NumPy (matrix product + argmin);
- the memory's bytes against the raw size of what it stores.

Timings are interleaved (core, NumPy, core, NumPy, ...; common.interleaved) and
the median of the repeats is reported, with the ratio of the medians. The same
ratios at 1 and 2 threads and under load: benchmarks/bench_kernels.py.

    python benchmarks/bench_memory.py [--repeat 5]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import interleaved, median, numpy_herding, numpy_nme, print_environment  # noqa: E402

HERDING_SIZES = [(5000, 512, 200), (500, 64, 20)]


def timed_pair(ours, reference, repeat):
    """Median seconds of each, interleaved, and the outputs."""
    t = interleaved([ours, reference], repeat)
    return median(t[0]), median(t[1]), ours(), reference()


def main():
    from aidge_incremental.memory import ExemplarMemory, class_means, herding_selection, nme_classify
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print_environment("bench_memory: the replay memory's core against NumPy", torch_too=False)
    print(f"median of {args.repeat} interleaved runs; features float32 (C++) / float64 (NumPy)")

    print("\nherding selection (both O(n d) per pick)")
    print(f"{'n x d, m':>18} | {'C++ core ms':>11} | {'NumPy ms':>9} | {'NumPy / C++':>11} | same indices")
    for n, d, m in HERDING_SIZES:
        f = rng.normal(size=(n, d)).astype(np.float32)
        f64 = f.astype(np.float64)
        t_core, t_np, ours, ref = timed_pair(lambda: herding_selection(f, m),
                                             lambda: numpy_herding(f64, m), args.repeat)
        print(f"{f'{n} x {d}, {m}':>18} | {t_core * 1e3:11.2f} | {t_np * 1e3:9.2f} | "
              f"{t_np / t_core:10.1f}x | {np.array_equal(ours, ref)}")

    print("\nNME classification (100 classes, d=512)")
    print(f"{'queries':>18} | {'C++ core ms':>11} | {'NumPy ms':>9} | {'NumPy / C++':>11} | same labels")
    labels = np.arange(5000) % 100
    f = rng.normal(size=(5000, 512)).astype(np.float32)
    means = class_means(f, labels, 100)
    for q in (256, 10000):
        queries = rng.normal(size=(q, 512)).astype(np.float32)
        q64, m64 = queries.astype(np.float64), means.astype(np.float64)
        t_core, t_np, ours, ref = timed_pair(lambda: nme_classify(queries, means),
                                             lambda: numpy_nme(q64, m64), args.repeat)
        print(f"{q:>18} | {t_core * 1e3:11.2f} | {t_np * 1e3:9.2f} | {t_np / t_core:10.1f}x | "
              f"{np.array_equal(ours, ref)}")

    print("\nmemory footprint (total budget, herding)")
    print(f"{'stored samples':>30} | {'raw bytes':>10} | {'memory bytes':>12} | overhead")
    for shape, dtype, classes, budget in [((28, 28), np.uint8, 10, 2000), ((3, 32, 32), np.uint8, 100, 2000),
                                          ((8, 8), np.float32, 10, 200), ((784,), np.float32, 10, 200)]:
        x = rng.integers(0, 255, (classes * 30,) + shape).astype(dtype)
        y = np.repeat(np.arange(classes), 30)
        memory = ExemplarMemory(budget=budget, selection="random")
        memory.update(x, y)
        raw = memory.samples().nbytes
        label = f"{len(memory)} x {shape} {np.dtype(dtype).name}"
        print(f"{label:>30} | {raw:10d} | {memory.nbytes:12d} | {100 * (memory.nbytes - raw) / raw:6.3f}%")


if __name__ == "__main__":
    main()
