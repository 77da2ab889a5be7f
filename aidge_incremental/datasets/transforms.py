"""What a dataset carries besides its arrays: its default augmentation and its
normalisation statistics (a dataset "carries its own transforms", as PyCIL's do).

Augmentation works on the stored uint8 (or any dtype) NCHW samples, before
they become model input, vectorised over the batch:

- random crop with zero padding: pad ``padding`` pixels of zeros on every
  side, then cut a window of the original size at a uniformly drawn offset
  (torchvision's ``RandomCrop(32, padding=4)``, the CIFAR default of iCaRL's
  and PyCIL's reference code);
- horizontal flip with probability 1/2 (``RandomHorizontalFlip``).

The draws come from the generator the loop passes (the method's seeded
generator), so the same seed gives the same batches.

Normalisation ``(x / max_value − mean) / std`` per channel is applied by the
dataset's :meth:`~aidge_incremental.datasets.Dataset.to_input` (so training,
evaluation, exemplar features and predictions all see the same inputs); each
dataset file states its statistics and where they come from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

__all__ = ["Augmentation", "Normalization"]


@dataclass(frozen=True)
class Augmentation:
    """Random crop with zero padding and horizontal flip of NCHW batches."""
    padding: int = 4     #: CIFAR default (iCaRL, PyCIL); 0 turns cropping off
    flip: bool = True

    def __post_init__(self):
        if int(self.padding) < 0:
            raise ValueError(f"crop padding must be >= 0, got {self.padding}")

    def draw(self, n: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The random choices for ``n`` samples: crop offsets (rows, columns) in
        ``[0, 2·padding]`` and flip flags. Drawn in this order, always (even
        when an operation is off), so a batch's draws do not depend on the options."""
        p = int(self.padding)
        dy = rng.integers(0, 2 * p + 1, size=n)
        dx = rng.integers(0, 2 * p + 1, size=n)
        flip = rng.random(n) < 0.5
        if not self.flip:
            flip[:] = False
        return dy, dx, flip

    def apply(self, x: np.ndarray, dy: np.ndarray, dx: np.ndarray, flip: np.ndarray) -> np.ndarray:
        """The augmented copy of ``x`` (NCHW) for given draws.

        Vectorised by offset rather than by pixel: one block copy per distinct
        row offset, one per column offset (at most 2·(2·padding+1) copies per
        batch, each of whole rows), then one flip of the flagged samples. A
        gather with one index per pixel is several times slower; a per-sample
        loop about as fast (benchmarks/bench_augmentation.py): either way well
        under a millisecond for a CIFAR batch of 128.
        """
        if x.ndim != 4:
            raise ValueError(f"augmentation needs NCHW images, got shape {x.shape}")
        n, c, h, w = x.shape
        p = int(self.padding)
        if p:
            padded = np.zeros((n, c, h + 2 * p, w + 2 * p), x.dtype)
            padded[:, :, p:p + h, p:p + w] = x
            rows = np.empty((n, c, h, w + 2 * p), x.dtype)
            for d in np.unique(dy):
                i = np.flatnonzero(dy == d)
                rows[i] = padded[i, :, d:d + h]
            out = np.empty_like(x)
            for d in np.unique(dx):
                i = np.flatnonzero(dx == d)
                out[i] = rows[i, :, :, d:d + w]
        else:
            out = x.copy()
        if flip.any():
            out[flip] = out[flip][..., ::-1]
        return out

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(x, *self.draw(len(x), rng))


@dataclass(frozen=True)
class Normalization:
    """Per-channel ``(x − mean) / std`` of inputs already scaled to [0, 1]."""
    mean: Tuple[float, ...]
    std: Tuple[float, ...]

    def __post_init__(self):
        mean = tuple(float(v) for v in self.mean)
        std = tuple(float(v) for v in self.std)
        if not mean or len(mean) != len(std):
            raise ValueError(f"normalisation needs one mean and one std per channel, got {len(mean)} "
                             f"means and {len(std)} stds")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
            raise ValueError(f"normalisation statistics must be finite, got mean {mean}, std {std}")
        if min(std) <= 0:
            raise ValueError(f"std must be > 0, got {std}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    def check(self, input_shape) -> None:
        """Raise a ValueError unless ``input_shape`` is C x H x W with one statistic per channel."""
        if len(input_shape) != 3 or input_shape[0] != len(self.mean):
            raise ValueError(f"normalisation with {len(self.mean)} channel(s) does not apply to samples "
                             f"of shape {tuple(input_shape)} (C x H x W)")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.mean, np.float32)[:, None, None]
        std = np.asarray(self.std, np.float32)[:, None, None]
        return (x - mean) / std
