"""ONNX export of each step's inference graphs (graphs.py), through aidge_onnx.

- :func:`export_model`: the trained head's model, ``input`` (raw samples as
  stored in the dataset, float32) -> ``logits`` over every class seen, with
  the class mapping as model metadata;
- :func:`export_nme`: iCaRL's nearest-mean-of-exemplars classifier, the same
  Aidge graph as the C++ export (feature extractor, a bias-free FC whose rows
  are the class means, ArgMax, Gather to the dataset's own labels):
  ``input`` -> ``scores``, ``class``.

The input scaling is a node of the graph, so a file needs nothing beside it.
Both files have a dynamic batch dimension, pass ``onnx.checker`` and are
written atomically, followed by a ``.sha256`` digest that ``predict`` checks.

Opset: by default the lowest that holds every operator of the graph (the
first, from :data:`MIN_OPSET` up, at which aidge_onnx's export passes
``onnx.checker``'s full check: 7 for an MLP, 8 for LeNet (MaxPool's second
output), 11 for the ResNets (Pad with its pads as an input)), with the
lowest IR version of that opset, so that older runtimes and embedded
toolchains read the file; ``opset=N`` asks for one (refused, naming the
lowest, if the graph needs more). Between these opsets the operators the
graphs use (Conv, Gemm, Relu, Add, Mul, MaxPool, GlobalAveragePool,
BatchNormalization in inference, Flatten, Pad, ArgMax, Gather) compute the
same; tests/export/test_opset.py runs the chosen file with onnxruntime.
Importing this module also registers the ONNX exporter and importer of our
Distillation operator, so graphs that contain it export and load back (it
lives in Aidge's custom domain: export with ``enable_custom_op=True``).
"""
from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Optional, Sequence

import aidge_core
import aidge_onnx
import numpy as np
import onnx
from onnx import helper, numpy_helper
from aidge_onnx.node_export import auto_register_export
from aidge_onnx.node_export.aidge_converters.pad import export_pad as _aidge_export_pad
from aidge_onnx.node_import import auto_register_import
from aidge_onnx.utils import _AIDGE_DOMAIN

from .. import __version__
from .._core import Distillation
from ..files import atomic_write
from ..models import IncrementalModel
from .graphs import ABSTAIN, logits_graph, nme_graph, output_labels
from .manifest import write_sidecar
from .onnx_file import INPUT_NAME, load_metadata, read_export

__all__ = ["MIN_OPSET", "export_model", "export_nme", "load_metadata", "lowest_opset", "read_export",
           "INPUT_NAME"]

#: the lowest opset tried: onnxruntime runs opset 7 and later
MIN_OPSET = 7


# -- our operator ------------------------------------------------------------------

@auto_register_export("Distillation")
def _export_distillation(aidge_node, node_inputs_name, node_outputs_name, opset=None, **kwargs):
    op = aidge_node.get_operator()
    return [helper.make_node("Distillation", node_inputs_name, node_outputs_name, name=aidge_node.name(),
                             domain=_AIDGE_DOMAIN, temperature=float(op.temperature),
                             n_old=int(op.n_old), form=op.form)]


@auto_register_import("distillation")
def _import_distillation(onnx_node, input_nodes, opset, inputs_tensor_info=None):
    attrs = {a.name: helper.get_attribute_value(a) for a in onnx_node.attribute}
    form = attrs.get("form", b"kl")
    return Distillation(float(attrs.get("temperature", 2.0)), int(attrs.get("n_old", 0)),
                        form.decode() if isinstance(form, bytes) else form,
                        onnx_node.name or onnx_node.output[0])


