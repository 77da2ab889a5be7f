"""What serving an exported ONNX file needs: its input name and its metadata,
read with the ``onnx`` package alone. ``predict`` imports this, not
:mod:`.onnx` (which loads Aidge and aidge_onnx to write exports: seconds of
start-up a prediction does not need).
"""
from __future__ import annotations

import json
from typing import Callable, Tuple

import numpy as np

from .manifest import check_sidecar

__all__ = ["INPUT_NAME", "load_metadata", "open_model"]

INPUT_NAME = "input"


def load_metadata(path, verify: bool = True) -> dict:
    """The aidge_incremental metadata of an exported file, decoded (after checking the
    file against its digest, unless ``verify`` is false)."""
    import onnx
    if verify:
        check_sidecar(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises its own DecodeError
        raise ValueError(f"{path} is not a readable ONNX file: {e}") from None
    return _decode(path, {p.key: p.value for p in model.metadata_props})


def open_model(path) -> Tuple[dict, Callable[[np.ndarray], list]]:
    """An exported file's metadata and a function running it on an input batch,
    after checking the file against its digest: onnxruntime when installed (which
    reads the metadata too: the ``onnx`` package and its ml_dtypes take seconds to
    import), else ``onnx.reference``."""
    check_sidecar(path)
    try:
        import onnxruntime
    except ImportError:
        from onnx.reference import ReferenceEvaluator
        meta = load_metadata(path, verify=False)
        evaluator = ReferenceEvaluator(str(path))
        return meta, lambda x: evaluator.run(None, {INPUT_NAME: x})
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise ValueError(f"{path} is not a readable ONNX file: {e}") from None
    meta = _decode(path, dict(session.get_modelmeta().custom_metadata_map))
    return meta, lambda x: session.run(None, {INPUT_NAME: x})


def _decode(path, meta: dict) -> dict:
    out = {"kind": meta.get("aidge_incremental.kind")}
    try:
        if "aidge_incremental.classes" in meta:
            out["classes"] = json.loads(meta["aidge_incremental.classes"])
            out["input_shape"] = json.loads(meta["aidge_incremental.input_shape"])
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path} has invalid aidge_incremental metadata: {e}") from None
    return out
