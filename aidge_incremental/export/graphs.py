"""The deployable Aidge graphs of a step, shared by every exporter (ONNX, C++).

- :func:`logits_graph`: raw sample -> logits of every class seen (the trained head);
- :func:`nme_graph`: raw sample -> iCaRL's nearest-mean-of-exemplars label.

Both take the sample as stored in the dataset (digits 0..16, uint8 pixels
0..255, as float32) and fold the input scaling into the graph as a first
``Mul`` by ``1 / divisor``: nothing outside the file is needed to run it. A
dataset normalised per channel (Fashion-MNIST, CIFAR) folds its statistics in
too: ``(x / divisor − mean_c) / std_c`` is one ``Mul`` by ``1 / (divisor·std_c)``
and one ``Add`` of ``−mean_c / std_c`` (per channel, ``[C, 1, 1]`` constants; a
single channel's are scalars), so the model still takes raw samples.
For the C++ export (``cpp=True``), ``Flatten``, which aidge_export_cpp cannot
export, becomes ``Reshape([0, -1])`` (whose attribute-only form ONNX rejects:
the ONNX export keeps Flatten).

**NME as a bias-free FC.** iCaRL classifies a feature ``f`` by the class mean
``mu_c`` nearest to ``u = f / |f|``. The means are unit-norm, so
``|u - mu_c|^2 = 2 - 2 u.mu_c`` and the nearest mean is ``argmax_c u.mu_c``;
a positive factor ``1/|f|`` does not change an argmax, so it is
``argmax_c f.mu_c``: an FC without bias whose weight rows are the means, then
ArgMax. No normalisation node is needed, hence no division by ``|f|``
(nothing to go wrong, in float or on a target without ``sqrt``).

- *Ties*: ArgMax returns the first maximum (``select_last_index=False``), as
  NumPy's ``argmin`` over the distances does: means keep the Python
  classifier's row order, so an exact tie resolves to the same class.
- *All-zero features* (every ReLU of the feature layer off): ``u`` is
  undefined and every class is equally near, so there is no nearest mean.
  Rather than answer an arbitrary class, the FC has one extra first row of
  zeros, an *abstain* score that is always 0; features and means are
  non-negative (the feature layer is a ReLU, so the means of normalised
  features are too), so every class score is >= 0 and the abstain row wins
  only when no class scores above 0 — an all-zero feature (or one orthogonal
  to every mean). Its label is :data:`ABSTAIN` (-1).
"""
from __future__ import annotations

from typing import Sequence

import aidge_core
import numpy as np

from ..models import FEATURES, HEAD, IncrementalModel

__all__ = ["ABSTAIN", "input_affine", "logits_graph", "model_input", "nme_graph", "nme_weights"]

ABSTAIN = -1  #: the NME label of a feature vector that is near no class mean (e.g. all zero)


def _check_divisor(divisor: float) -> float:
    divisor = float(divisor)
    if not np.isfinite(divisor) or divisor <= 0:
        raise ValueError(f"the input divisor must be a finite positive number, got {divisor}")
    return divisor


def _prepend(graph, entry, op, constant_name: str, value):
    """``op(x, constant)`` added to ``graph`` in front of ``entry``; returns ``op``."""
    constant = aidge_core.Producer(aidge_core.Tensor(value), constant_name, constant=True)
    constant.add_child(op, 0, 1)
    op.add_child(entry, 0, 0)
    graph.add(op)
    graph.add(constant)
    return op


def input_affine(divisor: float, normalization=None, channels: int = 1):
    """``(scale, shift)`` such that the model's input is ``raw · scale + shift``:
    ``1 / divisor`` and None without normalisation; per channel ``1 / (divisor·std)`` and
    ``−mean / std`` with it (float32 arrays: scalars ``[1]`` for one channel, else ``[C, 1, 1]``)."""
    divisor = _check_divisor(divisor)
    if normalization is None:
        return np.array([1.0 / divisor], np.float32), None
    mean, std = np.asarray(normalization.mean, np.float64), np.asarray(normalization.std, np.float64)
    if len(mean) != channels:
        raise ValueError(f"normalisation of {len(mean)} channel(s) for inputs of {channels}")
    shape = (1,) if channels == 1 else (channels, 1, 1)
    return (1.0 / (divisor * std)).astype(np.float32).reshape(shape), (-mean / std).astype(np.float32).reshape(shape)


def model_input(raw: np.ndarray, divisor: float, normalization=None) -> np.ndarray:
    """Raw samples as the model's input, exactly as the exported graph's first nodes
    compute it (what an export is checked against)."""
    scale, shift = input_affine(divisor, normalization, raw.shape[1] if raw.ndim == 4 else 1)
    x = np.asarray(raw, np.float32) * scale
    return (x if shift is None else x + shift).astype(np.float32)


def _deployable(model: IncrementalModel, divisor: float, with_head: bool, scale: bool, cpp: bool,
                normalization=None):
    """The model's graph with, when ``cpp``, Flatten replaced by Reshape and, when
    ``scale``, the input scaling (and normalisation) as first nodes. Returns (graph,
    first node, last node)."""
    graph = model.build_graph(with_head=with_head)
    for node in list(graph.get_nodes()):
        if cpp and node.type() == "Flatten":
            reshape = aidge_core.Reshape([0, -1], name=node.name())
            old, new = aidge_core.GraphView(), aidge_core.GraphView()
            old.add(node)
            new.add(reshape)
            if not aidge_core.GraphView.replace(old, new):
                raise RuntimeError(f"could not replace Flatten node {node.name()}")
    first = graph.get_ordered_inputs()[0][0]
    last = graph.get_node(HEAD if with_head else FEATURES)
    if scale:
        channels = model.input_shape[0] if len(model.input_shape) == 3 else 1
        factor_value, shift_value = input_affine(divisor, normalization, channels)
        first = first if shift_value is None else \
            _prepend(graph, first, aidge_core.Add(name="input_normalize"), "input_normalize_shift", shift_value)
        first = _prepend(graph, first, aidge_core.Mul(name="input_scale"), "input_scale_factor", factor_value)
    elif normalization is not None:
        raise ValueError("an export without its input scaling (int8) cannot carry a normalisation")
    graph.set_ordered_inputs([(first, 0)])
    graph.set_ordered_outputs([(last, 0)], True)
    return graph, first, last


