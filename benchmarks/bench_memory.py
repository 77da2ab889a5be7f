"""Replay-memory core against vectorised NumPy, side by side in one run.

- herding selection (iCaRL Algorithm 4): our C++ core vs the vectorised NumPy
  loop that PyCIL-style code uses (all candidate distances per step);
- NME classification: C++ vs NumPy (matrix product + argmin);
- the memory's bytes against the raw size of what it stores.

    python benchmarks/bench_memory.py [--repeat 3]
"""
import argparse
import os
import time

import numpy as np

from aidge_incremental.memory import ExemplarMemory, class_means, herding_selection, nme_classify

HERDING_SIZES = [(5000, 512, 200), (500, 64, 20)]


def numpy_herding(features, m):
    phi = features / np.linalg.norm(features, axis=1, keepdims=True)
    mu = phi.mean(axis=0)
    running = np.zeros_like(mu)
    chosen = []
    for k in range(1, m + 1):
        dist = np.linalg.norm(mu - (phi + running) / k, axis=1)
        dist[chosen] = np.inf
        p = int(np.argmin(dist))
        chosen.append(p)
        running += phi[p]
    return np.array(chosen)


def numpy_nme(features, means):
    phi = features / np.linalg.norm(features, axis=1, keepdims=True)
    return np.argmin((means ** 2).sum(1)[None, :] - 2 * phi @ means.T, axis=1)


def timed(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{os.cpu_count()} cores; best of {args.repeat} runs; features float32 (C++) / float64 (NumPy)")

    print("\nherding selection")
    print(f"{'n x d, m':>18} | {'C++ core ms':>11} | {'NumPy ms':>9} | {'speed-up':>8} | same indices")
    for n, d, m in HERDING_SIZES:
        f = rng.normal(size=(n, d)).astype(np.float32)
        t_core, ours = timed(lambda: herding_selection(f, m), args.repeat)
        t_np, ref = timed(lambda: numpy_herding(f.astype(np.float64), m), args.repeat)
        print(f"{f'{n} x {d}, {m}':>18} | {t_core * 1e3:11.2f} | {t_np * 1e3:9.2f} | "
              f"{t_np / t_core:7.1f}x | {np.array_equal(ours, ref)}")

    print("\nNME classification (100 classes, d=512)")
    print(f"{'queries':>18} | {'C++ core ms':>11} | {'NumPy ms':>9} | {'speed-up':>8} | same labels")
    labels = np.arange(5000) % 100
    f = rng.normal(size=(5000, 512)).astype(np.float32)
    means = class_means(f, labels, 100)
    for q in (256, 10000):
        queries = rng.normal(size=(q, 512)).astype(np.float32)
        t_core, ours = timed(lambda: nme_classify(queries, means), args.repeat)
        t_np, ref = timed(lambda: numpy_nme(queries.astype(np.float64), means.astype(np.float64)), args.repeat)
        print(f"{q:>18} | {t_core * 1e3:11.2f} | {t_np * 1e3:9.2f} | {t_np / t_core:7.1f}x | "
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
