"""A part of a method: a hooks object the method calls in order.

Methods are composed from components (Avalanche's plugins, one short class
each) instead of mixins: replay (:mod:`.components.replay`), the frozen
teacher (:mod:`.components.teacher`), L2-SP (:mod:`.components.l2sp`),
blending replay (:mod:`.components.blending`). A method lists its component
classes in ``components``; each declares its own ``options`` (gathered into
the method's, a method may redeclare one with its own default), is built with
the method and the method's resolved option values, and sees every hook the
method sees, in the method's order:

Per step::

    check_scenario(scenario)        before any training (e.g. a budget too small)
    before_step(step, dataset)      before the head grows (keep a frozen teacher)
    training_data(x, y) -> (x, y)   what the step trains on (replay appends exemplars)
    after_step(step, dataset)       after the step's training (update the memory)

Per batch (see :mod:`aidge_incremental.training.loop`)::

    make_batch(batch) -> batch      change or replace the batch (blending)
    before_forward(batch)           see it before the forward pass (run the teacher)
    losses(batch, outputs) -> dict  extra loss terms, by name (set their gradients)
    before_update(parameters)       change the parameters' gradients (a penalty)
    after_update()                  after the optimiser update (a decoupled pull)

``state_dict``/``load_state_dict`` carry what a resumed run needs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Tuple

import numpy as np

from ..options import Option

if TYPE_CHECKING:  # pragma: no cover
    from .base import IncrementalMethod

__all__ = ["Component"]


class Component:
    """Base of the components: every hook does nothing."""
    #: the options this component takes (their values reach ``__init__``)
    options: Tuple[Option, ...] = ()

    def __init__(self, method: "IncrementalMethod", options: Dict[str, object]):
        self.method = method

    # -- per step --------------------------------------------------------------
    def check_scenario(self, scenario) -> None:
        """Raise before any training if the component cannot run this scenario."""

    def before_step(self, step, dataset) -> None:
        """Called before the head grows."""

    def training_data(self, x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The raw samples and labels the step trains on, given the method's."""
        return x, y

    def after_step(self, step, dataset) -> None:
        """Called once the step's training is over (before the method's own after_step)."""

    # -- per batch --------------------------------------------------------------
    def make_batch(self, batch):
        return batch

    def before_forward(self, batch) -> None:
        pass

    def losses(self, batch, outputs) -> dict:
        """Extra loss terms by name (each sets or accumulates its gradient)."""
        return {}

    def before_update(self, parameters: list) -> None:
        pass

    def after_update(self) -> None:
        pass

    # -- checkpoints ---------------------------------------------------------------
    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
