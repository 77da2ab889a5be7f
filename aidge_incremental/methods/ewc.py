"""Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017), online, in
the class-incremental form of FACIL (Masana et al., TPAMI 2022;
``src/approach/ewc.py``).

Once step t is learnt (FACIL's ``post_train_process``):

- θ* ← the parameters of the feature extractor;
- the diagonal of the Fisher information F_t is estimated on the step's own
  samples (``compute_fisher_matrix_diag``): for each batch, the cross-entropy
  of the batch against the model's own prediction (``sampling_type
  "max_pred"``, the default) or against the labels (``"true"``), squared
  gradients weighted by the batch size, divided by the number of samples;
- the estimates are merged online, F ← α·F + (1 − α)·F_t (α = 0.5).

Every batch of the following steps then minimises (Eq. 3)

    L = CE(every class seen) + λ/2 · Σ_i F_i (θ_i − θ*_i)²

whose penalty gradient λ·F⊙(θ − θ*) is added to the parameters' gradients
between the backward pass and the optimiser (``before_update``); the penalty's
value is the loss term ``ewc_penalty``.

What is regularised: the feature extractor, as FACIL ("we only keep importance
weights for the model, but not for the heads"). Our head is one growing layer,
not one head per task; ``penalise_head`` also regularises its rows of the
classes already learnt (its Fisher computed as the feature extractor's).
The Fisher pass runs in training mode like FACIL's, but inside
:func:`isolated_pass`, so it leaves BatchNorm's running statistics as they
were (FACIL's pass updates them), and on the samples without augmentation, in
an order drawn from a generator of its own (seed, step): the training's random
stream is untouched, so λ = 0 trains exactly as Finetune.

With ``memory > 0`` it also replays exemplars (FACIL's EWC takes an exemplar
set too, ``train_loop``); the Fisher is estimated on the step's new samples
only, as FACIL's (its ``trn_loader`` holds the task's data).
"""
from __future__ import annotations

from typing import Dict, Optional

import aidge_core
import numpy as np

from ..backend import to_tensor
from ..loss import cross_entropy
from ..models import HEAD
from ..options import Option
from ..training import isolated_pass, one_hot
from .base import IncrementalMethod
from .components import L2SP, Replay

__all__ = ["EWC", "fisher_diagonal"]

FISHER_SAMPLING = ("max_pred", "true")
_HEAD_PARAMETERS = (f"{HEAD}_w", f"{HEAD}_b")


def _host(tensor: aidge_core.Tensor) -> np.ndarray:
    """A float64 copy of a tensor's values, on any backend."""
    if tensor.backend not in ("", "cpu"):
        tensor = tensor.clone()
        tensor.to_backend("cpu")
    return np.array(tensor, np.float64)


def fisher_diagonal(model, inputs: np.ndarray, labels: np.ndarray, batch_size: int,
                    sampling: str = "max_pred", names=None) -> Dict[str, np.ndarray]:
    """FACIL's ``compute_fisher_matrix_diag`` on ``inputs`` (model input, in the
    order given): for each batch b of size B_b, the gradient g_b of the batch's
    mean cross-entropy against the predicted class (``"max_pred"``) or the labels
    (``"true"``), and F = Σ_b B_b·g_b² / N. FACIL drops a last partial batch
    (``len(dataset) // batch_size`` batches); here it counts with its size.
    Runs in training mode inside :func:`isolated_pass` (no trace on the model).
    Returns float64 arrays by parameter name (``names``: those parameters only)."""
    if sampling not in FISHER_SAMPLING:
        raise ValueError(f"fisher sampling must be one of {', '.join(FISHER_SAMPLING)}, got {sampling!r}")
    inputs = np.asarray(inputs, np.float32)
    if len(inputs) == 0:
        raise ValueError("the Fisher information needs at least one sample")
    nodes = [n for n in model.parameter_nodes() if names is None or n.name() in names]
    fisher = {n.name(): np.zeros(tuple(n.get_operator().get_output(0).dims), np.float64) for n in nodes}
    n_classes = model.n_classes
    with model.mode(training=True), isolated_pass(model) as p:
        for start in range(0, len(inputs), batch_size):
            x = np.ascontiguousarray(inputs[start:start + batch_size])
            out = p.forward(x)
            if sampling == "max_pred":
                targets = _host(out.logits).argmax(axis=1)
            else:
                targets = np.asarray(labels[start:start + batch_size])
            cross_entropy(out.logits, out.tensor(one_hot(targets, n_classes)))  # sets the logits' gradient
            p.backward()  # the forward pass zeroed the parameters' gradients
            for node in nodes:
                fisher[node.name()] += len(x) * _host(node.get_operator().get_output(0).grad) ** 2
    return {name: value / len(inputs) for name, value in fisher.items()}


