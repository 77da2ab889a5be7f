"""Mixup replay: iCaRL trained on blends of new samples and exemplars.

Mixup (Zhang, Cisse, Dauphin & Lopez-Paz, ICLR 2018) applied to replay, the
"random mixup" baseline of Lee et al. (SMC 2023): each new sample x_i of a
batch is paired with a random exemplar x_j; the pair becomes
``λ·x_i + (1 − λ)·x_j`` with soft target ``λ·y_i + (1 − λ)·y_j``,
``λ ~ Beta(α, α)`` drawn per pair; iCaRL's cross-entropy takes the soft
targets and its distillation runs the teacher on the blended inputs.
``mixup_alpha = 0`` switches blending off (plain iCaRL). The blending is a
component (:class:`MixupBlending`) usable with any replay method.
"""
import numpy as np

from ..options import Option
from .components import Blending
from .icarl import ICaRL

__all__ = ["MixupBlending", "MixupICaRL"]


class MixupBlending(Blending):
    """Beta(α, α) blend weights; takes ``mixup_alpha``."""
    options = (
        Option("mixup_alpha", float, 1.0, "mixup: λ ~ Beta(α, α) per pair (0: no blending)", minimum=0.0,
               source="Lee et al. SMC 2023 (Beta(1, 1)); Zhang et al. 2018 use α in [0.1, 0.4] for ImageNet, "
                      "1 for CIFAR-10"),
    )

    def __init__(self, method, options):
        super().__init__(method, options)
        self.alpha = float(options["mixup_alpha"])

    def blending(self, batch):
        return self.alpha > 0 and super().blending(batch)

    def blend_weights(self, batch, x_new, x_ex):
        return self.method.rng.beta(self.alpha, self.alpha, size=len(x_new)).astype(np.float32)


class MixupICaRL(ICaRL):
    name = "mixup"
    components = ICaRL.components + (MixupBlending,)
