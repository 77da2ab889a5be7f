"""Replay: a class-balanced exemplar memory any method can train with.

At each step the method trains on the step's new samples plus the memory's
exemplars; once the step is learnt, the old classes' sets shrink to their new
quotas and the new classes' exemplars are chosen (iCaRL's Algorithms 4 and 5,
Rebuffi et al. 2017). With ``memory = 0`` there is no replay. The memory is
part of the method's checkpointed state, so what a resumed run trains on is
exactly what the uninterrupted run trained on.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...memory import SELECTIONS, ExemplarMemory
from ...options import Option
from ..component import Component

__all__ = ["Replay"]


class Replay(Component):
    """The replay component; its memory is the method's ``replay_memory``."""
    options = (
        Option("memory", int, 0, "exemplars kept for replay (0: no replay)", minimum=0,
               source="0: the method without replay; iCaRL's paper keeps 2000 for CIFAR-100 (Sec. 4)"),
        Option("memory_policy", str, "total", "'total': the budget is shared by all classes seen; "
               "'per_class': that many exemplars per class", choices=("total", "per_class"),
               source="iCaRL (Sec. 3.2): a fixed total K, K/t per class"),
        Option("selection", str, "herding", "how exemplars are chosen", choices=SELECTIONS,
               source="iCaRL Algorithm 4 (herding)"),
    )

    def __init__(self, method, options):
        super().__init__(method, options)
        self.size, self.policy = int(options["memory"]), options["memory_policy"]
        self.selection, self.seed = options["selection"], method.seed
        self.memory: Optional[ExemplarMemory] = None
        if self.size:
            budget = {"budget": self.size} if self.policy == "total" else {"per_class": self.size}
            self.memory = ExemplarMemory(selection=self.selection, seed=self.seed, **budget)

    def __len__(self) -> int:
        return 0 if self.memory is None else len(self.memory)

    def check_scenario(self, scenario) -> None:
        self.check_budget(scenario.n_classes)

    def check_budget(self, n_classes: int) -> None:
        """Raise before training if the budget cannot hold ``n_classes`` classes."""
        if self.memory is not None:
            self.memory.quotas(n_classes)

    def before_step(self, step, dataset) -> None:
        self.check_budget(step.n_seen)

    def training_data(self, x: np.ndarray, y: np.ndarray):
        """The step's samples followed by the exemplars of the old classes."""
        if not len(self):
            return x, y
        return (np.concatenate([x, self.memory.samples()]),
                np.concatenate([y, self.memory.labels()]))

    def after_step(self, step, dataset) -> None:
        """Shrink the old sets, select the new classes' exemplars (herding and
        closest select on the model's features)."""
        if self.memory is not None:
            model = self.method.model
            self.memory.update(step.x_train, step.y_train, lambda x_raw: model.features(dataset.to_input(x_raw)))

    def state_dict(self) -> dict:
        return {"replay_memory": self.memory.to_bytes()} if len(self) else {}

    def load_state_dict(self, state: dict) -> None:
        if "replay_memory" in state:
            if self.memory is None:
                raise ValueError("the checkpoint holds a replay memory but the method has memory = 0")
            memory = ExemplarMemory.from_bytes(state["replay_memory"], selection=self.selection,
                                               seed=self.seed, source="checkpoint")
            if (memory.policy, memory.budget) != (self.policy, self.size):
                raise ValueError(f"the checkpoint's memory ({memory.policy} {memory.budget}) "
                                 f"differs from the configuration ({self.policy} {self.size})")
            self.memory = memory
