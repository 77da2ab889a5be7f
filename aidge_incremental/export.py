"""ONNX export of each step's inference model, through aidge_onnx.

- :func:`export_model`: the trained head's model, logits over every class
  seen, with the class mapping and the input scaling as model metadata;
- :func:`export_nme`: iCaRL's nearest-mean-of-exemplars classifier as a plain
  ONNX graph (feature extractor, L2 normalisation, a MatMul with the class
  means, ArgMax, then a Gather to the dataset's own labels), so it can be
  deployed like any model.

Both files have a dynamic batch dimension, pass ``onnx.checker`` and are
written atomically. Importing this module also registers the ONNX exporter
and importer of our Distillation operator, so graphs that contain it export
and load back (it lives in Aidge's custom domain: export with
``enable_custom_op=True``).
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
from onnx import TensorProto, helper, numpy_helper
from aidge_onnx.node_export import auto_register_export
from aidge_onnx.node_export.aidge_converters.pad import export_pad as _aidge_export_pad
from aidge_onnx.node_import import auto_register_import
from aidge_onnx.utils import _AIDGE_DOMAIN

from . import __version__
from ._core import Distillation
from .evaluation import atomic_write
from .model import IncrementalModel

__all__ = ["export_model", "export_nme", "load_metadata", "INPUT_NAME"]

INPUT_NAME = "input"


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

def _aidge_to_onnx(graph: aidge_core.GraphView, output_node: str) -> onnx.ModelProto:
    """Export through aidge_onnx, keep only ``output_node``'s first output, rename the
    input to ``input`` and make the batch dimension dynamic."""
    level = aidge_core.Log.get_console_level()
    aidge_core.Log.set_console_level(aidge_core.Level.Warn)  # no "file is valid" notice per export
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.onnx")
            aidge_onnx.export_onnx(graph, path)
            model = onnx.load(path)
    finally:
        aidge_core.Log.set_console_level(level)
    g = model.graph
    keep = [o for o in g.output if o.name.startswith(f"{output_node}_out0")]
    if len(keep) != 1:
        raise RuntimeError(f"export: no output of {output_node} in {[o.name for o in g.output]}")
    del g.output[:]
    g.output.extend(keep)
    old_input = g.input[0].name
    for node in g.node:
        for i, name in enumerate(node.input):
            if name == old_input:
                node.input[i] = INPUT_NAME
    g.input[0].name = INPUT_NAME
    for value in list(g.input[:1]) + list(g.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del g.value_info[:]  # fixed-batch shapes inferred at export time
    return model


def _finish(model: onnx.ModelProto, path, metadata: dict) -> pathlib.Path:
    for key, value in metadata.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=str(value)))
    onnx.checker.check_model(model, full_check=True)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, model.SerializeToString())
    return path


def _metadata(model: IncrementalModel, class_order: Sequence[int], input_divisor: float, kind: str) -> dict:
    classes = [int(c) for c in class_order[:model.n_classes]]
    return {
        "aidge_incremental.version": __version__,
        "aidge_incremental.kind": kind,
        # output j is the dataset's class classes[j]
        "aidge_incremental.classes": json.dumps(classes),
        # inputs are raw samples divided by this (e.g. 255 for uint8 images)
        "aidge_incremental.input_divisor": repr(float(input_divisor)),
        "aidge_incremental.input_shape": json.dumps(list(model.input_shape)),
    }


def load_metadata(path) -> dict:
    """The aidge_incremental metadata of an exported file, decoded."""
    model = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    out = {"kind": meta.get("aidge_incremental.kind")}
    if "aidge_incremental.classes" in meta:
        out["classes"] = json.loads(meta["aidge_incremental.classes"])
        out["input_divisor"] = float(meta["aidge_incremental.input_divisor"])
        out["input_shape"] = json.loads(meta["aidge_incremental.input_shape"])
    return out


# -- exports -----------------------------------------------------------------------

def export_model(model: IncrementalModel, path, class_order: Sequence[int], input_divisor: float = 1.0,
                 metadata: Optional[dict] = None) -> pathlib.Path:
    """The trained head's model: ``input`` [batch, *input_shape] -> ``logits`` [batch, classes]."""
    onnx_model = _aidge_to_onnx(model.build_graph(), "head")
    _rename_output(onnx_model, "logits")
    meta = _metadata(model, class_order, input_divisor, "logits")
    meta.update(metadata or {})
    return _finish(onnx_model, path, meta)


def export_nme(model: IncrementalModel, path, means: np.ndarray, mean_classes: Sequence[int],
               class_order: Sequence[int], input_divisor: float = 1.0,
               metadata: Optional[dict] = None) -> pathlib.Path:
    """iCaRL's NME classifier: ``input`` -> ``scores`` [batch, classes] (2 f.mu_c - |mu_c|^2
    on normalised features f: the higher, the nearer) and ``class`` [batch] (int64, the
    dataset's own label of the nearest class mean).

    ``means``: class means [C, d] (normalised, as NearestMeanClassifier.means);
    ``mean_classes``: the relabelled class of each row.
    """
    means = np.asarray(means, np.float32)
    if means.ndim != 2 or means.shape[1] != model.feature_dim:
        raise ValueError(f"class means must be [classes, {model.feature_dim}], got {means.shape}")
    onnx_model = _aidge_to_onnx(model.build_graph(with_head=False), "features")
    g = onnx_model.graph
    features = g.output[0].name
    labels = np.asarray(class_order, np.int64)[np.asarray(mean_classes, np.int64)]
    g.initializer.extend([
        numpy_helper.from_array(np.ones((model.feature_dim, 1), np.float32), "nme_ones"),
        numpy_helper.from_array(np.array(1e-12, np.float32), "nme_eps"),
        numpy_helper.from_array(np.ascontiguousarray(2.0 * means.T), "nme_means_t2"),
        numpy_helper.from_array((means.astype(np.float64) ** 2).sum(1).astype(np.float32), "nme_means_norm2"),
        numpy_helper.from_array(labels, "nme_labels"),
    ])
    g.node.extend([
        helper.make_node("Mul", [features, features], ["nme_sq"]),
        helper.make_node("MatMul", ["nme_sq", "nme_ones"], ["nme_norm2"]),
        helper.make_node("Sqrt", ["nme_norm2"], ["nme_norm"]),
        helper.make_node("Max", ["nme_norm", "nme_eps"], ["nme_norm_safe"]),
        helper.make_node("Div", [features, "nme_norm_safe"], ["nme_unit"]),
        helper.make_node("MatMul", ["nme_unit", "nme_means_t2"], ["nme_dot2"]),
        helper.make_node("Sub", ["nme_dot2", "nme_means_norm2"], ["scores"]),
        helper.make_node("ArgMax", ["scores"], ["nme_index"], axis=1, keepdims=0),
        helper.make_node("Gather", ["nme_labels", "nme_index"], ["class"], axis=0),
    ])
    del g.output[:]
    g.output.extend([
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", len(means)]),
        helper.make_tensor_value_info("class", TensorProto.INT64, ["batch"]),
    ])
    meta = _metadata(model, class_order, input_divisor, "nme")
    meta["aidge_incremental.classes"] = json.dumps([int(c) for c in labels])
    meta.update(metadata or {})
    return _finish(onnx_model, path, meta)


def _rename_output(model: onnx.ModelProto, name: str) -> None:
    old = model.graph.output[0].name
    for node in model.graph.node:
        for i, out in enumerate(node.output):
            if out == old:
                node.output[i] = name
    model.graph.output[0].name = name
