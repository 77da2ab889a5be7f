"""What a sweep costs beyond its cells: the sweep's wall time against the sum of
its cells' times, and the driver's own CPU time, for the local executor with 1
and 2 jobs and for Ray, beside the same cells run one after another with
``aidge-incremental run`` (the shell loop a sweep replaces).

    python benchmarks/bench_sweep.py [--epochs 5] [--rounds 1] [--no-ray]
    python benchmarks/bench_sweep.py --same-cell 3   # one cell's CPU time: plain run vs the sweep's process

Every cell runs with one OpenMP/BLAS thread (``--threads 1``), so that every
way does the same work; rounds are interleaved (loop, jobs 1, jobs 2, Ray).
On a loaded machine read the CPU figures: a cell's CPU time does not depend on
what else runs, its wall time does.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from aidge_incremental.sweep import Grid, _reap, _spawn, run_sweep  # noqa: E402

GRID = {"base": {"dataset": "digits", "hidden": [64], "memory": 100},
        "grid": {"method": ["finetune", "icarl"], "seed": [0, 1]}}


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONPATH": str(pathlib.Path(__file__).resolve().parent.parent)}


def process_cpu(command) -> tuple:
    """(wall, CPU) of a command run to its end; it must succeed."""
    t = time.perf_counter()
    p = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    assert p.returncode == 0, f"{command} failed"
    return time.perf_counter() - t, usage.ru_utime + usage.ru_stime


def plain_run(cell) -> tuple:
    cell.directory.mkdir(parents=True)
    (cell.directory / "cell.json").write_text(json.dumps(cell.config.to_dict()))
    return process_cpu([sys.executable, "-m", "aidge_incremental.cli", "run", "--config",
                        str(cell.directory / "cell.json"), "--no-progress"])


def shell_loop(grid: Grid, folder: pathlib.Path):
    """Each cell as ``aidge-incremental run --config``, one after another: (wall, cells' wall, cells' CPU)."""
    started, walls, cpus = time.perf_counter(), [], []
    for cell in grid.cells(folder):
        wall, cpu = plain_run(cell)
        walls.append(wall)
        cpus.append(cpu)
    return time.perf_counter() - started, sum(walls), sum(cpus), 0.0


def same_cell(grid: Grid, repeats: int, folder: pathlib.Path) -> None:
    """One cell's CPU time as a plain ``run`` process and as the sweep's process
    (interleaved), and what starting Python, importing the package and loading
    the digits cost alone."""
    figures = {"plain `aidge-incremental run`": [], "the sweep's cell process": [], "import + digits load": []}
    for r in range(repeats):
        (cell,) = grid.cells(folder / f"plain{r}")
        figures["plain `aidge-incremental run`"].append(plain_run(cell)[1])
        (cell,) = grid.cells(folder / f"sweep{r}")
        spec = {"name": cell.name, "directory": str(cell.directory), "config": cell.config.to_dict(),
                "state": "new", "overwrite": False, "attempt": 1, "attempts": 1}
        outcome = _reap(_spawn(spec, 1), block=True)
        assert outcome.ok, outcome.error
        figures["the sweep's cell process"].append(outcome.cpu_seconds)
        figures["import + digits load"].append(process_cpu([sys.executable, "-c", (
            "import aidge_incremental.cli, aidge_incremental.experiment; "
            "from aidge_incremental.datasets import load_dataset; load_dataset('digits')")])[1])
    for name, values in figures.items():
        print(f"{name:<30} CPU: " + ", ".join(f"{v:.2f} s" for v in values))


def helpers_cpu() -> float:
    """CPU time of this process's live descendants (Ray's raylet, GCS and idle workers;
    a sweep's cells have ended when this is read)."""
    try:
        import psutil
    except ImportError:
        return float("nan")
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def sweep(grid: Grid, folder: pathlib.Path, executor: str, jobs: int):
    helpers = helpers_cpu()
    report = run_sweep(grid, folder, executor=executor, jobs=jobs, threads=1, retries=0)
    helpers = helpers_cpu() - helpers
    assert not report.failed, report.failure_text()
    attempts = [o for a in report.outcomes.values() for o in a]
    return (report.wall_seconds, sum(o.wall_seconds for o in attempts), sum(o.cpu_seconds for o in attempts),
            report.cpu_seconds + (helpers if executor == "ray" else 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--same-cell", type=int, metavar="REPEATS",
                        help="only: one iCaRL cell's CPU time, plain run vs the sweep's process, REPEATS times")
    args = parser.parse_args()
    grid = Grid.from_dict({**GRID, "base": {**GRID["base"], "epochs": args.epochs}})
    if args.same_cell:
        print(f"one cell: digits, iCaRL, hidden 64, memory 100, {args.epochs} epochs, 1 thread, "
              f"load {os.getloadavg()[0]:.1f}")
        with tempfile.TemporaryDirectory() as tmp:
            same_cell(Grid.from_dict({"base": {**GRID["base"], "epochs": args.epochs, "method": "icarl"}}),
                      args.same_cell, pathlib.Path(tmp))
        return
    ways = [("shell loop of `run`", lambda f: shell_loop(grid, f)),
            ("sweep, local, 1 job", lambda f: sweep(grid, f, "local", 1)),
            ("sweep, local, 2 jobs", lambda f: sweep(grid, f, "local", 2))]
    ray_start = None
    if not args.no_ray:
        import ray
        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
        ray_start = time.perf_counter() - t
        ways.append(("sweep, ray, 2 CPUs", lambda f: sweep(grid, f, "ray", None)))
    print(f"{len(grid.cells())} cells: digits, {GRID['grid']}, hidden 64, memory 100, {args.epochs} epochs, "
          f"1 thread per cell, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}")
    if ray_start is not None:
        print(f"ray.init (local, 2 CPUs): {ray_start:.1f} s wall, not counted below")
    rows = {name: [] for name, _ in ways}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for i, (name, way) in enumerate(ways):
                rows[name].append(way(pathlib.Path(tmp) / f"{r}-{i}"))
    print("\ndriver CPU: the sweep's own process; with Ray, also the CPU time Ray's processes (raylet, GCS, "
          "workers) spent during the sweep")
    print(f"\n| {'way':<22} | sweep wall | cells' wall (sum) | wall ratio | cells' CPU (sum) | driver CPU |")
    print("|---|---|---|---|---|---|")
    for name, figures in rows.items():
        for wall, cells_wall, cells_cpu, driver_cpu in figures:
            print(f"| {name:<22} | {wall:8.1f} s | {cells_wall:14.1f} s | {wall / cells_wall:9.2f} | "
                  f"{cells_cpu:13.1f} s | {driver_cpu:7.2f} s |")


if __name__ == "__main__":
    main()
