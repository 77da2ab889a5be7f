"""Dark Experience Replay++ (Buzzega, Boschini, Porrello, Abati & Calderara,
NeurIPS 2020), as the authors' code (``aimagelab/mammoth``, ``models/derpp.py``,
``utils/buffer.py``).

A reservoir buffer (Vitter's Algorithm R, mammoth's ``Buffer.add_data``) keeps
samples of the whole stream with the logits the network gave them when they
were seen. Each batch minimises (mammoth's observe)

    L = CE(y, f(x))                                   the batch's own samples
      + α · MSE(f(x'), z')      (x', z') ~ buffer      DER: match the stored logits
      + β · CE(y'', f(x''))     (x'', y'') ~ buffer    DER++: the stored labels

with two minibatches drawn independently from the buffer (``get_data``, without
replacement); then the batch's samples, not augmented, enter the reservoir with
the logits of this forward pass (``add_data(examples=not_aug_inputs,
logits=outputs.data)``), after the update.

The head. mammoth's network has an output for every class of the dataset from
the first task on (``datasets/seq_mnist.py``, ``get_backbone``), trained with the
cross-entropy over all of them: the stored logits then include the outputs of
classes still to come, pushed down while they were absent, and the MSE keeps
them down on the buffered samples when those classes arrive. ``head = "all"``
(the default) does the same: the method is built with the scenario and the head
has all its classes from the first step. Predictions are the argmax over all
outputs, as the exported model's; mammoth's ``evaluate`` takes it over the classes
seen so far (on digits no test sample's argmax fell on a class not yet seen, at
any step of 3 seeds, so both agree there). ``head = "grow"`` keeps the package's growing head: a
sample's logits are stored over the classes seen at the time (the memory's
``logits`` extra, zero-padded to the widest, each row with its valid columns) and
the MSE is the mean over the valid entries; nothing then holds the new classes'
outputs down on old samples, and the logit term alone does not keep the old
classes (docs/methods.md gives the figures).

The minibatches are concatenated to the batch (``make_batch``) and the three
terms seed the logits' gradient row by row (``objective``): one forward and one
backward pass, where mammoth runs three. The gradient is the same for networks
without BatchNorm (tests/methods/test_derpp.py checks it against a PyTorch
reference of mammoth's loss); with BatchNorm the batch statistics are taken over
the concatenated rows (as mammoth's own ER concatenates its buffer minibatch).
α = 0 (β = 0) draws no minibatch for its term; α = β = 0 with ``head = "grow"``
trains exactly as Finetune.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..loss import cross_entropy, tensor_value
from ..memory import ReservoirMemory
from ..options import Option
from ..training import Batch
from .base import IncrementalMethod

__all__ = ["DERpp", "LOGITS"]

LOGITS = "logits"  #: the reservoir's extra array of stored logits


HEADS = ("all", "grow")


class DERpp(IncrementalMethod):
    name = "derpp"
    needs_scenario = True  # head = "all": the number of classes
    options = (
        Option("memory", int, 200, "reservoir buffer size (samples)", minimum=1,
               source="mammoth --buffer_size; utils/best_args.py tunes buffers of 200, 500 and 5120"),
        Option("der_alpha", float, 0.1, "α: weight of the MSE toward the stored logits (DER)", minimum=0.0,
               source="mammoth utils/best_args.py, seq-cifar10, derpp, buffer 200 (alpha 0.1)"),
        Option("der_beta", float, 0.5, "β: weight of the cross-entropy on the stored labels (DER++)", minimum=0.0,
               source="mammoth utils/best_args.py, seq-cifar10, derpp, buffer 200 (beta 0.5)"),
        Option("replay_batch_size", int, None, "samples of each buffer minibatch (null: the batch size)",
               optional=True, minimum=1,
               source="mammoth --minibatch_size; best_args.py seq-cifar10 sets it to the batch size (32)"),
        Option("head", str, "all", "'all': an output for every class of the scenario from the first step "
               "(mammoth's); 'grow': the head grows with the classes seen", choices=HEADS,
               source="mammoth datasets/seq_mnist.py get_backbone: MNISTMLP(28 * 28, N_TASKS * "
                      "N_CLASSES_PER_TASK), every class from the first task"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.head == "all" and self.scenario is None:
            raise ValueError("derpp with head 'all' is built with the scenario (scenario=...): its head has "
                             "an output for every class of it")
        self.buffer: Optional[ReservoirMemory] = None
        self._x_raw = None          # the raw samples of the step (rows of batch.indices)
        self._augmentation = None
        self._dataset = None
        self._minibatch_size = 0
        self._rows = (0, 0, 0)      # the batch's own rows, the α minibatch's, the β minibatch's
        self._stored_logits = None  # (values, valid columns) of the α minibatch
        self._seen = None           # (raw samples, labels, logits) entering the reservoir after the update

    @property
    def replay_memory(self):
        return self.buffer

    # -- per step ----------------------------------------------------------------------
    def head_outputs(self, n_seen: int, scenario) -> int:
        return scenario.n_classes if self.head == "all" else n_seen

    def start_step(self, step, dataset):
        if self.head == "grow":
            return super().start_step(step, dataset)
        # the base's start_step, but the head gets every class once, in the first step
        for part in self.parts:
            part.before_step(step, dataset)
        self.before_step(step, dataset)
        if self.model.n_classes < self.scenario.n_classes:
            self.model.grow(self.scenario.n_classes - self.model.n_classes)
        self.n_seen = step.n_seen
        return self.training_data(step)

    def before_step(self, step, dataset):
        config = self.config.for_step(step.index)
        self._dataset, self._augmentation = dataset, config.augmentation(dataset)
        self._minibatch_size = self.replay_batch_size or config.batch_size

    def step_samples(self, step):
        x, y = super().step_samples(step)
        self._x_raw = x
        return x, y

    def after_step(self, step, dataset):
        self._dataset = self._augmentation = self._x_raw = None

    # -- per batch ---------------------------------------------------------------------
    def _minibatch(self, n: int) -> np.ndarray:
        """Rows of the buffer for one minibatch (mammoth's get_data: without replacement)."""
        return self.rng.choice(len(self.buffer), size=min(n, len(self.buffer)), replace=False)

    def make_batch(self, batch):
        batch = super().make_batch(batch)
        own = len(batch)
        self._rows, self._stored_logits = (own, 0, 0), None
        if self.buffer is None or not len(self.buffer) or (self.der_alpha == 0 and self.der_beta == 0):
            return batch
        draws = [self._minibatch(self._minibatch_size) if weight else np.zeros(0, np.int64)
                 for weight in (self.der_alpha, self.der_beta)]
        samples, labels = self.buffer.samples(), self.buffer.labels()
        raw = samples[np.concatenate(draws)]
        if self._augmentation is not None:
            raw = self._augmentation(raw, self.rng)
        inputs = np.ascontiguousarray(self._dataset.to_input(raw), np.float32)
        values, valid = self.buffer.extra(LOGITS)
        self._stored_logits = (values[draws[0]], valid[draws[0]])
        self._rows = (own, len(draws[0]), len(draws[1]))
        indices = None if batch.indices is None else np.concatenate([batch.indices, np.full(len(raw), -1)])
        return Batch(np.concatenate([batch.inputs, inputs]), np.concatenate([batch.labels, labels[np.concatenate(draws)]]),
                     indices=indices, extra=batch.extra, epoch=batch.epoch, lr=batch.lr)

    def objective(self, batch, outputs):
        own, n_alpha, n_beta = self._rows
        logits = np.array(outputs.logits, np.float32)
        if batch.indices is not None and self._x_raw is not None:
            self._seen = (self._x_raw[batch.indices[:own]], batch.labels[:own], logits[:own])
        if n_alpha == n_beta == 0 and self.head == "grow":
            return super().objective(batch, outputs)
        rows, width = len(batch), self.model.n_classes  # the seen classes, or all of them (head 'all')
        target = np.zeros((rows, width), np.float32)
        target[np.arange(own), batch.labels[:own]] = 1
        # mean over the batch's own rows: the other rows' targets are zero
        ce = cross_entropy(outputs.logits, outputs.tensor(target), scaling=rows / own, accumulate=True)
        terms = {"classification": tensor_value(ce)}
        if n_alpha:
            terms["logit_replay"] = self._logit_replay(outputs, logits[own:own + n_alpha].astype(np.float64), rows)
        if n_beta:
            target = np.zeros((rows, width), np.float32)
            first = own + n_alpha
            target[np.arange(first, rows), batch.labels[first:]] = 1
            ce = cross_entropy(outputs.logits, outputs.tensor(target), scaling=self.der_beta * rows / n_beta,
                               accumulate=True)
            terms["label_replay"] = tensor_value(ce)
        return terms

    def _logit_replay(self, outputs, student: np.ndarray, rows: int) -> float:
        """α · mean over the valid stored entries of (f(x') − z')²; seeds its gradient."""
        own, n_alpha, _ = self._rows
        stored, valid = self._stored_logits
        width = stored.shape[1]
        mask = np.arange(width)[None, :] < valid[:, None]
        diff = np.where(mask, student[:, :width] - stored, 0.0)
        count = int(valid.sum())
        gradient = np.zeros((rows, self.model.n_classes))
        gradient[own:own + n_alpha, :width] = self.der_alpha * 2 * diff / count
        outputs.seed(outputs.logits, gradient)
        return self.der_alpha * float(np.sum(diff ** 2)) / count

    def after_update(self):
        """The batch's own samples enter the reservoir (mammoth's add_data after opt.step())."""
        super().after_update()
        if self._seen is None:
            return
        x, y, logits = self._seen
        self._seen = None
        if self.buffer is None:
            self.buffer = ReservoirMemory(self.memory, seed=self.seed, extras={LOGITS: logits.shape[1]})
        self.buffer.add(x, y, extras={LOGITS: logits})

    # -- checkpointing -----------------------------------------------------------------
    def state_dict(self):
        state = super().state_dict()
        if self.buffer is not None and len(self.buffer):
            state["derpp_buffer"] = self.buffer.to_bytes()
        return state

    def load_state_dict(self, state):
        buffer = None
        if "derpp_buffer" in state:
            buffer = ReservoirMemory.from_bytes(state["derpp_buffer"], source="checkpoint")
            if buffer.capacity != self.memory:
                raise ValueError(f"the checkpoint's buffer holds {buffer.capacity} samples, the "
                                 f"configuration's memory is {self.memory}")
            width, labels = buffer.extra_widths.get(LOGITS), buffer.labels()
            if width is None or width > self.model.n_classes:
                raise ValueError(f"the checkpoint's buffer stores logits of width {width}, the model has "
                                 f"{self.model.n_classes} outputs")
            if len(labels) and (labels.min() < 0 or labels.max() >= int(state.get("n_known", 0))):
                raise ValueError(f"the checkpoint's buffer holds labels outside the {state.get('n_known')} "
                                 f"classes learnt")
        elif int(state.get("n_known", 0)):
            raise ValueError("the checkpoint has no DER++ buffer for a run past its first step")
        super().load_state_dict(state)
        self.buffer = buffer
