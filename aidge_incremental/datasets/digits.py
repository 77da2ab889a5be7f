"""scikit-learn's handwritten digits: the embedded default dataset (no download)."""
from __future__ import annotations

import numpy as np

from .base import Dataset, DatasetSource, from_arrays, register_dataset


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's handwritten digits: 1,797 images of 8x8, values 0..16, 10 classes."""
    from sklearn.datasets import load_digits as sk_digits
    digits = sk_digits()
    images = digits.images.astype(np.uint8)  # integers 0..16
    return from_arrays(images, digits.target, name="digits", max_value=16.0,
                       test_fraction=test_fraction, seed=seed)


# No normalisation and no augmentation: the 8x8 digits are scaled to [0, 1], as
# the split-MNIST protocols of iCaRL/LwF do (flipping a digit changes its meaning).
register_dataset(DatasetSource("digits", lambda path, seed: load_digits(seed=seed),
                               "scikit-learn's 8x8 digits (embedded: no download)", needs_path=False))
