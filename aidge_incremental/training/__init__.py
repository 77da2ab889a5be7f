"""Training: the batch loop and its hooks, learning-rate schedules, data
augmentation and normalisation, and the backend choice."""
from .augmentation import Augmentation, NORMALIZATION, NormalizedDataset, default_augmentation, normalized
from .backend import BACKENDS, require_backend, to_tensor
from .batch import Batch, BatchHooks, Outputs, isolated_pass, one_hot, tap_tensor
from .loop import TrainConfig, train
from .schedules import SCHEDULES, LRSchedule

__all__ = ["Augmentation", "BACKENDS", "Batch", "BatchHooks", "LRSchedule", "NORMALIZATION",
           "NormalizedDataset", "Outputs", "SCHEDULES", "TrainConfig", "default_augmentation",
           "isolated_pass", "normalized", "one_hot", "require_backend", "tap_tensor", "to_tensor", "train"]
