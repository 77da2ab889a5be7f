"""Replay memory: exemplar selection strategies, class-balanced exemplar sets,
reservoir sampling and the nearest-mean-of-exemplars classifier.

A thin layer over the C++ core (``aidge_incremental._core``): the selection
algorithms, the storage and the file format live there.

- :mod:`.selection`: herding, random, closest (a registry, one signature);
- :mod:`.buffers`: :class:`ExemplarMemory` (under a budget) and :class:`ReservoirMemory`;
- :mod:`.nme`: :class:`NearestMeanClassifier`.
"""
from .._core import CorruptFileError
from .buffers import ExemplarMemory, ReservoirMemory
from .nme import NearestMeanClassifier, class_means, nme_classify
from .selection import (SELECTIONS, SelectionStrategy, closest_to_mean_selection, herding_selection,
                        random_selection, register_selection, select_exemplars)

__all__ = [
    "CorruptFileError", "ExemplarMemory", "NearestMeanClassifier", "ReservoirMemory", "SELECTIONS",
    "SelectionStrategy", "class_means", "closest_to_mean_selection", "herding_selection", "nme_classify",
    "random_selection", "register_selection", "select_exemplars",
]
