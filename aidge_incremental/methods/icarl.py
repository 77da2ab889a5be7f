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

from ..loss import cross_entropy, distillation, tensor_value
from ..memory import NearestMeanClassifier
from ..options import Option
from .base import IncrementalMethod
from .components import L2SP, TEACHER_LOGITS, Replay, Teacher

__all__ = ["ICaRL"]

_memory = next(o for o in Replay.options if o.name == "memory")


class ICaRL(IncrementalMethod):
    name = "icarl"
    classifiers = ("nme", "head")
    components = (Replay, L2SP, Teacher)
    options = (
        dataclasses.replace(
            _memory, default=200, minimum=1, help="exemplars kept (the budget K)",
            source="iCaRL Sec. 4 keeps K = 2000 for 100 classes, 20 per class at the end; "
                   "200 keeps 20 per class for 10 classes"),
        Option("distillation_weight", float, 1.0, "weight of the distillation term", minimum=0.0,
               source="FACIL's icarl.py (lamb = 1); the paper sums the two BCE terms (Sec. 2.2)"),
        Option("temperature", float, 1.0, "distillation temperature", minimum=1e-3,
               source="iCaRL Sec. 2.2: plain sigmoids (T = 1)"),
        Option("distillation", str, "bce", "'bce': sigmoid targets (the paper); 'kl': softmax targets "
               "at the temperature (PyCIL's icarl.py, T = 2)", choices=("bce", "kl"),
               source="iCaRL Sec. 2.2 (binary cross-entropy on sigmoid outputs)"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.nme = NearestMeanClassifier()

    def objective(self, batch, outputs):
        """Algorithm 2: classification on the labels + distillation on the old classes."""
        teacher = batch.extra.get(TEACHER_LOGITS)
        if teacher is None:  # first step: nothing to distill
            return super().objective(batch, outputs)
        ce = cross_entropy(outputs.logits, outputs.tensor(batch.target_matrix(self.n_seen)), accumulate=True)
        kd = distillation(outputs.logits, outputs.tensor(teacher), temperature=self.temperature,
                          n_old=self.n_known, form=self.distillation, scaling=self.distillation_weight,
                          accumulate=True)
        return {"classification": tensor_value(ce), "distillation": tensor_value(kd)}

    def after_step(self, step, dataset):
        # the replay component has updated the memory (components run first)
        memory = self.replay_memory
        self.nme.fit(self.model.features(dataset.to_input(memory.samples())), memory.labels())

    def state_dict(self):
        state = super().state_dict()
        if self.nme.means is not None:
            state.update(nme_means=self.nme.means, nme_classes=self.nme.classes)
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        if "nme_means" in state:
            self.nme.means, self.nme.classes = state["nme_means"], state["nme_classes"]

    def scores(self, x, classifier="nme"):
        if classifier == "nme":
            return self.nme.scores(self.model.features(x), self.model.n_classes)
        return super().scores(x, classifier)

    def evaluate_all(self, x):
        if set(self.classifiers) != {"nme", "head"} or self.model.n_classes != self.n_known:
            return super().evaluate_all(x)
        features, logits = self.model.features_and_logits(x)  # both classifiers from one pass
        evaluated = {"nme": (self.nme.predict(features), self.nme.scores(features, self.model.n_classes)),
                     "head": (logits.argmax(axis=1), logits)}
        return {name: evaluated[name] for name in self.classifiers}

    def evaluate(self, x, classifier="nme"):
        if classifier == "nme":
            features = self.model.features(x)
            return self.nme.predict(features), self.nme.scores(features, self.model.n_classes)
        return super().evaluate(x, classifier)

    def predict(self, x, classifier="nme"):
        if classifier == "nme":
            return self.nme.predict(self.model.features(x))
        return super().predict(x, classifier)
