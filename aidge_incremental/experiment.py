"""Running methods on class-incremental scenarios: the Python API behind the CLI.

    from aidge_incremental import ExperimentConfig, run_experiment
    result = run_experiment(ExperimentConfig(method="icarl", memory=200))
    print(result.table())
"""
from __future__ import annotations

import dataclasses
import pathlib
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from .datasets import Dataset, load_dataset
from .evaluation import RunResult, ClassifierHistory, plot_accuracy
from .methods import METHODS
from .model import IncrementalModel
from .scenario import ClassIncrementalScenario
from .training import TrainConfig

__all__ = ["ExperimentConfig", "build_method", "compare", "run_experiment"]


@dataclass
class ExperimentConfig:
    method: str = "icarl"
    dataset: str = "digits"          # digits (embedded), mnist, cifar10, cifar100, npz
    data_dir: Optional[str] = None
    model: str = "mlp"               # mlp or lenet
    hidden: Sequence[int] = (128, 128)
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
    output_dir: Optional[str] = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: one of {sorted(METHODS)}")
        for name in ("epochs", "batch_size", "memory", "initial", "increment"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
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
    model = IncrementalModel(config.model, input_shape, config.hidden, seed=config.seed)
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
                   progress: bool = False, log=None) -> RunResult:
    """Learn the scenario step by step, evaluating every classifier after each step.

    Writes results.json, results.csv and accuracy.png to ``config.output_dir``
    when it is set.
    """
    dataset = dataset or load_dataset(config.dataset, config.data_dir)
    scenario = ClassIncrementalScenario(dataset, config.initial, config.increment,
                                        config.class_order, seed=config.seed)
    method = build_method(config, dataset.input_shape)
    if config.method == "icarl":  # fail before training if the budget cannot hold the classes
        method.memory.quotas(scenario.n_classes)
    histories = {name: ClassifierHistory() for name in method.classifiers}
    result = RunResult(config.method, config.to_dict(), scenario.class_order.tolist(), histories,
                       dataset_note=dataset.note)
    bar = _progress_bar(progress, scenario.n_steps * config.epochs, config.method)
    for step in scenario:
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
    if bar is not None:
        bar.close()
    if config.output_dir:
        result.write(config.output_dir)
        plot_accuracy({f"{config.method} ({n})": h.acc_seen for n, h in histories.items()},
                      pathlib.Path(config.output_dir) / "accuracy.png",
                      title=scenario.describe().split(",")[0] + f", {scenario.n_steps} steps",
                      classes_per_step=[len(scenario.step_classes(t)) for t in range(scenario.n_steps)])
    return result


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
