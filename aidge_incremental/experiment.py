"""Running a method on a class-incremental scenario: the Python API behind the CLI
(several runs: :mod:`aidge_incremental.sweep`).

    from aidge_incremental import ExperimentConfig, run_experiment
    result = run_experiment(ExperimentConfig(method="icarl", memory=200))
    print(result.table())
"""
from __future__ import annotations

import contextlib
import pathlib
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .backend import require_backend
from .checkpoint import Checkpoint, CheckpointError, checkpoint_path, save_checkpoint
from .config import ExperimentConfig
from .datasets import Dataset, load_dataset
from .environment import environment
from .evaluation import ClassifierHistory, RunResult, plot_accuracy
from .export.targets import EXPORT_TARGETS, ExportSource, export_step
from .methods import METHODS
from .models import IncrementalModel
from .options import ConfigError
from .profiling import phase
from .rundir import export_directory, resolve_checkpoint, run_dir_of, run_directory, run_identity
from .scenario import ClassIncrementalScenario
from .tensorboard import TensorBoardLog, require_tensorboard

__all__ = ["build_method", "method_from_checkpoint", "restore_method", "run_experiment"]


def build_method(config: ExperimentConfig, input_shape, scenario: Optional[ClassIncrementalScenario] = None):
    """The configured method with a fresh model for inputs of ``input_shape``;
    methods that derive their training data from the scenario (Joint) need ``scenario``."""
    cls = METHODS[config.method]
    hidden = config.hidden if config.model in ("mlp", "lenet") else None  # ResNets have no hidden FC
    options = {"path": config.backbone, "output": config.backbone_output, "freeze": config.freeze_backbone} \
        if config.model == "backbone" else {}
    model = IncrementalModel(config.model, input_shape, hidden, seed=config.seed, kernels=config.kernels,
                             backend=config.backend, **options)
    kwargs = config.method_options
    if cls.needs_scenario:
        kwargs["scenario"] = scenario
    return cls(model, config.train_config, seed=config.seed, **kwargs)


def run_experiment(config: Optional[ExperimentConfig] = None, dataset: Optional[Dataset] = None,
                   progress: bool = False, log=None, resume=None, overwrite: bool = False) -> RunResult:
    """Learn the scenario step by step, evaluating every classifier after each step.

    With ``config.output_dir`` set, writes after every step a checkpoint and
    the result files (:meth:`RunResult.write`: results.json, results.csv,
    log.csv, accuracy_matrix.csv, confusion.csv, matrix.png), then
    accuracy.png (the directory is locked for the run; one holding an older
    run is refused unless ``overwrite``); with ``config.tensorboard``, the same
    as TensorBoard events in ``output_dir/tensorboard``; with
    ``config.export_dir``, every step's export (after its checkpoint).
    Everything that can be checked before training is (the backend, the
    dataset, the method against the scenario, the export target against the
    model): a refused run leaves nothing behind.
    The result's ``trained_method`` is the trained method object (e.g. its
    ``model`` and, for iCaRL, ``memory`` and ``nme``), for use after the run.

    ``resume`` (a checkpoint file, or a run directory: its newest checkpoint)
    continues after the last completed step, with the checkpoint's
    configuration; the final results are those of the same run uninterrupted.
    ``config`` may then be None, or a dict of options that must agree with the
    checkpoint's; only ``output_dir``, ``export_dir``, ``opset`` and
    ``tensorboard`` may differ. The run writes to ``output_dir`` if given, else to the run
    directory resumed (never to the directory recorded in the checkpoint).
    Resuming a complete run trains and writes nothing: the result says so
    (``resumed_complete``).
    """
    if config is None:
        config = {}
    checkpoint = None
    if resume is not None:
        if not pathlib.Path(resume).exists():
            raise CheckpointError(f"cannot resume {resume}: no such run directory or checkpoint file "
                                  "(give a run's output directory or one of its checkpoints/step-NNN.ckpt)")
        checkpoint = resolve_checkpoint(resume)
        config = _resumed_config(checkpoint, resume, config)
    elif isinstance(config, dict):
        config = ExperimentConfig.from_dict(config)
    run = _prepare(config, dataset, checkpoint, log)
    if run.result.resumed_complete:
        return run.result
    with contextlib.ExitStack() as held:
        if config.output_dir:
            held.enter_context(run_directory(config.output_dir, resuming=checkpoint is not None,
                                             overwrite=overwrite))
        if config.export_dir:
            same = bool(config.output_dir) and \
                pathlib.Path(config.export_dir).resolve() == pathlib.Path(config.output_dir).resolve()
            held.enter_context(export_directory(config.export_dir, run_identity(config.to_dict()),
                                                resuming=checkpoint is not None, overwrite=overwrite,
                                                locked=same, method=config.method))
        return _run(run, progress, log)


