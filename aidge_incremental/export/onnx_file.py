"""What serving an exported ONNX file needs: its input name, its metadata and a
session, read with onnxruntime (or the ``onnx`` package) alone. ``predict``
imports this, not :mod:`.onnx` (which loads Aidge and aidge_onnx to write
exports: seconds of start-up a prediction does not need).

A file is read once, checked against its ``.sha256`` digest, and what runs is
the bytes that were checked; its metadata must describe its graph (one label
per logit, per score after NME's abstain column, and the input's shape).
"""
from __future__ import annotations

import json
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .manifest import read_with_sidecar

__all__ = ["INPUT_NAME", "load_metadata", "open_model", "read_export"]

INPUT_NAME = "input"


def _decode(path, meta: dict) -> dict:
    out = {"kind": meta.get("aidge_incremental.kind")}
    try:
        if "aidge_incremental.classes" in meta:
            out["classes"] = json.loads(meta["aidge_incremental.classes"])
            out["input_shape"] = json.loads(meta["aidge_incremental.input_shape"])
    except (KeyError, ValueError, RecursionError) as e:
        raise ValueError(f"{path} has invalid aidge_incremental metadata: {type(e).__name__}: {e}") from None
    return out


def _check(meta: dict, outputs: Dict[str, Optional[int]], input_dims: Optional[Sequence], path) -> None:
    """The metadata must describe the graph it is attached to. ``outputs``: each
    output's last dimension (None when not fixed); ``input_dims``: the input's
    dimensions after the batch (None: no input named ``input``)."""
    if meta.get("kind") not in ("logits", "nme"):
        raise ValueError(f"{path} was not exported by aidge_incremental (no aidge_incremental.kind metadata)")
    classes, shape = meta.get("classes"), meta.get("input_shape")
    if not isinstance(classes, list) or not classes or not all(type(c) is int for c in classes):
        raise ValueError(f"{path}: its aidge_incremental.classes metadata must be a list of integer labels")
    if not isinstance(shape, list) or not shape or not all(type(d) is int and d > 0 for d in shape):
        raise ValueError(f"{path}: its aidge_incremental.input_shape metadata must be a list of sizes")
    name, size = {"logits": ("logits", len(classes)), "nme": ("scores", len(classes) + 1)}[meta["kind"]]
    if outputs.get(name) != size:
        raise ValueError(f"{path}: its metadata lists {len(classes)} classes, but the graph's output {name!r} has "
                         f"{outputs[name] if name in outputs else 'no'} values"
                         f"{' (one per class after the abstain column)' if meta['kind'] == 'nme' else ''}: "
                         "metadata and graph disagree")
    dims = None if input_dims is None else [d if type(d) is int else None for d in input_dims]
    if dims != shape:
        raise ValueError(f"{path}: its metadata says inputs of shape {shape}, the graph's input "
                         f"{INPUT_NAME!r} has {dims}")


def _onnx_model(data: bytes, path):
    import onnx
    try:
        return onnx.load_from_string(data)
    except Exception as e:  # protobuf raises its own DecodeError
        raise ValueError(f"{path} is not a readable ONNX file: {e}") from None


def _graph_shapes(model) -> Tuple[Dict[str, Optional[int]], Optional[List[int]]]:
    def last(value_info):
        dims = value_info.type.tensor_type.shape.dim
        return dims[-1].dim_value if dims and dims[-1].HasField("dim_value") else None
    inputs = [i for i in model.graph.input if i.name == INPUT_NAME]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim[1:]] \
        if inputs else None
    return {o.name: last(o) for o in model.graph.output}, dims


def _refuse_external_data(data: bytes, path) -> None:
    """A tensor kept in an external file would be read from wherever the file
    names, which no digest covers: such a file is not served. (Only a file whose
    bytes mention a ``location`` can have one; those are parsed to find out.)"""
    if b"location" not in data:
        return
    import onnx
    model = _onnx_model(data, path)
    tensors = list(model.graph.initializer) + [a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
    external = sorted({e.value for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL
                       for e in t.external_data if e.key == "location"})
    if external:
        raise ValueError(f"{path} keeps tensors in external files ({', '.join(external)[:200]}), which its "
                         "digest does not cover: not served (export again with aidge_incremental)")


def read_export(path) -> Tuple[bytes, dict, List[str]]:
    """``(bytes, metadata, notes)`` of an exported file: read once, checked against its
    ``.sha256`` digest, its metadata decoded and checked against its graph; ``notes``
    say what was accepted with a remark (a renamed file)."""
    data, notes = read_with_sidecar(path)
    _refuse_external_data(data, path)
    model = _onnx_model(data, path)
    meta = _decode(path, {p.key: p.value for p in model.metadata_props})
    _check(meta, *_graph_shapes(model), path)
    return data, meta, notes


def load_metadata(path, verify: bool = True) -> dict:
    """The aidge_incremental metadata of an exported file, decoded (after checking the
    file against its digest and the metadata against the graph, unless ``verify`` is false)."""
    if verify:
        return read_export(path)[1]
    import onnx
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises its own DecodeError
        raise ValueError(f"{path} is not a readable ONNX file: {e}") from None
    return _decode(path, {p.key: p.value for p in model.metadata_props})


def open_model(path, log=None) -> Tuple[dict, Callable[[np.ndarray], list]]:
    """An exported file's checked metadata and a function running it on an input
    batch: onnxruntime when installed (which reads the metadata and the shapes too:
    the ``onnx`` package and its ml_dtypes take seconds to import), else
    ``onnx.reference``. ``log`` receives the notes of :func:`read_export`."""
    data, notes = read_with_sidecar(path)
    _refuse_external_data(data, path)
    for note in notes:
        if log is not None:
            log(note)
    try:
        import onnxruntime
    except ImportError:
        from onnx.reference import ReferenceEvaluator
        model = _onnx_model(data, path)
        meta = _decode(path, {p.key: p.value for p in model.metadata_props})
        _check(meta, *_graph_shapes(model), path)
        evaluator = ReferenceEvaluator(model)
        return meta, lambda x: evaluator.run(None, {INPUT_NAME: x})
    try:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise ValueError(f"{path} is not a readable ONNX file: {e}") from None
    meta = _decode(path, dict(session.get_modelmeta().custom_metadata_map))
    outputs = {o.name: (o.shape[-1] if o.shape and type(o.shape[-1]) is int else None)
               for o in session.get_outputs()}
    inputs = [i for i in session.get_inputs() if i.name == INPUT_NAME]
    _check(meta, outputs, list(inputs[0].shape[1:]) if inputs else None, path)
    return meta, lambda x: session.run(None, {INPUT_NAME: x})
