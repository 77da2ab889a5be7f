"""Time to augment one CIFAR batch (uint8, 3x32x32, random crop with 4 px of zero
padding + horizontal flip), side by side in one run: our block copies per
offset, a plain per-sample NumPy loop (the test's reference), a per-pixel
gather, and torchvision's
RandomCrop + RandomHorizontalFlip on a uint8 tensor batch, sample by sample,
when installed. Interleaved repeats; medians.

    python benchmarks/bench_augmentation.py [--batch 128] [--repeat 30]
"""
import argparse
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import interleaved  # noqa: E402

from aidge_incremental.datasets import Augmentation


def per_sample(x, dy, dx, flip, padding):
    out = np.empty_like(x)
    n, c, h, w = x.shape
    for i in range(n):
        canvas = np.zeros((c, h + 2 * padding, w + 2 * padding), x.dtype)
        canvas[:, padding:padding + h, padding:padding + w] = x[i]
        window = canvas[:, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = window[:, :, ::-1] if flip[i] else window
    return out


def per_pixel_gather(x, dy, dx, flip, padding):
    """One index per output pixel (the obvious vectorisation; slow in NumPy)."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    rows = dy[:, None] + np.arange(h)
    cols = dx[:, None] + np.arange(w)
    cols = np.where(flip[:, None], cols[:, ::-1], cols)
    return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(args.batch, 3, 32, 32), dtype=np.uint8)
    aug = Augmentation(padding=4, flip=True)
    dy, dx, flip = aug.draw(len(x), rng)
    assert (aug.apply(x, dy, dx, flip) == per_pixel_gather(x, dy, dx, flip, 4)).all()
    candidates = {
        "ours (block copies by offset)": lambda: aug(x, rng),
        "per-sample NumPy loop": lambda: per_sample(x, *aug.draw(len(x), rng), 4),
        "per-pixel gather": lambda: per_pixel_gather(x, *aug.draw(len(x), rng), 4),
    }
    try:
        import torch
        from torchvision import transforms
        tv = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()])
        xt = torch.from_numpy(x)
        candidates["torchvision, per sample"] = lambda: torch.stack([tv(s) for s in xt])
    except ImportError:
        pass
    times = dict(zip(candidates, interleaved(list(candidates.values()), args.repeat)))
    print(f"batch {args.batch}x3x32x32 uint8, {platform.processor() or platform.machine()}, "
          f"median of {args.repeat}")
    base = np.median(times["ours (block copies by offset)"])
    for name, t in times.items():
        print(f"  {name:28s} {1e3 * np.median(t):8.3f} ms   ({np.median(t) / base:5.1f}x ours)")


if __name__ == "__main__":
    main()
