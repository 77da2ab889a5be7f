"""aidge_incremental: class-incremental learning for Eclipse Aidge."""
import aidge_core  # noqa: F401  (our C++ types derive from aidge_core's)
import aidge_backend_cpu  # noqa: F401  (CPU tensors and kernels)

from ._core import Distillation, DistillationForm, DistillationOp
from . import loss, memory
from ._core import CorruptFileError
from .memory import ExemplarMemory, NearestMeanClassifier, ReservoirMemory

__version__ = "0.1.0"

__all__ = ["CorruptFileError", "Distillation", "DistillationForm", "DistillationOp",
           "ExemplarMemory", "NearestMeanClassifier", "ReservoirMemory", "loss", "memory",
           "__version__"]
