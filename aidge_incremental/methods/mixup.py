"""Mixup replay: iCaRL trained on blends of new samples and exemplars.

Mixup (Zhang, Cisse, Dauphin & Lopez-Paz, ICLR 2018) applied to replay, the
"random mixup" baseline of Lee et al. (SMC 2023): each new sample x_i of a
batch is paired with a random exemplar x_j; the pair becomes
``λ·x_i + (1 − λ)·x_j`` with soft target ``λ·y_i + (1 − λ)·y_j``,
``λ ~ Beta(α, α)`` drawn per pair; iCaRL's cross-entropy takes the soft
targets and its distillation runs the teacher on the blended inputs.
``mixup_alpha = 0`` switches blending off (plain iCaRL). The blending is a
mixin (:class:`~.blending.BlendingReplay`) usable over any replay method.
"""
import numpy as np

from ..options import Option
from .blending import BlendingReplay
from .icarl import ICaRL

MIXUP_ALPHA = Option("mixup_alpha", float, 1.0, "mixup: λ ~ Beta(α, α) per pair (0: no blending)",
                     minimum=0.0, source="Lee et al. SMC 2023 (Beta(1, 1)); Zhang et al. 2018 use α in [0.1, 0.4] "
                     "for ImageNet, 1 for CIFAR-10")


class MixupReplay(BlendingReplay):
    """Mixin: Beta(α, α) blend weights; takes ``mixup_alpha``."""

    def __init__(self, *args, mixup_alpha: float = 1.0, **kwargs):
        if not (mixup_alpha >= 0 and np.isfinite(mixup_alpha)):
            raise ValueError(f"mixup_alpha must be >= 0, got {mixup_alpha}")
        super().__init__(*args, **kwargs)
        self.mixup_alpha = float(mixup_alpha)

    def blending(self, batch):
        return self.mixup_alpha > 0 and super().blending(batch)

    def blend_weights(self, batch, x_new, x_ex):
        return self.rng.beta(self.mixup_alpha, self.mixup_alpha, size=len(x_new)).astype(np.float32)


class MixupICaRL(MixupReplay, ICaRL):
    name = "mixup"
    options = ICaRL.options + (MIXUP_ALPHA,)
