"""Blending replay: the part mixup replay and attentive knowledge replay share.

Each new sample of a batch is paired with an exemplar drawn uniformly from the
replay memory (Lee et al., SMC 2023: pairs (x_i, x_j) of new data and
exemplars); the pair is replaced by the virtual sample
``w·x_i + (1 − w)·x_j`` with the soft target ``w·y_i + (1 − w)·y_j``
(Zhang et al., ICLR 2018, Eq. 1). The exemplars of the batch stay as they
are. The teacher then runs on the blended inputs (``before_forward`` comes
after ``make_batch``), so distillation is on the blends too. Subclasses say
how ``w`` is chosen (:meth:`Blending.blend_weights`).

Partners are drawn from the memory's stored samples converted with the
dataset's ``to_input`` (no augmentation: the digits default has none).
"""
from __future__ import annotations

import numpy as np

from ...training import Batch, one_hot
from ..component import Component

__all__ = ["Blending", "blend", "draw_partners"]


def blend(x_i: np.ndarray, x_j: np.ndarray, t_i: np.ndarray, t_j: np.ndarray, w: np.ndarray):
    """``(w·x_i + (1 − w)·x_j, w·t_i + (1 − w)·t_j)`` for weights ``w`` ``[P]``."""
    w = np.asarray(w, np.float32)
    if w.shape != (len(x_i),) or len(x_j) != len(x_i) or len(t_i) != len(x_i) or len(t_j) != len(x_i):
        raise ValueError(f"blend needs matching pair counts, got x {len(x_i)}/{len(x_j)}, targets "
                         f"{len(t_i)}/{len(t_j)}, weights {w.shape}")
    if not np.all((w >= 0) & (w <= 1)):
        raise ValueError("blend weights must lie in [0, 1]")
    wx = w.reshape((-1,) + (1,) * (x_i.ndim - 1))
    return (wx * x_i + (1 - wx) * x_j).astype(np.float32), (w[:, None] * t_i + (1 - w[:, None]) * t_j).astype(np.float32)


def draw_partners(rng: np.random.Generator, n_pairs: int, n_exemplars: int) -> np.ndarray:
    """An exemplar (row of the memory) for each of ``n_pairs`` new samples, uniformly."""
    return rng.integers(0, n_exemplars, size=n_pairs)


class Blending(Component):
    """Blends the batch's new samples with exemplars of the method's replay
    memory; subclasses say how the weights are chosen (:meth:`blend_weights`)
    and may add a warm-up (:meth:`blending`). Comes after the method's
    :class:`~.replay.Replay` in its components."""

    def __init__(self, method, options):
        super().__init__(method, options)
        self._exemplars = None
        self._n_new = 0

    def before_step(self, step, dataset) -> None:
        method = self.method
        self._n_new = len(step.x_train)
        self._exemplars = None
        memory = method.replay_memory
        if method.n_known and memory is not None and len(memory):  # the memory holds old classes only here
            self._exemplars = (np.ascontiguousarray(dataset.to_input(memory.samples()), np.float32),
                               memory.labels().astype(np.int64))

    def blending(self, batch: Batch) -> bool:
        """Whether this batch is blended."""
        return self._exemplars is not None

    def blend_weights(self, batch: Batch, x_new: np.ndarray, x_ex: np.ndarray) -> np.ndarray:
        """The weight ``w`` of each new sample in its pair (``[P]`` in [0, 1])."""
        raise NotImplementedError

    def new_rows(self, batch: Batch) -> np.ndarray:
        """The rows of the batch that hold new samples of the step (not exemplars)."""
        return np.flatnonzero((batch.indices >= 0) & (batch.indices < self._n_new))

    def make_batch(self, batch):
        if not self.blending(batch) or batch.indices is None:
            return batch
        new = self.new_rows(batch)
        if not len(new):
            return batch
        method = self.method
        ex_inputs, ex_labels = self._exemplars
        partners = draw_partners(method.rng, len(new), len(ex_inputs))
        x_new, x_ex = batch.inputs[new], ex_inputs[partners]
        w = self.blend_weights(batch, x_new, x_ex)
        targets = batch.target_matrix(method.n_seen).copy()
        mixed_x, mixed_t = blend(x_new, x_ex, targets[new], one_hot(ex_labels[partners], method.n_seen), w)
        inputs, labels, indices = batch.inputs.copy(), batch.labels.copy(), batch.indices.copy()
        inputs[new], targets[new], labels[new], indices[new] = mixed_x, mixed_t, -1, -1
        batch.extra["blend_weights"] = w
        batch.extra["partners"] = partners
        return Batch(inputs, labels, indices=indices, targets=targets, extra=batch.extra,
                     epoch=batch.epoch, lr=batch.lr)
