"""Fine-tuning: train on each step's new classes only.

The lower bound of class-incremental learning: with nothing to keep the old
classes, the model forgets them (catastrophic forgetting, McCloskey & Cohen
1989). With ``memory > 0`` it replays exemplars of the old classes (the
"Finetune + replay" baseline of Masana et al. 2022, "Class-incremental
learning: survey and performance evaluation", TPAMI).
"""
from .base import IncrementalMethod
from .components import L2SP, Replay

__all__ = ["Finetune"]


class Finetune(IncrementalMethod):
    name = "finetune"
    components = (Replay, L2SP)
