"""iCaRL: Incremental Classifier and Representation Learning
(Rebuffi, Kolesnikov, Sperl & Lampert, CVPR 2017).

Algorithm 2 (update representation): train on the new data plus the
exemplars (the replay component) with classification loss on the labels and
distillation toward the previous model's sigmoid outputs on the old classes
(the paper's BCE form; CE on the labels, as FACIL and PyCIL do).
Algorithm 5 then 4 (memory): reduce the old exemplar sets to K / n_classes,
select the new classes' exemplars by herding.
Algorithm 1 (classify): nearest mean of exemplars (NME); the trained head
is reported too.
"""
import dataclasses

from ..memory import NearestMeanClassifier
from ..options import Option
from .distillation import TeacherDistillation
from .l2sp import L2SP_OPTIONS, WithL2SP
from .replay import REPLAY_OPTIONS, Replaying

_memory, _policy, _selection = REPLAY_OPTIONS


class ICaRL(Replaying, WithL2SP, TeacherDistillation):
    name = "icarl"
    classifiers = ("nme", "head")
    options = (
        dataclasses.replace(
            _memory, default=200, minimum=1, help="exemplars kept (the budget K)",
            source="iCaRL Sec. 4 keeps K = 2000 for 100 classes, 20 per class at the end; "
                   "200 keeps 20 per class for 10 classes"),
        _policy, _selection,
        Option("distillation_weight", float, 1.0, "weight of the distillation term", minimum=0.0,
               source="FACIL's icarl.py (lamb = 1); the paper sums the two BCE terms (Sec. 2.2)"),
        Option("temperature", float, 1.0, "distillation temperature", minimum=1e-3,
               source="iCaRL Sec. 2.2: plain sigmoids (T = 1)"),
        Option("distillation", str, "bce", "'bce': sigmoid targets (the paper); 'kl': softmax targets "
               "at the temperature (PyCIL's icarl.py, T = 2)", choices=("bce", "kl"),
               source="iCaRL Sec. 2.2 (binary cross-entropy on sigmoid outputs)"),
    ) + L2SP_OPTIONS

    def __init__(self, *args, memory: int = 200, distillation_weight: float = 1.0, temperature: float = 1.0,
                 distillation: str = "bce", **kwargs):
        if memory <= 0:
            raise ValueError(f"iCaRL needs a memory (memory > 0), got {memory}")
        super().__init__(*args, memory=memory, lambda_=distillation_weight, temperature=temperature,
                         distillation=distillation, **kwargs)
        self.nme = NearestMeanClassifier()

    @property
    def memory(self):
        """The exemplar memory (the replay component's)."""
        return self.replay.memory

    def after_step(self, step, dataset):
        super().after_step(step, dataset)  # the replay memory is updated there
        self._fit_nme(dataset)

    def _fit_nme(self, dataset):
        features = self.model.features(dataset.to_input(self.memory.samples()))
        self.nme.fit(features, self.memory.labels())

    def state_dict(self):
        state = super().state_dict()
        if self.nme.means is not None:
            state.update(nme_means=self.nme.means, nme_classes=self.nme.classes)
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        if "nme_means" in state:
            self.nme.means, self.nme.classes = state["nme_means"], state["nme_classes"]

    def predict(self, x, classifier="nme"):
        if classifier == "nme":
            return self.nme.predict(self.model.features(x))
        return super().predict(x, classifier)
