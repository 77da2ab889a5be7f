"""The base class of incremental-learning methods.

A method learns one step at a time through a few hooks (FACIL's approach
hooks, Avalanche's plugin callbacks, in one short class); the loop itself is
shared (:func:`aidge_incremental.training.train`). The hooks, in the order
they are called by :meth:`IncrementalMethod.learn`:

Per step::

    before_step(step, dataset)         before the head grows (keep a frozen teacher)
    model.grow(new classes)
    training_data(step) -> (x, y)      the RAW samples and labels trained on
    prepare(x, y)                      once, before the first batch
    ... the batch loop ...
    after_step(step, dataset)          e.g. update the exemplar memory

Per batch (the loop draws rows of ``x``, augments them, converts them with
``dataset.to_input``)::

    make_batch(batch) -> Batch         change or replace the batch (mixup)
    before_forward(batch)              see it before the forward pass
                                       (TeacherDistillation runs the teacher here)
    -- forward pass --
    losses(batch, outputs) -> float    set/accumulate the gradients of the outputs
                                       the losses are on; return the loss value
    -- backward, weight decay, SGD update --
    after_update()                     after each optimiser update

The contract of ``losses``: ``outputs.logits`` is the head's output tensor,
``outputs.tap(name)`` any node's output tensor; every activation gradient is
zero when it starts. Each loss function of :mod:`aidge_incremental.loss`
(``cross_entropy``, ``distillation``, ...) called with ``accumulate=True``
adds ``scaling · ∂loss/∂tensor`` to ``tensor.grad``; the loop's single
backward pass starts from all of them. Extra forward/backward passes
(Grad-CAM) go inside ``with isolated_pass(self.model) as p:`` — they leave the
parameter gradients, the batch's activations and the optimiser untouched.

A :class:`~aidge_incremental.training.Batch` carries ``inputs`` (float32
model input), ``labels``, ``indices`` (rows of ``x``; -1 for produced
samples), optional soft ``targets`` ``[B, n_seen]``, an ``extra`` dict for
method data, and the ``epoch`` and ``lr`` of its update.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ..datasets import Dataset
from ..loss import cross_entropy, tensor_value
from ..model import IncrementalModel
from ..scenario import Step
from ..training import Batch, BatchHooks, Outputs, TrainConfig, train

__all__ = ["IncrementalMethod"]


class IncrementalMethod(BatchHooks):
    name = "base"
    #: classifiers this method reports, the first being its own
    classifiers: Tuple[str, ...] = ("head",)

    def __init__(self, model: IncrementalModel, config: Optional[TrainConfig] = None, seed: int = 0):
        self.model = model
        self.config = config or TrainConfig()
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.n_known = 0  #: classes learnt before the current step
        self.n_seen = 0   #: classes seen once the current step is learnt
        self.losses_per_epoch: list = []

    # -- the step --------------------------------------------------------------
    def learn(self, step: Step, dataset: Dataset, progress=None) -> None:
        config = self.config.for_step(step.index)
        self.before_step(step, dataset)
        self.model.grow(len(step.classes))
        self.n_seen = step.n_seen
        x, y = self.training_data(step)
        self.prepare(x, y)
        self.losses_per_epoch.append(train(
            self.model, x, y, self, config, self.rng, to_input=dataset.to_input,
            augmentation=config.augmentation(dataset.name), progress=progress))
        self.after_step(step, dataset)
        self.n_known = step.n_seen

    # -- per-step hooks -----------------------------------------------------------
    def before_step(self, step: Step, dataset: Dataset) -> None:
        """Called before the head grows (e.g. to keep a frozen teacher)."""

    def training_data(self, step: Step) -> Tuple[np.ndarray, np.ndarray]:
        """Raw samples (as stored) and labels trained on during the step."""
        return step.x_train, step.y_train

    def prepare(self, x: np.ndarray, y: np.ndarray) -> None:
        """Called once with the step's raw training samples and labels, before the first batch."""

    def after_step(self, step: Step, dataset: Dataset) -> None:
        """Called once the step's training is over."""

    # -- per-batch hooks (see the module docstring) ---------------------------------
    def losses(self, batch: Batch, outputs: Outputs) -> float:
        """Default: cross-entropy over every class seen so far, on the one-hot
        labels or the batch's soft targets."""
        target = outputs.tensor(batch.target_matrix(self.n_seen))
        return tensor_value(cross_entropy(outputs.logits, target, accumulate=True))

    # -- checkpointing ---------------------------------------------------------------
    def state_dict(self) -> dict:
        """What the method needs to continue after a step (values: JSON-able,
        NumPy arrays or bytes). The model is saved separately."""
        return {"n_known": self.n_known, "rng": self.rng.bit_generator.state,
                "losses": self.losses_per_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.n_known = int(state["n_known"])
        self.rng.bit_generator.state = state["rng"]
        self.losses_per_epoch = list(state["losses"])

    # -- inference -----------------------------------------------------------------
    def predict(self, x: np.ndarray, classifier: str = "head") -> np.ndarray:
        """Class (relabelled) of each input (float32, model layout)."""
        if classifier != "head":
            raise ValueError(f"{self.name} has no classifier {classifier!r}; it has {self.classifiers}")
        return self.model.predict(x)