def _resumed_config(checkpoint: Checkpoint, resume, given) -> ExperimentConfig:
    saved = ExperimentConfig.from_dict(checkpoint.config)
    if isinstance(given, ExperimentConfig):
        given = {k: v for k, v in given.to_dict().items() if v != saved.to_dict().get(k)}
    given = dict(given)
    output_dir, export_dir = given.pop("output_dir", None), given.pop("export_dir", None)
    # what a run writes beside its training may change on resume
    tensorboard, opset = given.pop("tensorboard", None), given.pop("opset", None)
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
        # an export folder inside the saved run directory moves with the run; one outside it is
        # a place the checkpoint names, which a received checkpoint could choose: the user says it
        inside = None
        if saved.output_dir and run_dir is not None:
            try:
                inside = pathlib.Path(saved.export_dir).resolve().relative_to(
                    pathlib.Path(saved.output_dir).resolve())
            except ValueError:
                pass
        if inside is None:
            raise ConfigError(f"checkpoint {checkpoint.path} exported its steps to {saved.export_dir}, outside "
                              f"its run directory: give --export-dir {saved.export_dir} to continue exporting "
                              "there (or another folder)")
        export_dir = str(pathlib.Path(output_dir or run_dir) / inside)
    changes = {"output_dir": output_dir, "export_dir": export_dir}
    if tensorboard is not None:
        changes["tensorboard"] = tensorboard
    if opset is not None:
        changes["opset"] = opset
    return saved.replace(**changes)


def restore_method(method, checkpoint: Checkpoint, scenario: ClassIncrementalScenario, dataset: Dataset) -> None:
    """Load a checkpoint's model and method state into ``method`` (built from the
    checkpoint's configuration), after checking what the checkpoint says against
    the scenario that configuration gives: the class order, the step, the head's
    size, and the replay memory and NME classifier against the model and the
    classes seen. A CheckpointError names the checkpoint and what does not fit."""
    where = f"checkpoint {checkpoint.path}"
    order = checkpoint.result.get("class_order")
    if order != scenario.class_order.tolist():
        raise CheckpointError(f"{where}: its class order {_shown(order)} is not the one its configuration gives "
                              f"on {dataset.name} ({_shown(scenario.class_order.tolist())}): a class order must be "
                              f"a permutation of the dataset's {scenario.n_classes} classes, the one the run used")
    step = checkpoint.step
    if not 0 <= step < scenario.n_steps:
        raise CheckpointError(f"{where}: step {step} is out of range: its scenario has {scenario.n_steps} steps "
                              f"(0 to {scenario.n_steps - 1})")
    n_seen = scenario.step(step).n_seen
    try:
        method.model.load_state_dict(checkpoint.params)
        method.load_state_dict(checkpoint.method_state)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: {type(e).__name__}: {e}") from None
    outputs = method.head_outputs(n_seen, scenario)
    if method.model.n_classes != outputs:
        raise CheckpointError(f"{where}: step {step} has seen {n_seen} classes, but its model's head has "
                              f"{method.model.n_classes} outputs ({method.name}'s: {outputs})")
    if method.n_known != n_seen:
        raise CheckpointError(f"{where}: step {step} has seen {n_seen} classes, but the method's state says "
                              f"{method.n_known}")
    seen = checkpoint.result.get("classes_seen")
    expected = [scenario.step(t).n_seen for t in range(step + 1)]
    if seen != expected:
        raise CheckpointError(f"{where}: its results record classes seen {_shown(seen)} for steps 0 to {step}, "
                              f"the scenario gives {expected}")
    _check_memory(method.replay_memory, where, dataset, n_seen)
    nme = method.nme
    if nme is not None and nme.means is not None:
        means, classes = np.asarray(nme.means), np.asarray(nme.classes)
        if means.ndim != 2 or means.shape[1] != method.model.feature_dim or len(classes) != len(means) \
                or classes.dtype.kind not in "iu" or sorted(classes.tolist()) != list(range(n_seen)):
            raise CheckpointError(f"{where}: its NME classifier has means of shape {means.shape} for classes "
                                  f"{_shown(classes.tolist())}; the model has {method.model.feature_dim} features "
                                  f"and has seen classes 0 to {n_seen - 1}")


