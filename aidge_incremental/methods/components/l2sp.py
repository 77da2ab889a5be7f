"""L2-SP: a pull toward the weights the step started from.

Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning with
Convolutional Networks", ICML 2018: the penalty (alpha/2)·||w − w⁰||² on the
weights shared with the starting point w⁰ (here: the model at the start of the
step; the new head rows are free). Applied as a decoupled step after each
optimiser update, w ← w − lr·alpha·(w − w⁰). Not part of LwF (Li & Hoiem have
no such term); available to any method as an extra regulariser.
"""
from __future__ import annotations

import aidge_core
import numpy as np

from ...options import Option
from ..component import Component

__all__ = ["L2SP"]


class L2SP(Component):
    """The pull toward the step's starting weights; takes ``l2sp_weight``."""
    options = (
        Option("l2sp_weight", float, 0.0, "L2-SP pull toward the step's starting weights (0: off)", minimum=0.0,
               source="Li, Grandvalet & Davoine 2018 (alpha, chosen by validation there); 0 = off"),
    )

    def __init__(self, method, options):
        super().__init__(method, options)
        self.weight = float(options["l2sp_weight"])
        self._anchor, self._lr = None, 0.0

    def before_step(self, step, dataset) -> None:
        # derived from the model at the start of the step: nothing to checkpoint
        self._anchor = self.method.model.state_dict() if self.method.n_known and self.weight else None

    def before_forward(self, batch) -> None:
        self._lr = batch.lr  # the rate of this batch's update (schedules change it)

    def after_update(self) -> None:
        if self._anchor is None:
            return
        step = self._lr * self.weight
        for node in self.method.model.parameter_nodes():
            anchor = self._anchor[node.name()]
            tensor = node.get_operator().get_output(0)
            value = np.array(tensor, np.float32)
            value[:anchor.shape[0]] -= step * (value[:anchor.shape[0]] - anchor)
            tensor.copy_from(aidge_core.Tensor(value))