@auto_register_export("Pad")
def _export_pad(aidge_node, node_inputs_name, node_outputs_name, opset=None, **kwargs):
    """Constant padding as one ONNX Pad over every axis. aidge_onnx 0.10.1's own exporter
    lists the Pad before the Constants feeding it and writes constant_value as a double:
    onnx.checker rejects both (ResNets' option-A shortcuts pad the channel axis)."""
    op = aidge_node.get_operator()
    if op.attr.mode != aidge_core.PaddingMode.CONSTANT or any(
            aidge_node.get_parent(i) is not None for i in range(1, op.nb_inputs())):
        return _aidge_export_pad(aidge_node, node_inputs_name, node_outputs_name, opset=opset, **kwargs)
    rank = len(op.get_input(0).dims)
    axes = [a % rank for a in op.attr.axes] or list(range(rank))
    pads, full = list(op.attr.pads), [0] * (2 * rank)
    for i, axis in enumerate(axes):  # Aidge's pads: all begins, then all ends (as ONNX)
        full[axis], full[rank + axis] = pads[i], pads[len(axes) + i]
    name = aidge_node.name()
    value = np.array(op.attr.constant_value, np.float32)
    return [
        helper.make_node("Constant", [], [f"{name}_pads"], name=f"{name}_pads",
                         value=numpy_helper.from_array(np.array(full, np.int64))),
        helper.make_node("Constant", [], [f"{name}_value"], name=f"{name}_value",
                         value=numpy_helper.from_array(value)),
        helper.make_node("Pad", [node_inputs_name[0], f"{name}_pads", f"{name}_value"], node_outputs_name,
                         name=name, mode="constant"),
    ]


# -- helpers ---------------------------------------------------------------------------

def _check(model: onnx.ModelProto) -> Optional[str]:
    """onnx.checker's full check: None, or its first line."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # noqa: BLE001  (ValidationError, InferenceError, ...)
        return (str(e).strip().splitlines() or [type(e).__name__])[0]
    return None


def _at_opset(graph: aidge_core.GraphView, names: Sequence[str], opset: int) -> onnx.ModelProto:
    ir_version = helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
    return _aidge_to_onnx(graph, names, opset, ir_version)


def _problem_at(graph, names, opset: int) -> Optional[str]:
    """Why the graph's export at ``opset`` is not a valid model (None: it is)."""
    try:
        return _check(_at_opset(graph, names, opset))
    except Exception as e:  # noqa: BLE001  (an exporter that cannot write this opset)
        return (str(e).strip().splitlines() or [type(e).__name__])[0]


def lowest_opset(graph: aidge_core.GraphView, names: Sequence[str]) -> int:
    """The lowest opset (from :data:`MIN_OPSET`) at which the graph's export passes
    onnx.checker's full check."""
    newest = onnx.defs.onnx_opset_version()
    for opset in range(MIN_OPSET, newest + 1):
        if _problem_at(graph, names, opset) is None:
            return opset
    raise RuntimeError(f"export: no opset up to {newest} holds this graph: {_problem_at(graph, names, newest)}")


def _choose_opset(graph: aidge_core.GraphView, names: Sequence[str], opset: Optional[int]) -> onnx.ModelProto:
    """The graph's export at ``opset`` (None: the lowest that holds it), checked."""
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return _at_opset(graph, names, lowest_opset(graph, names))
    if not MIN_OPSET <= int(opset) <= newest:
        raise ValueError(f"opset {opset} is out of range: this onnx {onnx.__version__} writes opsets {MIN_OPSET} "
                         f"to {newest}")
    problem = _problem_at(graph, names, int(opset))
    if problem is not None:
        lowest = lowest_opset(graph, names)
        raise ValueError(f"opset {opset} cannot hold this model ({problem}); the lowest that can is {lowest}: "
                         f"give --opset {lowest} or more, or leave --opset out")
    return _at_opset(graph, names, int(opset))