def _finish(graph, model, inputs, outputs) -> aidge_core.GraphView:
    graph.compile("cpu", aidge_core.dtype.float32, dims=[[1, *model.input_shape]])
    # after compile, which lists every dangling output (MaxPooling's indices among them)
    graph.set_ordered_inputs(inputs)
    graph.set_ordered_outputs(outputs, True)
    return graph


def logits_graph(model: IncrementalModel, divisor: float = 1.0, scale: bool = True,
                 cpp: bool = False, normalization=None) -> aidge_core.GraphView:
    """Raw samples [N, *input_shape] -> logits [N, classes] (the head's output).
    ``scale=False`` leaves the input scaling out (inputs already divided by ``divisor``);
    ``cpp``: for aidge_export_cpp; ``normalization``: the dataset's per-channel statistics."""
    graph, first, last = _deployable(model, divisor, with_head=True, scale=scale, cpp=cpp,
                                     normalization=normalization)
    return _finish(graph, model, [(first, 0)], [(last, 0)])


def nme_weights(means: np.ndarray, feature_dim: int) -> np.ndarray:
    """The NME FC's weights: a zero abstain row, then the class means (checked unit-norm
    and non-negative, the conditions under which argmax of the FC is the nearest mean)."""
    means = np.asarray(means, np.float64)
    if means.ndim != 2 or means.shape[1] != feature_dim or len(means) == 0:
        raise ValueError(f"class means must be [classes >= 1, {feature_dim}], got {means.shape}")
    if not np.all(np.isfinite(means)):
        raise ValueError("class means contain NaN or inf")
    if np.any(means < 0):
        raise ValueError("class means must be non-negative (means of ReLU features) for the "
                         "abstain row to be right")
    norms = np.linalg.norm(means, axis=1)
    if np.any(np.abs(norms - 1) > 1e-4):
        raise ValueError(f"class means must be unit-norm, norms are {norms.round(6).tolist()}")
    return np.concatenate([np.zeros((1, feature_dim)), means]).astype(np.float32)


def nme_graph(model: IncrementalModel, means: np.ndarray, labels: Sequence[int],
              divisor: float = 1.0, cpp: bool = False, normalization=None) -> aidge_core.GraphView:
    """Raw samples -> ``scores`` [N, 1 + classes] (column 0: abstain, always 0; column
    1 + j: f.mean_j) -> ``class`` [N] (the dataset label, :data:`ABSTAIN` for no class).

    ``labels[j]``: the dataset's label of ``means[j]``."""
    weights = nme_weights(means, model.feature_dim)
    labels = np.asarray(labels, np.int64)
    if labels.shape != (len(weights) - 1,):
        raise ValueError(f"one label per class mean expected: {len(weights) - 1}, got {labels.shape}")
    graph, first, features = _deployable(model, divisor, with_head=False, scale=True, cpp=cpp,
                                         normalization=normalization)
    fc = aidge_core.FC(model.feature_dim, len(weights), no_bias=True, name="nme_scores")
    argmax = aidge_core.ArgMax(axis=1, keep_dims=False, select_last_index=False, name="nme_index")
    gather = aidge_core.Gather(axis=0, name="nme_class")
    table = aidge_core.Producer(aidge_core.Tensor(np.concatenate([[ABSTAIN], labels]).astype(np.int32)),
                                "nme_labels", constant=True)
    features.add_child(fc, 0, 0)
    fc.add_child(argmax, 0, 0)
    table.add_child(gather, 0, 0)
    argmax.add_child(gather, 0, 1)
    for node in (fc, argmax, gather, table):
        graph.add(node)
    graph = _finish(graph, model, [(first, 0)], [(fc, 0), (gather, 0)])
    fc.get_operator().get_input(1).copy_from(aidge_core.Tensor(weights))
    return graph


def output_labels(class_order: Sequence, n_outputs: int, what: str = "class_order") -> list:
    """The dataset label of each of a model's ``n_outputs`` outputs: the first
    ``n_outputs`` entries of ``class_order``, which must be distinct integers
    (ValueError naming what does not fit)."""
    try:
        order = list(class_order)
    except TypeError:
        raise ValueError(f"{what} must be a sequence of integer labels, got {type(class_order).__name__}") from None
    if len(order) < n_outputs:
        raise ValueError(f"{what} gives {len(order)} labels for the {n_outputs} outputs of the model: it must give "
                         "the label of every output")
    labels = order[:n_outputs]
    bad = [v for v in labels if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer))]
    if bad:
        raise ValueError(f"{what} must hold integers (the dataset's labels), got {bad[0]!r}")
    labels = [int(v) for v in labels]
    if len(set(labels)) != len(labels):
        twice = sorted({v for v in labels if labels.count(v) > 1})
        raise ValueError(f"{what}'s labels must be distinct (one per output), got {twice} more than once")
    return labels