class EWC(IncrementalMethod):
    name = "ewc"
    components = (Replay, L2SP)
    options = (
        Option("ewc_lambda", float, 5000.0, "λ: weight of the EWC penalty λ/2·Σ F(θ − θ*)²", minimum=0.0,
               source="FACIL src/approach/ewc.py (--lamb, default 5000); Kirkpatrick et al. 2017, Eq. 3"),
        Option("fisher_alpha", float, 0.5, "online merge of the Fisher: F ← α·F + (1 − α)·F_step",
               minimum=0.0, maximum=1.0,
               source="FACIL src/approach/ewc.py (--alpha, default 0.5: 'a 50-50 fusion')"),
        Option("fisher_sampling", str, "max_pred", "class the Fisher's cross-entropy is taken on: the "
               "model's prediction ('max_pred') or the label ('true')", choices=FISHER_SAMPLING,
               source="FACIL src/approach/ewc.py (--fi-sampling-type, default 'max_pred'); its "
                      "'multinomial' draws len(targets) classes per sample and is left out"),
        Option("fisher_samples", int, None, "samples of the step the Fisher is estimated on (null: all)",
               optional=True, minimum=1,
               source="FACIL src/approach/ewc.py (--fi-num-samples, default -1: all)"),
        Option("penalise_head", bool, False, "also regularise the head's rows of the classes already learnt",
               source="off, as FACIL src/approach/ewc.py ('importance weights for the model, but not for "
                      "the heads')"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fisher: Dict[str, np.ndarray] = {}   #: merged Fisher diagonal, by parameter
        self.anchor: Dict[str, np.ndarray] = {}   #: θ* after the last step, by parameter
        self._penalty_gradient: Dict[str, np.ndarray] = {}

    def regularised(self, name: str) -> bool:
        return name not in _HEAD_PARAMETERS or self.penalise_head

    # -- per batch ---------------------------------------------------------------
    def objective(self, batch, outputs):
        """Cross-entropy over the classes seen, plus the EWC penalty (Eq. 3); the
        penalty's gradient is added in :meth:`before_update`."""
        terms = super().objective(batch, outputs)
        self._penalty_gradient = {}
        if not self.anchor or self.ewc_lambda == 0:
            return terms
        penalty = 0.0
        for node in self.model.parameter_nodes():
            name = node.name()
            if name not in self.anchor:
                continue
            theta = _host(node.get_operator().get_output(0))
            rows = len(self.anchor[name])  # the head's old rows (the whole tensor otherwise)
            weighted = self.fisher[name] * (theta[:rows] - self.anchor[name])
            penalty += 0.5 * self.ewc_lambda * float(np.sum(weighted * (theta[:rows] - self.anchor[name])))
            gradient = np.zeros_like(theta)
            gradient[:rows] = self.ewc_lambda * weighted
            self._penalty_gradient[name] = gradient
        terms["ewc_penalty"] = penalty
        return terms

    def before_update(self, parameters):
        super().before_update(parameters)
        backend = self.model.backend
        for node in parameters:
            gradient = self._penalty_gradient.get(node.name())
            if gradient is not None:
                grad = node.get_operator().get_output(0).grad
                grad.copy_from(grad + to_tensor(gradient, backend))
        self._penalty_gradient = {}

    # -- per step --------------------------------------------------------------------
    def after_step(self, step, dataset):
        """FACIL's post_train_process: keep θ*, estimate the step's Fisher, merge it."""
        x, y = self.step_samples(step)
        order = np.random.default_rng([self.seed, step.index]).permutation(len(x))
        if self.fisher_samples is not None:
            order = order[:self.fisher_samples]
        names = {n.name() for n in self.model.parameter_nodes() if self.regularised(n.name())}
        inputs = np.ascontiguousarray(dataset.to_input(x[order]), np.float32)
        current = fisher_diagonal(self.model, inputs, y[order], self.config.for_step(step.index).batch_size,
                                  self.fisher_sampling, names)
        params = self.model.state_dict()
        alpha = self.fisher_alpha
        for name, value in current.items():
            old = self.fisher.get(name)
            if old is None:  # FACIL starts from F = 0: the first merge gives (1 − α)·F_0
                old = np.zeros_like(value)
            elif len(old) < len(value):  # the head grew: its new rows had no Fisher yet
                old = np.concatenate([old, np.zeros((len(value) - len(old),) + value.shape[1:])])
            self.fisher[name] = alpha * old + (1 - alpha) * value
            self.anchor[name] = params[name].astype(np.float64)

    # -- checkpointing ---------------------------------------------------------------
    def state_dict(self):
        state = super().state_dict()
        for name in self.fisher:
            state[f"ewc_fisher.{name}"] = self.fisher[name]
            state[f"ewc_anchor.{name}"] = self.anchor[name]
        return state

    def load_state_dict(self, state):
        fisher, anchor = {}, {}
        shapes = {k: v.shape for k, v in self.model.state_dict().items()}
        for key, value in state.items():
            if not key.startswith("ewc_fisher."):
                continue
            name = key[len("ewc_fisher."):]
            if name not in shapes or not self.regularised(name):
                raise ValueError(f"the checkpoint's EWC state names parameter {name!r}, which this "
                                 f"model and configuration do not regularise")
            if f"ewc_anchor.{name}" not in state:
                raise ValueError(f"the checkpoint has the Fisher of {name!r} but not its θ*")
            f = np.asarray(value, np.float64)
            a = np.asarray(state[f"ewc_anchor.{name}"], np.float64)
            if f.shape != a.shape or f.shape[1:] != shapes[name][1:] or len(f) > shapes[name][0]:
                raise ValueError(f"the checkpoint's EWC state of {name!r} has shape {f.shape} / {a.shape}, "
                                 f"the parameter {shapes[name]}")
            if not (np.all(np.isfinite(f)) and np.all(np.isfinite(a)) and np.all(f >= 0)):
                raise ValueError(f"the checkpoint's EWC state of {name!r} holds NaN, inf or a negative Fisher")
            fisher[name], anchor[name] = f, a
        expected = {name for name in shapes if name not in self.model.state_names and self.regularised(name)}
        if int(state.get("n_known", 0)) and set(fisher) != expected:
            raise ValueError(f"the checkpoint lacks the EWC state (Fisher, θ*) of "
                             f"{sorted(expected - set(fisher))} for a run past its first step")
        super().load_state_dict(state)
        self.fisher, self.anchor = fisher, anchor
