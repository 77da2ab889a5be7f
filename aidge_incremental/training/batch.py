"""What the loop hands a method for each batch: the :class:`Batch`, the model's
:class:`Outputs` after the forward pass, and :func:`isolated_pass` for extra
forward/backward passes (Grad-CAM, probing) that leave no trace."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Dict, Iterator, Optional

import aidge_core
import numpy as np

from ..backend import to_tensor

__all__ = ["Batch", "BatchHooks", "Outputs", "isolated_pass", "one_hot", "tap_tensor"]


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``[B, n_classes]`` float32 one-hot rows."""
    return np.eye(n_classes, dtype=np.float32)[labels]


@dataclass
class Batch:
    """One training batch.

    - ``inputs``: float32 model input ``[B, *input_shape]`` (augmented, then
      converted by the dataset's ``to_input``);
    - ``labels``: int64 ``[B]``, relabelled classes; ``-1`` for a sample
      without a single label (a blend), which then needs ``targets``;
    - ``indices``: each sample's row in the data the method trains on
      (``training_data``), ``-1`` for a produced sample (e.g. a mixup blend);
      ``None`` when the method produced the whole batch;
    - ``targets``: optional soft targets ``[B, n_classes]`` (rows of
      probabilities) replacing the one-hot labels in the default loss;
    - ``extra``: anything a method wants to carry from one hook to the next
      (the teacher's logits live in ``extra["teacher_logits"]``);
    - ``epoch``, ``lr``: where the loop is, and the rate of this batch's update.
    """
    inputs: np.ndarray
    labels: np.ndarray
    indices: Optional[np.ndarray] = None
    targets: Optional[np.ndarray] = None
    extra: Dict[str, object] = field(default_factory=dict)
    epoch: int = 0
    lr: float = 0.0

    def __len__(self) -> int:
        return len(self.inputs)

    def target_matrix(self, n_classes: int) -> np.ndarray:
        """The soft targets, or the one-hot labels: ``[B, n_classes]`` float32."""
        if self.targets is not None:
            return np.asarray(self.targets, np.float32)
        return one_hot(self.labels, n_classes)

    def validate(self, input_shape, n_classes: int) -> None:
        """Raise a ValueError naming what is wrong (before the forward pass)."""
        x = self.inputs
        if not isinstance(x, np.ndarray) or x.dtype != np.float32:
            raise ValueError(f"batch inputs must be a float32 NumPy array, got "
                             f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.ndim == 0 or tuple(x.shape[1:]) != tuple(input_shape) or len(x) == 0:
            raise ValueError(f"batch inputs have shape {x.shape}, the model expects [B, "
                             f"{', '.join(map(str, input_shape))}] with B > 0")
        if not np.all(np.isfinite(x)):
            raise ValueError("batch inputs contain NaN or inf")
        labels = np.asarray(self.labels)
        if labels.shape != (len(x),) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"batch labels must be {len(x)} integers, got shape {labels.shape} "
                             f"({labels.dtype})")
        if self.targets is None:
            bad = labels[(labels < 0) | (labels >= n_classes)]
            if len(bad):
                raise ValueError(f"batch label {int(bad[0])} is outside [0, {n_classes}) and the batch "
                                 f"has no soft targets")
        else:
            t = np.asarray(self.targets)
            if t.shape != (len(x), n_classes):
                raise ValueError(f"soft targets have shape {t.shape}, expected ({len(x)}, {n_classes})")
            if not np.all(np.isfinite(t)):
                raise ValueError("soft targets contain NaN or inf")
        if self.indices is not None and np.asarray(self.indices).shape != (len(x),):
            raise ValueError(f"batch indices must be {len(x)} values (-1 for produced samples)")


def tap_tensor(model, name: str) -> aidge_core.Tensor:
    """The output tensor of node ``name`` of the model's live graph (its value
    after a forward pass; set its ``.grad`` to add a loss on it)."""
    if hasattr(model, "tap"):
        return model.tap(name)
    node = model.graph.get_node(name)
    if node is None:
        raise KeyError(f"the model has no node named {name!r}")
    return node.get_operator().get_output(0)


