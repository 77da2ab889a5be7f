"""Data augmentation and per-dataset normalisation for image batches.

Augmentation works on the stored uint8 (or any dtype) NCHW samples, before
they become model input, vectorised over the batch:

- random crop with zero padding: pad ``padding`` pixels of zeros on every
  side, then cut a window of the original size at a uniformly drawn offset
  (torchvision's ``RandomCrop(32, padding=4)``, the CIFAR default of iCaRL's
  and PyCIL's reference code);
- horizontal flip with probability 1/2 (``RandomHorizontalFlip``).

The draws come from the generator the loop passes (the method's seeded
generator), so the same seed gives the same batches.

Normalisation ``(x / max_value − mean) / std`` per channel is part of the
dataset's :meth:`~aidge_incremental.datasets.Dataset.to_input` (so training,
evaluation, exemplar features and predictions all see the same inputs):
:func:`normalized` wraps a dataset with it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from ..datasets import Dataset

__all__ = ["Augmentation", "NORMALIZATION", "NormalizedDataset", "default_augmentation", "normalized"]

#: Per-channel mean and std of the training images (in [0, 1]).
#: CIFAR-10: the statistics of its 50 000 training images, as published with
#: torchvision examples (std 0.2470, 0.2435, 0.2616; PyCIL uses the widely
#: copied (0.2023, 0.1994, 0.2010) instead). CIFAR-100: PyCIL's
#: ``utils/data.py`` values. The digits and MNIST are not normalised by
#: default (iCaRL/LwF protocols on them only scale to [0, 1]).
NORMALIZATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
}


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


def default_augmentation(dataset_name: str) -> Optional[Augmentation]:
    """Crop (4 px) + flip for CIFAR, none for the digits, MNIST and other sources
    (flipping a digit changes its meaning; they are not augmented in LwF/iCaRL
    MNIST protocols)."""
    return Augmentation() if dataset_name in ("cifar10", "cifar100") else None


@dataclass
class NormalizedDataset(Dataset):
    """A dataset whose model input is normalised per channel."""
    mean: Tuple[float, ...] = ()
    std: Tuple[float, ...] = ()

    def __post_init__(self):
        channels = self.input_shape[0] if len(self.input_shape) == 3 else None
        if channels is None:
            raise ValueError(f"normalisation needs CHW samples, the dataset has {self.input_shape}")
        for name in ("mean", "std"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != channels or not np.all(np.isfinite(values)):
                raise ValueError(f"{name} must have {channels} finite values (one per channel), got {values}")
            setattr(self, name, values)
        if min(self.std) <= 0:
            raise ValueError(f"std must be > 0, got {self.std}")

    def to_input(self, x: np.ndarray) -> np.ndarray:
        out = super().to_input(x)
        mean = np.asarray(self.mean, np.float32)[:, None, None]
        std = np.asarray(self.std, np.float32)[:, None, None]
        return (out - mean) / std


def normalized(dataset: Dataset, mean: Optional[Sequence[float]] = None,
               std: Optional[Sequence[float]] = None) -> Dataset:
    """``dataset`` with per-channel normalisation in its ``to_input``; without
    ``mean``/``std``, the published values of :data:`NORMALIZATION` for it
    (a dataset without any is returned as it is)."""
    if mean is None and std is None:
        if dataset.name not in NORMALIZATION:
            return dataset
        mean, std = NORMALIZATION[dataset.name]
    if mean is None or std is None:
        raise ValueError("give both mean and std, or neither")
    fields = {f.name: getattr(dataset, f.name) for f in dataclasses.fields(Dataset)}
    return NormalizedDataset(**fields, mean=tuple(mean), std=tuple(std))
