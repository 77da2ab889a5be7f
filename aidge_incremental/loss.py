"""Loss functions in the style of ``aidge_learning.loss``.

Each function runs the matching Aidge operator of the C++ core
(``CrossEntropy``, ``Distillation``, ``AttentionDistillation``) on the given
tensors, with the implementation registered for the tensors' backend (CPU
kernels here; a CUDA kernel once registered): it returns the loss as an Aidge
Tensor on that backend and sets the gradient of its first argument, so it
drops into a plain Aidge training loop::

    scheduler.forward(data=[x])
    loss = distillation(logits, teacher_logits, temperature=2.0, n_old=4)
    scheduler.backward()
    optimizer.update()
"""
from __future__ import annotations

import aidge_core
import numpy as np

from . import _core

_FLOAT_TYPES = (aidge_core.dtype.float32, aidge_core.dtype.float64)


def _check_logits(tensor, name: str) -> None:
    if not isinstance(tensor, aidge_core.Tensor):
        raise TypeError(f"{name} must be an aidge_core.Tensor, got {type(tensor).__name__}")
    if tensor.dtype not in _FLOAT_TYPES:
        raise TypeError(f"{name} must be float32 or float64, got {tensor.dtype}")


def distillation(student, teacher, temperature: float = 2.0, n_old: int = 0,
                 form: str = "kl", scaling: float = 1.0, accumulate: bool = False):
    """Knowledge-distillation loss between student and teacher logits.

    Only the first ``n_old`` logit columns are distilled (0: all of the
    teacher's), as class-incremental methods distill the old classes only.

    - ``form="kl"`` (Hinton et al. 2015, LwF):
      ``T² · mean_b KL(softmax(t_b/T) ‖ softmax(s_b/T))``
    - ``form="bce"`` (Rebuffi et al. 2017, iCaRL; T=1 is the original):
      ``mean_b Σ_j BCE(sigmoid(s_bj/T), target=sigmoid(t_bj/T))``

    Returns a Tensor holding ``scaling · loss`` and sets ``student.grad`` to
    ``scaling · ∂loss/∂student`` (added to the existing gradient when
    ``accumulate`` is true). The teacher's gradient is never touched.
    """
    _check_logits(student, "student")
    _check_logits(teacher, "teacher")
    return _core.loss.distillation(student, teacher, float(temperature), int(n_old), form,
                                   float(scaling), bool(accumulate))


def cross_entropy(prediction, target, scaling: float = 1.0, accumulate: bool = False):
    """Softmax cross-entropy ``mean_b −Σ_j y_bj log softmax(s_b)_j``.

    ``target`` holds probabilities ``[B, C]`` (one-hot labels or soft targets).
    Same contract as ``aidge_learning.loss.CELoss`` (sets ``prediction.grad``
    to ``(p − y)/B`` for one-hot targets) but computed with log-sum-exp, so
    the value stays finite for any finite logits; upstream CELoss 0.10.1
    returns NaN once a logit exceeds about 88.
    """
    _check_logits(prediction, "prediction")
    _check_logits(target, "target")
    return _core.loss.cross_entropy(prediction, target, float(scaling), bool(accumulate))


def cross_entropy_with_distillation(prediction, target, teacher, lambda_: float = 1.0,
                                    temperature: float = 2.0, n_old: int = 0,
                                    form: str = "kl") -> float:
    """The usual class-incremental objective ``CE(prediction, target) + λ · distillation``.

    ``target`` is the one-hot label Tensor over all of the prediction's classes;
    cross-entropy is :func:`cross_entropy` (gradient ``(p − y)/B``);
    the distillation term is :func:`distillation` on the first ``n_old``
    columns. Sets ``prediction.grad`` to the gradient of the sum and returns
    the sum as a float.
    """
    _check_logits(prediction, "prediction")
    ce = cross_entropy(prediction, target)  # sets prediction.grad
    kd = distillation(prediction, teacher, temperature=temperature, n_old=n_old, form=form,
                      scaling=lambda_, accumulate=True)
    return tensor_value(ce) + tensor_value(kd)


def attention_distillation(features, weights, teacher_map, scaling: float = 1.0,
                           accumulate: bool = False, epsilon: float = 1e-12):
    """Attention-distillation loss of Learning without Memorizing (Dhar et al., CVPR 2019, Eq. 3).

    ``features`` is the student's tapped feature map ``A [B, C, H, W]``, ``weights`` its
    Grad-CAM weights ``α [B, C]`` and ``teacher_map`` the teacher's Grad-CAM map
    ``Q_t [B, H, W]`` (see :func:`aidge_incremental.gradcam.grad_cam`). Per sample,
    ``q = ReLU(Σ_c α_c A_c)`` and ``L_b = ‖q/max(‖q‖₂, ε) − Q_t/max(‖Q_t‖₂, ε)‖₁``; the
    loss is the batch mean. A map that ReLU zeroes entirely normalises to the zero vector
    (``ε = 1e-12``, ``torch.nn.functional.normalize``'s definition).

    Returns a Tensor holding ``scaling · L_AD``, sets ``features.grad`` to
    ``scaling · ∂L_AD/∂A`` (α fixed) and ``weights.grad`` to ``scaling · ∂L_AD/∂α``
    (A fixed), each added to the existing gradient when ``accumulate``. α is a function of
    the network (the spatial mean of ∂y_b/∂A): ∂α/∂A is zero almost everywhere when the
    layers above A are piecewise linear (ReLU, max-pooling, convolutions, FC), but α
    depends at first order on those layers' weights, and that term is as large as the one
    through A; :func:`aidge_incremental.gradcam.grad_cam_weights_vjp` carries
    ``weights.grad`` on to them (what LwM's ``attention_gradient = "exact"`` does).
    """
    for tensor, name in ((features, "features"), (weights, "weights"), (teacher_map, "teacher_map")):
        _check_logits(tensor, name)
    return _core.loss.attention_distillation(features, weights, teacher_map, float(scaling),
                                             bool(accumulate), float(epsilon))


def tensor_value(loss) -> float:
    """The scalar held by a loss Tensor (shape {1} or {1, 1}), on any backend."""
    if isinstance(loss, aidge_core.Tensor) and loss.backend not in ("", "cpu"):
        loss = loss.clone()  # a device tensor: read a host copy
        loss.to_backend("cpu")
    return float(np.asarray(loss).reshape(-1)[0])
