"""Learning-rate schedules, evaluated per epoch, with an optional linear warm-up
per update.

- ``constant``: ``lr``.
- ``multistep``: ``lr · factor^(number of milestones ≤ epoch)``, PyTorch's
  ``MultiStepLR`` stepped once per epoch. iCaRL's reference code: lr 2.0
  divided by 5 (factor 0.2) at epochs 49 and 63 of 70; PyCIL: milestones
  with factor 0.1. (aidge_learning's ``step_lr`` only has a fixed period, so
  it cannot express irregular milestones.)
- ``cosine``: ``min_lr + (lr − min_lr) · (1 + cos(π·epoch/epochs)) / 2``,
  PyTorch's ``CosineAnnealingLR`` with ``T_max = epochs`` stepped per epoch;
  the same curve as ``aidge_learning.cosine_lr(lr, epochs)`` with
  ``min_decay = min_lr / lr``.
- warm-up over the first ``warmup_epochs`` epochs: update ``k`` (counted
  from 0 over the whole step) is scaled by ``min(1, (k+1)/(W+1))`` with
  ``W = warmup_epochs × updates per epoch`` — aidge_learning's
  ``set_nb_warmup_steps`` convention.

The optimiser is ``aidge_learning.SGD``; the loop hands it each update's rate
(see :mod:`aidge_incremental.training.loop`).
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Sequence, Tuple

__all__ = ["SCHEDULES", "LRSchedule"]

SCHEDULES = ("constant", "multistep", "cosine")


@dataclass(frozen=True)
class LRSchedule:
    lr: float
    epochs: int
    kind: str = "constant"
    milestones: Tuple[int, ...] = ()
    factor: float = 0.1
    min_lr: float = 0.0
    warmup_epochs: int = 0

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {self.kind!r}: one of {list(SCHEDULES)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if int(self.epochs) <= 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        milestones = tuple(int(m) for m in self.milestones)
        object.__setattr__(self, "milestones", milestones)
        if self.kind == "multistep":
            if not milestones:
                raise ValueError("the multistep schedule needs milestones (epochs where lr is multiplied "
                                 "by factor)")
            if list(milestones) != sorted(set(milestones)) or milestones[0] <= 0:
                raise ValueError(f"milestones must be strictly increasing epochs > 0, got {list(milestones)}")
            # A milestone at or past the last epoch never applies: refused, as a warm-up that long is
            # (PyTorch accepts it silently); a shortened protocol gives its own --milestones.
            late = [m for m in milestones if m >= int(self.epochs)]
            if late:
                raise ValueError(f"milestones {late} are at or past the last epoch (epochs = {int(self.epochs)}, "
                                 f"counted from 0): they would never apply; drop them or give more epochs")
            if not 0 < self.factor < 1:
                raise ValueError(f"factor must be in (0, 1), got {self.factor}")
        elif milestones:
            raise ValueError(f"milestones apply to the multistep schedule only, not {self.kind!r}")
        if self.kind == "cosine" and not 0 <= self.min_lr < self.lr:
            raise ValueError(f"min_lr must be in [0, lr), got {self.min_lr}")
        if not 0 <= int(self.warmup_epochs) < self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs), got {self.warmup_epochs}")

    def epoch_lr(self, epoch: int) -> float:
        """The rate of ``epoch`` (counted from 0) before warm-up."""
        if self.kind == "multistep":
            return self.lr * self.factor ** bisect.bisect_right(self.milestones, epoch)
        if self.kind == "cosine":
            return self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * epoch / self.epochs)) / 2
        return self.lr

    def lr_at(self, epoch: int, update: int, updates_per_epoch: int) -> float:
        """The rate of ``update`` (counted from 0 over the whole step) in ``epoch``."""
        lr = self.epoch_lr(epoch)
        warmup = int(self.warmup_epochs) * updates_per_epoch
        if update < warmup:
            lr *= (update + 1) / (warmup + 1)
        return lr

    def profile(self, updates_per_epoch: int) -> Sequence[float]:
        """Every update's rate over the step (for plots and checks)."""
        return [self.lr_at(e, e * updates_per_epoch + i, updates_per_epoch)
                for e in range(self.epochs) for i in range(updates_per_epoch)]
