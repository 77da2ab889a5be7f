"""Fine-tuning: train on each step's new classes only.

The lower bound of class-incremental learning: with nothing to keep the old
classes, the model forgets them (catastrophic forgetting, McCloskey & Cohen 1989).
"""
from .base import IncrementalMethod


class Finetune(IncrementalMethod):
    name = "finetune"
