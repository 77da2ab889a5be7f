"""The part LwF and iCaRL share: distilling a frozen copy of the previous
step's model (the teacher) into the current one (the student).

At the start of a step the model is cloned as the teacher; its logits on the
step's training inputs are recorded once (the teacher never changes during
the step); each batch then trains on CE(labels) + lambda * distillation on
the old classes' logits.
"""
import aidge_core

from ..loss import cross_entropy_with_distillation
from ..training import one_hot
from .base import IncrementalMethod


class TeacherDistillation(IncrementalMethod):
    def __init__(self, *args, lambda_: float, temperature: float, distillation: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.lambda_, self.temperature, self.distillation = lambda_, temperature, distillation
        self.teacher = None
        self._teacher_logits = None

    def before_step(self, step, dataset):
        self.teacher = self.model.clone() if self.n_known else None

    def prepare(self, x, y):
        self._teacher_logits = self.teacher.logits(x) if self.teacher is not None else None

    def criterion(self, logits, y, batch):
        if self._teacher_logits is None:  # first step: nothing to distill
            return super().criterion(logits, y, batch)
        return cross_entropy_with_distillation(
            logits, one_hot(y[batch], self.n_seen), aidge_core.Tensor(self._teacher_logits[batch]),
            lambda_=self.lambda_, temperature=self.temperature, n_old=self.n_known,
            form=self.distillation)
