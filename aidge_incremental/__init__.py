"""aidge_incremental: class-incremental learning for Eclipse Aidge.

The public names below load on first use (``import aidge_incremental`` itself
only runs the process-wide preloads of :mod:`.backend`), so the command line
and small scripts do not pay for what they do not use.
"""
import importlib as _importlib
import importlib.machinery as _machinery
import os as _os
import sys as _sys

__version__ = "0.1.0"


def _locate_core() -> str:
    """Where the compiled C++ core (``_core``) is: this folder, or — when this is a
    source tree without a build, e.g. a Python started at the repository root while
    the package is installed — the installed package's folder, which then serves
    this tree's ``_core``. Raises one ImportError naming the fix otherwise."""
    here = _os.path.dirname(_os.path.abspath(__file__))

    def has_core(folder):
        return any(_os.path.isfile(_os.path.join(folder, "_core" + suffix))
                   for suffix in _machinery.EXTENSION_SUFFIXES)

    if has_core(here):
        return here
    for entry in _sys.path:
        candidate = _os.path.join(_os.path.abspath(entry or "."), "aidge_incremental")
        if _os.path.realpath(candidate) != _os.path.realpath(here) and has_core(candidate):
            __path__.append(candidate)  # noqa: F821  (the package's own __path__)
            return candidate
    raise ImportError(
        f"aidge_incremental's C++ core (_core) is not built in {here}, and no installed aidge_incremental "
        "has one: build it in place with `pip install --no-build-isolation -e .` in the repository, or "
        "`pip install .` and run Python from outside the repository root")


#: the folder whose compiled ``_core`` this package uses
core_origin = _locate_core()

from . import backend as _backend  # noqa: E402,F401  (the preloads, before anything imports aidge_core)

#: public name -> the module that defines it
_EXPORTS = {
    # loss operators of the C++ core
    "AttentionDistillation": "._core", "AttentionDistillationOp": "._core", "CrossEntropy": "._core",
    "CrossEntropyOp": "._core", "Distillation": "._core", "DistillationForm": "._core",
    "DistillationOp": "._core", "CorruptFileError": "._core",
    # registries and options
    "Registry": ".registry", "UnknownEntryError": ".registry", "Option": ".options", "ConfigError": ".options",
    # data
    "Dataset": ".datasets", "DatasetError": ".datasets", "DatasetSource": ".datasets", "DATASETS": ".datasets",
    "Augmentation": ".datasets", "Normalization": ".datasets", "load_dataset": ".datasets",
    "register_dataset": ".datasets", "ClassIncrementalScenario": ".scenario",
    # models
    "IncrementalModel": ".models", "ARCHITECTURES": ".models", "register_architecture": ".models",
    "accelerate": ".backend.cpu",
    # memory
    "ExemplarMemory": ".memory", "NearestMeanClassifier": ".memory", "ReservoirMemory": ".memory",
    "SELECTIONS": ".memory", "SelectionStrategy": ".memory", "register_selection": ".memory",
    # training and methods
    "TrainConfig": ".training", "IncrementalMethod": ".methods", "Component": ".methods",
    "METHODS": ".methods", "register_method": ".methods", "Finetune": ".methods", "Joint": ".methods",
    "LwF": ".methods", "ICaRL": ".methods", "LwM": ".methods", "MixupICaRL": ".methods",
    "AttentiveReplay": ".methods", "Replay": ".methods", "Teacher": ".methods", "L2SP": ".methods",
    "Blending": ".methods",
    # runs, results, checkpoints, exports
    "ExperimentConfig": ".config", "run_experiment": ".experiment", "compare": ".sweep",
    "RunResult": ".evaluation", "ClassifierHistory": ".evaluation", "CheckpointError": ".checkpoint",
    "RunDirectoryError": ".rundir", "ExportError": ".export", "IntegrityError": ".export",
    "ExportTarget": ".export.targets", "EXPORT_TARGETS": ".export.targets",
    "register_export_target": ".export.targets",
    # sweeps and tables
    "Grid": ".sweep", "run_sweep": ".sweep", "SweepError": ".sweep", "ResultTable": ".table",
    "collect_runs": ".table",
}
_MODULES = ("loss", "memory", "datasets", "models", "methods", "training", "export", "evaluation", "backend")

__all__ = sorted(_EXPORTS) + list(_MODULES) + ["__version__", "core_origin"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(_importlib.import_module(_EXPORTS[name], __name__), name)
    elif name in _MODULES:
        value = _importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'aidge_incremental' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
