"""Running methods on class-incremental scenarios: the Python API behind the CLI.

    from aidge_incremental import ExperimentConfig, run_experiment
    result = run_experiment(ExperimentConfig(method="icarl", memory=200))
    print(result.table())
"""
from __future__ import annotations

import dataclasses
import pathlib
import time
from dataclasses import dataclass
from typing import Dict, Optional, Sequence


from .checkpoint import (Checkpoint, CheckpointError, checkpoint_path, latest_checkpoint, load_checkpoint,
                         save_checkpoint)
from .datasets import Dataset, load_dataset
from .evaluation import RunResult, ClassifierHistory, plot_accuracy
from .methods import METHODS
from .models import ARCHITECTURES, DEFAULT_KERNELS, KERNELS, IncrementalModel
from .scenario import ClassIncrementalScenario
from .training import TrainConfig

EXPORT_TARGETS = ("onnx", "cpp", "cpp-int8")

__all__ = ["EXPORT_TARGETS", "ExperimentConfig", "build_method", "compare", "export_step", "run_experiment"]


@dataclass
class ExperimentConfig:
    method: str = "icarl"
    dataset: str = "digits"          # digits (embedded), mnist, cifar10, cifar100, npz
    data_dir: Optional[str] = None
    model: str = "mlp"               # mlp, lenet, resnet20/32/44/56, resnet18
    hidden: Sequence[int] = (128, 128)  # mlp/lenet only
    kernels: str = DEFAULT_KERNELS   # fast (our C++ kernels) or aidge (Aidge's own)
    initial: int = 2                 # classes in the first step
    increment: int = 2               # classes per later step
    class_order: Optional[Sequence[int]] = None  # default: drawn from seed
    memory: int = 200                # exemplar budget (iCaRL)
    memory_policy: str = "total"     # total or per_class
    selection: str = "herding"       # herding, random or closest
    epochs: int = 30
    lr: float = 0.05
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 0.0
    lambda_: Optional[float] = None      # distillation weight (None: the method's default)
    temperature: Optional[float] = None  # distillation temperature (None: the method's default)
    l2_old: float = 0.0              # LwF's pull toward the old weights
    seed: int = 0
    output_dir: Optional[str] = None   # results, plots and checkpoints/step-NNN.ckpt
    export_dir: Optional[str] = None   # export of every step's model(s)
    export_target: str = "onnx"        # onnx, cpp (float32) or cpp-int8 (see export_step)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: one of {sorted(METHODS)}")
        if self.model not in ARCHITECTURES:
            raise ValueError(f"unknown model {self.model!r}: one of {sorted(ARCHITECTURES)}")
        if self.kernels not in KERNELS:
            raise ValueError(f"kernels must be one of {KERNELS}, got {self.kernels!r}")
        for name in ("epochs", "batch_size", "memory", "initial", "increment"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.export_target not in EXPORT_TARGETS:
            raise ValueError(f"unknown export target {self.export_target!r}: one of {list(EXPORT_TARGETS)}")
        if self.export_target != "onnx" and not self.export_dir:
            raise ValueError(f"export_target {self.export_target!r} needs an export_dir")
        if self.export_target == "cpp-int8" and self.method != "icarl":  # the only method with a replay memory
            raise ValueError("export target cpp-int8 is calibrated on the replay memory, which only icarl "
                             "keeps: use cpp (float32)")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        self.hidden = tuple(int(h) for h in self.hidden)

    @classmethod
    def from_dict(cls, data: dict) -> "ExperimentConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown configuration keys {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["hidden"] = list(self.hidden)
        out["class_order"] = None if self.class_order is None else [int(c) for c in self.class_order]
        return out


def build_method(config: ExperimentConfig, input_shape):
    hidden = config.hidden if config.model in ("mlp", "lenet") else None  # ResNets have no hidden FC
    model = IncrementalModel(config.model, input_shape, hidden, seed=config.seed, kernels=config.kernels)
    train_config = TrainConfig(config.epochs, config.lr, config.batch_size, config.momentum,
                               config.weight_decay)
    kwargs = {}
    if config.lambda_ is not None:
        kwargs["lambda_"] = config.lambda_
    if config.temperature is not None:
        kwargs["temperature"] = config.temperature
    if config.method == "icarl":
        kwargs.update(memory=config.memory, selection=config.selection, memory_policy=config.memory_policy)
    elif config.method == "lwf":
        kwargs.update(l2_old=config.l2_old)
    elif kwargs:
        raise ValueError(f"{config.method} takes no distillation weight or temperature")
    return METHODS[config.method](model, train_config, seed=config.seed, **kwargs)


def run_experiment(config: ExperimentConfig, dataset: Optional[Dataset] = None,
                   progress: bool = False, log=None, resume=None) -> RunResult:
    """Learn the scenario step by step, evaluating every classifier after each step.

    With ``config.output_dir`` set, writes results.json, results.csv,
    accuracy.png and a checkpoint after every step; with ``config.export_dir``,
    the ONNX model(s) of every step. ``resume`` (a checkpoint file, or a run
    directory: its newest checkpoint) continues after the last completed step,
    with the checkpoint's configuration; the final results are those of the
    same run uninterrupted.
    """
    checkpoint = None
    if resume is not None:
        checkpoint = _resolve_checkpoint(resume)
        saved = ExperimentConfig.from_dict(checkpoint.config)
        config = dataclasses.replace(saved, output_dir=config.output_dir or saved.output_dir,
                                     export_dir=config.export_dir or saved.export_dir)
    dataset = dataset or load_dataset(config.dataset, config.data_dir)
    scenario = ClassIncrementalScenario(dataset, config.initial, config.increment,
                                        config.class_order, seed=config.seed)
    method = build_method(config, dataset.input_shape)
    if config.method == "icarl":  # fail before training if the budget cannot hold the classes
        method.memory.quotas(scenario.n_classes)
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
    memory = getattr(method, "memory", None)
    calibration = memory.samples() if memory is not None and len(memory) else None
    folder = directory / f"step-{step:03d}"
    export_cpp(method.model, folder, scenario.class_order, dataset.max_value,
               scenario.step(step).x_test[:CPP_CHECK_SAMPLES], dtype="int8" if target == "cpp-int8" else "float32",
               calibration=calibration, nme=(nme.means, nme.classes) if has_nme else None,
               exemplar_bytes=memory.nbytes if memory is not None else 0,
               metadata={"step": step, "method": method.name}, log=log)
    return [folder]


CPP_CHECK_SAMPLES = 512  # test samples each C++ export is checked on against Aidge (all of digits' steps)


def compare(methods: Sequence[str], config: ExperimentConfig, progress: bool = False,
            log=None) -> Dict[str, RunResult]:
    """Several methods on the same scenario and seed; one plot of all of them."""
    dataset = load_dataset(config.dataset, config.data_dir)
    results = {}
    for name in methods:
        sub = dataclasses.replace(config, method=name, output_dir=None)
        results[name] = run_experiment(sub, dataset, progress=progress, log=log)
        if config.output_dir:
            results[name].write(pathlib.Path(config.output_dir) / name)
    if config.output_dir:
        scenario = ClassIncrementalScenario(dataset, config.initial, config.increment,
                                            config.class_order, seed=config.seed)
        curves = {}
        for name, r in results.items():
            for clf, h in r.classifiers.items():
                curves[name if len(r.classifiers) == 1 else f"{name} ({clf})"] = h.acc_seen
        plot_accuracy(curves, pathlib.Path(config.output_dir) / "comparison.png",
                      title=f"{dataset.name}, {scenario.n_steps} steps, seed {config.seed}",
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
