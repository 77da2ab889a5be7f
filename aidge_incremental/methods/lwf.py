"""Learning without Forgetting (Li & Hoiem, ECCV 2016 / TPAMI 2017).

Algorithm: before learning new classes, record the old model's responses on
the new data; then train on the new data with
    L = CE(y, s) + lambda * T^2 KL(softmax(t/T) || softmax(s/T)) [old classes]
       + alpha * ||theta_shared - theta_old||^2    (optional)
where t are the recorded old-model logits.
"""
import numpy as np

import aidge_core

from ..loss import cross_entropy_with_distillation
from ..training import one_hot
from .base import IncrementalMethod


class LwF(IncrementalMethod):
    name = "lwf"

    def __init__(self, *args, lambda_: float = 1.0, temperature: float = 2.0, l2_old: float = 0.0,
                 **kwargs):
        """lambda_ = 1 and T = 2: the paper's values (Sec. 3). l2_old: weight of the
        L2 pull toward the old weights, applied as a decoupled decay step
        (0 = off, as in most re-implementations)."""
        super().__init__(*args, **kwargs)
        self.lambda_, self.temperature, self.l2_old = lambda_, temperature, l2_old
        self.teacher = None
        self._teacher_logits = None
        self._old_params = None

    def before_step(self, step, dataset):
        self.teacher = self.model.clone() if self.n_known else None
        self._old_params = self.model.state_dict() if self.n_known and self.l2_old else None

    def prepare(self, x, y):
        self._teacher_logits = self.teacher.logits(x) if self.teacher is not None else None

    def criterion(self, logits, y, batch):
        if self._teacher_logits is None:
            return super().criterion(logits, y, batch)
        return cross_entropy_with_distillation(
            logits, one_hot(y[batch], self.n_seen), aidge_core.Tensor(self._teacher_logits[batch]),
            lambda_=self.lambda_, temperature=self.temperature, n_old=self.n_known, form="kl")

    def after_update(self):
        if self._old_params is None:
            return
        # theta <- theta - lr * alpha * (theta - theta_old) on the weights the old
        # model had (the new head rows are free).
        step = self.config.lr * self.l2_old
        for node in self.model.parameter_nodes():
            old = self._old_params[node.name()]
            tensor = node.get_operator().get_output(0)
            value = np.array(tensor, np.float32)
            rows = old.shape[0] if old.ndim else None
            value[:rows] -= step * (value[:rows] - old)
            tensor.copy_from(aidge_core.Tensor(value))
