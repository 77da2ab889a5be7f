"""scikit-learn's handwritten digits: the embedded default dataset (no download)."""
from __future__ import annotations

import numpy as np

from .base import Dataset, DatasetSource, from_arrays, register_dataset


def _digits_arrays():
    """scikit-learn's digits file read directly (what ``sklearn.datasets.load_digits``
    reads: one row per image, 64 pixels then the label): importing
    ``sklearn.datasets`` costs seconds (it loads SciPy), the file a millisecond."""
    import gzip
    import importlib.util
    import os
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    path = None if spec is None or not spec.submodule_search_locations else \
        os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    if path is None or not os.path.isfile(path):
        from sklearn.datasets import load_digits as sk_digits  # the error names what is missing
        digits = sk_digits()
        return digits.images, digits.target
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's handwritten digits: 1,797 images of 8x8, values 0..16, 10 classes."""
    images, labels = _digits_arrays()
    return from_arrays(images.astype(np.uint8), labels, name="digits", max_value=16.0,  # integers 0..16
                       test_fraction=test_fraction, seed=seed)


# No normalisation and no augmentation: the 8x8 digits are scaled to [0, 1], as
# the split-MNIST protocols of iCaRL/LwF do (flipping a digit changes its meaning).
register_dataset(DatasetSource("digits", lambda path, seed: load_digits(seed=seed),
                               "scikit-learn's 8x8 digits (embedded: no download)", needs_path=False))