def _shown(values, limit: int = 12) -> str:
    if not isinstance(values, list):
        return repr(values)
    return repr(values) if len(values) <= limit else repr(values[:limit])[:-1] + ", ...]"


def _check_memory(memory, where: str, dataset: Dataset, n_seen: int) -> None:
    """A replay memory holds raw samples of the dataset (shape and dtype as stored)
    of the classes seen (relabelled 0 .. n_seen - 1; an exemplar memory, of each of them)."""
    if memory is None or not len(memory):
        return
    shape, dtype = tuple(dataset.x_train.shape[1:]), dataset.x_train.dtype
    if tuple(memory.sample_shape) != shape or memory.dtype != dtype:
        raise CheckpointError(f"{where}: its replay memory holds samples of shape {tuple(memory.sample_shape)} "
                              f"and dtype {memory.dtype}; {dataset.name} stores samples of shape {shape} and "
                              f"dtype {dtype}")
    classes = sorted(set(memory.labels().tolist()))
    # an exemplar memory holds every class seen; a reservoir (DER++) a sample of them
    every = hasattr(memory, "class_sets")
    if (every and classes != list(range(n_seen))) or any(not 0 <= c < n_seen for c in classes):
        raise CheckpointError(f"{where}: its replay memory holds classes {_shown(classes)}, the classes seen are "
                              f"0 to {n_seen - 1}")


def method_from_checkpoint(path):
    """``(method, checkpoint, config, dataset)``: the method of a checkpoint with its
    trained model, checked against the scenario its configuration gives
    (:func:`restore_method`), and the dataset normalised as the model was trained."""
    from .checkpoint import load_checkpoint
    checkpoint = load_checkpoint(path)
    try:
        config = ExperimentConfig.from_dict(checkpoint.config)
    except ConfigError as e:
        raise CheckpointError(f"checkpoint {checkpoint.path}: its configuration is invalid: {e}") from None
    dataset = load_dataset(config.dataset, config.data_dir, normalize=config.normalize, download=config.download)
    scenario = ClassIncrementalScenario(dataset, config.initial, config.increment, config.class_order,
                                        seed=config.seed)
    method = build_method(config, dataset.input_shape, scenario if METHODS[config.method].needs_scenario else None)
    restore_method(method, checkpoint, scenario, dataset)
    return method, checkpoint, config, dataset


@dataclass
class _Prepared:
    """A run checked and ready to train: everything built, nothing written."""
    config: ExperimentConfig
    dataset: Dataset
    scenario: ClassIncrementalScenario
    method: object
    result: RunResult
    first: int  #: the first step to learn


def _check_backend(name: str) -> None:
    try:
        require_backend(name)
    except (RuntimeError, ImportError) as e:  # no GPU, no driver, kernels not built
        raise ConfigError(f"backend {name!r} cannot run here: {e}; use --backend cpu") from None


def _prepare(config: ExperimentConfig, dataset, checkpoint, log) -> _Prepared:
    """Every check that can be made before training, in the order a user would
    fix them; the built method, restored from ``checkpoint`` if given."""
    _check_backend(config.backend)
    if config.tensorboard:
        if not config.output_dir:
            raise ConfigError("tensorboard: the events are written into the run's output_dir; give one")
        require_tensorboard()
    if dataset is None:
        dataset = load_dataset(config.dataset, config.data_dir, normalize=config.normalize,
                               download=config.download, log=log)
    elif not config.normalize:
        dataset = dataset.replace(normalization=None)
    if config.train_per_class is not None:
        dataset = dataset.per_class(config.train_per_class, config.seed)
    scenario = ClassIncrementalScenario(dataset, config.initial, config.increment,
                                        config.class_order, seed=config.seed)
    method = build_method(config, dataset.input_shape, scenario)
    method.check_scenario(scenario)  # e.g. a memory budget too small: fails before any training
    if config.export_dir:
        problem = EXPORT_TARGETS[config.export_target].problem(method.model)
        if problem:
            raise ConfigError(f"export_target {config.export_target}: {problem}")
    histories = {name: ClassifierHistory() for name in method.classifiers}
    result = RunResult(config.method, config.to_dict(), scenario.class_order.tolist(), histories,
                       dataset_note=dataset.note)
    first = 0
    if checkpoint is not None:
        restore_method(method, checkpoint, scenario, dataset)
        method.model.rng_state = checkpoint.model_rng
        try:
            result = RunResult.from_dict(checkpoint.result)
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"checkpoint {checkpoint.path}: its results are unreadable "
                                  f"({type(e).__name__}: {e})") from None
        result.config = config.to_dict()
        first = checkpoint.step + 1
        if first >= scenario.n_steps:
            result.resumed_complete = True
            result.trained_method = method
            if log is not None:
                log(f"{checkpoint.path} is the last of the run's {scenario.n_steps} steps: the run is complete, "
                    "nothing to resume; nothing was trained or written")
        elif log is not None:
            log(f"resumed from {checkpoint.path} (step {checkpoint.step} done)")
    result.environment = environment()  # after the core and the kernels are loaded (build_method)
    result.n_steps = scenario.n_steps
    return _Prepared(config, dataset, scenario, method, result, first)


