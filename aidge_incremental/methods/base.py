"""The base class of incremental-learning methods.

A method learns one step at a time through a few hooks, FACIL-style; the
training loop itself (:func:`aidge_incremental.training.train`) is shared:

    before_step -> grow the head -> training_data -> prepare -> train with
    criterion (and after_update) -> after_step
"""
from __future__ import annotations

from typing import Optional, Tuple

import aidge_core
import numpy as np

from ..datasets import Dataset
from ..loss import cross_entropy, tensor_value
from ..model import IncrementalModel
from ..scenario import Step
from ..training import TrainConfig, one_hot, train

__all__ = ["IncrementalMethod"]


class IncrementalMethod:
    name = "base"
    #: classifiers this method reports, the first being its own
    classifiers: Tuple[str, ...] = ("head",)

    def __init__(self, model: IncrementalModel, config: Optional[TrainConfig] = None, seed: int = 0):
        self.model = model
        self.config = config or TrainConfig()
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.n_known = 0  #: classes learnt before the current step
        self.losses: list = []

    # -- the step --------------------------------------------------------------
    def learn(self, step: Step, dataset: Dataset, progress=None) -> None:
        self.before_step(step, dataset)
        self.model.grow(len(step.classes))
        x_raw, y = self.training_data(step)
        x = dataset.to_input(x_raw)
        self.n_seen = step.n_seen
        self.prepare(x, y)
        self.losses.append(train(self.model, x, lambda out, idx: self.criterion(out, y, idx),
                                 self.config, self.rng, progress=progress,
                                 after_update=self.after_update))
        self.after_step(step, dataset)
        self.n_known = step.n_seen

    # -- hooks -------------------------------------------------------------------
    def before_step(self, step: Step, dataset: Dataset) -> None:
        """Called before the head grows (e.g. to keep a frozen teacher)."""

    def training_data(self, step: Step) -> Tuple[np.ndarray, np.ndarray]:
        """Raw samples and labels trained on during the step."""
        return step.x_train, step.y_train

    def prepare(self, x: np.ndarray, y: np.ndarray) -> None:
        """Called once with the step's training inputs (e.g. teacher logits)."""

    def criterion(self, logits: aidge_core.Tensor, y: np.ndarray, batch: np.ndarray) -> float:
        """Loss of one batch; must set ``logits.grad``. Default: cross-entropy
        over every class seen so far."""
        return tensor_value(cross_entropy(logits, one_hot(y[batch], self.n_seen)))

    def after_update(self) -> None:
        """Called after each optimiser update."""

    def after_step(self, step: Step, dataset: Dataset) -> None:
        """Called once the step's training is over."""

    # -- checkpointing ---------------------------------------------------------------
    def state_dict(self) -> dict:
        """What the method needs to continue after a step (values: JSON-able,
        NumPy arrays or bytes). The model is saved separately."""
        return {"n_known": self.n_known, "rng": self.rng.bit_generator.state, "losses": self.losses}

    def load_state_dict(self, state: dict) -> None:
        self.n_known = int(state["n_known"])
        self.rng.bit_generator.state = state["rng"]
        self.losses = list(state["losses"])

    # -- inference -----------------------------------------------------------------
    def predict(self, x: np.ndarray, classifier: str = "head") -> np.ndarray:
        """Class (relabelled) of each input (float32, model layout)."""
        if classifier != "head":
            raise ValueError(f"{self.name} has no classifier {classifier!r}; it has {self.classifiers}")
        return self.model.predict(x)
