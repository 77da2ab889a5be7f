"""Replay buffers over the C++ core: the class-balanced :class:`ExemplarMemory`
(iCaRL, PyCIL, FACIL) and the stream :class:`ReservoirMemory`.

Samples are stored exactly as given (uint8 images stay uint8) and read back as
NumPy views of the memory's own buffer, without copying.

Each sample may carry per-sample float32 arrays, the *extras* (DER++ stores the
logits a sample had): declared at creation as ``{name: width}``, given with every
addition as ``{name: array [n, columns]}``, kept, replaced and saved with their
sample. A wider array widens the stored one (older rows zero-padded); each row
remembers its valid columns: ``extra(name) -> (values, valid)``.

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
    def sample_shape(self) -> tuple:
        """The shape of one held sample (() while empty)."""
        return tuple(self._core.sample_shape) if self._core is not None else ()

    @property
    def dtype(self):
        return self._core.dtype if self._core is not None else None

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

    def to_bytes(self) -> bytes:
        """The memory in its file format (versioned, checksummed), e.g. to embed in a checkpoint."""
        if self._core is None:
            raise ValueError("an empty memory has nothing to save")
        return self._core.to_bytes()

    @property
    def extra_widths(self) -> dict:
        """``{name: width}`` of the extra arrays each sample carries."""
        return dict(self._extras) if self._core is None else dict(self._core.extra_widths)

    def extra(self, name: str):
        """``(values, valid)`` of the extra array ``name``, copies in the order of
        :meth:`samples`: ``values [n, width]`` float32, row i valid in its first
        ``valid[i]`` columns (zero beyond)."""
        if name not in self.extra_widths:
            raise KeyError(f"the memory has no extra array {name!r} (it has: {sorted(self.extra_widths) or 'none'})")
        if self._core is None:
            return np.zeros((0, self._extras[name]), np.float32), np.zeros(0, np.int64)
        return self._core.extra(name)


class ExemplarMemory(_StoredSamples):
    """Class-balanced exemplar memory under a budget (iCaRL, PyCIL, FACIL).

    Exactly one of:

    - ``budget=K``: a fixed total of K exemplars shared by all classes seen,
      ``K // n`` each, the first ``K % n`` classes (in arrival order) one more;
    - ``per_class=m``: m exemplars per class, the total growing with classes.

    ``selection`` is ``"herding"`` (iCaRL's default), ``"random"`` or
    ``"closest"`` (to the class mean). Adding classes first reduces the old
    classes' sets to their new quotas by keeping their prefix (iCaRL
    Algorithm 5), so herding order is preserved. ``extras``: ``{name: width}``
    of float32 arrays each exemplar carries (module docstring).
    """

    def __init__(self, budget: Optional[int] = None, per_class: Optional[int] = None,
                 selection: str = "herding", seed: int = 0, extras: Optional[dict] = None):
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
        self._extras = _extra_widths(extras)
        self._core = None

    # -- filling -------------------------------------------------------------
    def update(self, x, y, features: Optional[FeatureSource] = None, extras: Optional[dict] = None) -> None:
        """Add the classes of a new step, choosing their exemplars.

        ``x``: the step's samples (any shape and dtype, stored as given);
        ``y``: their labels; ``features``: an array ``[n, d]`` or a function
        ``x -> features`` (needed by herding and closest, not by random);
        ``extras``: ``{name: array [n, columns]}`` for each declared extra array,
        kept with the exemplars chosen. Nothing changes if any check fails.
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
        extras = _extra_rows(extras, self.extra_widths, len(x))
        if self._core is None:
            core = _core.ExemplarMemoryCore(self.policy, self.budget, list(x.shape[1:]), x.dtype,
                                            self._extras or None)
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
        chosen, chosen_extras = [], []
        for label, quota in zip(new_classes, quotas):
            idx = np.flatnonzero(y == label)
            m = min(quota, len(idx))
            order = strategy.select(None if feats is None else feats[idx], len(idx), m,
                                    (self.seed + label) % 2 ** 64)
            chosen.append(np.ascontiguousarray(x[idx[order]]))
            chosen_extras.append({name: values[idx[order]] for name, values in extras.items()})

        # One all-or-nothing call: reduce the old sets, add the new ones.
        core.add_classes(new_classes, chosen, chosen_extras if extras else None)
        self._core = core

    # -- reading -------------------------------------------------------------
    @property
    def classes(self) -> list:
        return [label for label, _ in self.class_sets]

    @property
    def class_sets(self) -> list:
        """``[(label, number of exemplars), ...]`` in arrival order."""
        return [] if self._core is None else list(self._core.class_sets)

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

    @classmethod
    def from_bytes(cls, data: bytes, selection: str = "herding", seed: int = 0,
                   source: str = "<bytes>") -> "ExemplarMemory":
        return cls._wrap(_core.ExemplarMemoryCore.from_bytes(data, source), selection, seed)

    @classmethod
    def _wrap(cls, core, selection: str, seed: int) -> "ExemplarMemory":
        kwargs = {"budget": core.budget} if core.policy == "total" else {"per_class": core.budget}
        memory = cls(selection=selection, seed=seed, extras=dict(core.extra_widths), **kwargs)
        memory._core = core
        return memory


