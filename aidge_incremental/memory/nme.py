"""iCaRL's nearest-mean-of-exemplars classifier (Rebuffi et al., CVPR 2017,
Algorithm 1): class means of L2-normalised features, then the nearest mean."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _core
from ..profiling import phase
from ._checks import array, features_2d

__all__ = ["NearestMeanClassifier", "class_means", "nme_classify"]


def class_means(features, labels, n_classes: int) -> np.ndarray:
    """Normalised mean of the normalised features of each class ``0..n_classes-1``."""
    features = features_2d(features)
    with phase("nme"):
        return _core.class_means(features, array(labels, "labels"), n_classes)


def nme_classify(features, means) -> np.ndarray:
    """Index of the nearest class mean for each row of ``features``.

    An all-zero row has no direction: after normalisation it is equally far
    from every (unit-norm) class mean, so no class is nearer than another. Its
    answer is ``-1`` ("no class"), never a class index: it counts as an error
    in any accuracy, and callers can find such rows with ``pred < 0``.
    """
    with phase("nme"):
        return _core.nme_classify(features_2d(features), features_2d(means))


class NearestMeanClassifier:
    """iCaRL's nearest-mean-of-exemplars classifier over arbitrary class labels."""

    def __init__(self):
        self.classes: Optional[np.ndarray] = None
        self.means: Optional[np.ndarray] = None

    def fit(self, features, labels) -> "NearestMeanClassifier":
        labels = np.asarray(labels)
        features = features_2d(features, len(labels))
        self.classes, index = np.unique(labels, return_inverse=True)
        self.means = class_means(features, index, len(self.classes))
        return self

    def predict(self, features) -> np.ndarray:
        if self.means is None:
            raise RuntimeError("NearestMeanClassifier.fit must be called before predict")
        index = nme_classify(features, self.means)
        # -1 (an all-zero feature row, see nme_classify) stays -1: no class.
        return np.where(index >= 0, self.classes[np.maximum(index, 0)], -1)