class Outputs:
    """The model after a forward pass on a batch.

    ``logits`` is the head's output; ``tap(name)`` any named node's output.
    A loss sets (or, with ``accumulate=True``, adds to) the ``.grad`` of the
    tensor it is computed on; the loop's backward pass then starts from all of
    them at once. Gradients of every activation are zero when the losses hook
    starts, so losses can always accumulate.
    """

    def __init__(self, model):
        self.model = model
        self.backend = getattr(model, "backend", "cpu")

    @property
    def logits(self) -> aidge_core.Tensor:
        return self.model.output

    def tap(self, name: str) -> aidge_core.Tensor:
        return tap_tensor(self.model, name)

    def tensor(self, array: np.ndarray) -> aidge_core.Tensor:
        """An array (targets, teacher outputs) as a tensor on the model's backend."""
        return to_tensor(array, self.backend)

    def seed(self, tensor: aidge_core.Tensor, gradient: np.ndarray, accumulate: bool = True) -> None:
        """Set (or add to) ``tensor.grad`` directly, e.g. a one-hot seed on the logits."""
        gradient = np.asarray(gradient, np.float32)
        if tuple(gradient.shape) != tuple(tensor.dims):
            raise ValueError(f"gradient of shape {gradient.shape} for a tensor of shape {tuple(tensor.dims)}")
        seed = self.tensor(gradient)
        tensor.grad.copy_from(tensor.grad + seed if accumulate else seed)


class _Pass:
    """Forward and backward through the model inside :func:`isolated_pass`."""

    def __init__(self, model):
        self.model = model
        self.outputs = Outputs(model)

    def forward(self, inputs: np.ndarray) -> Outputs:
        self.model.scheduler.forward(data=[self.outputs.tensor(inputs)])
        return self.outputs

    def backward(self) -> None:
        self.model.scheduler.backward()


@contextlib.contextmanager
def isolated_pass(model) -> Iterator[_Pass]:
    """Run extra forward/backward passes through ``model`` without a trace.

    Saves every tensor of the live graph (parameters and state such as
    BatchNorm statistics, activations, and all their gradients) and puts them
    back on exit, even on an exception: the parameter gradients, the pending
    forward pass of the batch and its loss gradients are as they were. The
    optimiser is not involved (its momentum only changes in ``update()``).

        with isolated_pass(model) as p:
            out = p.forward(batch.inputs)
            out.seed(out.logits, one_hot(batch.labels, n))   # Grad-CAM seed
            p.backward()
            fmap_grad = np.array(out.tap("conv3").grad)
    """
    saved = []
    for node in model.graph.get_nodes():
        op = node.get_operator()
        for i in range(op.nb_outputs()):
            tensor = op.get_output(i)
            if tensor is None or tensor.is_undefined() or tensor.size == 0:
                continue
            grad = tensor.grad
            grad = grad.clone() if grad is not None and not grad.is_undefined() and grad.size else None
            saved.append((tensor, tensor.clone(), grad))
    try:
        yield _Pass(model)
    finally:
        for tensor, value, grad in saved:
            tensor.copy_from(value)
            if grad is not None:
                tensor.grad.copy_from(grad)


class BatchHooks:
    """The per-batch hooks the loop calls (no-ops here); see
    :mod:`aidge_incremental.methods.base` for the whole order."""

    def make_batch(self, batch: Batch) -> Batch:
        """Return the batch to train on: ``batch`` itself, changed, or a new one."""
        return batch

    def before_forward(self, batch: Batch) -> None:
        """See the batch before the forward pass (e.g. run the teacher on it)."""

    def losses(self, batch: Batch, outputs: Outputs) -> float:
        """Set the gradients of the outputs/taps the losses are computed on;
        return the loss value (a float, or a dict of named floats)."""
        raise NotImplementedError

    def before_update(self, parameters: list) -> None:
        """Called between the backward pass and the optimiser update, with the
        trainable parameter nodes (Aidge Producers): read or change the gradients
        of their tensors (``node.get_operator().get_output(0).grad``)."""

    def after_update(self) -> None:
        """Called after each optimiser update."""