class ReservoirMemory(_StoredSamples):
    """Reservoir sampling (Vitter's Algorithm R) over a stream of batches:
    after ``t`` samples, each has probability ``capacity / t`` to be held; a
    sample's extra arrays (``extras``: ``{name: width}``) are kept or replaced
    with it."""

    def __init__(self, capacity: int, seed: int = 0, extras: Optional[dict] = None):
        if isinstance(capacity, (int, np.integer)) and not isinstance(capacity, bool) and capacity <= 0:
            raise ValueError(f"reservoir capacity must be > 0, got {capacity}")
        self.capacity = integer(capacity, "capacity", 1)
        self.seed = integer(seed, "seed", 0, 2 ** 64 - 1)
        self._extras = _extra_widths(extras)
        self._core = None

    def add(self, x, y, extras: Optional[dict] = None) -> None:
        """Offer the samples ``x`` with labels ``y`` (and ``{name: array [n, columns]}``
        for each declared extra array); nothing changes if a check fails."""
        x = np.ascontiguousarray(array(x, "x"))
        y = array(y, "y")
        check_labels(x, y)
        extras = _extra_rows(extras, self.extra_widths, len(x))
        core = self._core
        if core is None:
            core = _core.ReservoirMemoryCore(self.capacity, list(x.shape[1:]), x.dtype, self.seed,
                                             self._extras or None)
        core.add_batch(x, y, extras or None)  # checks everything before changing anything
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
        """Read a reservoir written by :meth:`save`; raises CorruptFileError for a bad file."""
        return cls._wrap(_core.ReservoirMemoryCore.load(os.fspath(path)))

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> "ReservoirMemory":
        return cls._wrap(_core.ReservoirMemoryCore.from_bytes(data, source))

    @classmethod
    def _wrap(cls, core) -> "ReservoirMemory":
        memory = cls(core.capacity, extras=dict(core.extra_widths))
        memory._core = core
        return memory


def _extra_widths(extras: Optional[dict]) -> dict:
    """The declared extra arrays, ``{name: width}`` (checked again by the core)."""
    if extras is None:
        return {}
    if not isinstance(extras, dict):
        raise TypeError(f"extras must be a mapping {{name: width}}, got {type(extras).__name__}")
    return {name: integer(width, f"extras[{name!r}]", 1, 1 << 24) for name, width in extras.items()}


def _extra_rows(extras: Optional[dict], declared: dict, n: int) -> dict:
    """``{name: float32 array [n, columns]}`` naming exactly the declared arrays."""
    extras = {} if extras is None else extras
    if not isinstance(extras, dict):
        raise TypeError(f"extras must be a mapping {{name: array}}, got {type(extras).__name__}")
    if set(extras) != set(declared):
        raise ValueError(f"extras must name the memory's extra arrays {sorted(declared) or 'none'}, "
                         f"got {sorted(extras)}")
    out = {}
    for name, values in extras.items():
        values = array(values, f"extras[{name!r}]")
        if values.ndim != 2 or len(values) != n:
            raise ValueError(f"extras[{name!r}] must be an array [{n}, columns], one row per sample; "
                             f"got shape {values.shape}")
        if values.dtype.kind in "fc" and not np.all(np.isfinite(values)):  # every row, chosen or not
            row, column = np.argwhere(~np.isfinite(values))[0]
            raise ValueError(f"extras[{name!r}] holds {values[row, column]} at [{row}, {column}]")
        out[name] = values
    return out
