"""Command line: ``aidge-incremental run | compare``.

    aidge-incremental run                      # iCaRL on digits, 5 steps of 2 classes, 200 exemplars
    aidge-incremental run --method lwf --epochs 20
    aidge-incremental compare --methods finetune lwf icarl joint --output-dir runs/cmp
    aidge-incremental run --config experiment.yaml
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

from .config import COMMON_OPTIONS, ExperimentConfig
from .experiment import compare, run_experiment
from .export.targets import EXPORT_TARGETS, ExportSource, predict_export
from .methods import METHODS
from .options import ConfigError, load_config_file
from .rundir import run_dir_of
from .training import TRAINING_OPTIONS

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
    owners = {}
    for name in sorted(METHODS):
        for option in METHODS[name].declared_options():
            owners.setdefault(option.name, (option, {}))[1][name] = option.default
    return owners


def _add_experiment_options(parser: argparse.ArgumentParser) -> None:
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
    values = load_config_file(args.config) if args.config else {}
    names = {o.name for o in COMMON_OPTIONS + TRAINING_OPTIONS} | set(method_option_owners())
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    values.update(extra)
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="aidge-incremental",
                                     description="Class-incremental learning with Eclipse Aidge.")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run one method (default: iCaRL on digits)")
    run_p.add_argument("--method", choices=sorted(METHODS), help="default icarl")
    run_p.add_argument("--resume", metavar="DIR_OR_CKPT",
                       help="continue a run after its last completed step (a run directory or a .ckpt); "
                            "results go to that run directory (or --output-dir)")
    _add_experiment_options(run_p)
    cmp_p = sub.add_parser("compare", help="several methods on the same scenario and seed")
    cmp_p.add_argument("--methods", nargs="+", choices=sorted(METHODS),
                       default=["finetune", "lwf", "icarl", "joint"])
    _add_experiment_options(cmp_p)
    exp_p = sub.add_parser("export", help="export a checkpoint's model to ONNX or embedded C++")
    exp_p.add_argument("checkpoint", help="a step-NNN.ckpt file")
    exp_p.add_argument("output", help="onnx: the .onnx file to write; cpp: the folder to write")
    exp_p.add_argument("--target", choices=EXPORT_TARGETS, default="onnx",
                       help="; ".join(f"{name}: {EXPORT_TARGETS[name].help}" for name in EXPORT_TARGETS)
                       + " (default onnx)")
    exp_p.add_argument("--nme", action="store_true", help="onnx: export the NME classifier alone (methods that "
                       "have one)")
    pred_p = sub.add_parser("predict", help="predict classes with an exported model or a checkpoint")
    pred_p.add_argument("model", help="an .onnx file or a C++ export folder written by export, or a .ckpt")
    pred_p.add_argument("--input", help=".npy file of raw samples (as stored in the dataset)")
    pred_p.add_argument("--dataset", default="digits", help="else: samples of this dataset's test split")
    pred_p.add_argument("--data-dir")
    pred_p.add_argument("--classes", type=int, nargs="+", help="only samples of these (original) classes")
    pred_p.add_argument("--count", type=int, default=10, help="how many test samples (>= 1, default 10)")
    pred_p.add_argument("--nme", action="store_true",
                        help="with a .ckpt or a C++ folder: use the NME classifier")
    args = parser.parse_args(argv)
    if args.command == "export":
        return _export_command(args)
    if args.command == "predict":
        return _predict_command(args)

    progress = not args.no_progress and sys.stderr.isatty()
    try:
        if args.command == "run":
            given = _given_options(args, {"method": args.method} if args.method else {})
            if args.resume:
                if args.overwrite:
                    raise ConfigError("--overwrite and --resume contradict each other")
                if run_dir_of(args.resume) is None and not given.get("output_dir"):
                    raise ConfigError(f"{args.resume} is not in a run's checkpoints/ folder: give --output-dir "
                                      "for the resumed run's results")
                result = run_experiment(given, progress=progress, log=print, resume=args.resume)
                output_dir = result.config["output_dir"]
            else:
                config = ExperimentConfig.from_dict(given)
                if config.output_dir is None:
                    config = config.replace(output_dir=f"runs/{config.method}-{config.dataset}-seed{config.seed}")
                result = run_experiment(config, progress=progress, log=print, overwrite=args.overwrite)
                output_dir = config.output_dir
            print(result.table())
            if output_dir:
                print(f"results written to {output_dir}/ (results.json, results.csv, accuracy.png)")
        else:
            given = _given_options(args, {})
            if "method" in given:
                raise ConfigError("compare takes --methods, not a method option 'method'")
            if given.get("output_dir") is None:
                given["output_dir"] = f"runs/compare-{given.get('dataset', 'digits')}-seed{given.get('seed', 0)}"
            results = compare(args.methods, given, progress=progress, overwrite=args.overwrite)
            print(_comparison_table(results))
            print(f"results written to {given['output_dir']}/ (one folder per method, comparison.png)")
    except (ValueError, OSError) as e:  # ConfigError, RunDirectoryError, CheckpointError, DatasetError
        print(f"aidge-incremental: error: {e}", file=sys.stderr)
        return 2
    return 0


def _method_from_checkpoint(path):
    """The method (with its trained model) saved in a checkpoint, the checkpoint,
    its config and its dataset (normalised as the model was trained)."""
    from .checkpoint import load_checkpoint
    from .datasets import load_dataset
    from .experiment import build_method
    ckpt = load_checkpoint(path)
    config = ExperimentConfig.from_dict(ckpt.config)
    dataset = load_dataset(config.dataset, config.data_dir, normalize=config.normalize)
    method = build_method(config, dataset.input_shape)
    method.model.load_state_dict(ckpt.params)
    method.load_state_dict(ckpt.method_state)
    return method, ckpt, config, dataset


def _export_command(args) -> int:
    from .checkpoint import CheckpointError
    from .export import ExportError
    try:
        target = EXPORT_TARGETS[args.target]
        method, ckpt, config, dataset = _method_from_checkpoint(args.checkpoint)
        order = ckpt.result["class_order"]
        seen = set(order[:method.model.n_classes])
        check = dataset.x_test[np.isin(dataset.y_test, list(seen))]
        source = ExportSource.from_method(method, order, dataset, ckpt.step, check)
        if target.needs_memory and source.memory is None:
            raise ValueError(f"--target {args.target} is calibrated on the replay memory and the "
                             f"{method.name} checkpoint holds none: use --target cpp")
        paths = target.write(source, args.output, log=print, nme_only=args.nme)
    except (CheckpointError, ExportError, ValueError, OSError) as e:
        print(f"aidge-incremental: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(str(p) for p in paths)} (step {ckpt.step}, {method.model.n_classes} classes)")
    return 0


def _predict_command(args) -> int:
    from .checkpoint import CheckpointError
    from .datasets import load_dataset
    from .export import ExportError
    try:
        if args.count < 1:
            raise ValueError(f"--count must be at least 1, got {args.count}")
        if args.input:
            x_raw, y_true = np.load(args.input, allow_pickle=False), None
            if x_raw.ndim == 0 or len(x_raw) == 0:
                raise ValueError(f"{args.input} holds no sample")
        else:
            dataset = load_dataset(args.dataset, args.data_dir)
            x_raw, y_true = dataset.x_test, dataset.y_test
            if args.classes:
                absent = sorted(set(args.classes) - set(np.unique(y_true).tolist()))
                if absent:
                    raise ValueError(f"no test sample of class(es) {absent} in {dataset.name}; "
                                     f"its classes are {np.unique(y_true).tolist()}")
                keep = np.isin(y_true, args.classes)
                x_raw, y_true = x_raw[keep], y_true[keep]
            x_raw, y_true = x_raw[:args.count], y_true[:args.count]
        model = pathlib.Path(args.model)
        if model.is_dir() or str(model).endswith(".onnx"):
            predicted = predict_export(model, x_raw, args.nme)
        else:
            method, ckpt, config, dataset = _method_from_checkpoint(model)
            x_raw = np.asarray(x_raw)
            if x_raw.ndim == len(method.model.input_shape):  # [N, H, W] -> [N, 1, H, W]
                x_raw = x_raw[:, None]
            x = dataset.to_input(x_raw)
            classifier = "nme" if args.nme else "head"
            predicted = np.asarray(ckpt.result["class_order"])[method.predict(x, classifier)]
    except (CheckpointError, ExportError, ValueError, OSError) as e:
        print(f"aidge-incremental: error: {e}", file=sys.stderr)
        return 2
    print("predicted:", " ".join(str(int(c)) for c in predicted))
    if y_true is not None:
        print("true:     ", " ".join(str(int(c)) for c in y_true))
        print(f"accuracy: {100 * float(np.mean(predicted == y_true)):.1f}% on {len(y_true)} samples")
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
