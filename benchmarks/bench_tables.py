"""The results tables of docs/results.md: a grid file of runs (the format of
``aidge-incremental sweep``: ``base``, ``grid``, ``variants``), each run in its own
directory with its results.json, then one table — mean ± sd over seeds of average
incremental accuracy, last accuracy and forgetting, per classifier — and the
orderings the papers claim, each checked on the means.

    OMP_NUM_THREADS=2 python benchmarks/bench_tables.py examples/sweeps/fashion_mnist_lenet.yaml \\
        --output-dir runs/fashion-lenet
    python benchmarks/bench_tables.py examples/sweeps/fashion_mnist_lenet.yaml --output-dir runs/fashion-lenet \\
        --table-only                       # the table of what is done
    python benchmarks/bench_tables.py GRID --output-dir OUT --seeds 0 --set epochs=1   # a short estimate

A run whose directory already holds its results.json (same configuration) is not
run again, so the command continues an interrupted table. Each run records its
environment (BLAS kernel, threads, versions) in its results.json; the table
prints the wall time per run. Once ``aidge-incremental sweep`` and ``table`` are on
main, ``aidge-incremental sweep GRID --output-dir OUT`` then ``aidge-incremental
table OUT`` give the same runs and table. Exits cleanly (status 0, a message)
without the data.
"""
from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import sys
import time

import numpy as np

from aidge_incremental.config import ExperimentConfig
from aidge_incremental.experiment import run_experiment
from aidge_incremental.options import load_config_file

#: the orderings claimed by the papers: (better, worse, why); a row missing from the grid is skipped
ORDERINGS = (
    ("joint", "icarl", "upper bound: every class trained jointly"),
    ("icarl", "lwf", "iCaRL (Rebuffi et al. 2017, Fig. 2): exemplars + distillation > LwF"),
    ("lwf", "finetune", "LwF (Li & Hoiem 2016): distillation keeps the old classes"),
    ("lwm", "lwf", "LwM (Dhar et al. 2019, Tables 1-2): without memory, LwM >= LwF"),
    ("mixup", "icarl", "Lee et al. 2023: blending replay >= its base"),
    ("attentive", "mixup", "Lee et al. 2023: attentive replay >= random mixup"),
    ("icarl", "icarl-lambda0", "ablation: iCaRL's distillation matters"),
    ("icarl", "icarl-random", "ablation: herding matters (iCaRL Sec. 4)"),
    ("lwm", "lwm-gamma0", "ablation: LwM's attention distillation matters"),
    ("mixup", "mixup-alpha0", "ablation: blending matters"),
    ("attentive", "attentive-untrained", "ablation: the trained scorer matters"),
    ("attentive", "attentive-permuted", "control: weights that follow drift beat the same weights shuffled"),
)


def cells(grid: dict, grid_path: pathlib.Path, seeds=None, overrides=None):
    """(row, name, configuration) of every run of the grid, as the sweep names them."""
    base = grid.get("base") or {}
    if isinstance(base, str):
        base = load_config_file(pathlib.Path(base))
    base = {**base, **(overrides or {})}
    axes = dict(grid.get("grid") or {})
    if seeds is not None:
        axes["seed"] = list(seeds)
    plans = []
    seed_values = axes.get("seed", [base.get("seed", 0)])
    if "method" in axes:
        others = {k: v for k, v in axes.items() if k != "method"}
        for method in axes["method"]:
            for combo in itertools.product(*others.values()):
                named = dict(zip(others, combo))
                plans.append((method, named, {"method": method, **named}))
    for variant, fixed in (grid.get("variants") or {}).items():
        for seed in seed_values:
            plans.append((variant, {"seed": seed}, {**fixed, "seed": seed}))
    out = []
    for row, named, settings in plans:
        name = "-".join([row] + [f"{k}={v}" for k, v in named.items()])
        out.append((row, name, {**base, **settings}))
    return out


