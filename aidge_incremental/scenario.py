"""Class-incremental scenarios: a dataset cut into steps of new classes.

Classes are relabelled by their position in the class order (the first
class learnt is 0, ...), as is usual in class-incremental learning, so a
model's output j is always the j-th class seen; ``class_order`` maps back.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .datasets import Dataset

__all__ = ["ClassIncrementalScenario", "Step"]


@dataclass
class Step:
    index: int
    classes: np.ndarray        #: the step's new classes (relabelled: positions in class order)
    x_train: np.ndarray        #: the step's training samples (new classes only)
    y_train: np.ndarray
    x_test: np.ndarray         #: test samples of every class seen so far
    y_test: np.ndarray

    @property
    def n_seen(self) -> int:
        return int(self.classes[-1]) + 1


class ClassIncrementalScenario:
    """``initial`` classes in the first step, then ``increment`` per step
    (B0-Inc-k when initial == increment, B50-style with a large first step).

    ``class_order`` is given explicitly, or drawn from ``seed`` (``seed=None``
    keeps the sorted order).
    """

    def __init__(self, dataset: Dataset, initial: int, increment: int,
                 class_order: Optional[Sequence[int]] = None, seed: Optional[int] = 0):
        classes = np.unique(np.concatenate([dataset.y_train, dataset.y_test]))
        if class_order is None:
            order = classes if seed is None else np.random.default_rng(seed).permutation(classes)
        else:
            order = np.asarray(class_order, dtype=np.int64)
            if sorted(order.tolist()) != classes.tolist():
                raise ValueError(f"class_order must be a permutation of the dataset's classes "
                                 f"{classes.tolist()}, got {order.tolist()}")
        if initial <= 0 or increment <= 0:
            raise ValueError(f"initial ({initial}) and increment ({increment}) must be > 0")
        if initial > len(order):
            raise ValueError(f"initial = {initial} classes, but the dataset has {len(order)}")
        if (len(order) - initial) % increment != 0:
            raise ValueError(f"{len(order)} classes cannot be cut into {initial} then steps of "
                             f"{increment}")
        self.dataset = dataset
        self.class_order = order
        self.initial, self.increment = int(initial), int(increment)
        relabel = np.full(int(classes.max()) + 1, -1, np.int64)
        relabel[order] = np.arange(len(order))
        self._y_train = relabel[dataset.y_train]
        self._y_test = relabel[dataset.y_test]
        for split, y in (("train", self._y_train), ("test", self._y_test)):
            missing = sorted(set(range(len(order))) - set(np.unique(y).tolist()))
            if missing:
                raise ValueError(f"classes {order[missing].tolist()} have no {split} sample")

    @property
    def n_classes(self) -> int:
        return len(self.class_order)

    @property
    def n_steps(self) -> int:
        return 1 + (self.n_classes - self.initial) // self.increment

    def step_classes(self, t: int) -> np.ndarray:
        start = 0 if t == 0 else self.initial + (t - 1) * self.increment
        stop = self.initial + t * self.increment
        return np.arange(start, stop)

    def step(self, t: int) -> Step:
        if not 0 <= t < self.n_steps:
            raise IndexError(f"step {t} out of range: the scenario has {self.n_steps} steps")
        classes = self.step_classes(t)
        train = np.isin(self._y_train, classes)
        test = self._y_test <= classes[-1]
        return Step(t, classes, self.dataset.x_train[train], self._y_train[train],
                    self.dataset.x_test[test], self._y_test[test])

    def __iter__(self):
        return (self.step(t) for t in range(self.n_steps))

    def __len__(self) -> int:
        return self.n_steps

    def original_labels(self, labels) -> np.ndarray:
        """Map relabelled classes back to the dataset's own labels."""
        return self.class_order[np.asarray(labels)]

    def describe(self) -> str:
        return (f"{self.dataset.name}: {self.n_classes} classes, {self.n_steps} steps "
                f"({self.initial} then {self.increment} per step), class order "
                f"{self.class_order.tolist()}")
