"""The training loop shared by every method; its unit is a batch.

For each epoch the samples are visited in a new random order (the last batch
may be smaller). For each batch:

1. draw the raw samples (rows of the data the method trains on), augment
   them (optional, :mod:`.augmentation`), convert them to model input
   (the dataset's ``to_input``): a :class:`~.batch.Batch`;
2. ``hooks.make_batch(batch)`` may change or replace it (mixup);
3. ``hooks.before_forward(batch)`` sees it (the teacher runs here);
4. forward pass; ``hooks.losses(batch, outputs)`` sets the gradients of the
   outputs/taps its losses are computed on and returns the loss value;
5. backward pass from all those gradients;
6. ``hooks.before_update(parameters)`` may change the parameters' gradients
   (a penalty such as EWC's adds its gradient here);
7. one SGD update (momentum, weight decay) at the schedule's rate;
8. ``hooks.after_update()``.

Optimiser: PyTorch's SGD (``torch.optim.SGD(momentum, weight_decay)``:
``d = g + wd·p``, ``buf = d`` on the first update then ``buf = m·buf + d``,
``p -= lr·buf``; checked in tests/test_training.py). Weight decay applies to
every trainable parameter, biases included, as ``torch.optim.SGD(
model.parameters(), weight_decay=…)`` in PyCIL and FACIL (iCaRL's Theano code
decays the weights only).

* On the cpu backend with float32 parameters: our ``FastSGD`` (C++, one pass
  per parameter tensor). ``aidge_learning.SGD`` computes the same update as a
  chain of Aidge tensor expressions, each allocating a temporary: 0.38 ms of
  a 1 ms MLP update (benchmarks/bench_split_mnist.py, cProfile).
* Elsewhere (cuda): ``aidge_learning.SGD``. On its first update it leaves
  weight decay out (``inertia = grad`` with no ``wd·p``; AIDGE_NOTES), so the
  loop applies ``grad += wd·p`` itself and gives it ``weight_decay = 0``. The
  rate changes per epoch: the loop gives it a fresh ``constant_lr`` scheduler
  already advanced past step 0 (a scheduler at step 0 would make it restart
  its momentum), so momentum carries over a rate change as in PyTorch.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional

import aidge_core
import numpy as np

from .. import _core
from ..backend import require_backend, to_tensor
from ..datasets import Augmentation
from ..profiling import phase
from .batch import Batch, BatchHooks, Outputs
from .config import TrainConfig

__all__ = ["EpochRecord", "TrainingDiverged", "fast_sgd", "train"]


class TrainingDiverged(FloatingPointError, ValueError):
    """The loss or the logits became NaN or infinite: the run diverged (a ValueError
    too, as every refusal of a setting is)."""


@dataclass
class EpochRecord:
    """What one epoch of :func:`train` did: the mean loss and the mean of each
    named loss term (each batch weighted by its size), the mean learning rate
    over its updates (constant within an epoch except during warm-up), its
    wall-clock seconds and the samples it trained on."""
    epoch: int
    loss: float
    terms: Dict[str, float] = field(default_factory=dict)
    lr: float = 0.0
    seconds: float = 0.0
    samples: int = 0


def _constant_rate(lr: float, started: bool):
    import aidge_learning
    scheduler = aidge_learning.constant_lr(lr)
    if started:  # SGD treats scheduler step 0 as its first update (momentum restarts)
        scheduler.update()
    return scheduler


def fast_sgd(parameters, momentum: float, weight_decay: float, backend: str = "cpu"):
    """Our FastSGD over the parameter nodes' tensors when they are float32 on
    the cpu backend (what the loop uses there); None otherwise."""
    if backend != "cpu":
        return None
    tensors = [node.get_operator().get_output(0) for node in parameters]
    if any(t.dtype != aidge_core.dtype.float32 for t in tensors):
        return None
    return _core.FastSGD(tensors, float(momentum), float(weight_decay))


def _apply_weight_decay(parameters, weight_decay: float, backend: str) -> None:
    """``grad += weight_decay · p`` for every parameter (on its own backend)."""
    decay = to_tensor(np.array([weight_decay], np.float32), backend)
    for node in parameters:
        tensor = node.get_operator().get_output(0)
        tensor.grad.copy_from(tensor.grad + tensor * decay)


def train(model, x: np.ndarray, y: np.ndarray, hooks: BatchHooks, config: TrainConfig,
          rng: np.random.Generator, to_input: Callable[[np.ndarray], np.ndarray],
          augmentation: Optional[Augmentation] = None, progress=None,
          on_epoch: Optional[Callable[[EpochRecord], None]] = None) -> list:
    """Train ``model`` in place on the raw samples ``x`` with labels ``y``; returns
    the mean loss per epoch (each batch weighted by its size).

    ``to_input`` turns raw samples into float32 model input (``dataset.to_input``);
    ``augmentation``, if given, runs on the raw samples first, with ``rng``;
    ``on_epoch``, if given, receives an :class:`EpochRecord` after each epoch
    (the loop only adds floats per batch: no I/O inside an epoch).
    """
    backend = require_backend(getattr(model, "backend", "cpu"))
    x, y = np.asarray(x), np.asarray(y)
    if len(x) == 0:
        raise ValueError("no training sample")
    if len(x) != len(y):
        raise ValueError(f"{len(x)} samples but {len(y)} labels")
    schedule = config.lr_schedule()
    batch_size = int(config.batch_size)
    updates_per_epoch = -(-len(x) // batch_size)
    input_shape = tuple(model.input_shape)
    n_classes = model.n_classes

    parameters = model.parameter_nodes()
    optimizer_fast = fast_sgd(parameters, config.momentum, config.weight_decay, backend)
    if optimizer_fast is None:
        import aidge_learning  # only off the cpu backend (its import costs a second: a web dashboard)
        optimizer = aidge_learning.SGD(momentum=config.momentum, weight_decay=0.0)
        optimizer.set_parameters(parameters)
    rate = None
    scheduler, outputs = model.scheduler, Outputs(model)
    epoch_losses = []
    update = 0
    model.set_training(True)
    try:
        for epoch in range(config.epochs):
            order = rng.permutation(len(x))
            total, count, rates = 0.0, 0, []
            terms: Dict[str, float] = {}
            started = time.perf_counter()
            for start in range(0, len(x), batch_size):
                indices = order[start:start + batch_size]
                raw = x[indices]
                if augmentation is not None:
                    with phase("augment"):
                        raw = augmentation(raw, rng)
                lr = schedule.lr_at(epoch, update, updates_per_epoch)
                batch = Batch(np.ascontiguousarray(to_input(raw), dtype=np.float32), y[indices].astype(np.int64),
                              indices=indices, epoch=epoch, lr=lr)
                batch = hooks.make_batch(batch)
                if not isinstance(batch, Batch):
                    raise TypeError(f"make_batch must return a Batch, got {type(batch).__name__}")
                batch.validate(input_shape, n_classes)
                batch.lr, batch.epoch = lr, epoch
                hooks.before_forward(batch)

                scheduler.forward(data=[to_tensor(batch.inputs, backend)])
                try:
                    value = hooks.losses(batch, outputs)
                except ValueError as e:  # a loss refusing non-finite logits: the training diverged
                    try:
                        finite = bool(np.all(np.isfinite(np.array(outputs.logits))))
                    except Exception:  # noqa: BLE001  (logits not readable here: keep the loss's error)
                        finite = True
                    if finite:
                        raise
                    raise TrainingDiverged(f"training diverged at epoch {epoch}, update {update} (non-finite "
                                           f"logits); lower the learning rate (lr {lr:g})") from e
                loss = float(sum(value.values())) if isinstance(value, Mapping) else float(value)
                if isinstance(value, Mapping):
                    for name, term in value.items():
                        terms[name] = terms.get(name, 0.0) + float(term) * len(batch)
                if not math.isfinite(loss):
                    raise TrainingDiverged(f"training diverged at epoch {epoch}, update {update} (loss {loss}); "
                                           f"lower the learning rate (lr {lr:g})")
                if optimizer_fast is not None:
                    optimizer_fast.reset_grad()
                    scheduler.backward()
                    hooks.before_update(parameters)
                    optimizer_fast.update(lr)
                else:
                    optimizer.reset_grad()
                    scheduler.backward()
                    hooks.before_update(parameters)
                    if config.weight_decay:
                        _apply_weight_decay(parameters, config.weight_decay, backend)
                    if lr != rate:
                        optimizer.set_learning_rate_scheduler(_constant_rate(lr, started=update > 0))
                        rate = lr
                    optimizer.update()
                update += 1
                hooks.after_update()
                total += loss * len(batch)
                count += len(batch)  # a produced batch may differ in size from the drawn one
                rates.append(lr)
            epoch_losses.append(total / count)
            if on_epoch is not None:
                on_epoch(EpochRecord(epoch, total / count, {k: v / count for k, v in terms.items()},
                                     math.fsum(rates) / len(rates), time.perf_counter() - started, count))
            if progress is not None:
                progress.update(1)
    finally:
        model.set_training(False)
    return epoch_losses
