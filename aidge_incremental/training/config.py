"""How a step trains: the training options, declared once.

Each option is an :class:`~aidge_incremental.options.Option` with its default
and where that default comes from; :class:`TrainConfig` holds checked values,
and the experiment's configuration, the command line and configuration files
take the same declarations (:data:`TRAINING_OPTIONS`).
"""
from __future__ import annotations

from typing import Optional

from ..datasets import Augmentation, Dataset
from ..options import ConfigError, Option, OptionSet
from .schedules import SCHEDULES, LRSchedule

__all__ = ["TRAINING_OPTIONS", "TrainConfig"]

TRAINING_OPTIONS = (
    Option("epochs", int, 30, "epochs per step", minimum=1, maximum=100_000,
           source="chosen for the digits (iCaRL trains 70 epochs per step on CIFAR-100)"),
    Option("lr", float, 0.05, "SGD learning rate", minimum=1e-12,
           source="chosen for the digits MLP (iCaRL: 2.0 with its sigmoid outputs; PyCIL: 0.1)"),
    Option("batch_size", int, 64, "mini-batch size", minimum=1, maximum=1 << 20,
           source="FACIL's default batch size"),
    Option("momentum", float, 0.9, "SGD momentum", minimum=0.0, maximum=1.0,
           source="iCaRL, LwF and FACIL train with momentum 0.9"),
    Option("weight_decay", float, 0.0, "L2 weight decay (every trainable parameter, as torch.optim.SGD)",
           minimum=0.0, source="off by default; iCaRL uses 1e-5, PyCIL 2e-4 to 5e-4"),
    Option("schedule", str, "constant", "learning-rate schedule (see training/schedules.py)", choices=SCHEDULES,
           source="constant for short runs; the reference protocols use multistep"),
    Option("milestones", int, [], "multistep: epochs at which the rate is multiplied by lr_factor",
           sequence=True, min_length=0, minimum=1, max_length=1000, source="none (constant schedule)"),
    Option("lr_factor", float, 0.1, "multistep: factor applied at each milestone", minimum=0.0, maximum=1.0,
           source="PyCIL's multistep factor (iCaRL's code divides by 5)"),
    Option("min_lr", float, 0.0, "cosine: the rate at the last epoch", minimum=0.0,
           source="PyTorch's CosineAnnealingLR (eta_min = 0)"),
    Option("warmup_epochs", int, 0, "linear warm-up, in epochs", minimum=0, maximum=100_000,
           source="none"),
    Option("augment", bool, None, "random crop + flip (null: the dataset's default, on for CIFAR only)",
           optional=True, source="each dataset states its default augmentation"),
    Option("crop_padding", int, None, "augmentation: zero padding of the random crop (null: the dataset's "
           "default, else 4)", optional=True, minimum=0, maximum=64,
           source="4: iCaRL's and PyCIL's CIFAR crop"),
    Option("flip", bool, None, "augmentation: random horizontal flip (null: the dataset's default, else on)",
           optional=True, source="iCaRL's and PyCIL's CIFAR flip"),
    Option("first_step", dict, None, "settings of the first step that differ (e.g. {lr: 0.1, epochs: 200})",
           optional=True, source="PyCIL's init_lr / init_epoch"),
)


class TrainConfig(OptionSet):
    """How one step trains: :data:`TRAINING_OPTIONS`, checked.

    ``first_step`` holds overrides for the first step (e.g. PyCIL's
    ``init_lr``/``init_epoch``/``init_weight_decay``):
    ``TrainConfig(lr=0.1, first_step={"lr": 0.1, "weight_decay": 5e-4})``.

    ``augment``: None = the dataset's default augmentation (crop + flip for
    CIFAR, none for digits/MNIST), False = off, True = on. ``crop_padding`` and
    ``flip``, when given, change the augmentation used (None: the dataset's
    default's, else 4 pixels and flip).
    """
    options = TRAINING_OPTIONS

    def validate(self) -> None:
        if not self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        try:
            self.lr_schedule()  # epochs, lr, schedule, milestones, warm-up together
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if self.first_step is not None:
            names = [o.name for o in TRAINING_OPTIONS if o.name != "first_step"]
            unknown = sorted(set(self.first_step) - set(names))
            if unknown:
                raise ConfigError(f"first_step: unknown settings {unknown}; it takes training options: "
                                  f"{', '.join(names)}")
            self.for_step(0)  # checks the overridden settings too

    def for_step(self, index: int) -> "TrainConfig":
        """The settings of step ``index``: ``first_step`` overrides on step 0."""
        if index == 0 and self.first_step:
            try:
                return self.replace(**dict(self.first_step), first_step=None)
            except ConfigError as e:
                raise ConfigError(f"first_step: {e}") from None
        return self.replace(first_step=None) if self.first_step else self

    def lr_schedule(self) -> LRSchedule:
        return LRSchedule(self.lr, self.epochs, self.schedule, self.milestones, self.lr_factor,
                          self.min_lr, self.warmup_epochs)

    def augmentation(self, dataset: Optional[Dataset]) -> Optional[Augmentation]:
        """The augmentation a step trains with on ``dataset`` (see ``augment``)."""
        default = dataset.augmentation if dataset is not None else None
        if self.augment is False or (self.augment is None and default is None):
            return None
        base = default or Augmentation()
        return Augmentation(base.padding if self.crop_padding is None else self.crop_padding,
                            base.flip if self.flip is None else self.flip)
