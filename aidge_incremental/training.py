"""The training loop shared by every method: mini-batch SGD with
aidge_learning's optimiser on an Aidge graph, a method-given criterion."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import aidge_core
import aidge_learning
import numpy as np

from .model import IncrementalModel

__all__ = ["TrainConfig", "train", "one_hot"]

# criterion(logits, batch_indices) -> loss value; it must set logits.grad.
Criterion = Callable[[aidge_core.Tensor, np.ndarray], float]


@dataclass
class TrainConfig:
    epochs: int = 30
    lr: float = 0.05
    batch_size: int = 64
    momentum: float = 0.9       # SGD with momentum, as in iCaRL/LwF/FACIL
    weight_decay: float = 0.0


def one_hot(labels: np.ndarray, n_classes: int) -> aidge_core.Tensor:
    return aidge_core.Tensor(np.eye(n_classes, dtype=np.float32)[labels])


def train(model: IncrementalModel, x: np.ndarray, criterion: Criterion, config: TrainConfig,
          rng: np.random.Generator, progress=None,
          after_update: Optional[Callable[[], None]] = None) -> list:
    """Train ``model`` in place on inputs ``x`` (float32); returns the mean loss per epoch.

    Each epoch visits the samples in a new random order from ``rng``; the last
    batch may be smaller.
    """
    if len(x) == 0:
        raise ValueError("no training sample")
    optimizer = aidge_learning.SGD(momentum=config.momentum, weight_decay=config.weight_decay)
    optimizer.set_learning_rate_scheduler(aidge_learning.constant_lr(config.lr))
    optimizer.set_parameters(model.parameter_nodes())
    with model.mode(training=True):  # BatchNorm: batch statistics, running statistics updated
        return _epochs(model, x, criterion, config, rng, optimizer, progress, after_update)


def _epochs(model, x, criterion, config, rng, optimizer, progress, after_update) -> list:
    scheduler, output = model.scheduler, model.output
    losses = []
    for _ in range(config.epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), config.batch_size):
            batch = order[start:start + config.batch_size]
            scheduler.forward(data=[aidge_core.Tensor(np.ascontiguousarray(x[batch]))])
            loss = criterion(output, batch)
            if not np.isfinite(loss):
                raise FloatingPointError(f"training diverged (loss {loss}); lower the learning rate")
            optimizer.reset_grad()
            scheduler.backward()
            optimizer.update()
            if after_update is not None:
                after_update()
            total += loss * len(batch)
        losses.append(total / len(x))
        if progress is not None:
            progress.update(1)
    return losses
