"""Learning without Forgetting (Li & Hoiem, ECCV 2016 / TPAMI 2017).

Algorithm: before learning new classes, record the old model's responses on
the new data; then train on the new data with
    L = CE(y, s) + lambda * T^2 KL(softmax(t/T) || softmax(s/T)) [old classes]
       + alpha * ||theta_shared - theta_old||^2    (optional)
where t are the recorded old-model logits.
"""
import aidge_core
import numpy as np

from .distillation import TeacherDistillation


class LwF(TeacherDistillation):
    name = "lwf"

    def __init__(self, *args, lambda_: float = 1.0, temperature: float = 2.0, l2_old: float = 0.0,
                 **kwargs):
        """lambda_ = 1 and T = 2: the paper's values (Sec. 3). l2_old: weight of the
        L2 pull toward the old weights, applied as a decoupled decay step
        (0 = off, as in most re-implementations)."""
        super().__init__(*args, lambda_=lambda_, temperature=temperature, distillation="kl", **kwargs)
        self.l2_old = l2_old
        self._old_params = None

    def before_step(self, step, dataset):
        super().before_step(step, dataset)
        self._old_params = self.model.state_dict() if self.n_known and self.l2_old else None

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
            value[:old.shape[0]] -= step * (value[:old.shape[0]] - old)
            tensor.copy_from(aidge_core.Tensor(value))
