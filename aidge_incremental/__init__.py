"""aidge_incremental: class-incremental learning for Eclipse Aidge."""
from . import _openmp_preload  # noqa: F401  (one OpenMP runtime: before aidge_core)
from . import _cuda_preload  # noqa: F401  (CUDA 12 libraries, if any, before aidge_core)
import aidge_core  # noqa: F401  (our C++ types derive from aidge_core's)
import aidge_backend_cpu  # noqa: F401  (CPU tensors and kernels)

from ._core import (AttentionDistillation, AttentionDistillationOp, CrossEntropy, CrossEntropyOp,
                    Distillation, DistillationForm, DistillationOp)
from . import loss, memory
from ._core import CorruptFileError
from .memory import ExemplarMemory, NearestMeanClassifier, ReservoirMemory
from .datasets import Dataset, DatasetError, load_dataset
from .scenario import ClassIncrementalScenario
from .model import IncrementalModel
from .methods import METHODS, Finetune, ICaRL, Joint, LwF
from .experiment import ExperimentConfig, compare, run_experiment
from .accelerate import accelerate  # noqa: F401  (fast CPU kernels, opt-in per graph)
from .accelerate import openmp_runtimes as _openmp_runtimes

if _openmp_preload.skipped.startswith("aidge_core was imported") and \
        len([r for r in _openmp_runtimes() if "/torch/" not in r]) > 1:
    import warnings
    warnings.warn("several OpenMP runtimes are loaded (aidge-quantization bundles its own libgomp and Aidge's "
                  "CPU backend bound to it because aidge_core was imported first): small operations get many "
                  "times slower. Import aidge_incremental before aidge_core.", RuntimeWarning, stacklevel=2)

__version__ = "0.1.0"

__all__ = ["AttentionDistillation", "AttentionDistillationOp", "CrossEntropy", "CrossEntropyOp",
           "METHODS", "ClassIncrementalScenario", "CorruptFileError", "Dataset", "DatasetError",
           "Distillation", "DistillationForm", "DistillationOp", "ExemplarMemory", "ExperimentConfig",
           "Finetune", "ICaRL", "IncrementalModel", "Joint", "LwF", "NearestMeanClassifier",
           "ReservoirMemory", "compare", "load_dataset", "loss", "memory", "run_experiment",
           "__version__"]