def _aidge_to_onnx(graph: aidge_core.GraphView, names: Sequence[str], opset: Optional[int] = None,
                   ir_version: Optional[int] = None) -> onnx.ModelProto:
    """Export through aidge_onnx (at ``opset`` and ``ir_version``, default
    aidge_onnx's), keep the graph's ordered outputs under ``names``, rename the
    input to ``input`` and make the batch dimension dynamic."""
    level = aidge_core.Log.get_console_level()
    aidge_core.Log.set_console_level(aidge_core.Level.Error)  # no "file is valid" notice (or opset warning)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.onnx")
            aidge_onnx.export_onnx(graph, path, opset=opset, ir_version=ir_version)
            model = onnx.load(path)
    finally:
        aidge_core.Log.set_console_level(level)
    g = model.graph
    wanted = [f"{node.name()}_out{index}" for node, index in graph.get_ordered_outputs()]
    by_name = {o.name: o for o in g.output}
    produced = {name for node in g.node for name in node.output}
    for (node, index), name in zip(graph.get_ordered_outputs(), wanted):
        if name not in by_name and name in produced:  # an output that also feeds a node
            tensor = node.get_operator().get_output(index)
            if tensor.dtype != aidge_core.dtype.float32:
                raise RuntimeError(f"export: output {name} of type {tensor.dtype} is not a graph output")
            by_name[name] = helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(tensor.dims))
    if len(wanted) != len(names) or any(w not in by_name for w in wanted):
        raise RuntimeError(f"export: outputs {wanted} not all in {list(by_name)}")
    keep = [by_name[w] for w in wanted]
    del g.output[:]
    g.output.extend(keep)
    for value, name in zip(keep, names):
        _rename_value(model, value.name, name)
    old_input = g.input[0].name
    _rename_value(model, old_input, INPUT_NAME)
    for value in list(g.input[:1]) + list(g.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del g.value_info[:]  # fixed-batch shapes inferred at export time
    return model


def _rename_value(model: onnx.ModelProto, old: str, new: str) -> None:
    g = model.graph
    for node in g.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    for value in list(g.input) + list(g.output):
        if value.name == old:
            value.name = new


def _finish(model: onnx.ModelProto, path, metadata: dict) -> pathlib.Path:
    for key, value in metadata.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=str(value)))
    onnx.checker.check_model(model, full_check=True)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, model.SerializeToString())
    write_sidecar(path)
    return path


def _metadata(model: IncrementalModel, classes: Sequence[int], kind: str) -> dict:
    return {
        "aidge_incremental.version": __version__,
        "aidge_incremental.kind": kind,
        # logits: output j is the dataset's class classes[j]; nme: the labels the classifier answers
        "aidge_incremental.classes": json.dumps([int(c) for c in classes]),
        # raw samples as stored in the dataset (the scaling is the graph's first node)
        "aidge_incremental.input_shape": json.dumps(list(model.input_shape)),
    }


# -- exports -----------------------------------------------------------------------

def export_model(model: IncrementalModel, path, class_order: Sequence[int], input_divisor: float = 1.0,
                 metadata: Optional[dict] = None, opset: Optional[int] = None, normalization=None) -> pathlib.Path:
    """The trained head's model: ``input`` [batch, *input_shape] raw samples ->
    ``logits`` [batch, classes]; ``input_divisor`` (e.g. 16 for digits, 255 for uint8
    images) becomes the graph's first node, and ``normalization`` (the dataset's per-channel
    statistics, if it is normalised) the next. ``opset``: see the module docstring."""
    labels = output_labels(class_order, model.n_classes)  # before any work
    onnx_model = _choose_opset(logits_graph(model, input_divisor, normalization=normalization), ["logits"], opset)
    meta = _metadata(model, labels, "logits")
    meta.update(metadata or {})
    return _finish(onnx_model, path, meta)


def export_nme(model: IncrementalModel, path, means: np.ndarray, mean_classes: Sequence[int],
               class_order: Sequence[int], input_divisor: float = 1.0,
               metadata: Optional[dict] = None, opset: Optional[int] = None, normalization=None) -> pathlib.Path:
    """iCaRL's NME classifier (graphs.nme_graph): ``input`` raw samples -> ``scores``
    [batch, 1 + classes] (column 0: abstain, always 0; then f.mu_c, the higher the
    nearer) and ``class`` [batch] (int32: the dataset's own label of the nearest class
    mean, -1 for a feature vector near none, e.g. all zero).

    ``means``: class means [C, d] (unit-norm, as NearestMeanClassifier.means);
    ``mean_classes``: the relabelled class of each row.
    """
    order = output_labels(class_order, len(list(class_order)))  # the mean rows index the whole class order
    rows = np.asarray(mean_classes)
    if rows.ndim != 1 or rows.dtype.kind not in "iu" or len(rows) != len(means) or len(rows) and \
            (rows.min() < 0 or rows.max() >= len(order)):
        raise ValueError(f"mean_classes must give, for each of the {len(means)} means, a class among the "
                         f"{len(order)} of class_order, got {rows.tolist()[:12]}")
    labels = np.asarray(order, np.int64)[rows.astype(np.int64)]
    onnx_model = _choose_opset(nme_graph(model, means, labels, input_divisor, normalization=normalization),
                               ["scores", "class"], opset)
    meta = _metadata(model, labels, "nme")
    meta["aidge_incremental.abstain"] = str(ABSTAIN)
    meta.update(metadata or {})
    return _finish(onnx_model, path, meta)
