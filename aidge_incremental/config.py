"""The configuration of an experiment: every option it takes, checked against
its declaration before any work.

The common options are declared here, the training options by the loop
(:data:`aidge_incremental.training.TRAINING_OPTIONS`), each method's by the
method (``options``); :class:`ExperimentConfig` takes all of them, refuses an
unknown option (with "did you mean") or one of another method, and is what the
CLI and configuration files are checked against.
"""
from __future__ import annotations

import dataclasses
import difflib
from typing import Dict

from .backend import BACKENDS, DEFAULT_KERNELS, KERNELS
from .datasets import DATASETS
from .export.targets import EXPORT_TARGETS
from .methods import METHODS
from .models import ARCHITECTURES
from .options import ConfigError, Option, merge_options
from .training import TRAINING_OPTIONS, TrainConfig

__all__ = ["COMMON_OPTIONS", "ConfigError", "ExperimentConfig", "method_options"]

#: options every experiment takes (the method's own come from ``METHODS[name].options``)
COMMON_OPTIONS = (
    Option("method", str, "icarl", "the class-incremental method", choices=METHODS,
           source="iCaRL: the reference method of the class-incremental setting (Rebuffi et al. 2017)"),
    Option("dataset", str, "digits", "digits (embedded, no download), mnist, fashion-mnist, cifar10, cifar100, npz",
           choices=DATASETS, source="digits: ships with scikit-learn, so a run needs no download"),
    Option("data_dir", str, None, "directory (MNIST, CIFAR) or file (npz, CIFAR archive)", optional=True),
    Option("download", bool, False, "fetch the dataset's official files (mnist, fashion-mnist, cifar10, cifar100) "
           "into data_dir, or a cache folder, each checked against its pinned SHA-256 (needs pooch: the download "
           "extra)", source="off: a run reads local files unless asked"),
    Option("train_per_class", int, None, "keep this many training samples per class (drawn with the seed); "
           "the test set stays whole (null: every sample)", optional=True, minimum=1,
           source="every sample; a subset keeps CPU protocols with large models to an hour (docs/results.md)"),
    Option("model", str, "mlp", "network architecture", choices=ARCHITECTURES,
           source="an MLP: the smallest model that learns digits"),
    Option("backbone", str, None, "an ONNX file whose graph starts the feature extractor (read with aidge_onnx, "
           "its weights as starting values; our head grows on its flattened output); sets model to backbone",
           optional=True),
    Option("backbone_output", str, None, "backbone: the node whose output are the features (default: the graph's "
           "output; name the node before a classifier the file has)", optional=True),
    Option("freeze_backbone", bool, False, "backbone: keep its weights as loaded (only the head trains)",
           source="fine-tuned: the backbone adapts to the new classes; frozen is the linear-probe baseline"),
    Option("kernels", str, DEFAULT_KERNELS, "fast: our C++ training kernels (aidge_incremental.accelerate); "
           "aidge: Aidge's own CPU kernels (cannot train BatchNorm)", choices=KERNELS,
           source="chosen: ours are 17-90x faster than Aidge's and train BatchNorm (benchmarks/bench_kernels.py)"),
    Option("hidden", int, [128, 128], "mlp/lenet: widths of the fully connected layers before the head", sequence=True,
           minimum=1, maximum=8192, max_length=16, source="chosen: 2 layers of 128 learn digits to ~97%"),
    Option("initial", int, 2, "classes in the first step", minimum=1, maximum=1_000_000,
           source="B0 protocol with 2 classes per step (split digits/MNIST, 5 steps)"),
    Option("increment", int, 2, "classes per later step", minimum=1, maximum=1_000_000,
           source="split digits/MNIST: 5 steps of 2 classes"),
    Option("class_order", int, None, "explicit class order (default: drawn from seed)", sequence=True,
           optional=True, minimum=0, max_length=100_000),
    Option("seed", int, 0, "seed of the class order, initialisation and shuffling", minimum=0),
    Option("normalize", bool, True, "normalise inputs per channel with the dataset's mean and std "
           "(CIFAR, Fashion-MNIST; no effect on digits/MNIST)", source="each dataset states its statistics "
           "(PyCIL's CIFAR transforms; Fashion-MNIST: its training images)"),
    Option("backend", str, "cpu", "where the model runs", choices=BACKENDS),
    Option("output_dir", str, None, "results, plots and checkpoints/step-NNN.ckpt", optional=True),
    Option("export_dir", str, None, "export of every step's model(s) (see export_target)", optional=True),
    Option("export_target", str, "onnx", "onnx: step-NNN.onnx; cpp / cpp-int8: step-NNN/, C++ projects "
           "(aidge_export_cpp) built and checked against Aidge, with budget.json", choices=EXPORT_TARGETS,
           source="ONNX: the exchange format every runtime reads"),
    Option("opset", int, None, "ONNX opset of the exports (default: the lowest that holds every operator of the "
           "model; a lower one is refused, naming the lowest)", optional=True, minimum=7,
           source="the lowest: the most runtimes and embedded toolchains read it"),
    Option("tensorboard", bool, False, "also write the training log and the accuracies as TensorBoard events in "
           "OUTPUT_DIR/tensorboard (needs tensorboardX: the tensorboard extra)",
           source="off: an optional library, and log.csv holds the same"),
)

