"""Replay buffers over the C++ core: the class-balanced :class:`ExemplarMemory`
(iCaRL, PyCIL, FACIL) and the stream :class:`ReservoirMemory`.

Samples are stored exactly as given (uint8 images stay uint8) and read back as
NumPy views of the memory's own buffer, without copying.

Reference: Rebuffi et al., "iCaRL: Incremental Classifier and Representation
Learning", CVPR 2017 (Algorithms 4 and 5); Vitter, "Random sampling with a
reservoir", ACM TOMS 1985 (Algorithm R).
"""
from __future__ import annotations

import os
from typing import Callable, Optional, Union

import numpy as np

from .. import _core
from ._checks import array, check_labels, features_2d, integer
from .selection import SELECTIONS

__all__ = ["ExemplarMemory", "ReservoirMemory"]

FeatureSource = Union[np.ndarray, Callable[[np.ndarray], np.ndarray]]


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
        value = integer(value, name, 1)
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
        self.policy = "total" if budget is not None else "per_class"
        self.budget = value
        self.selection = selection
        self.seed = integer(seed, "seed", 0, 2 ** 64 - 1)
        self._core = None

    # -- filling -------------------------------------------------------------
    def update(self, x, y, features: Optional[FeatureSource] = None) -> None:
        """Add the classes of a new step, choosing their exemplars.

        ``x``: the step's samples (any shape and dtype, stored as given);
        ``y``: their labels; ``features``: an array ``[n, d]`` or a function
        ``x -> features`` (needed by herding and closest, not by random).
        Nothing changes if any check fails.
        """
        x = array(x, "x")
        y = array(y, "y")
        check_labels(x, y)
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

        strategy = SELECTIONS[self.selection]
        feats = None
        if strategy.needs_features:
            if features is None:
                raise ValueError(f"{self.selection} selection needs features (array or function)")
            feats = features(x) if callable(features) else features
            feats = features_2d(feats, len(x))
        chosen = []
        for label, quota in zip(new_classes, quotas):
            idx = np.flatnonzero(y == label)
            m = min(quota, len(idx))
            order = strategy.select(None if feats is None else feats[idx], len(idx), m,
                                    (self.seed + label) % 2 ** 64)
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
        self.capacity = integer(capacity, "capacity", 1)
        self.seed = integer(seed, "seed", 0, 2 ** 64 - 1)
        self._core = None

    def add(self, x, y) -> None:
        x = np.ascontiguousarray(array(x, "x"))
        y = array(y, "y")
        check_labels(x, y)
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
