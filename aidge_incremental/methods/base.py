"""The base class of incremental-learning methods, and the contract between a
method and the run.

A method learns one step at a time through a few hooks (FACIL's approach
hooks); the loop itself is shared (:func:`aidge_incremental.training.train`).
A method is the paper's loss (:meth:`IncrementalMethod.objective`) plus
components (:mod:`.component`: replay, teacher, L2-SP, blending...), each a
hooks object called in order. The hooks, in the order
:meth:`IncrementalMethod.learn` calls them:

Per step::

    parts' before_step, method's before_step   before the head grows
    model.grow(new classes)
    training_data(step) -> (x, y)              the RAW samples and labels trained on:
                                               step_samples(step), then the parts'
                                               training_data(x, y) (replay appends exemplars)
    ... the batch loop ...
    parts' after_step, method's after_step     (update the memory, then fit NME)

Per batch (the loop draws rows of ``x``, augments them, converts them with
``dataset.to_input``)::

    make_batch(batch) -> Batch         change or replace the batch (blending)
    before_forward(batch)              see it before the forward pass (the teacher runs)
    -- forward pass --
    losses(batch, outputs) -> dict     the method's objective, then the parts' terms
    -- backward --
    before_update(parameters)          change the gradients (EWC's penalty)
    -- weight decay, SGD update --
    after_update()                     after each optimiser update (L2-SP's pull)

The contract of ``objective``: ``outputs.logits`` is the head's output tensor,
``outputs.tap(name)`` any node's output tensor; every activation gradient is
zero when it starts. Each loss function of :mod:`aidge_incremental.loss`
(``cross_entropy``, ``distillation``, ...) called with ``accumulate=True``
adds ``scaling · ∂loss/∂tensor`` to ``tensor.grad``; the loop's single
backward pass starts from all of them. It returns the loss terms by name.
Extra forward/backward passes (Grad-CAM) go inside ``with
isolated_pass(self.model) as p:`` — they leave the parameter gradients, the
batch's activations and the optimiser untouched.

What the run reads of a method is declared here, never guessed:
``classifiers`` (the first is the method's own), ``needs_scenario`` (built
with the scenario), ``replay_memory`` (exports calibrate int8 on it),
``nme`` (exported beside the head), ``teacher``, ``check_scenario``,
``predict``, ``state_dict``.
"""
from __future__ import annotations

from typing import ClassVar, Dict, List, Optional, Tuple, Type

import numpy as np

from ..datasets import Dataset
from ..loss import cross_entropy, tensor_value
from ..models import IncrementalModel
from ..options import Option, merge_options, resolve_options
from ..profiling import phase
from ..scenario import Step
from ..training import Batch, BatchHooks, Outputs, TrainConfig, train
from .component import Component
from .components.replay import Replay
from .components.teacher import Teacher

__all__ = ["IncrementalMethod"]


