"""Export targets: one table, used by ``run --export-dir``, ``export`` and ``predict``.

A target turns an :class:`ExportSource` (a trained model and what a step's
export needs beside it) into files, and serves what it wrote:

==========  ==================================================  ===============
name        writes                                              needs memory
==========  ==================================================  ===============
onnx        ``X.onnx`` (the head) and, for a method with an     no
            NME classifier, ``X-nme.onnx``; ``.sha256`` digests
cpp         ``X/``: C++ projects (float32 head, NME), built     no
            and checked against Aidge (``step.py``)
cpp-int8    the same with the head in int8, calibrated on the   yes
            replay memory
==========  ==================================================  ===============

Adding a target is one :func:`register_export_target` call with its
``write`` and ``predict`` functions.
"""
from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np

from ..registry import Registry

__all__ = ["CPP_CHECK_SAMPLES", "EXPORT_TARGETS", "ExportSource", "ExportTarget", "export_step",
           "predict_export", "raw_batch", "register_export_target", "target_of"]

#: test samples each C++ export is checked on against Aidge (all of digits' steps)
CPP_CHECK_SAMPLES = 512


@dataclass
class ExportSource:
    """What an export is made from: the trained model, the dataset's class order
    and input scaling, the method's NME classifier and replay memory if it has
    them, raw samples to check C++ exports on, and where it comes from."""
    model: object                                   #: an IncrementalModel
    class_order: List[int]
    input_divisor: float                            #: the dataset's ``max_value``
    nme: Optional[Tuple[np.ndarray, np.ndarray]]    #: (means, relabelled classes) or None
    memory: Optional[object]                        #: the replay ExemplarMemory, or None
    check_inputs: Optional[np.ndarray]              #: raw samples (C++ exports are checked on them)
    step: int
    method: str
    #: the dataset's per-channel statistics (a Normalization) when its inputs are normalised, else None
    input_normalization: Optional[object] = None

    @classmethod
    def from_method(cls, method, class_order, dataset, step: int,
                    check_inputs: Optional[np.ndarray] = None) -> "ExportSource":
        """From a trained method (its declared ``nme`` and ``replay_memory``)."""
        nme = method.nme
        memory = method.replay_memory
        return cls(method.model, [int(c) for c in class_order], float(dataset.max_value),
                   (nme.means, nme.classes) if nme is not None and nme.means is not None else None,
                   memory if memory is not None and len(memory) else None,
                   None if check_inputs is None else np.asarray(check_inputs)[:CPP_CHECK_SAMPLES],
                   int(step), method.name, dataset.normalization)

    @property
    def metadata(self) -> dict:
        return {"step": self.step, "method": self.method}


@dataclass(frozen=True)
class ExportTarget:
    """``write(source, dest, log, nme_only) -> [paths]`` writes the export at
    ``dest`` (a file for onnx, a folder for cpp); ``predict(path, x_raw, nme)``
    serves one; ``file_name(step)`` is what ``run --export-dir`` calls a step's
    export; ``recognizes(path)`` tells whether a path is this target's."""
    name: str
    help: str
    needs_memory: bool
    file_name: Callable[[int], str]
    write: Callable[..., list]
    predict: Callable[[pathlib.Path, np.ndarray, bool], np.ndarray]
    recognizes: Callable[[pathlib.Path], bool]


#: every export target, by name (``--export-target NAME``)
EXPORT_TARGETS: Registry[ExportTarget] = Registry("export target", entry_points="aidge_incremental.export_targets")


def register_export_target(target: ExportTarget, replace: bool = False) -> ExportTarget:
    if not isinstance(target, ExportTarget):
        raise TypeError(f"register_export_target takes an ExportTarget, got {type(target).__name__}")
    return EXPORT_TARGETS.register(target.name, target, replace=replace)


def export_step(source: ExportSource, directory, target: str = "onnx", log=None) -> list:
    """Export ``source`` (a step's model) into ``directory`` under the target's
    name for the step; returns the paths written."""
    spec = EXPORT_TARGETS[target]
    return spec.write(source, pathlib.Path(directory) / spec.file_name(source.step), log=log)


def target_of(path) -> ExportTarget:
    """The target that wrote ``path`` (an .onnx file, a C++ export folder)."""
    path = pathlib.Path(path)
    for name in EXPORT_TARGETS:
        target = EXPORT_TARGETS[name]
        if target.recognizes(path):
            return target
    raise ValueError(f"{path} is not an export of aidge_incremental (an .onnx file with its .sha256, or "
                     "a C++ export folder with MANIFEST.json)")


def predict_export(path, x_raw: np.ndarray, nme: bool = False) -> np.ndarray:
    """The dataset labels an export predicts for raw samples (as stored in the dataset)."""
    return target_of(path).predict(pathlib.Path(path), x_raw, nme)


def raw_batch(x_raw, input_shape) -> np.ndarray:
    """Raw samples as a float32 batch of ``input_shape`` (a channel axis added to
    [N, H, W]); a ValueError names what does not fit."""
    x = np.asarray(x_raw)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"samples must be numbers, got dtype {x.dtype}")
    x = x.astype(np.float32)
    if x.ndim == len(input_shape):
        x = x[:, None]
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise ValueError(f"samples of shape {x.shape[1:]}, the model takes {tuple(input_shape)}")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or inf")
    return x


