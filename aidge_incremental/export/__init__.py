"""Export of a step's model to ONNX and to embedded C++ (float32 or int8).

- targets.py: the export targets (onnx, cpp, cpp-int8), one table used by run, export and predict;
- graphs.py: the deployable Aidge graphs (trained head; NME as a bias-free FC + ArgMax);
- onnx.py: ONNX files through aidge_onnx; onnx_file.py: reading one back (onnx alone);
- cpp.py: standalone CMake projects through aidge_export_cpp;
- quantize.py: int8 post-training quantization calibrated on the replay memory;
- step.py: a step's C++ export (head and NME), verified against Aidge, with its budget;
- manifest.py: SHA-256 digests checked before an export is served.

The names below load on first use: aidge_onnx and aidge_export_cpp are only
imported when an export is made or served.
"""
import importlib as _importlib

_EXPORTS = {
    "ExportError": ".errors", "ABSTAIN": ".graphs", "logits_graph": ".graphs", "nme_graph": ".graphs",
    "IntegrityError": ".manifest", "check_manifest": ".manifest", "check_sidecar": ".manifest",
    "INPUT_NAME": ".onnx_file", "export_model": ".onnx", "export_nme": ".onnx", "load_metadata": ".onnx_file",
    "EXPORT_TARGETS": ".targets", "ExportSource": ".targets", "ExportTarget": ".targets",
    "export_step": ".targets", "predict_export": ".targets", "register_export_target": ".targets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'aidge_incremental.export' has no attribute {name!r}")
    value = getattr(_importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
