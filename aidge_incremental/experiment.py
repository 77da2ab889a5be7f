"""Running methods on class-incremental scenarios: the Python API behind the CLI.

    from aidge_incremental import ExperimentConfig, run_experiment
    result = run_experiment(ExperimentConfig(method="icarl", memory=200))
    print(result.table())
"""
from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import difflib
import os
import pathlib
import time
import typing
from typing import Dict, Optional, Sequence

from .checkpoint import (CHECKPOINT_DIR, Checkpoint, CheckpointError, checkpoint_path, latest_checkpoint,
                         load_checkpoint, save_checkpoint)
from .datasets import Dataset, load_dataset
from .evaluation import RunResult, ClassifierHistory, plot_accuracy
from .methods import METHODS
from .models import ARCHITECTURES, DEFAULT_KERNELS, KERNELS, IncrementalModel
from .options import ConfigError, Option
from .scenario import ClassIncrementalScenario
from .training import BACKENDS, NORMALIZATION, SCHEDULES, TrainConfig, normalized

#: what ``export_dir`` receives after every step (see :func:`export_step`)
EXPORT_TARGETS = ("onnx", "cpp", "cpp-int8")

__all__ = ["COMMON_OPTIONS", "EXPORT_TARGETS", "ConfigError", "ExperimentConfig", "RunDirectoryError", "build_method", "compare",
           "export_step", "method_options", "run_experiment", "training_options"]

DATASETS = ("digits", "mnist", "cifar10", "cifar100", "npz")

