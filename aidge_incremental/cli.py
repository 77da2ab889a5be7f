"""Command line: ``aidge-incremental run | compare | sweep | table | export | predict``.

    aidge-incremental run                      # iCaRL on digits, 5 steps of 2 classes, 200 exemplars
    aidge-incremental run --method lwf --epochs 20
    aidge-incremental compare --methods finetune lwf icarl joint --output-dir runs/cmp
    aidge-incremental run --config experiment.yaml
    aidge-incremental sweep grid.yaml --output-dir runs/sw --jobs 2
    aidge-incremental table runs/sw --format latex
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
from typing import Optional

from .options import ConfigError

# Start-up: a subcommand's options are built, and its modules imported, only when
# that subcommand runs (the methods, training and export modules load Aidge;
# `--help` and `predict` need little of it): tests/test_cli.py checks it.

__all__ = ["main"]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_option(group, option, owners=None) -> None:
    """One command-line option generated from its declaration; ``owners``: for a
    method's option, ``{method: its default there}``."""
    kwargs = {"dest": option.name, "default": None}
    if option.type is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif option.type is dict:
        kwargs["type"], kwargs["metavar"] = _mapping, "'{KEY: VALUE, ...}'"
    else:
        kwargs["type"] = option.type
        if option.choices:
            kwargs["choices"] = option.choices
        if option.sequence:
            kwargs["nargs"] = "+"
    if owners:
        by_default = {}
        for method, default in owners.items():
            by_default.setdefault(repr(default), []).append(method)
        default = "; ".join(f"{', '.join(ms)}: {d}" for d, ms in by_default.items())
        text = f"[{', '.join(owners)}] {option.help} (default {default})"
    else:
        text = f"{option.help} (default {option.default})"
    group.add_argument(_flag(option.name), help=text.replace("%", "%%"), **kwargs)


def _mapping(text: str) -> dict:
    """A YAML/JSON flow mapping given on the command line, e.g. ``{lr: 0.1, epochs: 200}``."""
    from .options import MAX_CONFIG_BYTES
    if len(text) > MAX_CONFIG_BYTES:
        raise argparse.ArgumentTypeError("value too long")
    try:
        import yaml
        value = yaml.safe_load(text)
    except ImportError:
        import json
        try:
            value = json.loads(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"not a JSON mapping: {e}") from None
    except Exception as e:  # yaml.YAMLError and its kin
        raise argparse.ArgumentTypeError(f"not a mapping: {e}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a mapping like '{{lr: 0.1, epochs: 200}}', got {text!r}")
    return value


def method_option_owners() -> dict:
    """``{option name: (declaration, {method: default})}`` over every registered method."""
    from .methods import METHODS
    owners = {}
    for name in sorted(METHODS):
        for option in METHODS[name].declared_options():
            owners.setdefault(option.name, (option, {}))[1][name] = option.default
    return owners


def _add_experiment_options(parser: argparse.ArgumentParser) -> None:
    from .config import COMMON_OPTIONS
    from .training import TRAINING_OPTIONS
    parser.add_argument("--config", help="YAML or JSON file of options (command-line options win)")
    g = parser.add_argument_group("experiment")
    for option in COMMON_OPTIONS + TRAINING_OPTIONS:
        if option.name != "method":
            _add_option(g, option)
    g = parser.add_argument_group("method options (each applies only to the methods in brackets)")
    for option, owners in method_option_owners().values():
        _add_option(g, option, owners)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in the output directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _given_options(args, extra: dict) -> dict:
    """The options the user gave: the config file's, then the command line's."""
    from .config import COMMON_OPTIONS
    from .options import load_config_file
    from .training import TRAINING_OPTIONS
    values = load_config_file(args.config) if args.config else {}
    names = {o.name for o in COMMON_OPTIONS + TRAINING_OPTIONS} | set(method_option_owners())
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    values.update(extra)
    return values


def _data_help() -> str:
    """The epilog of run --help and compare --help."""
    from .datasets.npz import NPZ_LAYOUT
    return NPZ_LAYOUT + """

--download: mnist, fashion-mnist, cifar10, cifar100 from their official URLs into --data-dir (or
  $AIDGE_INCREMENTAL_DATA/DATASET, else ~/.cache/aidge_incremental/DATASET), each file checked
  against its pinned SHA-256 (pip install pooch: the download extra)"""


