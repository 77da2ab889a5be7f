"""iCaRL: Incremental Classifier and Representation Learning
(Rebuffi, Kolesnikov, Sperl & Lampert, CVPR 2017).

Algorithm 2 (update representation): train on the new data plus the
exemplars with classification loss on the labels and distillation toward
the previous model's sigmoid outputs on the old classes (the paper's BCE
form; CE on the labels as FACIL and PyCIL do).
Algorithm 5 then 4 (memory): reduce the old exemplar sets to K / n_classes,
select the new classes' exemplars by herding.
Algorithm 1 (classify): nearest mean of exemplars (NME); the trained head
is reported too.
"""
import numpy as np

from ..memory import ExemplarMemory, NearestMeanClassifier
from .distillation import TeacherDistillation


class ICaRL(TeacherDistillation):
    name = "icarl"
    classifiers = ("nme", "head")

    def __init__(self, *args, memory: int = 200, selection: str = "herding", memory_policy: str = "total",
                 lambda_: float = 1.0, temperature: float = 1.0, distillation: str = "bce", **kwargs):
        """memory: budget K (total, or per class with memory_policy="per_class");
        lambda_ = 1, T = 1, BCE distillation: iCaRL's objective as FACIL implements it."""
        super().__init__(*args, lambda_=lambda_, temperature=temperature, distillation=distillation,
                         **kwargs)
        budget = {"budget": memory} if memory_policy == "total" else {"per_class": memory}
        self.memory = ExemplarMemory(selection=selection, seed=self.seed, **budget)
        self.nme = NearestMeanClassifier()

    def before_step(self, step, dataset):
        self.memory.quotas(step.n_seen)  # fails before training if the budget is too small
        super().before_step(step, dataset)

    def training_data(self, step):
        if not len(self.memory):
            return step.x_train, step.y_train
        return (np.concatenate([step.x_train, self.memory.samples()]),
                np.concatenate([step.y_train, self.memory.labels()]))

    def after_step(self, step, dataset):
        features = lambda x_raw: self.model.features(dataset.to_input(x_raw))
        self.memory.update(step.x_train, step.y_train, features)
        self.nme.fit(features(self.memory.samples()), self.memory.labels())

    def state_dict(self):
        state = super().state_dict()
        if len(self.memory):
            state.update(memory=self.memory.to_bytes(), nme_means=self.nme.means, nme_classes=self.nme.classes)
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        if "memory" in state:
            self.memory = ExemplarMemory.from_bytes(state["memory"], selection=self.memory.selection,
                                                    seed=self.memory.seed, source="checkpoint")
            self.nme.means, self.nme.classes = state["nme_means"], state["nme_classes"]

    def predict(self, x, classifier="nme"):
        if classifier == "nme":
            return self.nme.predict(self.model.features(x))
        return super().predict(x, classifier)
