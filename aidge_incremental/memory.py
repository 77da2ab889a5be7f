"""Replay memory: exemplar selection, class-balanced exemplar sets, reservoir
sampling and the nearest-mean-of-exemplars classifier.

A thin layer over the C++ core (``aidge_incremental._core``): the selection
algorithms, the storage and the file format live there. Samples are stored
exactly as given (uint8 images stay uint8) and read back as NumPy views of
the memory's own buffer, without copying.

Reference: Rebuffi et al., "iCaRL: Incremental Classifier and Representation
Learning", CVPR 2017 (Algorithms 1, 4 and 5).
"""
from __future__ import annotations

import os
from typing import Callable, Optional, Union

import numpy as np

from . import _core
from ._core import CorruptFileError

__all__ = [
    "CorruptFileError", "ExemplarMemory", "NearestMeanClassifier", "ReservoirMemory",
    "SELECTIONS", "class_means", "closest_to_mean_selection", "herding_selection",
    "nme_classify", "random_selection", "select_exemplars",
]

FeatureSource = Union[np.ndarray, Callable[[np.ndarray], np.ndarray]]


def _integer(value, name: str, low: int = 0, high: int = 2 ** 62) -> int:
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


def _array(value, name: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as e:  # ragged nesting, unconvertible objects
        raise ValueError(f"{name} cannot be read as an array: {e}") from None


def _features_2d(features, n: Optional[int] = None) -> np.ndarray:
    features = _array(features, "features")
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D array [n, d], got shape {features.shape}")
    if n is not None and features.shape[0] != n:
        raise ValueError(f"features have {features.shape[0]} rows for {n} samples")
    return features


def _check_labels(x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim == 0:
        raise ValueError("x must be an array of samples [n, ...], got a scalar")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"labels must be a vector with one entry per sample: "
                         f"{len(x)} samples, labels of shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {y.dtype}")
    if y.dtype == np.uint64 and len(y) and int(y.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"labels must fit in int64, got {int(y.max())}")


def herding_selection(features, m: int) -> np.ndarray:
    """iCaRL herding (Algorithm 4) on L2-normalised features: ``m`` indices in
    selection order (each prefix is itself a herding selection)."""
    return _core.herding_selection(_features_2d(features), m)


def closest_to_mean_selection(features, m: int) -> np.ndarray:
    """The ``m`` samples nearest the class mean (normalised features), nearest first."""
    return _core.closest_to_mean_selection(_features_2d(features), m)


def random_selection(n: int, m: int, seed: int = 0) -> np.ndarray:
    """``m`` distinct indices of ``range(n)``, reproducible from ``seed``."""
    return _core.random_selection(n, m, seed)


SELECTIONS = ("herding", "random", "closest")


def select_exemplars(method: str, features: Optional[np.ndarray], m: int, seed: int = 0) -> np.ndarray:
    """Dispatch to one of :data:`SELECTIONS`; ``features`` may be None for random."""
    if method == "herding":
        return herding_selection(features, m)
    if method == "closest":
        return closest_to_mean_selection(features, m)
    if method == "random":
        n = len(features) if features is not None else None
        if n is None:
            raise ValueError("random selection needs the number of samples")
        return random_selection(n, m, seed)
    raise ValueError(f"selection must be one of {SELECTIONS}, got {method!r}")


def class_means(features, labels, n_classes: int) -> np.ndarray:
    """Normalised mean of the normalised features of each class ``0..n_classes-1``."""
    features = _features_2d(features)
    return _core.class_means(features, _array(labels, "labels"), n_classes)


def nme_classify(features, means) -> np.ndarray:
    """Index of the nearest class mean for each row of ``features``.

    An all-zero row has no direction: after normalisation it is equally far
    from every (unit-norm) class mean, so no class is nearer than another. Its
    answer is ``-1`` ("no class"), never a class index: it counts as an error
    in any accuracy, and callers can find such rows with ``pred < 0``.
    """
    return _core.nme_classify(_features_2d(features), _features_2d(means))


class NearestMeanClassifier:
    """iCaRL's nearest-mean-of-exemplars classifier over arbitrary class labels."""

    def __init__(self):
        self.classes: Optional[np.ndarray] = None
        self.means: Optional[np.ndarray] = None

    def fit(self, features, labels) -> "NearestMeanClassifier":
        labels = np.asarray(labels)
        features = _features_2d(features, len(labels))
        self.classes, index = np.unique(labels, return_inverse=True)
        self.means = class_means(features, index, len(self.classes))
        return self

    def predict(self, features) -> np.ndarray:
        if self.means is None:
            raise RuntimeError("NearestMeanClassifier.fit must be called before predict")
        index = nme_classify(features, self.means)
        # -1 (an all-zero feature row, see nme_classify) stays -1: no class.
        return np.where(index >= 0, self.classes[np.maximum(index, 0)], -1)


class _StoredSamples:
    """What both memories share: samples held by a C++ core, created on first use."""
    _core = None

    def __len__(self) -> int:
        return 0 if self._core is None else len(self._core)

    @property
    def nbytes(self) -> int:
        """Exact bytes held by the memory."""
        return 0 if self._core is None else self._core.nbytes

    def samples(self) -> np.ndarray:
        """The held samples: a read-only view of the memory's buffer, no copy.

        The view is a snapshot: later changes to the memory leave it as it was
        (the core writes to a new buffer while a view holds the old one), so it
        always agrees with :meth:`labels` taken at the same time."""
        if self._core is None:
            raise ValueError("the memory is empty")
        return self._core.samples()

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write to ``path`` atomically (versioned, checksummed)."""
        if self._core is None:
            raise ValueError("an empty memory has nothing to save")
        self._core.save(os.fspath(path))


class ExemplarMemory(_StoredSamples):
    """Class-balanced exemplar memory under a budget (iCaRL, PyCIL, FACIL).

    Exactly one of:

    - ``budget=K``: a fixed total of K exemplars shared by all classes seen,
      ``K // n`` each, the first ``K % n`` classes (in arrival order) one more;
    - ``per_class=m``: m exemplars per class, the total growing with classes.

    ``selection`` is ``"herding"`` (iCaRL's default), ``"random"`` or
    ``"closest"`` (to the class mean). Adding classes first reduces the old
    classes' sets to their new quotas by keeping their prefix (iCaRL
    Algorithm 5), so herding order is preserved.
    """

    def __init__(self, budget: Optional[int] = None, per_class: Optional[int] = None,
                 selection: str = "herding", seed: int = 0):
        if (budget is None) == (per_class is None):
            raise ValueError("give exactly one of budget (total) or per_class")
        name = "budget" if budget is not None else "per_class"
        value = budget if budget is not None else per_class
        if not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer)) \
                and value <= 0:
            raise ValueError(f"memory budget must be > 0, got {name}={value}")
        value = _integer(value, name, 1)
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        self.policy = "total" if budget is not None else "per_class"
        self.budget = value
        self.selection = selection
        self.seed = _integer(seed, "seed", 0, 2 ** 64 - 1)
        self._core = None

    # -- filling -------------------------------------------------------------
    def update(self, x, y, features: Optional[FeatureSource] = None) -> None:
        """Add the classes of a new step, choosing their exemplars.

        ``x``: the step's samples (any shape and dtype, stored as given);
        ``y``: their labels; ``features``: an array ``[n, d]`` or a function
        ``x -> features`` (needed by herding and closest, not by random).
        Nothing changes if any check fails.
        """
        x = _array(x, "x")
        y = _array(y, "y")
        _check_labels(x, y)
        if len(x) == 0:
            raise ValueError("update() needs at least one sample")
        new_classes = [int(c) for c in np.unique(y)]
        held = set(self.classes)
        if held.intersection(new_classes):
            raise ValueError(f"classes {sorted(held.intersection(new_classes))} are already in "
                             "the memory: a class-incremental step brings new classes only")
        if self._core is None:
            core = _core.ExemplarMemoryCore(self.policy, self.budget, list(x.shape[1:]), x.dtype)
        else:
            core = self._core
            if tuple(x.shape[1:]) != self.sample_shape or x.dtype != self.dtype:
                raise ValueError(f"samples of shape {x.shape[1:]} and dtype {x.dtype} do not match "
                                 f"the memory's {self.sample_shape} {self.dtype}")
        n_after = len(held) + len(new_classes)
        quotas = core.quotas(n_after)[len(held):]  # raises if the budget is too small

        if self.selection != "random":
            if features is None:
                raise ValueError(f"{self.selection} selection needs features (array or function)")
            feats = features(x) if callable(features) else features
            feats = _features_2d(feats, len(x))
        chosen = []
        for label, quota in zip(new_classes, quotas):
            idx = np.flatnonzero(y == label)
            m = min(quota, len(idx))
            if self.selection == "random":
                order = random_selection(len(idx), m, (self.seed + label) % 2 ** 64)
            else:
                order = select_exemplars(self.selection, feats[idx], m)
            chosen.append(np.ascontiguousarray(x[idx[order]]))

        # One all-or-nothing call: reduce the old sets, add the new ones.
        core.add_classes(new_classes, chosen)
        self._core = core

    # -- reading -------------------------------------------------------------
    @property
    def classes(self) -> list:
        return [label for label, _ in self.class_sets]

    @property
    def class_sets(self) -> list:
        """``[(label, number of exemplars), ...]`` in arrival order."""
        return [] if self._core is None else list(self._core.class_sets)

    @property
    def sample_shape(self) -> tuple:
        return tuple(self._core.sample_shape) if self._core is not None else ()

    @property
    def dtype(self):
        return self._core.dtype if self._core is not None else None

    def quotas(self, n_classes: int) -> list:
        """Per-class exemplar counts allowed once ``n_classes`` classes are held."""
        core = self._core or _core.ExemplarMemoryCore(self.policy, self.budget, [1], np.uint8)
        return core.quotas(n_classes)

    def labels(self) -> np.ndarray:
        """The label of each exemplar of :meth:`samples` (exemplars are stored class by class)."""
        sets = self.class_sets
        return np.repeat(np.array([c for c, _ in sets], np.int64),
                         np.array([n for _, n in sets], np.int64))

    # -- persistence ---------------------------------------------------------
    @classmethod
    def load(cls, path: Union[str, os.PathLike], selection: str = "herding",
             seed: int = 0) -> "ExemplarMemory":
        """Read a memory written by :meth:`save`; raises CorruptFileError for a bad file."""
        return cls._wrap(_core.ExemplarMemoryCore.load(os.fspath(path)), selection, seed)


    def to_bytes(self) -> bytes:
        """The memory in its file format (versioned, checksummed), e.g. to embed in a checkpoint."""
        if self._core is None:
            raise ValueError("an empty memory has nothing to save")
        return self._core.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes, selection: str = "herding", seed: int = 0,
                   source: str = "<bytes>") -> "ExemplarMemory":
        return cls._wrap(_core.ExemplarMemoryCore.from_bytes(data, source), selection, seed)

    @classmethod
    def _wrap(cls, core, selection: str, seed: int) -> "ExemplarMemory":
        kwargs = {"budget": core.budget} if core.policy == "total" else {"per_class": core.budget}
        memory = cls(selection=selection, seed=seed, **kwargs)
        memory._core = core
        return memory


class ReservoirMemory(_StoredSamples):
    """Reservoir sampling (Vitter's Algorithm R) over a stream of batches:
    after ``t`` samples, each has probability ``capacity / t`` to be held."""

    def __init__(self, capacity: int, seed: int = 0):
        if isinstance(capacity, (int, np.integer)) and not isinstance(capacity, bool) and capacity <= 0:
            raise ValueError(f"reservoir capacity must be > 0, got {capacity}")
        self.capacity = _integer(capacity, "capacity", 1)
        self.seed = _integer(seed, "seed", 0, 2 ** 64 - 1)
        self._core = None

    def add(self, x, y) -> None:
        x = np.ascontiguousarray(_array(x, "x"))
        y = _array(y, "y")
        _check_labels(x, y)
        core = self._core
        if core is None:
            core = _core.ReservoirMemoryCore(self.capacity, list(x.shape[1:]), x.dtype, self.seed)
        core.add_batch(x, y)  # checks everything before changing anything
        self._core = core

    @property
    def seen(self) -> int:
        return 0 if self._core is None else self._core.seen

    def labels(self) -> np.ndarray:
        """Labels of :meth:`samples` (a copy): a pair taken together stays consistent
        after later additions, since a view of the samples is a snapshot too."""
        return np.zeros(0, np.int64) if self._core is None else self._core.labels()

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "ReservoirMemory":
        core = _core.ReservoirMemoryCore.load(os.fspath(path))
        memory = cls(core.capacity)
        memory._core = core
        return memory
