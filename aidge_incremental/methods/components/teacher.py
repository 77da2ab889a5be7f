"""The frozen teacher: a copy of the previous step's model that the methods
which distil (LwF, iCaRL, LwM...) compare the student with.

At the start of a step with old classes the model is cloned as the teacher,
in inference mode (BatchNorm uses its running statistics), and never changes
during the step. For every batch the teacher runs on the very inputs the
student sees — after augmentation and whatever ``make_batch`` produced, as
FACIL's teacher does per batch —; its logits are in
``batch.extra[TEACHER_LOGITS]`` for the method's loss.
"""
from __future__ import annotations

from ...profiling import phase
from ..component import Component

__all__ = ["TEACHER_LOGITS", "Teacher"]

TEACHER_LOGITS = "teacher_logits"  #: key of the teacher's logits in ``batch.extra``


class Teacher(Component):
    """Keeps ``model``: the frozen previous model (None in the first step)."""

    def __init__(self, method, options):
        super().__init__(method, options)
        self.model = None

    def before_step(self, step, dataset) -> None:
        self.model = self.method.model.clone() if self.method.n_known else None
        if self.model is not None:
            self.model.set_training(False)  # the teacher always runs in inference mode

    def before_forward(self, batch) -> None:
        if self.model is not None:
            with phase("teacher"):
                # the student's graph runs the teacher's weights (no second graph)
                batch.extra[TEACHER_LOGITS] = self.method.model.logits_of(self.model, batch.inputs)
