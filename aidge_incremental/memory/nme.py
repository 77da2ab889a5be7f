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
    """iCaRL's nearest-mean-of-exemplars classifier over arbitrary class labels
    (anything ``np.unique`` sorts: integers, strings, bytes...).

    A feature row with no direction (all zero) is nearer no class than another:
    :meth:`predict` answers ``-1`` for it when the labels are numbers, ``None``
    (in an object array) otherwise."""

    def __init__(self):
        self.classes: Optional[np.ndarray] = None
        self.means: Optional[np.ndarray] = None

    def fit(self, features, labels) -> "NearestMeanClassifier":
        labels = np.asarray(labels)
        features = features_2d(features, len(labels))
        self.classes, index = np.unique(labels, return_inverse=True)
        self.means = class_means(features, index, len(self.classes))
        return self

    def scores(self, features, n_classes: int) -> np.ndarray:
        """Cosine similarity of each normalised feature row to each class mean, as
        [N, n_classes] (column = class label; -inf for a class without a mean): the
        higher the nearer, whose argmax is :meth:`predict`'s answer (top-k and
        task-aware accuracy read it)."""
        if self.means is None:
            raise RuntimeError("NearestMeanClassifier.fit must be called before scores")
        features = np.asarray(features_2d(features), np.float64)
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        phi = np.divide(features, norms, out=np.zeros_like(features), where=norms > 0)
        out = np.full((len(phi), int(n_classes)), -np.inf)
        out[:, self.classes] = phi @ np.asarray(self.means, np.float64).T
        return out

    def predict(self, features) -> np.ndarray:
        if self.means is None:
            raise RuntimeError("NearestMeanClassifier.fit must be called before predict")
        index = nme_classify(features, self.means)
        labels = self.classes[np.maximum(index, 0)]
        # -1 (an all-zero feature row, see nme_classify) means no class: -1 among numbers,
        # None among other labels (no value of their type says "none")
        if self.classes.dtype.kind in "iufb":
            return np.where(index >= 0, labels, -1)
        out = labels.astype(object)
        out[index < 0] = None
        return out


