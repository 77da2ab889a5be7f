"""Training: the batch loop and its hooks, and learning-rate schedules."""
from .batch import Batch, BatchHooks, Outputs, isolated_pass, one_hot, tap_tensor
from .config import TRAINING_OPTIONS, TrainConfig
from .loop import EpochRecord, fast_sgd, train
from .schedules import SCHEDULES, LRSchedule

__all__ = ["Batch", "BatchHooks", "EpochRecord", "LRSchedule", "Outputs", "SCHEDULES", "TRAINING_OPTIONS", "TrainConfig", "fast_sgd", "isolated_pass", "one_hot",
           "tap_tensor", "train"]