#: each subcommand and its one-line help (its options are built when it is asked for)
COMMANDS = {
    "run": "run one method (default: iCaRL on digits)",
    "compare": "several methods on the same scenario and seed",
    "sweep": "a grid of runs (methods x protocols x seeds), restartable, on this machine or a Ray cluster "
             "(docs/sweeps.md)",
    "table": "the paper table of sweeps or run directories: rows per method or variant, columns per protocol, "
             "mean ± sd over seeds",
    "export": "export a checkpoint's model to ONNX or embedded C++",
    "predict": "predict classes with an exported model or a checkpoint",
}


def _parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The command line's parser, with the options of ``command`` (of every
    subcommand when None, of none when it names none)."""
    parser = argparse.ArgumentParser(prog="aidge-incremental",
                                     description="Class-incremental learning with Eclipse Aidge.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in COMMANDS.items():
        wanted = command is None or command == name
        kwargs = {"epilog": _data_help(), "formatter_class": argparse.RawDescriptionHelpFormatter} \
            if wanted and name in ("run", "compare") else {}
        subparser = sub.add_parser(name, help=text, **kwargs)
        if wanted:
            _SUBCOMMAND_OPTIONS[name](subparser)
    return parser


def _run_options(run_p) -> None:
    from .methods import METHODS
    run_p.add_argument("--method", choices=sorted(METHODS), help="default icarl")
    run_p.add_argument("--resume", metavar="DIR_OR_CKPT",
                       help="continue a run after its last completed step (a run directory or a .ckpt); "
                            "results go to that run directory (or --output-dir)")
    _add_experiment_options(run_p)


def _compare_options(cmp_p) -> None:
    from .methods import METHODS
    cmp_p.add_argument("--methods", nargs="+", choices=sorted(METHODS),
                       default=["finetune", "lwf", "icarl", "joint"])
    cmp_p.add_argument("--jobs", type=int, default=1,
                       help="methods run at once, as separate processes (default 1: in this process)")
    _add_experiment_options(cmp_p)


def _export_options(exp_p) -> None:
    from .export.targets import EXPORT_TARGETS
    exp_p.add_argument("checkpoint", nargs="?", help="a step-NNN.ckpt file")
    exp_p.add_argument("output", nargs="?", help="onnx: the .onnx file to write; cpp: the folder to write")
    exp_p.add_argument("--rebuild", metavar="FOLDER",
                       help="rebuild the binaries of a C++ export folder from its (digest-checked) sources, here, "
                            "so that predict runs them (instead of a checkpoint and an output)")
    exp_p.add_argument("--target", choices=EXPORT_TARGETS, default="onnx",
                       help="; ".join(f"{name}: {EXPORT_TARGETS[name].help}" for name in EXPORT_TARGETS)
                       + " (default onnx)")
    exp_p.add_argument("--nme", action="store_true", help="onnx: export the NME classifier alone (methods that "
                       "have one)")
    exp_p.add_argument("--opset", type=int, help="onnx: the opset to write (default: the lowest that holds every "
                       "operator of the model)")


def _predict_options(pred_p) -> None:
    pred_p.add_argument("model", help="an .onnx file or a C++ export folder written by export, or a .ckpt")
    pred_p.add_argument("--input", help=".npy file of raw samples (as stored in the dataset)")
    pred_p.add_argument("--dataset", default="digits", help="else: samples of this dataset's test split")
    pred_p.add_argument("--data-dir")
    pred_p.add_argument("--download", action="store_true", help="fetch the dataset's official files first "
                        "(mnist, fashion-mnist, cifar10, cifar100; checked against pinned SHA-256)")
    pred_p.add_argument("--classes", type=int, nargs="+", help="only samples of these (original) classes")
    pred_p.add_argument("--count", type=int, default=10, help="how many test samples (>= 1, default 10)")
    pred_p.add_argument("--nme", action="store_true",
                        help="with a .ckpt or a C++ folder: use the NME classifier")
    pred_p.add_argument("--trust-binary", action="store_true",
                        help="run a C++ export's binary even though it was not built here by aidge_incremental "
                             "(a binary runs with your rights: only for a folder whose origin you trust)")


#: what the CLI reports as a known error (exit status 2, one line): bad options or
#: files, missing data, a refused combination, a failed export, a diverged training
KNOWN_ERRORS = (ValueError, OSError, RuntimeError, FloatingPointError, ImportError)
#: set to 1 to see the traceback behind an error message
DEBUG_ENV = "AIDGE_INCREMENTAL_DEBUG"


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines() or [type(error).__name__]
    more = f" (+{len(lines) - 1} lines: {DEBUG_ENV}=1 shows them)" if len(lines) > 1 else ""
    return lines[0] + more


def main(argv=None) -> int:
    """The command line; returns the exit status: 0 done, 2 a known error (one
    line on stderr naming the problem and the fix), 1 an unexpected error (one
    line; ``AIDGE_INCREMENTAL_DEBUG=1`` shows its traceback), 130 interrupted."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    # a usage error exits 2 with argparse's one line
    args = _parser(command if command in COMMANDS else "").parse_args(argv)
    commands = {"run": _run_command, "compare": _compare_command, "sweep": _sweep_command,
                "table": _table_command, "export": _export_command, "predict": _predict_command}
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        print("aidge-incremental: interrupted (a run continues from its last checkpoint with --resume)",
              file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001  (no traceback from the command line)
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        if isinstance(e, KNOWN_ERRORS):
            print(f"aidge-incremental: error: {_one_line(e)}", file=sys.stderr)
            return 2
        print(f"aidge-incremental: internal error: {type(e).__name__}: {_one_line(e)} (a bug: please report "
              f"it with the command; {DEBUG_ENV}=1 shows the traceback)", file=sys.stderr)
        return 1


def _progress(args) -> bool:
    return not args.no_progress and sys.stderr.isatty()


def _run_command(args) -> int:
    from .config import ExperimentConfig
    from .experiment import run_experiment
    from .rundir import run_dir_of
    given = _given_options(args, {"method": args.method} if args.method else {})
    if args.resume:
        if args.overwrite:
            raise ConfigError("--overwrite and --resume contradict each other")
        if not pathlib.Path(args.resume).exists():
            raise ConfigError(f"--resume {args.resume}: no such run directory or checkpoint file (give a run's "
                              "output directory, or one of its checkpoints/step-NNN.ckpt)")
        if run_dir_of(args.resume) is None and not given.get("output_dir"):
            raise ConfigError(f"{args.resume} is a checkpoint outside a run's checkpoints/ folder: give "
                              "--output-dir for the resumed run's results")
        result = run_experiment(given, progress=_progress(args), log=print, resume=args.resume)
        output_dir = result.config["output_dir"]
    else:
        config = ExperimentConfig.from_dict(given)
        if config.output_dir is None:
            config = config.replace(output_dir=f"runs/{config.method}-{config.dataset}-seed{config.seed}")
        result = run_experiment(config, progress=_progress(args), log=print, overwrite=args.overwrite)
        output_dir = config.output_dir
    print(result.table())
    if result.resumed_complete:
        print(f"the run was already complete: nothing was trained, its results{f' in {output_dir}/' if output_dir else ''} "
              "are unchanged")
    elif output_dir:
        print(f"results written to {output_dir}/ (results.json, results.csv, log.csv, accuracy_matrix.csv, "
              "confusion.csv, matrix.png, accuracy.png)")
    return 0


def _compare_command(args) -> int:
    from .sweep import compare
    given = _given_options(args, {})
    if "method" in given:
        print(f"note: compare runs --methods {' '.join(args.methods)}; the config's method "
              f"{given.pop('method')!r} is ignored", file=sys.stderr)
    if given.get("output_dir") is None:
        given["output_dir"] = f"runs/compare-{given.get('dataset', 'digits')}-seed{given.get('seed', 0)}"
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    results = compare(args.methods, given, progress=_progress(args) and args.jobs == 1, overwrite=args.overwrite,
                      jobs=args.jobs)
    print(_comparison_table(results))
    print(f"results written to {given['output_dir']}/ (one run directory per method, comparison.png, "
          "comparison.csv)")
    return 0


def _method_from_checkpoint(path):
    """The method (with its trained model) saved in a checkpoint, checked against its
    scenario, the checkpoint, its config and its dataset (normalised as the model was
    trained): experiment.method_from_checkpoint."""
    from .experiment import method_from_checkpoint
    return method_from_checkpoint(path)


def _must_exist(path, what: str) -> pathlib.Path:
    path = pathlib.Path(path)
    if not path.exists():
        raise ConfigError(f"{path} does not exist: {what}")
    return path


def _export_command(args) -> int:
    import numpy as np

    from .export.targets import EXPORT_TARGETS, ExportSource
    if args.rebuild:
        if args.checkpoint or args.output:
            raise ConfigError("--rebuild FOLDER takes no checkpoint and no output: it rebuilds FOLDER in place")
        from .export.step import rebuild_export
        built = rebuild_export(_must_exist(args.rebuild, "give a C++ export folder"), log=print)
        print(f"rebuilt {', '.join(str(p) for p in built)}: predict runs them")
        return 0
    if not args.checkpoint or not args.output:
        raise ConfigError("export takes a checkpoint and an output (or --rebuild FOLDER)")
    target = EXPORT_TARGETS[args.target]
    _must_exist(args.checkpoint, "give a checkpoint, e.g. runs/NAME/checkpoints/step-004.ckpt")
    method, ckpt, config, dataset = _method_from_checkpoint(args.checkpoint)
    if dataset.normalization is not None and args.target == "cpp-int8":
        raise ConfigError(f"--target cpp-int8 takes inputs scaled to [0, 1] and cannot carry {config.dataset}'s "
                          "per-channel normalisation yet: use --target cpp (float32, the normalisation folded in)")
    problem = target.problem(method.model)
    if problem:
        raise ConfigError(f"--target {args.target}: {problem}")
    if args.opset is not None and args.target != "onnx":
        raise ConfigError(f"--opset applies to --target onnx, not {args.target}")
    order = ckpt.result["class_order"]
    seen = set(order[:method.model.n_classes])
    check = dataset.x_test[np.isin(dataset.y_test, list(seen))]
    source = ExportSource.from_method(method, order, dataset, ckpt.step, check)
    if target.needs_memory and source.memory is None:
        raise ConfigError(f"--target {args.target} is calibrated on the replay memory and the "
                          f"{method.name} checkpoint holds none: use --target cpp")
    paths = target.write(source, args.output, log=print, nme_only=args.nme,
                         **({} if args.opset is None else {"opset": args.opset}))
    print(f"wrote {', '.join(str(p) for p in paths)} (step {ckpt.step}, {method.model.n_classes} classes)")
    return 0


def _predict_command(args) -> int:
    import numpy as np

    from .export.targets import predict_export, read_samples
    from .datasets import load_dataset
    if args.count < 1:
        raise ConfigError(f"--count must be at least 1, got {args.count}")
    if args.input:
        x_raw, y_true = read_samples(_must_exist(args.input, "give a .npy file of samples")), None
    else:
        dataset = load_dataset(args.dataset, args.data_dir, download=args.download, log=print)
        x_raw, y_true = dataset.x_test, dataset.y_test
        if args.classes:
            absent = sorted(set(args.classes) - set(np.unique(y_true).tolist()))
            if absent:
                raise ValueError(f"no test sample of class(es) {absent} in {dataset.name}; "
                                 f"its classes are {np.unique(y_true).tolist()}")
            keep = np.isin(y_true, args.classes)
            x_raw, y_true = x_raw[keep], y_true[keep]
        x_raw, y_true = x_raw[:args.count], y_true[:args.count]
    model = _must_exist(args.model, "give an .onnx file or a C++ export folder written by "
                                    "'aidge-incremental export', or a .ckpt")
    if model.is_dir() or str(model).endswith(".onnx"):
        predicted = predict_export(model, x_raw, args.nme, trust_binary=args.trust_binary,
                                   log=lambda note: print(f"aidge-incremental: note: {note}", file=sys.stderr))
    else:
        method, ckpt, config, dataset = _method_from_checkpoint(model)
        x_raw = np.asarray(x_raw)
        if x_raw.ndim == len(method.model.input_shape):  # [N, H, W] -> [N, 1, H, W]
            x_raw = x_raw[:, None]
        x = dataset.to_input(x_raw)
        classifier = "nme" if args.nme else "head"
        predicted = np.asarray(ckpt.result["class_order"])[method.predict(x, classifier)]
    print("predicted:", " ".join(str(int(c)) for c in predicted))
    if y_true is not None:
        print("true:     ", " ".join(str(int(c)) for c in y_true))
        print(f"accuracy: {100 * float(np.mean(predicted == y_true)):.1f}% on {len(y_true)} samples")
    return 0


def _sweep_options(sw_p) -> None:
    from .sweep import EXECUTORS
    sw_p.add_argument("grid", help="grid file (YAML or JSON): base, grid, variants")
    sw_p.add_argument("--output-dir", help="where the cells' run directories go (default sweeps/<grid file name>)")
    sw_p.add_argument("--executor", choices=EXECUTORS.names(), default="local",
                      help="local: processes on this machine (default); ray: a Ray task per cell; "
                           "inline: this process, one cell after another")
    sw_p.add_argument("--jobs", type=int, help="cells run at once (local: default 1; ray: default all)")
    sw_p.add_argument("--threads", type=int, help="OpenMP/BLAS threads per cell (local: default cores // jobs; "
                      "ray: the task's num_cpus, default 1)")
    sw_p.add_argument("--retries", type=int, default=1, help="times a failed cell is tried again (default 1)")
    sw_p.add_argument("--address", help="ray: the address of an existing Ray cluster (default: start one here)")
    sw_p.add_argument("--dry-run", action="store_true", help="list the cells and what is already done; run none")
    sw_p.add_argument("--overwrite", action="store_true", help="run every cell again from its beginning, "
                      "replacing what its directory holds")


def _table_options(tb_p) -> None:
    tb_p.add_argument("dirs", nargs="+", metavar="DIR",
                      help="a sweep's folder, a run directory, or a folder of run directories")
    tb_p.add_argument("--format", choices=["markdown", "csv", "latex"], default="markdown")
    tb_p.add_argument("--output", help="write the table to this file (default: print it)")
    tb_p.add_argument("--plot", metavar="DIR", help="also write an accuracy-curve PNG per protocol (mean and "
                      "a band of one sd over seeds) into DIR")


_SUBCOMMAND_OPTIONS = {"run": _run_options, "compare": _compare_options, "sweep": _sweep_options,
                       "table": _table_options, "export": _export_options, "predict": _predict_options}


def _sweep_command(args) -> int:
    import signal
    from .sweep import Grid, run_sweep
    from .table import ResultTable, TableError, collect_runs
    output_dir = args.output_dir or str(pathlib.Path("sweeps") / pathlib.Path(args.grid).stem)

    def terminate(signum, frame):  # Slurm's scancel and timeouts send SIGTERM: stop the cells as Ctrl-C does
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        grid = Grid.from_file(args.grid)
        report = run_sweep(grid, output_dir, executor=args.executor, jobs=args.jobs, threads=args.threads,
                           retries=args.retries, address=args.address, overwrite=args.overwrite,
                           dry_run=args.dry_run, log=lambda text: print(text, flush=True))
    except KeyboardInterrupt:
        print(f"aidge-incremental: sweep interrupted; run the same command again to resume {output_dir}",
              file=sys.stderr)
        return 130
    except (ValueError, OSError) as e:  # SweepError, ConfigError, RunDirectoryError
        print(f"aidge-incremental: error: {e}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.dry_run:
        width = max(len(c.name) for c in report.cells)
        for cell in report.cells:
            state, detail = report.states[cell.name]
            label = {"done": "done", "resume": "resume", "new": "to run"}[state]
            print(f"{cell.name:<{width}}  {label:<7} {detail}")
        counts = [s for s, _ in report.states.values()]
        print(f"{len(report.cells)} cell(s) in {output_dir}: {counts.count('done')} done, "
              f"{counts.count('resume')} to resume, {counts.count('new')} to run (dry run: nothing ran)")
        return 0
    print(report.summary())
    if report.failed:
        print("aidge-incremental: " + report.failure_text(), file=sys.stderr)
        return 1
    try:
        print(ResultTable(collect_runs([output_dir])).markdown())
    except TableError as e:
        print(f"aidge-incremental: no table: {e}", file=sys.stderr)
    print(f"cells in {output_dir}/ (sweep.json maps each to its configuration); "
          f"aidge-incremental table {output_dir} --format latex|csv")
    return 0


def _table_command(args) -> int:
    from .files import atomic_write
    from .table import ResultTable, collect_runs
    try:
        missing = []
        table = ResultTable(collect_runs(args.dirs, missing), missing)
        text = table.format(args.format)
        if args.output:
            atomic_write(pathlib.Path(args.output), text.encode())
        else:
            print(text, end="")
        if args.plot:
            for path in table.plot(args.plot):
                print(f"wrote {path}", file=sys.stderr)
        if missing:
            print(f"aidge-incremental: note: {len(missing)} unfinished run(s) left out: {', '.join(missing[:4])}"
                  f"{f' and {len(missing) - 4} more' if len(missing) > 4 else ''}",
                  file=sys.stderr)
    except (ValueError, OSError) as e:
        print(f"aidge-incremental: error: {e}", file=sys.stderr)
        return 2
    return 0


def _comparison_table(results) -> str:
    lines = [f"{'method':<16} {'avg incremental':>16} {'last step':>10} {'forgetting':>11} {'BWT':>8}"]
    for name, result in results.items():
        for clf, m in result.metrics().items():
            label = name if len(result.classifiers) == 1 else f"{name} ({clf})"
            lines.append(f"{label:<16} {100 * m['average_incremental_accuracy']:15.2f}% "
                         f"{100 * m['last_accuracy']:9.2f}% {100 * m['average_forgetting']:10.2f}% "
                         f"{100 * m['backward_transfer']:+7.2f}%")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