def run_cells(cells_, output: pathlib.Path, table_only: bool):
    results = {}
    for row, name, values in cells_:
        folder = output / name
        config = ExperimentConfig.from_dict({**values, "output_dir": str(folder)})
        saved = folder / "results.json"
        if saved.exists():
            data = json.loads(saved.read_text())
            if data["config"] == config.to_dict():
                results.setdefault(row, []).append(data)
                continue
            raise SystemExit(f"{folder} holds a run of another configuration: remove it or use another --output-dir")
        if table_only:
            continue
        start, cpu = time.perf_counter(), time.process_time()
        print(f"{name} ...", end=" ", flush=True)
        result = run_experiment(config, overwrite=False)
        print(f"{time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu:.0f} s CPU (all threads), "
              + ", ".join(f"{c} last {100 * m['last_accuracy']:.2f}%" for c, m in result.metrics().items()),
              flush=True)
        results.setdefault(row, []).append(json.loads(saved.read_text()))
    return results


def _stats(runs, classifier, metric):
    values = [100 * r["classifiers"][classifier]["metrics"][metric] for r in runs]
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, len(values)


def table(results) -> str:
    lines = ["| row | classifier | runs | average incremental | last | forgetting | wall s/run |",
             "|---|---|---|---|---|---|---|"]
    for row, runs in results.items():
        wall = np.mean([sum(r["step_seconds"]) for r in runs])
        for classifier in runs[0]["classifiers"]:
            cells_ = [_stats(runs, classifier, m) for m in
                      ("average_incremental_accuracy", "last_accuracy", "average_forgetting")]
            lines.append(f"| {row} | {classifier} | {cells_[0][2]} | "
                         + " | ".join(f"{m:.2f} ± {s:.2f}" for m, s, _ in cells_) + f" | {wall:.0f} |")
    return "\n".join(lines)


def orderings(results) -> str:
    """Each claimed ordering on the rows' own classifier (the first: NME for iCaRL and its
    blends), by average incremental and last accuracy."""
    lines = []
    for better, worse, why in ORDERINGS:
        if better not in results or worse not in results:
            continue
        verdicts = []
        for metric in ("average_incremental_accuracy", "last_accuracy"):
            b = _stats(results[better], next(iter(results[better][0]["classifiers"])), metric)
            w = _stats(results[worse], next(iter(results[worse][0]["classifiers"])), metric)
            verdicts.append(f"{metric.split('_')[0][:3]} {b[0]:.2f} vs {w[0]:.2f} "
                            f"({'holds' if b[0] >= w[0] else 'FAILS'})")
        lines.append(f"{better} >= {worse}: " + "; ".join(verdicts) + f"   [{why}]")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", help="grid file (base, grid, variants)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", help="replace the grid's seeds (e.g. 0 for an estimate)")
    parser.add_argument("--rows", nargs="+", help="only these rows (methods or variants)")
    parser.add_argument("--set", nargs="+", default=[], metavar="OPTION=VALUE",
                        help="override base options (values as YAML), e.g. epochs=1 train_per_class=100")
    parser.add_argument("--table-only", action="store_true", help="print the table of the runs already done")
    args = parser.parse_args(argv)
    import yaml
    grid_path = pathlib.Path(args.grid)
    grid = load_config_file(grid_path)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    base = grid.get("base") or {}
    if isinstance(base, str):
        base = load_config_file(pathlib.Path(base))
    data_dir = overrides.get("data_dir", base.get("data_dir"))
    if data_dir is not None and not pathlib.Path(data_dir).is_dir():
        print(f"skipped: no data folder {data_dir} (set data_dir=PATH)")
        return 0
    todo = [c for c in cells(grid, grid_path, args.seeds, overrides) if not args.rows or c[0] in args.rows]
    output = pathlib.Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    results = run_cells(todo, output, args.table_only)
    if not results:
        print("no run done yet")
        return 0
    print(table(results))
    print()
    print(orderings(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