# -- onnx ---------------------------------------------------------------------------

def _write_onnx(source: ExportSource, dest, log=None, nme_only: bool = False) -> list:
    from .onnx import export_model, export_nme
    dest = pathlib.Path(dest)
    meta = {"aidge_incremental.step": str(source.step), "aidge_incremental.method": source.method}
    paths = []
    if nme_only and source.nme is None:
        raise ValueError(f"the {source.method} model has no NME classifier to export")
    if not nme_only:
        paths.append(export_model(source.model, dest, source.class_order, source.input_divisor, meta,
                                  normalization=source.input_normalization))
    if source.nme is not None:
        nme_path = dest if nme_only else dest.with_name(dest.name[:-len(".onnx")] + "-nme.onnx") \
            if dest.name.endswith(".onnx") else dest.with_name(dest.name + "-nme")
        paths.append(export_nme(source.model, nme_path, *source.nme, source.class_order, source.input_divisor,
                                meta, normalization=source.input_normalization))
    return paths


def _predict_onnx(path: pathlib.Path, x_raw: np.ndarray, nme: bool) -> np.ndarray:
    """Run an exported model with onnxruntime (or onnx.reference when it is missing),
    after checking the file against its digest."""
    from .onnx import INPUT_NAME, load_metadata
    if nme:
        raise ValueError("--nme applies to a .ckpt or a C++ export; export the NME classifier "
                         "with export --nme to serve it as ONNX")
    meta = load_metadata(path)  # checks the .sha256 digest first
    if meta.get("kind") not in ("logits", "nme"):
        raise ValueError(f"{path} was not exported by aidge_incremental")
    x = raw_batch(x_raw, meta["input_shape"])
    try:
        import onnxruntime
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs = session.run(None, {INPUT_NAME: x})
    except ImportError:
        from onnx.reference import ReferenceEvaluator
        outputs = ReferenceEvaluator(str(path)).run(None, {INPUT_NAME: x})
    if meta["kind"] == "nme":
        return outputs[1]
    return np.asarray(meta["classes"])[outputs[0].argmax(axis=1)]


register_export_target(ExportTarget(
    "onnx", "step-NNN.onnx (head) and step-NNN-nme.onnx (NME classifier), each with a .sha256 digest",
    needs_memory=False, file_name=lambda step: f"step-{step:03d}.onnx", write=_write_onnx,
    predict=_predict_onnx, recognizes=lambda p: p.suffix == ".onnx"))


# -- C++ ------------------------------------------------------------------------------

def _cpp_writer(dtype: str):
    def write(source: ExportSource, dest, log=None, nme_only: bool = False) -> list:
        from .step import export_cpp
        if nme_only:
            raise ValueError("--nme applies to --target onnx: a C++ export holds the NME classifier "
                             "beside the head when the method has one")
        if source.check_inputs is None or not len(source.check_inputs):
            raise ValueError("a C++ export is checked against Aidge on test samples: none were given")
        calibration = source.memory.samples() if source.memory is not None else None
        export_cpp(source.model, dest, source.class_order, source.input_divisor, source.check_inputs,
                   dtype=dtype, calibration=calibration, nme=source.nme,
                   exemplar_bytes=source.memory.nbytes if source.memory is not None else 0,
                   metadata=source.metadata, log=log, normalization=source.input_normalization)
        return [pathlib.Path(dest)]
    return write


def _predict_cpp(folder: pathlib.Path, x_raw: np.ndarray, nme: bool) -> np.ndarray:
    """Run a C++ export's built binary, after checking every file against MANIFEST.json."""
    from . import cpp
    from .manifest import check_manifest
    from .quantize import quantize_inputs
    check_manifest(folder)
    info = json.loads((folder / "export.json").read_text())
    x = raw_batch(x_raw, info["input_shape"])
    if nme:
        if "nme_classes" not in info:
            raise ValueError(f"{folder} holds no NME classifier")
        return cpp.run(folder / "nme", x)[1][:, 0]
    if info["dtype"] == "int8":
        x = quantize_inputs(x / np.float32(info["input_divisor"]))
    return np.asarray(info["classes"])[cpp.run(folder / "model", x)[0].argmax(axis=1)]


def _is_cpp_export(path: pathlib.Path) -> bool:
    return path.is_dir()


register_export_target(ExportTarget(
    "cpp", "step-NNN/: C++ projects (aidge_export_cpp) of the head (float32) and the NME classifier, built "
    "and checked against Aidge, with budget.json", needs_memory=False,
    file_name=lambda step: f"step-{step:03d}", write=_cpp_writer("float32"), predict=_predict_cpp,
    recognizes=_is_cpp_export))
register_export_target(ExportTarget(
    "cpp-int8", "as cpp, with the head in int8 calibrated on the replay memory", needs_memory=True,
    file_name=lambda step: f"step-{step:03d}", write=_cpp_writer("int8"), predict=_predict_cpp,
    recognizes=lambda p: False))  # served by "cpp": a folder says its dtype in export.json