#: options every experiment takes (the method's own come from ``METHODS[name].options``)
COMMON_OPTIONS = (
    Option("method", str, "icarl", "the class-incremental method", choices=tuple(sorted(METHODS)),
           source="iCaRL: the reference method of the class-incremental setting (Rebuffi et al. 2017)"),
    Option("dataset", str, "digits", "digits (embedded, no download), mnist, cifar10, cifar100, npz",
           choices=DATASETS, source="digits: ships with scikit-learn, so a run needs no download"),
    Option("data_dir", str, None, "directory (MNIST, CIFAR) or file (npz, CIFAR archive)", optional=True),
    Option("model", str, "mlp", "network architecture", choices=tuple(sorted(ARCHITECTURES)),
           source="an MLP: the smallest model that learns digits"),
    Option("kernels", str, DEFAULT_KERNELS, "fast: our C++ training kernels (aidge_incremental.accelerate); "
           "aidge: Aidge's own CPU kernels (cannot train BatchNorm)", choices=tuple(KERNELS),
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
    Option("normalize", bool, True, "normalise inputs per channel with the dataset's published mean and "
           "std (CIFAR; no effect on digits/MNIST)", source="PyCIL's CIFAR transforms"),
    Option("backend", str, "cpu", "where the model runs", choices=BACKENDS),
    Option("output_dir", str, None, "results, plots and checkpoints/step-NNN.ckpt", optional=True),
    Option("export_dir", str, None, "export of every step's model(s) (see export_target)", optional=True),
    Option("export_target", str, "onnx", "onnx: step-NNN.onnx; cpp / cpp-int8: step-NNN/, C++ projects "
           "(aidge_export_cpp) built and checked against Aidge, with budget.json", choices=EXPORT_TARGETS,
           source="ONNX: the exchange format every runtime reads"),
)

#: the training options declared here; any other TrainConfig field is derived from its annotation
_TRAINING_DECLARED = {
    "epochs": dict(minimum=1, maximum=100_000, help="epochs per step"),
    "lr": dict(minimum=1e-12, help="SGD learning rate"),
    "batch_size": dict(minimum=1, maximum=1 << 20, help="mini-batch size"),
    "momentum": dict(minimum=0.0, maximum=1.0, help="SGD momentum"),
    "weight_decay": dict(minimum=0.0, help="L2 weight decay"),
    "schedule": dict(choices=SCHEDULES, help="learning-rate schedule"),
    "milestones": dict(minimum=1, max_length=1000, help="multistep: epochs at which the rate is multiplied "
                                                         "by lr_factor"),
    "lr_factor": dict(minimum=0.0, maximum=1.0, help="multistep: factor applied at each milestone"),
    "min_lr": dict(minimum=0.0, help="cosine: the rate at the last epoch"),
    "warmup_epochs": dict(minimum=0, maximum=100_000, help="linear warm-up, in epochs"),
    "augment": dict(help="random crop + flip (null: the dataset's default, on for CIFAR only)"),
    "crop_padding": dict(minimum=0, maximum=64, help="augmentation: zero padding of the random crop"),
    "flip": dict(help="augmentation: random horizontal flip"),
    "first_step": dict(help="settings of the first step that differ (e.g. {lr: 0.1, epochs: 200})"),
}


def _option_from_field(f: dataclasses.Field, hint) -> Optional[Option]:
    """An Option for a TrainConfig field: type from its annotation, bounds and
    help from ``_TRAINING_DECLARED`` or the field's metadata (keys of Option)."""
    optional, sequence = False, False
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union and type(None) in args:
        optional = True
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (list, tuple, Sequence, typing.Sequence, collections.abc.Sequence) or hint in (list, tuple):
        sequence = True
        hint = args[0] if args else float
    elif origin in (dict, typing.Mapping, collections.abc.Mapping) or hint is dict:
        hint = dict
    if hint not in (int, float, str, bool, dict):
        return None  # not settable from a configuration (e.g. a nested structure)
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return None
    if sequence and default is not None:
        default = list(default)
        if not default:
            extra_min = {"min_length": 0}
        else:
            extra_min = {}
    else:
        extra_min = {}
    extra = {**extra_min, **_TRAINING_DECLARED.get(f.name, {}), **dict(f.metadata)}
    extra.setdefault("help", f.name.replace("_", " "))
    extra.setdefault("source", f"TrainConfig's default")
    if "choices" in extra:
        extra["choices"] = tuple(extra["choices"])
    known = {g.name for g in dataclasses.fields(Option)}
    return Option(f.name, hint, default, sequence=sequence, optional=optional or default is None,
                  **{k: v for k, v in extra.items() if k in known})


def training_options() -> tuple:
    """The options of the training loop, one per field of :class:`TrainConfig`."""
    hints = typing.get_type_hints(TrainConfig)
    out = []
    for f in dataclasses.fields(TrainConfig):
        option = _option_from_field(f, hints[f.name])
        if option is not None:
            out.append(option)
    return tuple(out)


def method_options(method: str) -> Dict[str, Option]:
    """Every option a run of ``method`` takes: common, training, the method's own."""
    options = {o.name: o for o in COMMON_OPTIONS + training_options()}
    for o in METHODS[method].options:
        options[o.name] = o
    return options


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
        if checked["export_dir"] and checked["normalize"] and checked["dataset"] in NORMALIZATION:
            raise ConfigError(f"export_dir: the ONNX export does not carry {checked['dataset']}'s per-channel "
                              "normalisation yet; export with normalize: false (--no-normalize)")
        if checked["export_target"] != "onnx" and not checked["export_dir"]:
            raise ConfigError(f"export_target {checked['export_target']!r} needs an export_dir")
        if checked["export_target"] == "cpp-int8" and not checked.get("memory"):
            raise ConfigError("export_target cpp-int8 is calibrated on the replay memory: it needs a method "
                              "with a replay memory (memory > 0); use cpp (float32)")
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
            for o in METHODS[self.method].options:
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
        return {o.name: self._values[o.name] for o in METHODS[self.method].options}

    @property
    def train_config(self) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        return TrainConfig(**{k: v for k, v in self._values.items() if k in names})


def _check_first_step(values: dict, options: Dict[str, Option]) -> dict:
    names = {o.name for o in training_options()} - {"first_step"}
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
        owners = sorted(m for m, cls in METHODS.items() if any(o.name == name for o in cls.options))
        if owners:
            parts.append(f"option {name!r} does not apply to method {method!r} "
                         f"(it is an option of {', '.join(owners)})")
        else:
            close = difflib.get_close_matches(name, list(options), n=1)
            parts.append(f"unknown option {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    own = [o.name for o in METHODS[method].options]
    return "; ".join(parts) + f". Options of {method}: {', '.join(own) or 'none'}; common: " \
        + ", ".join(o for o in options if o not in own)


def build_method(config: ExperimentConfig, input_shape, scenario: Optional[ClassIncrementalScenario] = None):
    """The configured method with a fresh model for inputs of ``input_shape``;
    methods that derive their training data from the scenario (Joint) need ``scenario``."""
    cls = METHODS[config.method]
    hidden = config.hidden if config.model in ("mlp", "lenet") else None  # ResNets have no hidden FC
    model = IncrementalModel(config.model, input_shape, hidden, seed=config.seed, kernels=config.kernels,
                             backend=config.backend)
    kwargs = config.method_options
    if getattr(cls, "uses_scenario", False):
        kwargs["scenario"] = scenario
    return cls(model, config.train_config, seed=config.seed, **kwargs)


class RunDirectoryError(ValueError):
    """An output directory holds another run, or is in use by a running one."""


#: files a run writes in its output directory (what --overwrite removes)
_RUN_FILES = ("results.json", "results.csv", "accuracy.png", "comparison.png")


@contextlib.contextmanager
def run_directory(path, resuming: bool = False, overwrite: bool = False):
    """Hold ``path`` for one run: an exclusive lock (``.lock``, released by the
    kernel even if the process is killed), temporary files of an interrupted
    save removed, and a directory holding an older run refused unless the run
    resumes it or ``overwrite`` is set (which removes that run's files)."""
    import fcntl
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise RunDirectoryError(f"{path} is in use by another run (pid {owner}); "
                                    "give another --output-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        checkpoints = path / CHECKPOINT_DIR
        for folder in (path, checkpoints):  # left by a run killed while writing
            for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
                tmp.unlink()
        if not resuming:
            old = sorted(p.name for p in path.iterdir() if p.name in _RUN_FILES)
            if checkpoints.is_dir() and any(checkpoints.glob("step-*.ckpt")):
                old.append(f"{CHECKPOINT_DIR}/")
            if old and not overwrite:
                raise RunDirectoryError(f"{path} already holds a run ({', '.join(old)}): continue it with "
                                        f"--resume {path}, replace it with --overwrite, or give another "
                                        "--output-dir")
            if old:
                for name in _RUN_FILES:
                    (path / name).unlink(missing_ok=True)
                for ckpt in checkpoints.glob("step-*.ckpt") if checkpoints.is_dir() else ():
                    ckpt.unlink()
        yield path
    finally:
        os.close(fd)  # releases the lock


def run_experiment(config: Optional[ExperimentConfig] = None, dataset: Optional[Dataset] = None,
                   progress: bool = False, log=None, resume=None, overwrite: bool = False) -> RunResult:
    """Learn the scenario step by step, evaluating every classifier after each step.

    With ``config.output_dir`` set, writes results.json, results.csv,
    accuracy.png and a checkpoint after every step (the directory is locked
    for the run; one holding an older run is refused unless ``overwrite``);
    with ``config.export_dir``, the ONNX model(s) of every step.
    The result's ``trained_method`` is the trained method object (e.g. its
    ``model`` and, for iCaRL, ``memory`` and ``nme``), for use after the run.

    ``resume`` (a checkpoint file, or a run directory: its newest checkpoint)
    continues after the last completed step, with the checkpoint's
    configuration; the final results are those of the same run uninterrupted.
    ``config`` may then be None, or a dict of options that must agree with the
    checkpoint's; only ``output_dir`` and ``export_dir`` may differ. The run
    writes to ``output_dir`` if given, else to the run directory resumed
    (never to the directory recorded in the checkpoint).
    """
    if config is None:
        config = {}
    checkpoint = None
    if resume is not None:
        checkpoint = _resolve_checkpoint(resume)
        config = _resumed_config(checkpoint, resume, config)
    elif isinstance(config, dict):
        config = ExperimentConfig.from_dict(config)
    if not config.output_dir:
        return _run(config, dataset, progress, log, checkpoint)
    with run_directory(config.output_dir, resuming=checkpoint is not None, overwrite=overwrite):
        return _run(config, dataset, progress, log, checkpoint)


def _resumed_config(checkpoint: Checkpoint, resume, given) -> ExperimentConfig:
    saved = ExperimentConfig.from_dict(checkpoint.config)
    if isinstance(given, ExperimentConfig):
        given = {k: v for k, v in given.to_dict().items() if v != saved.to_dict().get(k)}
    given = dict(given)
    output_dir, export_dir = given.pop("output_dir", None), given.pop("export_dir", None)
    if given:
        asked = saved.replace(**given).to_dict()  # validates the given values
        conflicts = [f"{k} = {asked[k]!r} (the checkpoint has {saved.to_dict().get(k)!r})"
                     for k in given if asked[k] != saved.to_dict().get(k)]
        if conflicts:
            raise ConfigError(f"options given with --resume contradict checkpoint {checkpoint.path}: "
                              + "; ".join(conflicts) + ". A resumed run continues with the saved "
                              "configuration; start a new run (another --output-dir) to change it")
    run_dir = _run_dir_of(resume)
    if output_dir is None:
        output_dir = None if run_dir is None else str(run_dir)
    if export_dir is None and saved.export_dir:
        export_dir = saved.export_dir
        # an export folder inside the saved run directory moves with the run
        if saved.output_dir and run_dir is not None:
            try:
                inside = pathlib.Path(saved.export_dir).resolve().relative_to(
                    pathlib.Path(saved.output_dir).resolve())
                export_dir = str(pathlib.Path(output_dir or run_dir) / inside)
            except ValueError:
                pass
    return saved.replace(output_dir=output_dir, export_dir=export_dir)


def _run_dir_of(resume) -> Optional[pathlib.Path]:
    """The run directory a --resume path designates: the directory itself, or
    the parent of the checkpoints/ folder holding a .ckpt; None for a lone file."""
    path = pathlib.Path(resume)
    if path.is_dir():
        return path.parent if path.name == CHECKPOINT_DIR else path
    return path.parent.parent if path.parent.name == CHECKPOINT_DIR else None


def _run(config: ExperimentConfig, dataset, progress, log, checkpoint) -> RunResult:
    dataset = dataset or load_dataset(config.dataset, config.data_dir)
    if config.normalize:
        dataset = normalized(dataset)
    scenario = ClassIncrementalScenario(dataset, config.initial, config.increment,
                                        config.class_order, seed=config.seed)
    method = build_method(config, dataset.input_shape, scenario)
    replay = getattr(method, "replay", None)
    if replay is not None:  # fail before training if the budget cannot hold the classes
        replay.check_budget(scenario.n_classes)
    histories = {name: ClassifierHistory() for name in method.classifiers}
    result = RunResult(config.method, config.to_dict(), scenario.class_order.tolist(), histories,
                       dataset_note=dataset.note)
    first = 0
    if checkpoint is not None:
        if checkpoint.result["class_order"] != scenario.class_order.tolist():
            raise CheckpointError(f"checkpoint {checkpoint.path} was made on another class order")
        method.model.load_state_dict(checkpoint.params)
        method.model.rng_state = checkpoint.model_rng
        method.load_state_dict(checkpoint.method_state)
        result = RunResult.from_dict(checkpoint.result)
        result.config = config.to_dict()
        histories = result.classifiers
        first = checkpoint.step + 1
        if log is not None:
            log(f"resumed from {checkpoint.path} (step {checkpoint.step} done)")
    bar = _progress_bar(progress, (scenario.n_steps - first) * config.epochs, config.method)
    for t in range(first, scenario.n_steps):
        step = scenario.step(t)
        start = time.perf_counter()
        method.learn(step, dataset, progress=bar)
        result.step_seconds.append(time.perf_counter() - start)
        result.classes_seen.append(step.n_seen)
        groups = [scenario.step_classes(j) for j in range(step.index + 1)]
        x_test = dataset.to_input(step.x_test)
        for name, history in histories.items():
            history.record(step.y_test, method.predict(x_test, name), groups)
        if log is not None:
            log(f"step {step.index}: classes {scenario.original_labels(step.classes).tolist()}, "
                + ", ".join(f"{n} {100 * h.acc_seen[-1]:.2f}%" for n, h in histories.items()))
        if config.export_dir:
            export_step(method, scenario, dataset, config.export_dir, t, config.export_target, log=log)
        if config.output_dir:
            save_checkpoint(checkpoint_path(config.output_dir, t), Checkpoint(
                t, config.to_dict(), result.to_dict(), method.model.state_dict(),
                method.model.rng_state, method.state_dict()))
    if bar is not None:
        bar.close()
    if config.output_dir:
        result.write(config.output_dir)
        plot_accuracy({f"{config.method} ({n})": h.acc_seen for n, h in histories.items()},
                      pathlib.Path(config.output_dir) / "accuracy.png",
                      title=scenario.describe().split(",")[0] + f", {scenario.n_steps} steps",
                      classes_per_step=[len(scenario.step_classes(t)) for t in range(scenario.n_steps)])
    result.trained_method = method
    return result


def _resolve_checkpoint(resume) -> Checkpoint:
    path = pathlib.Path(resume)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"no checkpoint (checkpoints/step-NNN.ckpt) in {path}")
        path = found
    try:
        return load_checkpoint(path)
    except CheckpointError as e:
        older = sorted(path.parent.glob("step-*.ckpt"))
        older = [p for p in older if p.name < path.name]
        hint = f"; the previous checkpoint {older[-1]} can be resumed with --resume {older[-1]}" if older else ""
        raise CheckpointError(f"{e}{hint}") from e


def export_step(method, scenario, dataset, directory, step: int, target: str = "onnx", log=None) -> list:
    """Export the model after ``step`` into ``directory``; the paths written.

    - ``onnx``: step-NNN.onnx (trained head) and, for a method with an NME
      classifier, step-NNN-nme.onnx, each with a .sha256 digest;
    - ``cpp`` / ``cpp-int8``: the folder step-NNN/ (export/step.py): the head in
      float32 / int8 (calibrated on the replay memory) and the NME classifier, each
      a CMake project built and checked against Aidge on the step's test samples,
      with budget.json (also passed to ``log``).
    """
    from .export import export_model, export_nme
    directory = pathlib.Path(directory)
    meta = {"aidge_incremental.step": str(step), "aidge_incremental.method": method.name}
    nme = getattr(method, "nme", None)
    has_nme = nme is not None and nme.means is not None
    if target == "onnx":
        paths = [export_model(method.model, directory / f"step-{step:03d}.onnx", scenario.class_order,
                              dataset.max_value, meta)]
        if has_nme:
            paths.append(export_nme(method.model, directory / f"step-{step:03d}-nme.onnx", nme.means,
                                    nme.classes, scenario.class_order, dataset.max_value, meta))
        return paths
    if target not in EXPORT_TARGETS:
        raise ValueError(f"unknown export target {target!r}: one of {list(EXPORT_TARGETS)}")
    from .export.step import export_cpp
    replay = getattr(method, "replay", None)  # the replay component of any method that has one
    memory = replay.memory if replay is not None else None
    calibration = memory.samples() if memory is not None and len(memory) else None
    folder = directory / f"step-{step:03d}"
    export_cpp(method.model, folder, scenario.class_order, dataset.max_value,
               scenario.step(step).x_test[:CPP_CHECK_SAMPLES], dtype="int8" if target == "cpp-int8" else "float32",
               calibration=calibration, nme=(nme.means, nme.classes) if has_nme else None,
               exemplar_bytes=memory.nbytes if memory is not None else 0,
               metadata={"step": step, "method": method.name}, log=log)
    return [folder]


CPP_CHECK_SAMPLES = 512  # test samples each C++ export is checked on against Aidge (all of digits' steps)


def compare(methods: Sequence[str], config, progress: bool = False, log=None,
            overwrite: bool = False) -> Dict[str, RunResult]:
    """Several methods on the same scenario and seed; one plot of all of them.

    ``config`` is an ExperimentConfig or a dict of options; a method's own
    option applies to the methods that declare it (an option none of them
    declares is an error)."""
    values = config.to_dict() if isinstance(config, ExperimentConfig) else dict(config)
    for name in methods:
        if name not in METHODS:
            raise ConfigError(f"unknown method {name!r}: one of {', '.join(sorted(METHODS))}")
    common = {o.name for o in COMMON_OPTIONS + training_options()}
    own = {name: {o.name for o in METHODS[name].options} for name in methods}
    unused = sorted(k for k in values if k not in common and not any(k in own[m] for m in methods))
    if unused:
        raise ConfigError(f"options {unused} apply to none of the compared methods ({', '.join(methods)}): "
                          + _unknown_message(unused, methods[0], method_options(methods[0])).split(". Options")[0])
    configs = {name: ExperimentConfig(**{k: v for k, v in values.items()
                                         if k != "method" and (k in common or k in own[name])},
                                      method=name).replace(output_dir=None) for name in methods}
    first = configs[methods[0]]
    output_dir = values.get("output_dir")
    with (run_directory(output_dir, overwrite=overwrite) if output_dir else contextlib.nullcontext()):
        dataset = load_dataset(first.dataset, first.data_dir)
        results = {}
        for name in methods:
            results[name] = run_experiment(configs[name], dataset, progress=progress, log=log)
            if output_dir:
                results[name].write(pathlib.Path(output_dir) / name)
        if output_dir:
            scenario = ClassIncrementalScenario(dataset, first.initial, first.increment,
                                                first.class_order, seed=first.seed)
            curves = {}
            for name, r in results.items():
                for clf, h in r.classifiers.items():
                    curves[name if len(r.classifiers) == 1 else f"{name} ({clf})"] = h.acc_seen
            plot_accuracy(curves, pathlib.Path(output_dir) / "comparison.png",
                          title=f"{dataset.name}, {scenario.n_steps} steps, seed {first.seed}",
                          classes_per_step=[len(scenario.step_classes(t)) for t in range(scenario.n_steps)])
    return results


def _progress_bar(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="epoch", leave=False)
