"""The part LwF and iCaRL share: distilling a frozen copy of the previous
step's model (the teacher) into the current one (the student).

At the start of a step the model is cloned as the teacher (it never changes
during the step). For every batch the teacher runs on the very inputs the
student sees — after augmentation and whatever ``make_batch`` produced, as
FACIL's teacher does per batch — and the batch trains on
CE(labels) + lambda * distillation on the old classes' logits.
"""
from ..loss import cross_entropy, distillation, tensor_value
from .base import IncrementalMethod

TEACHER_LOGITS = "teacher_logits"  #: key of the teacher's logits in ``batch.extra``


class TeacherDistillation(IncrementalMethod):
    def __init__(self, *args, lambda_: float, temperature: float, distillation: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.lambda_, self.temperature, self.distillation = lambda_, temperature, distillation
        self.teacher = None

    def before_step(self, step, dataset):
        self.teacher = self.model.clone() if self.n_known else None
        if self.teacher is not None:
            self.teacher.set_training(False)  # the teacher always runs in inference mode

    def before_forward(self, batch):
        if self.teacher is not None:
            batch.extra[TEACHER_LOGITS] = self.teacher.logits(batch.inputs, batch_size=len(batch))

    def losses(self, batch, outputs):
        teacher = batch.extra.get(TEACHER_LOGITS)
        if teacher is None:  # first step: nothing to distill
            return super().losses(batch, outputs)
        ce = cross_entropy(outputs.logits, outputs.tensor(batch.target_matrix(self.n_seen)), accumulate=True)
        kd = distillation(outputs.logits, outputs.tensor(teacher), temperature=self.temperature,
                          n_old=self.n_known, form=self.distillation, scaling=self.lambda_, accumulate=True)
        return tensor_value(ce) + tensor_value(kd)
