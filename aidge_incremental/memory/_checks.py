"""Argument checks shared by the memory modules: every refusal names the argument."""
from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["array", "check_labels", "features_2d", "integer"]


def integer(value, name: str, low: int = 0, high: int = 2 ** 62) -> int:
    """``value`` as an int in [low, high]; refuses bools, floats and strings, naming ``name``."""
    import operator
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer in [{low}, {high}], got "
                        f"{type(value).__name__} {value!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value}")
    return value


def array(value, name: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as e:  # ragged nesting, unconvertible objects
        raise ValueError(f"{name} cannot be read as an array: {e}") from None


def features_2d(features, n: Optional[int] = None) -> np.ndarray:
    features = array(features, "features")
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D array [n, d], got shape {features.shape}")
    if n is not None and features.shape[0] != n:
        raise ValueError(f"features have {features.shape[0]} rows for {n} samples")
    return features


def check_labels(x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim == 0:
        raise ValueError("x must be an array of samples [n, ...], got a scalar")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"labels must be a vector with one entry per sample: "
                         f"{len(x)} samples, labels of shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {y.dtype}")
    if y.dtype == np.uint64 and len(y) and int(y.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"labels must fit in int64, got {int(y.max())}")


