"""Learning without Memorizing (Dhar, Singh, Peng, Wu & Chellappa, CVPR 2019,
arXiv 1811.08051).

The previous step's model is frozen as the teacher; each batch of a later step
trains the student on (Sec. 3, Eq. 4)

    L = L_C + beta · L_D + gamma · L_AD

- L_C: cross-entropy on the labels, over every class seen (FACIL's
  class-incremental LwM);
- L_D: knowledge distillation on the old classes' logits, the teacher's
  softened outputs at temperature T as targets (Hinton et al. 2015), no T²
  factor (as FACIL's ``cross_entropy(..., exp=1/T)``; reported as beta·KL);
- L_AD (Eq. 3): per sample, ‖Q_s/‖Q_s‖₂ − Q_t/‖Q_t‖₂‖₁ between the student's
  and the teacher's Grad-CAM maps Q = ReLU(Σ_c α_c A_c) (Selvaraju et al. 2017)
  at the last convolutional stage A, for b = the teacher's top-scoring OLD
  class (Sec. 3.2: the base classes' attention is what must be preserved);
  batch mean.

Per batch: the teacher runs on the batch (logits → b, then Grad-CAM → Q_t);
the student's Grad-CAM weights α_s for the same b come from a pass on a clone
of its graph (:func:`~aidge_incremental.gradcam.grad_cam`: parameter gradients,
activations and optimiser untouched). After the main forward pass, L_AD is
computed on the live tapped map A with α_s held constant (first order, see
:func:`~aidge_incremental.loss.attention_distillation`) and its gradient is
added to A's gradient, so the loop's single backward carries it into the
convolutions below A — unlike FACIL, whose maps are computed under ``no_grad``
(no gradient from L_AD; FACIL issues #9, #37).

The paper gives no values for beta and gamma; the defaults are FACIL's
(``src/approach/lwm.py``: beta = 1, gamma = 1, distillation at T = 2). With
``memory > 0`` exemplars are replayed too ("LwM + replay"; the paper's LwM
keeps none). ``gamma = 0`` skips the Grad-CAM passes: LwM without L_AD.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..gradcam import grad_cam, last_conv_layer
from ..loss import attention_distillation, cross_entropy, distillation, tensor_value
from ..options import Option
from .base import IncrementalMethod
from .components import TEACHER_LOGITS, Replay, Teacher

__all__ = ["LwM", "attention_layer"]

TEACHER_MAPS = "lwm_teacher_maps"        #: Q_t [B, H, W] in ``batch.extra``
STUDENT_WEIGHTS = "lwm_student_weights"  #: α_s [B, C] in ``batch.extra``
ATTENTION_CLASSES = "lwm_classes"        #: b [B] in ``batch.extra``


def attention_layer(model, layer: Optional[str] = None) -> str:
    """The layer whose map LwM distils: ``layer`` if given, else the model's last
    convolutional stage (:func:`~aidge_incremental.gradcam.last_conv_layer`).
    Raises a ValueError naming the problem (no convolution, no such layer, an
    output that is not a [B, C, H, W] map). A model without classes yet is
    checked on a copy with one class; the model itself is not changed."""
    probe = model
    if not getattr(model, "n_classes", 1):
        probe = model.clone()
        probe.grow(1)
    if layer is None:
        try:
            layer = last_conv_layer(probe)
        except ValueError as e:
            raise ValueError(f"LwM needs a convolutional model (its attention maps are Grad-CAM maps of "
                             f"the last convolutional stage): {e}") from None
    node = probe.graph.get_node(layer) if isinstance(layer, str) else None
    if node is None:
        names = [n.name() for n in probe.graph.get_ordered_nodes() if n.type() != "Producer"]
        raise ValueError(f"LwM attention_layer {layer!r} is not a layer of the model; layers: {names}")
    dims = node.get_operator().get_output(0).dims
    if len(dims) != 4:
        raise ValueError(f"LwM attention_layer {layer!r} outputs shape {list(dims)}; attention needs a "
                         "[batch, channels, height, width] feature map (a convolutional stage)")
    return layer


class LwM(IncrementalMethod):
    name = "lwm"
    components = (Replay, Teacher)
    options = (
        Option("distillation_weight", float, 1.0, "weight beta of the distillation loss L_D", minimum=0.0,
               source="the paper gives no value; FACIL src/approach/lwm.py (beta = 1)"),
        Option("attention_weight", float, 1.0, "weight gamma of the attention-distillation loss L_AD "
               "(0: LwM without attention)", minimum=0.0,
               source="the paper gives no value; FACIL src/approach/lwm.py (gamma = 1)"),
        Option("temperature", float, 2.0, "distillation temperature T", minimum=1e-3,
               source="FACIL src/approach/lwm.py (T = 2 in its distillation cross-entropy)"),
        Option("attention_layer", str, None, "layer whose Grad-CAM map is distilled (default: the last "
               "convolutional stage)", optional=True,
               source="Dhar et al. 2019, Sec. 3.2: the last convolutional layer's maps"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.layer: Optional[str] = None  #: resolved before the first step trains

    # -- per step -------------------------------------------------------------------
    def before_step(self, step, dataset):
        if self.layer is None:  # bad models fail here, before the head grows or anything trains
            self.layer = attention_layer(self.model, self.attention_layer)

    # -- per batch -------------------------------------------------------------------
    def before_forward(self, batch):
        super().before_forward(batch)  # teacher logits, on the very inputs of the batch
        teacher = self.teacher
        if teacher is None or not self.attention_weight:
            return
        b = np.asarray(batch.extra[TEACHER_LOGITS])[:, :self.n_known].argmax(axis=1)
        batch.extra[ATTENTION_CLASSES] = b
        batch.extra[TEACHER_MAPS] = grad_cam(teacher, batch.inputs, b, self.layer).maps
        batch.extra[STUDENT_WEIGHTS] = grad_cam(self.model, batch.inputs, b, self.layer).weights

    def objective(self, batch, outputs):
        teacher = batch.extra.get(TEACHER_LOGITS)
        if teacher is None:  # first step: plain cross-entropy
            return super().objective(batch, outputs)
        terms = {
            "classification": cross_entropy(outputs.logits, outputs.tensor(batch.target_matrix(self.n_seen)),
                                            accumulate=True),
            # the kernel computes T²·KL; FACIL's term has no T² factor
            "distillation": distillation(outputs.logits, outputs.tensor(teacher), temperature=self.temperature,
                                         n_old=self.n_known, form="kl",
                                         scaling=self.distillation_weight / self.temperature ** 2,
                                         accumulate=True),
        }
        if self.attention_weight:
            terms["attention"] = attention_distillation(
                outputs.tap(self.layer), outputs.tensor(batch.extra[STUDENT_WEIGHTS]),
                outputs.tensor(batch.extra[TEACHER_MAPS]), scaling=self.attention_weight, accumulate=True)
        return {k: tensor_value(v) for k, v in terms.items()}