def method_options(method: str) -> Dict[str, Option]:
    """Every option a run of ``method`` takes: common, training, the method's own."""
    return {o.name: o for o in merge_options(COMMON_OPTIONS, TRAINING_OPTIONS, METHODS[method].declared_options())}


class ExperimentConfig:
    """A validated configuration: the common options, the training options and
    the chosen method's options, each checked against its declaration.

    ``ExperimentConfig(method="icarl", memory=200)``; unknown options, options of
    another method and values of the wrong type raise :class:`ConfigError`.
    Read values as attributes (``config.memory``); change them with :meth:`replace`.
    """

    def __init__(self, **values):
        method = COMMON_OPTIONS[0].check(values.get("method", COMMON_OPTIONS[0].default))
        options = method_options(method)
        extra = sorted(set(values) - set(options))
        if extra:
            raise ConfigError(_unknown_message(extra, method, options))
        checked = {}
        for name, option in options.items():
            value = option.check(values[name]) if name in values else option.default
            checked[name] = list(value) if isinstance(value, list) else value
        if checked.get("first_step") is not None:
            checked["first_step"] = _check_first_step(checked["first_step"], options)
        if checked["export_target"] == "cpp-int8" and checked["normalize"] and \
                DATASETS[checked["dataset"]].normalization:
            raise ConfigError(f"export_target cpp-int8 takes inputs scaled to [0, 1] and cannot carry "
                              f"{checked['dataset']}'s per-channel normalisation yet: use export_target cpp "
                              "(float32, the normalisation folded in) or normalize: false (--no-normalize)")
        if checked["backbone"]:
            if checked["model"] not in ("mlp", "backbone"):  # mlp: the default, replaced
                raise ConfigError(f"backbone replaces the model: leave out model {checked['model']!r}")
            checked["model"] = "backbone"
        elif checked["model"] == "backbone":
            raise ConfigError("model backbone needs the ONNX file: give backbone (--backbone FILE.onnx)")
        elif checked["backbone_output"] is not None or checked["freeze_backbone"]:
            raise ConfigError("backbone_output and freeze_backbone apply with a backbone (--backbone FILE.onnx)")
        if checked["opset"] is not None and checked["export_target"] != "onnx":
            raise ConfigError(f"opset applies to export_target onnx, not {checked['export_target']!r}")
        if checked["export_target"] != "onnx" and not checked["export_dir"]:
            raise ConfigError(f"export_target {checked['export_target']!r} needs an export_dir")
        if EXPORT_TARGETS[checked["export_target"]].needs_memory and not checked.get("memory"):
            raise ConfigError(f"export_target {checked['export_target']} is calibrated on the replay memory: it "
                              "needs a method with a replay memory (memory > 0); use cpp (float32)")
        object.__setattr__(self, "_values", checked)
        try:
            self.train_config  # the loop's own checks (schedule against epochs, ...), before any work
        except (TypeError, ValueError) as e:
            raise ConfigError(f"invalid training settings: {e}") from None

    def __getattr__(self, name):
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"ExperimentConfig has no option {name!r}")

    def __setattr__(self, name, value):
        raise AttributeError("ExperimentConfig is immutable: use config.replace(name=value)")

    def __eq__(self, other):
        return isinstance(other, ExperimentConfig) and other._values == self._values

    def __repr__(self):
        return "ExperimentConfig(" + ", ".join(f"{k}={v!r}" for k, v in self._values.items()) + ")"

    def replace(self, **changes) -> "ExperimentConfig":
        """A new configuration with ``changes``; changing the method drops the old
        method's own options (they may not apply to the new one)."""
        values = dict(self._values)
        if "method" in changes and changes["method"] != self.method:
            for o in METHODS[self.method].declared_options():
                values.pop(o.name, None)
        values.update(changes)
        return ExperimentConfig(**values)

    @classmethod
    def from_dict(cls, data: dict) -> "ExperimentConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"a configuration is a mapping of option names to values, got {type(data).__name__}")
        return cls(**data)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v
                for k, v in self._values.items()}

    @property
    def method_options(self) -> dict:
        """The chosen method's own options (the keywords of its constructor)."""
        return {o.name: self._values[o.name] for o in METHODS[self.method].declared_options()}

    @property
    def train_config(self) -> TrainConfig:
        return TrainConfig(**{o.name: self._values[o.name] for o in TRAINING_OPTIONS})


def _check_first_step(values: dict, options: Dict[str, Option]) -> dict:
    names = {o.name for o in TRAINING_OPTIONS} - {"first_step"}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"first_step: unknown settings {unknown}; it takes training options: "
                          f"{', '.join(sorted(names))}")
    out = {}
    for key, value in values.items():
        checked = dataclasses.replace(options[key], name=f"first_step.{key}").check(value)
        out[key] = list(checked) if isinstance(checked, list) else checked
    return out


def _unknown_message(names, method, options) -> str:
    parts = []
    for name in names:
        owners = sorted(m for m, cls in METHODS.items() if any(o.name == name for o in cls.declared_options()))
        if owners:
            parts.append(f"option {name!r} does not apply to method {method!r} "
                         f"(it is an option of {', '.join(owners)})")
        else:
            close = difflib.get_close_matches(name, list(options), n=1)
            parts.append(f"unknown option {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    own = [o.name for o in METHODS[method].declared_options()]
    return "; ".join(parts) + f". Options of {method}: {', '.join(own) or 'none'}; common: " \
        + ", ".join(o for o in options if o not in own)


