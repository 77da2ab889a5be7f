"""Running methods on class-incremental scenarios: the Python API behind the CLI.

    from aidge_incremental import ExperimentConfig, run_experiment
    result = run_experiment(ExperimentConfig(method="icarl", memory=200))
    print(result.table())
"""
from __future__ import annotations

import contextlib
import pathlib
import time
from typing import Dict, Optional, Sequence

from .checkpoint import Checkpoint, CheckpointError, checkpoint_path, save_checkpoint
from .config import COMMON_OPTIONS, ExperimentConfig, _unknown_message, method_options
from .training import TRAINING_OPTIONS
from .datasets import Dataset, load_dataset
from .environment import environment
from .evaluation import ClassifierHistory, RunResult, plot_accuracy
from .export.targets import ExportSource, export_step
from .methods import METHODS
from .models import IncrementalModel
from .options import ConfigError
from .rundir import resolve_checkpoint, run_dir_of, run_directory
from .scenario import ClassIncrementalScenario

__all__ = ["build_method", "compare", "run_experiment"]


def build_method(config: ExperimentConfig, input_shape, scenario: Optional[ClassIncrementalScenario] = None):
    """The configured method with a fresh model for inputs of ``input_shape``;
    methods that derive their training data from the scenario (Joint) need ``scenario``."""
    cls = METHODS[config.method]
    hidden = config.hidden if config.model in ("mlp", "lenet") else None  # ResNets have no hidden FC
    model = IncrementalModel(config.model, input_shape, hidden, seed=config.seed, kernels=config.kernels,
                             backend=config.backend)
    kwargs = config.method_options
    if cls.needs_scenario:
        kwargs["scenario"] = scenario
    return cls(model, config.train_config, seed=config.seed, **kwargs)


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
        checkpoint = resolve_checkpoint(resume)
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
    run_dir = run_dir_of(resume)
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


def _run(config: ExperimentConfig, dataset, progress, log, checkpoint) -> RunResult:
    if dataset is None:
        dataset = load_dataset(config.dataset, config.data_dir, normalize=config.normalize)
    elif not config.normalize:
        dataset = dataset.replace(normalization=None)
    if config.train_per_class is not None:
        dataset = dataset.per_class(config.train_per_class, config.seed)
    scenario = ClassIncrementalScenario(dataset, config.initial, config.increment,
                                        config.class_order, seed=config.seed)
    method = build_method(config, dataset.input_shape, scenario)
    method.check_scenario(scenario)  # e.g. a memory budget too small: fails before any training
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
    result.environment = environment()  # after the core and the kernels are loaded (build_method)
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
            source = ExportSource.from_method(method, scenario.class_order, dataset, t, step.x_test)
            export_step(source, config.export_dir, config.export_target, log=log)
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
    common = {o.name for o in COMMON_OPTIONS + TRAINING_OPTIONS}
    own = {name: {o.name for o in METHODS[name].declared_options()} for name in methods}
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
        dataset = load_dataset(first.dataset, first.data_dir, normalize=first.normalize)
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
