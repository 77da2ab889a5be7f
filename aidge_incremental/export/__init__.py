"""Export of a step's model to ONNX and to embedded C++ (float32 or int8).

- graphs.py: the deployable Aidge graphs (trained head; NME as a bias-free FC + ArgMax);
- onnx.py: ONNX files through aidge_onnx;
- cpp.py: standalone CMake projects through aidge_export_cpp;
- quantize.py: int8 post-training quantization calibrated on the replay memory;
- step.py: a step's C++ export (head and NME), verified against Aidge, with its budget;
- manifest.py: SHA-256 digests checked before an export is served.
"""
from .cpp import ExportError
from .graphs import ABSTAIN, logits_graph, nme_graph
from .manifest import IntegrityError, check_manifest, check_sidecar
from .onnx import INPUT_NAME, export_model, export_nme, load_metadata

__all__ = ["ABSTAIN", "ExportError", "INPUT_NAME", "IntegrityError", "check_manifest", "check_sidecar",
           "export_model", "export_nme", "load_metadata", "logits_graph", "nme_graph"]