def _run(run: _Prepared, progress, log) -> RunResult:
    config, dataset, scenario, method, result = run.config, run.dataset, run.scenario, run.method, run.result
    histories = result.classifiers
    if dataset.note and log is not None:
        log(f"{dataset.name}: {dataset.note}")
    board = TensorBoardLog(config.output_dir, first_step=len(result.epochs), resuming=run.first > 0) \
        if config.tensorboard else None
    bar = _progress_bar(progress, (scenario.n_steps - run.first) * config.epochs, config.method)
    try:
        for t in range(run.first, scenario.n_steps):
            step = scenario.step(t)
            start = time.perf_counter()
            method.learn(step, dataset, progress=bar,
                         on_epoch=lambda record, t=t: _log_epoch(result, t, record, board))
            result.step_seconds.append(time.perf_counter() - start)
            result.classes_seen.append(step.n_seen)
            groups = [scenario.step_classes(j) for j in range(step.index + 1)]
            with phase("evaluation"):
                x_test = dataset.to_input(step.x_test)
                evaluated = method.evaluate_all(x_test)
                for name, history in histories.items():
                    predicted, scores = evaluated[name]
                    history.record(step.y_test, predicted, groups, scores)
            if log is not None:
                log(f"step {step.index}: classes {scenario.original_labels(step.classes).tolist()}, "
                    + ", ".join(f"{n} {100 * h.acc_seen[-1]:.2f}%" for n, h in histories.items()))
            if board is not None:
                board.step(result, len(result.epochs))
            saved = None
            if config.output_dir:
                with phase("results"):
                    result.write(config.output_dir)
                with phase("checkpoint"):
                    saved = save_checkpoint(checkpoint_path(config.output_dir, t), Checkpoint(
                        t, config.to_dict(), result.to_dict(), method.model.state_dict(),
                        method.model.rng_state, method.state_dict()))
            if config.export_dir:  # after the checkpoint: a failed export loses no training
                with phase("export"):
                    _export(method, scenario, dataset, step, config, saved, log)
    finally:
        if bar is not None:
            bar.close()
        if board is not None:
            board.close(result)
    if config.output_dir:
        with phase("results"):
            plot_accuracy({f"{config.method} ({n})": h.acc_seen for n, h in histories.items()},
                          pathlib.Path(config.output_dir) / "accuracy.png",
                          title=scenario.describe().split(",")[0] + f", {scenario.n_steps} steps",
                          classes_per_step=[len(scenario.step_classes(t)) for t in range(scenario.n_steps)])
    result.trained_method = method
    return result


#: columns of log.csv that are not loss terms (a term of the same name is prefixed with "loss_")
_LOG_FIELDS = ("step", "epoch", "loss", "lr", "seconds", "samples")


def _log_epoch(result: RunResult, step: int, record, board) -> None:
    terms = {(f"loss_{k}" if k in _LOG_FIELDS else k): v for k, v in record.terms.items()}
    row = {"step": step, "epoch": record.epoch, "loss": record.loss, **terms, "lr": record.lr,
           "seconds": record.seconds, "samples": record.samples}
    result.epochs.append(row)
    if board is not None:
        board.epoch(row, len(result.epochs))


def _export(method, scenario, dataset, step, config, saved, log) -> None:
    source = ExportSource.from_method(method, scenario.class_order, dataset, step.index, step.x_test)
    try:
        export_step(source, config.export_dir, config.export_target, log=log, opset=config.opset)
    except Exception as e:  # noqa: BLE001  (any failure: say what is safe)
        from .export import ExportError
        where = (f"; the step is saved in {saved}: export it with 'aidge-incremental export {saved} OUTPUT "
                 f"--target {config.export_target}', continue the run with --resume {config.output_dir}"
                 if saved else "")
        raise ExportError(f"export of step {step.index} failed: {e}{where}") from e



def _progress_bar(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="epoch", leave=False)
