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

Serving an export checks it first: its digests (``.sha256`` sidecar, or a
MANIFEST that must list every file read or run), its metadata against what it
describes (an ONNX file's class list against its graph's outputs, a C++
folder's ``export.json`` against its binary's own description), and, for a C++
export, that its binary was built here by this project or that the user trusts
it (``trust_binary``, see :mod:`.trust`).
"""
from __future__ import annotations

import importlib.util
import pathlib
import shutil
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np

from ..registry import Registry

__all__ = ["CPP_CHECK_SAMPLES", "EXPORT_TARGETS", "ExportSource", "ExportTarget", "export_step",
           "predict_export", "raw_batch", "read_samples", "register_export_target", "target_of"]

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
    """``write(source, dest, log, nme_only, **options) -> [paths]`` writes the export at
    ``dest`` (a file for onnx, a folder for cpp); ``predict(path, x_raw, nme,
    trust_binary=False, log=None)`` serves one (``log`` takes notes such as a
    renamed file); ``file_name(step)`` is what ``run --export-dir`` calls a step's
    export; ``recognizes(path)`` tells whether a path is this target's;
    ``problem(model)`` says why the target cannot export ``model`` on this
    machine (a missing tool, a layer it gets wrong), or None: runs and
    ``export`` check it before any work."""
    name: str
    help: str
    needs_memory: bool
    file_name: Callable[[int], str]
    write: Callable[..., list]
    predict: Callable[..., np.ndarray]
    recognizes: Callable[[pathlib.Path], bool]
    problem: Callable[[object], Optional[str]] = lambda model: None


#: every export target, by name (``--export-target NAME``)
EXPORT_TARGETS: Registry[ExportTarget] = Registry("export target", entry_points="aidge_incremental.export_targets")


def register_export_target(target: ExportTarget, replace: bool = False) -> ExportTarget:
    if not isinstance(target, ExportTarget):
        raise TypeError(f"register_export_target takes an ExportTarget, got {type(target).__name__}")
    return EXPORT_TARGETS.register(target.name, target, replace=replace)


def export_step(source: ExportSource, directory, target: str = "onnx", log=None, opset: Optional[int] = None) -> list:
    """Export ``source`` (a step's model) into ``directory`` under the target's
    name for the step; returns the paths written. ``opset``: onnx only (None:
    the lowest that holds the model)."""
    spec = EXPORT_TARGETS[target]
    options = {} if opset is None else {"opset": opset}
    return spec.write(source, pathlib.Path(directory) / spec.file_name(source.step), log=log, **options)


def target_of(path) -> ExportTarget:
    """The target that wrote ``path`` (an .onnx file, a C++ export folder)."""
    path = pathlib.Path(path)
    for name in EXPORT_TARGETS:
        target = EXPORT_TARGETS[name]
        if target.recognizes(path):
            return target
    raise ValueError(f"{path} is not an export of aidge_incremental (an .onnx file with its .sha256, or "
                     "a C++ export folder with MANIFEST.json)")


def predict_export(path, x_raw: np.ndarray, nme: bool = False, trust_binary: bool = False,
                   log: Optional[Callable[[str], None]] = None) -> np.ndarray:
    """The dataset labels an export predicts for raw samples (as stored in the dataset).

    A C++ export's binary runs only if this project built it here, or with
    ``trust_binary`` (see :mod:`.trust`); ``log`` receives notes."""
    return target_of(path).predict(pathlib.Path(path), x_raw, nme, trust_binary=trust_binary, log=log)


def read_samples(path) -> np.ndarray:
    """Raw samples from a ``.npy`` file handed to ``predict``: a regular file of
    bounded size, read without pickle, its header checked against its size before
    anything is allocated (:func:`aidge_incremental.npyfile.load_npy`)."""
    from ..files import read_bounded
    from ..npyfile import load_npy
    data = read_bounded(path, "sample file")
    if data[:4] == b"PK\x03\x04":
        raise ValueError(f"{path} holds several arrays (a .npz); give one .npy array of samples")
    x = load_npy(data, path, ValueError, what="a plain numeric .npy array",
                 hint=": save the samples with np.save(path, array)")
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"{path} holds no sample")
    return x


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

def _write_onnx(source: ExportSource, dest, log=None, nme_only: bool = False, opset: Optional[int] = None) -> list:
    from .onnx import export_model, export_nme
    dest = pathlib.Path(dest)
    meta = {"aidge_incremental.step": str(source.step), "aidge_incremental.method": source.method}
    paths = []
    if nme_only and source.nme is None:
        raise ValueError(f"the {source.method} model has no NME classifier to export")
    if not nme_only:
        paths.append(export_model(source.model, dest, source.class_order, source.input_divisor, meta, opset=opset,
                                  normalization=source.input_normalization))
    if source.nme is not None:
        nme_path = dest if nme_only else dest.with_name(dest.name[:-len(".onnx")] + "-nme.onnx") \
            if dest.name.endswith(".onnx") else dest.with_name(dest.name + "-nme")
        paths.append(export_nme(source.model, nme_path, *source.nme, source.class_order, source.input_divisor,
                                meta, opset=opset, normalization=source.input_normalization))
    return paths


def _predict_onnx(path: pathlib.Path, x_raw: np.ndarray, nme: bool, trust_binary: bool = False,
                  log=None) -> np.ndarray:
    """Run an exported model with onnxruntime (or onnx.reference when it is missing),
    after checking the file against its digest and its metadata against its graph;
    what runs is the bytes that were checked."""
    from .onnx_file import open_model
    if nme:
        raise ValueError("--nme applies to a .ckpt or a C++ export; export the NME classifier "
                         "with export --nme to serve it as ONNX")
    meta, run = open_model(path, log)
    outputs = run(raw_batch(x_raw, meta["input_shape"]))
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


def _predict_cpp(folder: pathlib.Path, x_raw: np.ndarray, nme: bool, trust_binary: bool = False,
                 log=None) -> np.ndarray:
    """Run a C++ export's binary, after checking every file against MANIFEST.json (which
    must list every file read or run), export.json against the binary's description,
    and the binary's provenance (trust.py). What runs is a private copy of the binary
    whose digest was checked; what is read is what was checked."""
    from . import cpp
    from .manifest import IntegrityError, MANIFEST, check_manifest, read_verified
    from .quantize import quantize_inputs
    from .trust import private_directory, trusted_copy
    entries = check_manifest(folder, required=["export.json"])
    info = cpp.parse_json_object(read_verified(folder, "export.json", entries), folder / "export.json")
    part = "nme" if nme else "model"
    if nme and "nme_classes" not in info:
        raise ValueError(f"{folder} holds no NME classifier")
    for rel in (f"{part}/{cpp.PROJECT_FILE}", f"{part}/{cpp.BINARY}"):
        if rel not in entries:
            raise IntegrityError(f"{folder / MANIFEST} does not list {rel}, which predict reads or runs: an export "
                                 "whose files are not all covered by its digests is not served")
    project = cpp.parse_json_object(read_verified(folder, f"{part}/{cpp.PROJECT_FILE}", entries),
                          folder / part / cpp.PROJECT_FILE)
    cpp.check_cpp_export(folder, info, project, part)
    x = raw_batch(x_raw, info["input_shape"])
    if not nme and info["dtype"] == "int8":
        x = quantize_inputs(x / np.float32(info["input_divisor"]))
    with private_directory() as scratch:
        binary = trusted_copy(folder, f"{part}/{cpp.BINARY}", entries, scratch, trust_binary)
        outputs = cpp.run(folder / part, x, binary=binary, info=project)
    if nme:
        labels = outputs[1][:, 0]
        known = set(info["nme_classes"]) | {int(info.get("nme_abstain", -1))}
        if not set(np.unique(labels).tolist()) <= known:
            raise ValueError(f"{folder}: the NME binary answered labels outside export.json's nme_classes")
        return labels
    return np.asarray(info["classes"])[outputs[0].argmax(axis=1)]


def _is_cpp_export(path: pathlib.Path) -> bool:
    return path.is_dir()


def _cpp_problem(dtype: str):
    def problem(model) -> Optional[str]:
        missing = [name for name in ("aidge_export_cpp", "aidge_quantization")
                   if importlib.util.find_spec(name) is None]
        if missing:
            return (f"{', '.join(missing)} not installed: pip install aidge-export-cpp==0.10.1 "
                    "aidge-quantization==0.10.1 (the export extra)")
        tools = [t for t in ("cmake", "c++") if shutil.which(t) is None]
        if tools:
            return f"the C++ export is built and checked here: {' and '.join(tools)} must be on the PATH"
        if dtype == "int8" and any(layer.kind == "conv" for layer in getattr(model, "layers", ())):
            from .step import INT8_CONV_DEFECT
            return f"{model.architecture} has convolutions: {INT8_CONV_DEFECT}"
        return None
    return problem


register_export_target(ExportTarget(
    "cpp", "step-NNN/: C++ projects (aidge_export_cpp) of the head (float32) and the NME classifier, built "
    "and checked against Aidge, with budget.json", needs_memory=False,
    file_name=lambda step: f"step-{step:03d}", write=_cpp_writer("float32"), predict=_predict_cpp,
    recognizes=_is_cpp_export, problem=_cpp_problem("float32")))
register_export_target(ExportTarget(
    "cpp-int8", "as cpp, with the head in int8 calibrated on the replay memory", needs_memory=True,
    file_name=lambda step: f"step-{step:03d}", write=_cpp_writer("int8"), predict=_predict_cpp,
    recognizes=lambda p: False, problem=_cpp_problem("int8")))  # served by "cpp": a folder says its dtype in export.json
