"""Learning without Memorizing (Dhar, Singh, Peng, Wu & Chellappa, CVPR 2019,
arXiv 1811.08051).

The previous step's model is frozen as the teacher; each batch of a later step
trains the student on

    L = L_C + beta · L_D + gamma · L_AD

- L_C: cross-entropy on the labels. Without exemplars (LwM's own setting) over
  the new classes' outputs only, as FACIL's LwM does then (``criterion``:
  ``cross_entropy(outputs[t], targets - task_offset[t])``); with exemplars
  ("LwM + replay") over every class seen (FACIL: ``torch.cat(outputs)``).
  ``classification_loss`` chooses; by default it follows the memory. (Over
  every class seen without exemplars, every sample pushes the old logits down
  and nothing pushes them up: on split MNIST/Fashion-MNIST the old classes are
  lost completely, below Finetune — see docs/methods.md.)
- L_D: knowledge distillation on the old classes' logits, the teacher's
  softened outputs at temperature T as targets (Hinton et al. 2015), no T²
  factor, as FACIL's ``cross_entropy(..., exp=1.0 / 2.0)`` (softmax raised to
  1/2 and renormalised: T = 2); reported as beta·KL (same gradient).
- L_AD: per sample, ‖Q_s/‖Q_s‖₂ − Q_t/‖Q_t‖₂‖₁ between the student's and the
  teacher's Grad-CAM maps Q = ReLU(Σ_c α_c A_c) (Selvaraju et al. 2017) at the
  last convolutional stage A, for b = the teacher's top-scoring OLD class (the
  base classes' attention is what must be preserved); batch mean.

**The gradient of L_AD.** α_c = mean_hw ∂y_b/∂A_c is a product of the
backward pass of the layers above A, so L_AD depends on the parameters twice:
through A (below the tap) and through α (the weights above it). Both are
first-order terms: ``attention_gradient = "exact"`` (the default) adds the
second by :func:`~aidge_incremental.gradcam.grad_cam_weights_vjp` (the
forward-mode derivative of the logits in the direction ∂L/∂α, with the
primal's ReLU masks and max-pooling switches; for a GAP→FC head, as the
ResNets', it is ∂L/∂W_head[b] += ∂L/∂α / (H·W)). It is what differentiating
through Grad-CAM with PyTorch's ``create_graph=True`` gives (checked in
tests/methods/test_lwm.py on LeNet and ResNet-20), and it is as large as the
first term (docs/methods.md). ``"first_order"`` holds α constant (this
module's behaviour before; ∂α/∂A itself is zero almost everywhere for ReLU /
max-pooling / conv / FC layers above A, so nothing else is missing). FACIL
computes both maps under ``no_grad``: its L_AD has no gradient at all (FACIL
issues #9, #37).

Per batch: the teacher runs on the batch (logits → b, then its map Q_t); the
student's α_s for the same b comes from Grad-CAM on a clone of its graph
(:func:`~aidge_incremental.gradcam.grad_cam`: the live graph untouched), or in
closed form for a GAP→FC head (:func:`~aidge_incremental.gradcam.linear_head_weights`,
no extra pass; the teacher's map then comes from its tapped map of the logits
pass). After the main forward pass, L_AD is computed on the live tapped map A;
its gradient through A joins the loop's single backward, and its gradient
through α is added to the weights above the tap between backward and update
(``before_update``).

The paper gives no values for beta and gamma. beta = 1 and T = 2 are FACIL's
(``src/approach/lwm.py``: ``beta=1.0`` in ``Appr.__init__`` and ``--beta``, whose
comment says the paper gives none; T = 2 fixed in ``criterion``). FACIL's
``gamma=1.0`` weighs an L_AD computed under ``no_grad``: it trains nothing there, so
the value says nothing about the weight of a differentiated L_AD. With it, L_AD
dominates the updates and the new classes are hardly learnt (split MNIST, LeNet,
no exemplars, 3 seeds: last accuracy 11.4 % against LwF's 28.6 %; gamma = 0.3:
27.2 %; gamma = 0.1: 35.4 %, benchmarks/bench_lwm.py): gamma = 0.1 by default. FACIL taps ``gradcam_layer = 'layer3'``, its ResNet-32's
last residual stage (after that stage's ReLU); our ResNets tap their last stage
before the final ReLU (``last_relu=False``), LeNet its last ReLU'd convolution.
FACIL also leaves the old heads out of the optimiser when there are no
exemplars; here every parameter trains (L_D and L_AD reach the old outputs).
With ``memory > 0`` exemplars are replayed too ("LwM + replay"; the paper's
LwM keeps none). ``gamma = 0`` skips the Grad-CAM passes: LwM without L_AD.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..backend import to_tensor
from ..gradcam import grad_cam, grad_cam_weights_vjp, last_conv_layer, layers_above, linear_head_weights
from ..loss import attention_distillation, cross_entropy, distillation, tensor_value
from ..options import Option
from .base import IncrementalMethod
from .components import TEACHER_LOGITS, Replay, Teacher
from .lwf import CLASSIFICATION_LOSSES, new_classes_cross_entropy

__all__ = ["ATTENTION_GRADIENTS", "LwM", "attention_layer"]

TEACHER_MAPS = "lwm_teacher_maps"        #: Q_t [B, H, W] in ``batch.extra``
STUDENT_WEIGHTS = "lwm_student_weights"  #: α_s [B, C] in ``batch.extra``
ATTENTION_CLASSES = "lwm_classes"        #: b [B] in ``batch.extra``
ATTENTION_GRADIENTS = ("exact", "first_order")


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
               source="the paper gives no value; FACIL src/approach/lwm.py (Appr.__init__ beta=1.0, --beta 1)"),
        Option("attention_weight", float, 0.1, "weight gamma of the attention-distillation loss L_AD "
               "(0: LwM without attention)", minimum=0.0,
               source="the paper gives no value; FACIL's gamma=1.0 (src/approach/lwm.py, Appr.__init__) weighs "
                      "an L_AD that has no gradient there (no_grad); 0.1 measured (benchmarks/bench_lwm.py, "
                      "docs/results.md): with gamma = 1 the differentiated L_AD keeps the new classes from being "
                      "learnt"),
        Option("temperature", float, 2.0, "distillation temperature T", minimum=1e-3,
               source="FACIL src/approach/lwm.py, criterion: cross_entropy(..., exp=1.0 / 2.0), i.e. T = 2"),
        Option("classification_loss", str, None, "cross-entropy on the new classes' outputs ('new') or on "
               "every class seen ('seen'); null: 'new' without memory, 'seen' with", choices=CLASSIFICATION_LOSSES,
               optional=True, source="FACIL src/approach/lwm.py, criterion: outputs[t] (the current head) "
                                     "without exemplars, torch.cat(outputs) with"),
        Option("attention_gradient", str, "exact", "'exact': L_AD's gradient through the feature map and "
               "through the Grad-CAM weights; 'first_order': the Grad-CAM weights held constant",
               choices=ATTENTION_GRADIENTS,
               source="exact: the derivative of the paper's L_AD (as PyTorch's create_graph=True gives it); "
                      "first_order: kept for comparison (docs/methods.md)"),
        Option("attention_layer", str, None, "layer whose Grad-CAM map is distilled (default: the last "
               "convolutional stage)", optional=True,
               source="Dhar et al. 2019: Grad-CAM maps of the final convolutional layer (FACIL's comment "
                      "cites their Sec. 5.4); FACIL gradcam_layer='layer3', its last stage"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.layer: Optional[str] = None  #: resolved before the first step trains
        self._alpha_gradient: Optional[dict] = None  # the α term of the batch, for before_update

    @property
    def classification(self) -> str:
        """The classification loss in use ('new' or 'seen')."""
        if self.classification_loss is not None:
            return self.classification_loss
        return "seen" if self.replay_memory is not None else "new"

    # -- per step -------------------------------------------------------------------
    def before_step(self, step, dataset):
        if self.layer is None:  # bad models fail here, before the head grows or anything trains
            self.layer = attention_layer(self.model, self.attention_layer)
        if self.attention_gradient == "exact" and self.attention_weight:
            bn = [l.name for l in layers_above(self.model, self.layer) if l.kind == "bn"]
            if bn:
                raise ValueError(f"LwM attention_gradient 'exact' needs the layers above attention_layer "
                                 f"{self.layer!r} free of BatchNorm (which trains on batch statistics); "
                                 f"{bn[0]!r} is above it: tap a later layer or use attention_gradient: first_order")

    # -- per batch -------------------------------------------------------------------
    def before_forward(self, batch):
        super().before_forward(batch)  # teacher logits, on the very inputs of the batch
        teacher = self.teacher
        if teacher is None or not self.attention_weight:
            return
        b = np.asarray(batch.extra[TEACHER_LOGITS])[:, :self.n_known].argmax(axis=1)
        batch.extra[ATTENTION_CLASSES] = b
        alpha_t = linear_head_weights(teacher, b, self.layer)
        if alpha_t is None:
            batch.extra[TEACHER_MAPS] = grad_cam(teacher, batch.inputs, b, self.layer).maps
            batch.extra[STUDENT_WEIGHTS] = grad_cam(self.model, batch.inputs, b, self.layer).weights
            return
        # GAP -> FC head: α in closed form; A_t is the teacher's tapped map of its logits pass
        a_t = np.array(teacher.tap(self.layer), np.float64)
        if a_t.shape[0] != len(batch):  # the logits pass ran in chunks: take the map afresh
            a_t = grad_cam(teacher, batch.inputs, b, self.layer).features.astype(np.float64)
        maps = np.maximum(np.einsum("bc,bchw->bhw", alpha_t.astype(np.float64), a_t), 0.0)
        batch.extra[TEACHER_MAPS] = maps.astype(np.float32)
        batch.extra[STUDENT_WEIGHTS] = linear_head_weights(self.model, b, self.layer)

    def objective(self, batch, outputs):
        self._alpha_gradient = None
        teacher = batch.extra.get(TEACHER_LOGITS)
        if teacher is None:  # first step: plain cross-entropy
            return super().objective(batch, outputs)
        if self.classification == "seen" or batch.targets is not None:
            target = outputs.tensor(batch.target_matrix(self.n_seen))
            terms = {"classification": tensor_value(cross_entropy(outputs.logits, target, accumulate=True))}
        else:
            value, grad = new_classes_cross_entropy(np.asarray(outputs.logits, np.float64), batch.labels,
                                                    self.n_known)
            outputs.seed(outputs.logits, grad)
            terms = {"classification": value}
        # the kernel computes T²·KL; FACIL's term has no T² factor
        terms["distillation"] = tensor_value(distillation(
            outputs.logits, outputs.tensor(teacher), temperature=self.temperature, n_old=self.n_known,
            form="kl", scaling=self.distillation_weight / self.temperature ** 2, accumulate=True))
        if self.attention_weight:
            weights = outputs.tensor(batch.extra[STUDENT_WEIGHTS])
            terms["attention"] = tensor_value(attention_distillation(
                outputs.tap(self.layer), weights, outputs.tensor(batch.extra[TEACHER_MAPS]),
                scaling=self.attention_weight, accumulate=True))
            if self.attention_gradient == "exact":  # weights.grad = gamma · ∂L_AD/∂α
                self._alpha_gradient = grad_cam_weights_vjp(self.model, self.layer, batch.extra[ATTENTION_CLASSES],
                                                            _host(weights.grad))
        return terms

    def before_update(self, parameters):
        super().before_update(parameters)
        if not self._alpha_gradient:
            return
        for node in parameters:
            extra = self._alpha_gradient.get(node.name())
            if extra is not None:
                grad = node.get_operator().get_output(0).grad
                grad.copy_from(to_tensor(np.ascontiguousarray(_host(grad) + extra, np.float32), self.model.backend))
        self._alpha_gradient = None


def _host(tensor) -> np.ndarray:
    """A tensor's values on the host, float64."""
    if tensor.backend not in ("", "cpu"):
        tensor = tensor.clone()
        tensor.to_backend("cpu")
    return np.array(tensor, np.float64)
