"""Exemplar selection strategies: which ``m`` of a class's ``n`` samples the
memory keeps. Each is a :class:`SelectionStrategy` registered in
:data:`SELECTIONS` under its name, with one signature; the C++ core
(``aidge_incremental._core``) does the work.

Reference: Rebuffi et al., "iCaRL: Incremental Classifier and Representation
Learning", CVPR 2017 (Algorithm 4, herding).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .. import _core
from ..profiling import phase
from ..registry import Registry
from ._checks import features_2d

__all__ = ["SELECTIONS", "SelectionStrategy", "closest_to_mean_selection", "herding_selection",
           "random_selection", "register_selection", "select_exemplars"]


def herding_selection(features, m: int) -> np.ndarray:
    """iCaRL herding (Algorithm 4) on L2-normalised features: ``m`` indices in
    selection order (each prefix is itself a herding selection)."""
    with phase("herding"):
        return _core.herding_selection(features_2d(features), m)


def closest_to_mean_selection(features, m: int) -> np.ndarray:
    """The ``m`` samples nearest the class mean (normalised features), nearest first."""
    return _core.closest_to_mean_selection(features_2d(features), m)


def random_selection(n: int, m: int, seed: int = 0) -> np.ndarray:
    """``m`` distinct indices of ``range(n)``, reproducible from ``seed``."""
    return _core.random_selection(n, m, seed)


@dataclass(frozen=True)
class SelectionStrategy:
    """``select(features, n, m, seed)``: the indices (into the class's ``n``
    samples) of the ``m`` exemplars to keep, in selection order. ``features`` is
    the class's ``[n, d]`` feature matrix when ``needs_features``, else None."""
    name: str
    select: Callable[[Optional[np.ndarray], int, int, int], np.ndarray]
    needs_features: bool
    help: str


#: every exemplar selection strategy, by name (``--selection NAME``)
SELECTIONS: Registry[SelectionStrategy] = Registry("selection", entry_points="aidge_incremental.selections")


def register_selection(strategy: SelectionStrategy, replace: bool = False) -> SelectionStrategy:
    """Make ``strategy`` usable by name in :class:`~aidge_incremental.memory.ExemplarMemory`."""
    if not isinstance(strategy, SelectionStrategy):
        raise TypeError(f"register_selection takes a SelectionStrategy, got {type(strategy).__name__}")
    return SELECTIONS.register(strategy.name, strategy, replace=replace)


register_selection(SelectionStrategy("herding", lambda f, n, m, seed: herding_selection(f, m), True,
                                     "iCaRL's herding (Algorithm 4) on L2-normalised features"))
register_selection(SelectionStrategy("random", lambda f, n, m, seed: random_selection(n, m, seed), False,
                                     "m samples drawn uniformly without replacement"))
register_selection(SelectionStrategy("closest", lambda f, n, m, seed: closest_to_mean_selection(f, m), True,
                                     "the m samples nearest the class mean"))


def select_exemplars(method: str, features: Optional[np.ndarray], m: int, seed: int = 0,
                     n: Optional[int] = None) -> np.ndarray:
    """The registered strategy ``method`` on one class: ``features`` ``[n, d]``
    (None for a strategy that needs none, then give ``n``)."""
    strategy = SELECTIONS[method]
    if features is None:
        if strategy.needs_features:
            raise ValueError(f"{method} selection needs the features of the samples")
        if n is None:
            raise ValueError(f"{method} selection needs the number of samples (n)")
    else:
        features = features_2d(features)
        n = len(features)
    return strategy.select(features, n, m, seed)