class IncrementalMethod(BatchHooks):
    """Base of the methods: ``name``, the method's own ``options``, its
    ``components``; the constructor takes every declared option as a keyword
    (defaults from the declarations)."""
    name: ClassVar[str] = "base"
    #: the method's own options (a redeclared component option replaces the component's)
    options: ClassVar[Tuple[Option, ...]] = ()
    #: the component classes the method is composed of, in calling order
    components: ClassVar[Tuple[Type[Component], ...]] = ()
    #: classifiers this method reports, the first being its own
    classifiers: ClassVar[Tuple[str, ...]] = ("head",)
    #: built with ``scenario=`` (its training data is derived from the scenario)
    needs_scenario: ClassVar[bool] = False
    #: its nearest-mean-of-exemplars classifier, when it has one (exported beside the head)
    nme = None

    def __init__(self, model: IncrementalModel, config: Optional[TrainConfig] = None, seed: int = 0,
                 scenario=None, **options):
        values = resolve_options(self.declared_options(), options, f"method {self.name!r}")
        if scenario is not None and not self.needs_scenario:
            raise ValueError(f"method {self.name!r} is not built with a scenario")
        self.model = model
        self.config = config or TrainConfig()
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.scenario = scenario
        self.n_known = 0  #: classes learnt before the current step
        self.n_seen = 0   #: classes seen once the current step is learnt
        self.losses_per_epoch: list = []
        self.last_losses: Dict[str, float] = {}  #: the named loss terms of the last batch
        for option in type(self).options:
            setattr(self, option.name, values[option.name])
        self.parts: List[Component] = [component(self, values) for component in self.components]
        self.replay: Optional[Replay] = next((p for p in self.parts if isinstance(p, Replay)), None)

    @classmethod
    def declared_options(cls) -> Tuple[Option, ...]:
        """Every option the method takes: its components', then its own."""
        return merge_options(*(component.options for component in cls.components), cls.options)

    # -- the declared contract ---------------------------------------------------------
    @property
    def replay_memory(self):
        """The replay buffer, if the method keeps exemplars (None otherwise)."""
        return self.replay.memory if self.replay is not None else None

    @property
    def teacher(self) -> Optional[IncrementalModel]:
        """The frozen previous model, if the method distils one (None in the first step)."""
        part = next((p for p in self.parts if isinstance(p, Teacher)), None)
        return None if part is None else part.model

    def head_outputs(self, n_seen: int, scenario) -> int:
        """How many outputs the head has once ``n_seen`` classes of ``scenario`` are
        learnt: one per class seen (a growing head); checked when a checkpoint is restored."""
        return n_seen

    def check_scenario(self, scenario) -> None:
        """Raise before any training if the method cannot run ``scenario``
        (e.g. a memory budget smaller than its number of classes)."""
        for part in self.parts:
            part.check_scenario(scenario)

    # -- the step --------------------------------------------------------------
    def learn(self, step: Step, dataset: Dataset, progress=None, on_epoch=None) -> None:
        """Learn one step: :meth:`start_step`, the batch loop, :meth:`finish_step`;
        ``on_epoch`` receives the loop's :class:`~aidge_incremental.training.EpochRecord` of each epoch."""
        config = self.config.for_step(step.index)
        x, y = self.start_step(step, dataset)
        with phase("train"):
            self.losses_per_epoch.append(train(
                self.model, x, y, self, config, self.rng, to_input=dataset.to_input,
                augmentation=config.augmentation(dataset), progress=progress, on_epoch=on_epoch))
        self.finish_step(step, dataset)

    def start_step(self, step: Step, dataset: Dataset) -> Tuple[np.ndarray, np.ndarray]:
        """Everything before the step's first batch (the components' and the method's
        before_step, the head grown); returns the raw samples and labels to train on.
        For a loop of your own: ``x, y = m.start_step(...)``, batches through the
        hooks, then ``m.finish_step(...)``."""
        for part in self.parts:
            part.before_step(step, dataset)
        self.before_step(step, dataset)
        self.model.grow(len(step.classes))
        self.n_seen = step.n_seen
        return self.training_data(step)

    def finish_step(self, step: Step, dataset: Dataset) -> None:
        """Everything after the step's last batch (the components' after_step, then the method's)."""
        for part in self.parts:
            part.after_step(step, dataset)
        self.after_step(step, dataset)
        self.n_known = step.n_seen

    # -- the method's own per-step hooks ------------------------------------------------
    def before_step(self, step: Step, dataset: Dataset) -> None:
        """Called before the head grows, after the components' before_step."""

    def step_samples(self, step: Step) -> Tuple[np.ndarray, np.ndarray]:
        """The method's own raw samples (as stored) and labels for the step; default:
        the step's new classes (Joint: every class seen)."""
        return step.x_train, step.y_train

    def training_data(self, step: Step) -> Tuple[np.ndarray, np.ndarray]:
        """What the step trains on: :meth:`step_samples`, then each component's
        additions (replay appends its exemplars)."""
        x, y = self.step_samples(step)
        for part in self.parts:
            x, y = part.training_data(x, y)
        return x, y

    def after_step(self, step: Step, dataset: Dataset) -> None:
        """Called once the step's training is over, after the components' after_step."""

    # -- per batch (the loop's hooks: components first, in order) ------------------------
    def make_batch(self, batch: Batch) -> Batch:
        for part in self.parts:
            batch = part.make_batch(batch)
        return batch

    def before_forward(self, batch: Batch) -> None:
        for part in self.parts:
            part.before_forward(batch)

    def losses(self, batch: Batch, outputs: Outputs) -> Dict[str, float]:
        """The method's objective, then the components' terms (the loop sums them)."""
        terms = dict(self.objective(batch, outputs))
        for part in self.parts:
            terms.update(part.losses(batch, outputs))
        self.last_losses = terms
        return terms

    def objective(self, batch: Batch, outputs: Outputs) -> Dict[str, float]:
        """The method's loss terms by name; default: cross-entropy over every class
        seen so far, on the one-hot labels or the batch's soft targets."""
        target = outputs.tensor(batch.target_matrix(self.n_seen))
        return {"classification": tensor_value(cross_entropy(outputs.logits, target, accumulate=True))}

    def before_update(self, parameters: list) -> None:
        for part in self.parts:
            part.before_update(parameters)

    def after_update(self) -> None:
        for part in self.parts:
            part.after_update()

    # -- checkpointing ---------------------------------------------------------------
    def state_dict(self) -> dict:
        """What the method needs to continue after a step (values: JSON-able,
        NumPy arrays or bytes). The model is saved separately."""
        state = {"n_known": self.n_known, "rng": self.rng.bit_generator.state, "losses": self.losses_per_epoch}
        for part in self.parts:
            state.update(part.state_dict())
        return state

    def load_state_dict(self, state: dict) -> None:
        for part in self.parts:
            part.load_state_dict(state)
        self.n_known = int(state["n_known"])
        self.rng.bit_generator.state = state["rng"]
        self.losses_per_epoch = list(state["losses"])

    # -- inference -----------------------------------------------------------------
    def scores(self, x: np.ndarray, classifier: str = "head") -> Optional[np.ndarray]:
        """Scores [N, classes seen] of ``classifier`` for each input, the higher the
        likelier (:meth:`predict` answers their argmax): top-5 and task-aware
        accuracy are computed from them. None for a classifier without scores."""
        if classifier != "head":
            return None
        return self.model.logits(x)[:, :self.n_known]  # a head with outputs for classes to come (DER++'s)

    def evaluate_all(self, x: np.ndarray) -> Dict[str, Tuple[np.ndarray, Optional[np.ndarray]]]:
        """:meth:`evaluate` of every classifier, ``{name: (predictions, scores)}``;
        a method whose classifiers share one pass of the model overrides it."""
        return {name: self.evaluate(x, name) for name in self.classifiers}

    def evaluate(self, x: np.ndarray, classifier: str = "head") -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """``(predict(x, classifier), scores(x, classifier))`` from one pass of the
        model where the classifier allows it (a run evaluates every step so)."""
        if classifier == "head" and self.model.n_classes == self.n_known:
            logits = self.model.logits(x)
            return logits.argmax(axis=1), logits
        return self.predict(x, classifier), self.scores(x, classifier)

    def predict(self, x: np.ndarray, classifier: str = "head") -> np.ndarray:
        """Class (relabelled) of each input (float32, model layout)."""
        if classifier != "head":
            raise ValueError(f"{self.name} has no classifier {classifier!r}; it has {self.classifiers}")
        return self.model.predict(x)
