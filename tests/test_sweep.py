"""Sweeps: grid files checked before anything runs, cells as run directories,
restarts that skip, resume or refuse, failures reported and retried, kills,
the Ray executor, and the table checked against a recomputation."""
import json
import math
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import time

import numpy as np
import pytest

from aidge_incremental.checkpoint import checkpoint_path
from aidge_incremental.cli import main
from aidge_incremental.sweep import (MAX_CELLS, Grid, SweepError, _log_tail, _ray_cell, cell_state, compare,
                                     run_sweep)
from aidge_incremental.table import ResultTable, collect_runs

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "examples" / "configs"
SMALLEST = "base: {dataset: digits, epochs: 1}\ngrid: {method: [finetune, icarl], seed: [0, 1]}\n"
#: the same, smaller and faster
SMALL = "base: {dataset: digits, epochs: 1, hidden: [16], memory: 40}\ngrid: {method: [finetune, icarl], seed: [0, 1]}\n"


def grid_of(text, tmp_path, name="grid.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return Grid.from_file(path)


def mtimes(folder):
    return {p: p.stat().st_mtime_ns for p in pathlib.Path(folder).rglob("*") if p.is_file() and p.name != ".lock"}


# -- the grid file ---------------------------------------------------------------------

def test_the_smallest_grid_file_makes_four_named_cells(tmp_path):
    cells = grid_of(SMALLEST, tmp_path).cells(tmp_path / "sw")
    assert [c.name for c in cells] == ["finetune-seed=0", "finetune-seed=1", "icarl-seed=0", "icarl-seed=1"]
    assert [c.row for c in cells] == ["finetune", "finetune", "icarl", "icarl"]
    assert all(c.protocol == {} for c in cells)
    c = cells[3]
    assert (c.config.method, c.config.seed, c.config.epochs, c.config.memory) == ("icarl", 1, 1, 200)
    assert c.directory == (tmp_path / "sw" / "icarl-seed=1").absolute()
    # stable: the same grid names the same cells
    assert [c.name for c in grid_of(SMALLEST, tmp_path, "again.yaml").cells(tmp_path / "sw")] == \
        [c.name for c in cells]


@pytest.mark.parametrize("text,message", [
    ("base: {epochs: 1}\ngird: {seed: [0]}\n", "unknown key 'gird' (did you mean 'grid'?)"),
    ("epochs: 1\ngrid: {seed: [0]}\n", "'epochs' is an option: put it under base:"),
    ("grid: {memmory: [20]}\n", "grid: unknown option 'memmory' (did you mean 'memory'?)"),
    ("base: {epohcs: 1}\n", "base: unknown option 'epohcs' (did you mean 'epochs'?)"),
    ("grid: {seed: 3}\n", "grid axis 'seed' must be a non-empty list"),
    ("grid: {seed: []}\n", "grid axis 'seed' must be a non-empty list"),
    ("grid: {seed: [0, 1, 0]}\n", "grid axis 'seed' lists 0 more than once"),
    ("grid: {hidden: [128, 64]}\n", "grid axis 'hidden' takes lists"),
    ("base: {output_dir: x}\n", "base sets output_dir; a sweep gives every cell its own run directory"),
    ("variants: {'a/b': {method: lwf}}\n", "variant name 'a/b'"),
    ("variants: {x: {tempreature: 2}}\n", "variant x: unknown option 'tempreature' (did you mean 'temperature'?)"),
    ("base: missing.yaml\n", "base config missing.yaml not found"),
    ("- 1\n", "must hold a mapping"),
])
def test_grid_file_errors_name_the_problem(tmp_path, text, message):
    with pytest.raises(SweepError) as e:
        grid_of(text, tmp_path).cells(tmp_path / "sw")
    assert message in str(e.value)
    assert "grid.yaml" in str(e.value)


@pytest.mark.parametrize("text,message", [
    # a value out of range: the cell and the option are named
    ("base: {method: finetune}\ngrid: {epochs: [1, 0]}\n", "cell finetune-epochs=0 (epochs=0): epochs must be >= 1"),
    # an option of the grid that the cell's method does not take
    ("grid: {method: [icarl, joint], memory: [20]}\n",
     "cell joint-memory=20 (method=joint, memory=20): option 'memory' does not apply to method 'joint'"),
    ("variants: {abl: {method: finetune, temperature: 2}}\n",
     "cell abl (variant=abl, method=finetune, temperature=2): option 'temperature' does not apply to method "
     "'finetune'"),
    ("grid: {method: [icarl, icarls]}\n", "cell icarls (method=icarls): method must be one of"),
    ("base: {method: joint, temperature: 2}\ngrid: {seed: [0]}\n", "options ['temperature'] apply to none"),
    ("grid: {method: [icarl], seed: [0]}\nvariants: {again: {method: icarl}}\n",
     "cells icarl-seed=0 and again-seed=0 have the same configuration"),
])
def test_every_cell_is_validated_before_anything_runs(tmp_path, text, message):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    assert main(["sweep", str(path), "--output-dir", str(tmp_path / "sw")]) == 2
    with pytest.raises(SweepError, match="cell|apply to none") as e:
        Grid.from_file(path).cells(tmp_path / "sw")
    assert message in str(e.value)
    assert not (tmp_path / "sw").exists(), "refused before anything ran"


def test_several_invalid_cells_are_counted_in_the_one_error(tmp_path):
    with pytest.raises(SweepError, match=r"cell finetune-epochs=0 .* \(and 1 other invalid cell\(s\)\)"):
        grid_of("base: {method: finetune}\ngrid: {epochs: [0, 1, -1]}\n", tmp_path).cells()


def test_variants_are_rows_crossed_with_the_axes_they_do_not_set(tmp_path):
    text = """
base: {dataset: digits, epochs: 1}
grid: {method: [icarl, lwf], memory: [20, 40], seed: [0, 1]}
variants:
  icarl-lambda0: {method: icarl, distillation_weight: 0}
  icarl-small: {method: icarl, memory: 10}
"""
    cells = {c.name: c for c in grid_of(text, tmp_path).cells(tmp_path / "sw")}
    assert len(cells) == 2 * 2 * 2 + 2 * 2 + 2
    a = cells["icarl-lambda0-memory=40-seed=1"]
    assert (a.row, a.protocol, a.config.distillation_weight, a.config.memory, a.config.seed) == \
        ("icarl-lambda0", {"memory": 40}, 0.0, 40, 1)
    b = cells["icarl-small-seed=0"]  # the variant fixes the memory axis: its own column
    assert (b.row, b.protocol, b.config.memory) == ("icarl-small", {"memory": 10}, 10)
    assert cells["lwf-memory=20-seed=0"].protocol == {"memory": 20}
    # without a method axis, the variants alone are the rows
    only = grid_of("grid: {seed: [0, 1]}\nvariants: {a: {method: lwf}, b: {method: finetune}}\n",
                   tmp_path, "v.yaml").cells()
    assert [c.name for c in only] == ["a-seed=0", "a-seed=1", "b-seed=0", "b-seed=1"]


def test_a_shipped_config_as_base_gives_each_method_the_options_it_takes(tmp_path):
    text = f"base: {CONFIGS / 'digits_icarl.yaml'}\ngrid: {{method: [finetune, icarl, joint]}}\n"
    cells = {c.name: c.config for c in grid_of(text, tmp_path).cells()}
    assert cells["icarl"].memory == 200 and cells["icarl"].epochs == 30
    assert cells["finetune"].memory == 200  # finetune takes a replay memory: the protocol's
    assert cells["joint"].epochs == 30 and "memory" not in cells["joint"].method_options
    # a base given as a mapping naming a file, overridden
    text = f"base: {{config: {CONFIGS / 'digits_icarl.yaml'}, epochs: 2}}\ngrid: {{seed: [0]}}\n"
    (cell,) = grid_of(text, tmp_path, "b.yaml").cells()
    assert (cell.name, cell.config.method, cell.config.epochs) == ("icarl-seed=0", "icarl", 2)
    # a relative base is found beside the grid file
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.yaml").write_text("method: lwf\nepochs: 3\n")
    (cell,) = grid_of("base: base.yaml\n", tmp_path / "sub").cells()
    assert (cell.config.method, cell.config.epochs) == ("lwf", 3)


@pytest.mark.parametrize("path", sorted((ROOT / "examples" / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_the_shipped_grid_files_validate_and_say_what_they_run(path):
    assert path.read_text().startswith("# "), "a header comment says what the grid runs"
    cells = Grid.from_file(path).cells("runs/x")
    assert len({c.name for c in cells}) == len(cells) > 1


def test_long_and_colliding_names_stay_one_short_path_component(tmp_path):
    text = ("base: {method: finetune}\ngrid: {hidden: [[" + ", ".join(["4096"] * 16) + "], [8]], "
            "lr: [0.123456789], momentum: [0.987654321]}\n")
    names = [c.name for c in grid_of(text, tmp_path).cells(tmp_path)]
    assert names[1] == "finetune-hidden=8-lr=0.123456789-momentum=0.987654321"
    assert len(names[0]) <= 120 and names[0].startswith("finetune-hidden=4096x4096")
    # two values written alike once made a path component: each name gets its configuration's digest
    names = [c.name for c in grid_of("base: {method: finetune}\ngrid: {data_dir: [/x/y, /x_y]}\n", tmp_path,
                                     "c.yaml").cells(tmp_path)]
    assert len(set(names)) == 2 and all(n.startswith("finetune-data_dir=_x_y-") and "/" not in n for n in names)
    assert names == [c.name for c in grid_of("base: {method: finetune}\ngrid: {data_dir: [/x/y, /x_y]}\n",
                                             tmp_path, "d.yaml").cells(tmp_path)], "stable"


# -- a cell's directory ---------------------------------------------------------------

def test_a_cell_is_done_resumed_or_refused_by_what_its_directory_holds(tmp_path):
    grid = grid_of("base: {method: finetune, epochs: 1, hidden: [8]}\ngrid: {seed: [0]}\n", tmp_path)
    (cell,) = grid.cells(tmp_path / "sw")
    config = cell.config.to_dict()
    assert cell_state(cell.directory, config, cell.name) == ("new", "")
    report = run_sweep(grid, tmp_path / "sw", executor="inline")
    assert report.ran == [cell.name] and report.results()[cell.name].trained_method is not None
    assert cell_state(cell.directory, config, cell.name) == ("done", "")
    # checkpoints without results: resumed from the last one
    (cell.directory / "results.json").unlink()
    assert cell_state(cell.directory, config, cell.name) == ("resume", "after step 4")
    for step in (4, 3, 2):
        checkpoint_path(cell.directory, step).unlink()
    assert cell_state(cell.directory, config, cell.name) == ("resume", "after step 1")
    report = run_sweep(grid, tmp_path / "sw", executor="inline")
    assert report.states[cell.name][0] == "resume" and report.ran == [cell.name]
    # a grid that now asks for something else: refused naming the cell and the difference
    changed = grid_of("base: {method: finetune, epochs: 2, hidden: [8]}\ngrid: {seed: [0]}\n", tmp_path, "g2.yaml")
    with pytest.raises(SweepError, match=r"cell finetune-seed=0: .* holds a run of another configuration "
                                         r"\(epochs: 1 there, 2 in the grid\).*--overwrite"):
        run_sweep(changed, tmp_path / "sw", executor="inline", dry_run=True)
    before = (cell.directory / "results.json").read_bytes()
    assert main(["sweep", str(tmp_path / "g2.yaml"), "--output-dir", str(tmp_path / "sw")]) == 2
    assert (cell.directory / "results.json").read_bytes() == before, "never silently overwritten"
    report = run_sweep(changed, tmp_path / "sw", executor="inline", overwrite=True)
    assert json.loads((cell.directory / "results.json").read_text())["config"]["epochs"] == 2


def test_a_corrupt_last_checkpoint_is_reported_naming_the_cell(tmp_path):
    grid = grid_of("base: {method: finetune, epochs: 1, hidden: [8]}\n", tmp_path)
    run_sweep(grid, tmp_path / "sw", executor="inline")
    (cell,) = grid.cells(tmp_path / "sw")
    (cell.directory / "results.json").unlink()
    checkpoint_path(cell.directory, 4).write_bytes(b"torn")
    with pytest.raises(SweepError, match=r"cell finetune: corrupt checkpoint .*step-004.ckpt.*remove"):
        run_sweep(grid, tmp_path / "sw", executor="inline")


def test_two_sweeps_cannot_share_a_folder(tmp_path):
    import fcntl
    grid = grid_of("base: {method: finetune, epochs: 1, hidden: [8]}\n", tmp_path)
    (tmp_path / "sw").mkdir()
    fd = os.open(tmp_path / "sw" / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a running sweep holds it
    try:
        with pytest.raises(ValueError, match="in use by another run"):
            run_sweep(grid, tmp_path / "sw", executor="inline")
    finally:
        os.close(fd)


# -- the local executor: a 2x2 grid with two jobs -----------------------------------------

@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "grid.yaml").write_text(SMALL)
    out = folder / "sw"
    # one thread each, as the Ray test's cells (the same runs, bit for bit)
    code = main(["sweep", str(folder / "grid.yaml"), "--output-dir", str(out), "--jobs", "2", "--threads", "1"])
    return folder, out, code


def test_a_2x2_grid_runs_with_two_jobs(swept, capsys):
    folder, out, code = swept
    assert code == 0
    names = ["finetune-seed=0", "finetune-seed=1", "icarl-seed=0", "icarl-seed=1"]
    manifest = json.loads((out / "sweep.json").read_text())
    assert [c["name"] for c in manifest["cells"]] == names
    for name in names:
        data = json.loads((out / name / "results.json").read_text())
        cell = next(c for c in manifest["cells"] if c["name"] == name)
        assert data["config"] == cell["config"] and data["config"]["output_dir"] == str(out / name)
        assert (data["method"], data["config"]["seed"]) == (name.split("-")[0], int(name[-1]))
        assert manifest["status"][name]["state"] == "done" and manifest["status"][name]["attempts"] == 1
        log = (out / name / "cell.log").read_text()
        assert "1 thread(s)" in log
        assert "--- attempt 1 of 2" in log
    # two seeds of one method differ (the seed reaches the run)
    a, b = (json.loads((out / f"icarl-seed={s}" / "results.json").read_text()) for s in (0, 1))
    assert a["class_order"] != b["class_order"]
    # each cell is a normal run directory: run --resume accepts it (nothing left to do)
    assert main(["run", "--resume", str(out / "icarl-seed=1"), "--no-progress"]) == 0
    assert json.loads((out / "icarl-seed=1" / "results.json").read_text())["classifiers"] == b["classifiers"]


def test_local_jobs_times_threads_fit_the_cores():
    from aidge_incremental.sweep import LocalExecutor, _cores
    for jobs in (1, 2, 3, 64):
        executor = LocalExecutor(jobs=jobs)
        assert executor.threads == max(1, _cores() // jobs) and executor.slots == jobs
    assert LocalExecutor().slots == 1 and LocalExecutor().threads == _cores()


def test_a_second_invocation_does_nothing(swept, capsys):
    folder, out, _ = swept
    before = mtimes(out)
    capsys.readouterr()
    assert main(["sweep", str(folder / "grid.yaml"), "--output-dir", str(out), "--jobs", "2"]) == 0
    text = capsys.readouterr().out
    assert "all 4 cell(s) done, nothing to run" in text and "4 already done, 0 ran" in text
    after = mtimes(out)
    assert {p: t for p, t in after.items() if p.name != "sweep.json"} == \
        {p: t for p, t in before.items() if p.name != "sweep.json"}
    assert main(["sweep", str(folder / "grid.yaml"), "--output-dir", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "4 done, 0 to resume, 0 to run (dry run" in text


def test_the_dry_run_lists_what_is_done_and_what_is_to_run(swept, tmp_path, capsys):
    folder, out, _ = swept
    grid = folder / "more.yaml"
    grid.write_text(SMALL.replace("seed: [0, 1]", "seed: [0, 1, 2]"))
    capsys.readouterr()
    assert main(["sweep", str(grid), "--output-dir", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("icarl-seed=2") and "to run" in line for line in lines)
    assert any(line.startswith("icarl-seed=0") and "done" in line for line in lines)
    assert lines[-1].endswith("4 done, 0 to resume, 2 to run (dry run: nothing ran)")
    assert not (out / "icarl-seed=2").exists()


def _forgetting(matrix):
    """Average forgetting from the accuracy matrix, written out with loops (float64)."""
    T = len(matrix)
    if T == 1:
        return 0.0
    drops = []
    for j in range(T - 1):
        best = max(float(matrix[t][j]) for t in range(j, T - 1))
        drops.append(best - float(matrix[T - 1][j]))
    return sum(drops) / len(drops)


def test_the_table_equals_a_recomputation_from_the_results_files(swept):
    _, out, _ = swept
    table = ResultTable(collect_runs([out]))
    assert table.rows == ["finetune", "icarl (nme)", "icarl (head)"] and table.protocols == [""]
    rows = {r["row"]: r for r in __import__("csv").DictReader(table.csv().splitlines())}
    for row, method, clf in (("finetune", "finetune", "head"), ("icarl (nme)", "icarl", "nme"),
                             ("icarl (head)", "icarl", "head")):
        files = [json.loads((out / f"{method}-seed={s}" / "results.json").read_text())["classifiers"][clf]
                 for s in (0, 1)]
        expected = {
            "average_incremental_accuracy": [float(np.mean(h["acc_seen"])) for h in files],
            "last_accuracy": [h["acc_seen"][-1] for h in files],
            "average_forgetting": [_forgetting(h["matrix"]) for h in files],
        }
        for metric, values in expected.items():
            mean, sd = statistics.fmean(values), statistics.stdev(values)  # sample sd: n - 1
            assert math.isclose(float(rows[row][f"{metric}_mean"]), 100 * mean, rel_tol=1e-12, abs_tol=1e-12)
            assert math.isclose(float(rows[row][f"{metric}_sd"]), 100 * sd, rel_tol=1e-9, abs_tol=1e-12)
            assert f"{100 * mean:.2f} ± {100 * sd:.2f}" in table.markdown()
        assert rows[row]["n"] == "2" and rows[row]["seeds"] == "0 1"
    assert "ddof = 1" in table.markdown() and "n = 2 seeds" in table.markdown()


# -- failures -----------------------------------------------------------------------------

def test_missing_data_is_an_error_before_anything_runs(tmp_path):
    grid = grid_of(f"base: {{method: finetune, data_dir: {tmp_path / 'none.npz'}}}\ngrid: {{dataset: [digits, npz]}}\n",
                   tmp_path)
    with pytest.raises(SweepError, match=f"cell finetune-dataset=npz: data_dir {tmp_path / 'none.npz'} does not exist"):
        run_sweep(grid, tmp_path / "sw")
    with pytest.raises(SweepError, match="cell finetune: dataset mnist needs a data_dir"):
        run_sweep(grid_of("base: {method: finetune, dataset: mnist}\n", tmp_path, "m.yaml"), tmp_path / "sw")
    assert not (tmp_path / "sw").exists()


def test_a_cell_that_raises_is_reported_and_retried(tmp_path, capsys):
    (tmp_path / "none.npz").write_bytes(b"not a zip")  # found when planned, fails when read
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"base: {{method: finetune, epochs: 1, hidden: [8], data_dir: {tmp_path / 'none.npz'}}}\n"
                    "grid: {dataset: [digits, npz]}\n")
    out = tmp_path / "sw"
    assert main(["sweep", str(grid), "--output-dir", str(out), "--jobs", "2", "--retries", "1"]) == 1
    captured = capsys.readouterr()
    assert ("finetune-dataset=npz: attempt 1 of 2 failed (exit status 2: aidge-incremental: error: "
            f"{tmp_path / 'none.npz'} is not a readable .npz file") in captured.out and "; trying again" in captured.out
    assert "finetune-dataset=npz: FAILED after 2 attempt(s): exit status 2\n" in captured.out
    assert "none.npz is not a readable .npz file" in captured.err
    assert "1 ran, 1 failed" in captured.out
    status = json.loads((out / "sweep.json").read_text())["status"]
    assert status["finetune-dataset=npz"]["state"] == "failed" and status["finetune-dataset=npz"]["attempts"] == 2
    assert "none.npz is not a readable .npz file" in status["finetune-dataset=npz"]["error"]
    assert status["finetune-dataset=digits"]["state"] == "done", "the other cell ran"
    log = (out / "finetune-dataset=npz" / "cell.log").read_text()
    assert "--- attempt 1 of 2" in log and "--- attempt 2 of 2" in log
    # the table of what finished says what is missing
    assert main(["table", str(out)]) == 0
    assert "1 unfinished run(s) left out" in capsys.readouterr().err


def test_inline_failures_are_reported_too(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    grid = grid_of(f"base: {{method: finetune, epochs: 1, dataset: npz, data_dir: {tmp_path / 'x.npz'}}}\n", tmp_path)
    lines = []
    report = run_sweep(grid, tmp_path / "sw", executor="inline", retries=2, log=lines.append)
    assert report.failed == ["finetune"] and len(report.outcomes["finetune"]) == 3
    assert "DatasetError" in report.failure_text() and "x.npz is not a readable .npz" in report.failure_text()
    with pytest.raises(SweepError, match="cell finetune failed after 1 attempt"):
        compare(["finetune"], {"dataset": "npz", "data_dir": str(tmp_path / "x.npz"), "epochs": 1})


def _sweep_process(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "aidge_incremental.cli", "sweep", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def _wait_for(path, process, seconds=300):
    deadline = time.time() + seconds
    while not path.exists():
        assert process.poll() is None, process.stdout.read()
        assert time.time() < deadline, f"no {path} after {seconds} s"
        time.sleep(0.02)


KILL_GRID = "base: {method: icarl, epochs: 3, hidden: [32], memory: 40}\ngrid: {seed: [5]}\n"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    (folder / "grid.yaml").write_text(KILL_GRID)
    assert main(["sweep", str(folder / "grid.yaml"), "--output-dir", str(folder / "sw")]) == 0
    return json.loads((folder / "sw" / "icarl-seed=5" / "results.json").read_text())


@pytest.mark.slow
def test_a_cell_killed_mid_run_is_retried_from_its_checkpoint_to_the_same_metrics(tmp_path, uninterrupted):
    (tmp_path / "grid.yaml").write_text(KILL_GRID)
    cell = tmp_path / "sw" / "icarl-seed=5"
    sweep = _sweep_process(["grid.yaml", "--output-dir", "sw", "--retries", "1"], tmp_path)
    _wait_for(checkpoint_path(cell, 1), sweep)
    pid = int((cell / ".lock").read_text())
    os.kill(pid, signal.SIGKILL)  # the cell's process, while step 2 trains
    out, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, out
    assert "icarl-seed=5: attempt 1 of 2 failed (killed by SIGKILL" in out and "trying again" in out
    log = (cell / "cell.log").read_text()
    assert "run --resume" in log.split("--- attempt 2 of 2")[1] and "resumed from" in log
    data = json.loads((cell / "results.json").read_text())
    assert data["class_order"] == uninterrupted["class_order"]
    assert data["classifiers"] == uninterrupted["classifiers"]


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stopped_sweep_stops_its_cells_and_resumes_when_run_again(tmp_path, uninterrupted, stop):
    (tmp_path / "grid.yaml").write_text(KILL_GRID)
    cell = tmp_path / "sw" / "icarl-seed=5"
    sweep = _sweep_process(["grid.yaml", "--output-dir", "sw"], tmp_path)
    _wait_for(checkpoint_path(cell, 1), sweep)
    pid = int((cell / ".lock").read_text())
    sweep.send_signal(stop)  # Ctrl-C reaches the sweep alone (its cells run in sessions of their own); scancel
    out, _ = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, out
    assert "stopping 1 running cell(s): icarl-seed=5" in out and "run the same command again" in out
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the cell's process is gone
    if (cell / "results.json").exists():  # written after each step: it records fewer steps than the run's
        partial = json.loads((cell / "results.json").read_text())
        assert len(next(iter(partial["classifiers"].values()))["acc_seen"]) < partial["n_steps"]
    again = _sweep_process(["grid.yaml", "--output-dir", "sw"], tmp_path)
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out
    assert "resumed from" in (cell / "cell.log").read_text()
    assert json.loads((cell / "results.json").read_text())["classifiers"] == uninterrupted["classifiers"]


# -- Ray ------------------------------------------------------------------------------------

def test_a_ray_task_without_the_shared_folder_runs_in_its_own_and_returns_the_files(tmp_path, monkeypatch):
    """What a worker on another node does: the driver's folder is not there (its
    token is not found), so the cell runs in the worker's temporary directory
    and its result files travel back with the task's value."""
    monkeypatch.setenv("TMPDIR", str(tmp_path / "worker-tmp"))
    (tmp_path / "worker-tmp").mkdir()
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    (cell,) = grid_of("base: {method: finetune, epochs: 1, hidden: [8]}\n", tmp_path).cells(tmp_path / "driver")
    spec = {"name": cell.name, "directory": str(cell.directory), "config": cell.config.to_dict(), "state": "new",
            "overwrite": False, "attempt": 1, "attempts": 1, "token": "feedfacefeedface", "threads": 1}
    value = _ray_cell(spec)
    assert value["outcome"]["ok"], value["outcome"]["error"]
    assert not (tmp_path / "driver").exists(), "nothing written where the driver's folder would be"
    root = tmp_path / "worker-tmp" / f"aidge-incremental-sweeps-{os.getuid()}"
    ran = root / "feedfacefeedface" / "finetune"
    for folder in (root, root / "feedfacefeedface", ran):  # no other user may plant links there
        assert folder.stat().st_mode & 0o777 == 0o700 and not folder.is_symlink()
    assert (ran / "results.json").read_bytes() == value["files"]["results.json"]
    assert set(value["files"]) == {"results.json", "results.csv", "accuracy.png", "cell.log"}
    assert json.loads(value["files"]["results.json"])["config"]["output_dir"] == str(ran)
    # tried again on that node: found done there, nothing runs
    again = _ray_cell({**spec, "attempt": 2})
    assert again["outcome"]["ok"] and again["files"]["results.json"] == value["files"]["results.json"]
    assert (ran / "cell.log").read_text().count("--- attempt") == 1


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False,
             object_store_memory=100 << 20)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_the_ray_executor_runs_the_grid_and_a_second_invocation_does_nothing(tmp_path, local_ray, swept):
    _, local_out, _ = swept
    (tmp_path / "grid.yaml").write_text(SMALL)
    out = tmp_path / "sw"
    lines = []
    report = run_sweep(Grid.from_file(tmp_path / "grid.yaml"), out, executor="ray", log=lines.append)
    assert report.ran == ["finetune-seed=0", "finetune-seed=1", "icarl-seed=0", "icarl-seed=1"], lines
    assert "1 CPU(s) per cell, cluster of 2 CPU(s)" in lines[0]
    for name in report.ran:
        here, there = (json.loads((d / name / "results.json").read_text()) for d in (out, local_out))
        assert here["classifiers"] == there["classifiers"], "the same runs as the local executor's"
    assert local_ray.is_initialized(), "a Ray this process joined is left running"
    before = mtimes(out)
    report = run_sweep(Grid.from_file(tmp_path / "grid.yaml"), out, executor="ray", log=lines.append)
    assert report.ran == [] and lines[-1] == "sweep: all 4 cell(s) done, nothing to run"
    assert {p: t for p, t in mtimes(out).items() if p.name != "sweep.json"} == \
        {p: t for p, t in before.items() if p.name != "sweep.json"}


def test_the_ray_executor_says_how_to_install_ray(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    grid = grid_of("base: {method: finetune, epochs: 1}\n", tmp_path)
    with pytest.raises(SweepError, match=r"pip install 'aidge_incremental\[ray\]'"):
        run_sweep(grid, tmp_path / "sw", executor="ray")


# -- compare is a sweep over methods ----------------------------------------------------------

def test_compare_takes_a_shipped_config_ignoring_its_method(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--methods", "finetune", "icarl", "--config", str(CONFIGS / "digits_icarl.yaml"),
            "--epochs", "1", "--hidden", "16", "--output-dir", str(out), "--no-progress"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "the config's method 'icarl' is ignored" in captured.err
    assert "finetune" in captured.out and "icarl (nme)" in captured.out
    assert {p.name for p in out.iterdir()} >= {"finetune", "icarl", "comparison.png", "comparison.csv", "sweep.json"}
    rows = list(__import__("csv").DictReader((out / "comparison.csv").read_text().splitlines()))
    assert [r["row"] for r in rows] == ["finetune", "icarl (nme)", "icarl (head)"]
    finetune = json.loads((out / "finetune" / "results.json").read_text())
    assert finetune["config"]["memory"] == 200 and finetune["config"]["selection"] == "herding"
    # again: the runs are read back, not run again
    before = mtimes(out / "icarl")
    assert main(argv) == 0
    assert mtimes(out / "icarl") == before


def test_compare_returns_the_trained_methods(tmp_path):
    results = compare(["finetune", "lwf"], {"epochs": 1, "hidden": [8]})
    assert list(results) == ["finetune", "lwf"]
    assert results["lwf"].trained_method.model.n_classes == 10
    with pytest.raises(SweepError, match="apply to none of the compared methods"):
        compare(["joint"], {"temperature": 2.0})


# -- hostile files and sizes (what an attack on the sweep tried) -------------------------------

@pytest.fixture
def deadline():
    """Fails the test, rather than hanging it, if a call blocks (a FIFO opened or read)."""
    def expired(signum, frame):
        raise TimeoutError("blocked: a FIFO was opened or read as a file")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


ONE_CELL = "base: {method: finetune, epochs: 1, hidden: [8]}\n"


def test_a_cell_log_planted_as_a_link_is_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "sw" / "finetune").mkdir(parents=True)
    (tmp_path / "sw" / "finetune" / "cell.log").symlink_to(victim)
    lines = []
    report = run_sweep(grid_of(ONE_CELL, tmp_path), tmp_path / "sw", retries=0, log=lines.append)
    assert victim.read_text() == "precious\n", "nothing appended to the link's target"
    assert report.failed == ["finetune"]
    error = report.outcomes["finetune"][-1].error
    assert f"cell log {tmp_path / 'sw' / 'finetune' / 'cell.log'} is a symbolic link" in error
    assert "remove it" in error and any("finetune: failed" in line for line in lines)


def test_a_cell_log_that_is_a_fifo_is_refused_without_blocking(tmp_path, deadline):
    cell = tmp_path / "sw" / "finetune"
    cell.mkdir(parents=True)
    os.mkfifo(cell / "cell.log")
    report = run_sweep(grid_of(ONE_CELL, tmp_path), tmp_path / "sw", retries=0)
    assert "is not a regular file (a FIFO)" in report.outcomes["finetune"][-1].error
    reader = os.open(cell / "cell.log", os.O_RDONLY | os.O_NONBLOCK)  # a FIFO someone reads opens: still refused
    try:
        report = run_sweep(grid_of(ONE_CELL, tmp_path), tmp_path / "sw", retries=0)
        assert "is not a regular file (a FIFO)" in report.outcomes["finetune"][-1].error
        assert os.read(reader, 100) == b"", "nothing written to the FIFO"
    finally:
        os.close(reader)


def test_the_tail_of_a_failed_cells_log_is_read_bounded_from_a_file_of_its_own(tmp_path, deadline):
    import tracemalloc
    victim = tmp_path / "secret.txt"
    victim.write_text("--- header\nthe secret\n")
    (tmp_path / "link.log").symlink_to(victim)
    tail = _log_tail(tmp_path / "link.log", 0)
    assert "secret" not in tail and "is a symbolic link" in tail and "not read" in tail
    os.mkfifo(tmp_path / "fifo.log")
    assert "not a regular file (a FIFO)" in _log_tail(tmp_path / "fifo.log", 0)
    # a log of 64 MiB: its last lines, read from its last bytes only
    big = tmp_path / "big.log"
    with open(big, "wb") as f:
        f.write(b"--- attempt 1 of 1\n")
        f.truncate(64 << 20)
        f.seek(0, os.SEEK_END)
        f.write(b"\n" + b"".join(b"line %d\n" % i for i in range(20)) + b"Error: the last line\n")
    tracemalloc.start()
    try:
        tail = _log_tail(big, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert tail.splitlines()[-1] == "Error: the last line" and len(tail.splitlines()) == 12
    assert peak < 1 << 20, f"{peak} bytes allocated to read the end of a log"


@pytest.mark.parametrize("plant,message", [
    ("link", "sweep token {path} is a symbolic link: not followed; remove {path}"),
    ("fifo", "sweep token {path} is not a regular file (a FIFO)"),
    ("large", "sweep token {path} holds 100000 bytes, more than the 64"),
    ("path", "sweep token {path} holds b'../../etc\\n', not a sweep's token (16 hex digits)"),
])
def test_a_planted_sweep_token_is_refused_naming_it(tmp_path, deadline, plant, message):
    out = tmp_path / "sw"
    out.mkdir()
    path = out / ".sweep-token"
    if plant == "link":
        (tmp_path / "victim").write_text("0123456789abcdef")
        path.symlink_to(tmp_path / "victim")
    elif plant == "fifo":
        os.mkfifo(path)
    elif plant == "large":
        path.write_text("a" * 100000)
    else:
        path.write_text("../../etc\n")
    with pytest.raises(SweepError) as e:
        run_sweep(grid_of(ONE_CELL, tmp_path), out, executor="inline")
    assert message.format(path=path) in str(e.value)
    assert f"remove {path}" in str(e.value)
    assert not (out / "finetune").exists(), "refused before any cell ran"


def test_the_sweep_token_is_written_once_and_kept(tmp_path):
    grid = grid_of(ONE_CELL, tmp_path)
    run_sweep(grid, tmp_path / "sw", executor="inline")
    token = (tmp_path / "sw" / ".sweep-token").read_text()
    assert len(token) == 16 and int(token, 16) >= 0
    run_sweep(grid, tmp_path / "sw", executor="inline")
    assert (tmp_path / "sw" / ".sweep-token").read_text() == token


def _ray_spec(tmp_path, token="feedfacefeedface"):
    (cell,) = grid_of(ONE_CELL, tmp_path).cells(tmp_path / "driver")
    return {"name": cell.name, "directory": str(cell.directory), "config": cell.config.to_dict(), "state": "new",
            "overwrite": False, "attempt": 1, "attempts": 1, "token": token, "threads": 1}


@pytest.mark.parametrize("plant", ["open to all", "a link", "a bad token", "a link in the cell's folder"])
def test_a_ray_workers_scratch_folder_must_be_private(tmp_path, monkeypatch, plant):
    """Where the driver's folder is not shared, the cell runs in the worker's
    temporary directory: a folder there that others could write, a link, or a
    token that is not one is refused, and nothing is written through a link."""
    import tempfile
    monkeypatch.setenv("TMPDIR", str(tmp_path / "worker-tmp"))
    (tmp_path / "worker-tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)
    root = tmp_path / "worker-tmp" / f"aidge-incremental-sweeps-{os.getuid()}"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "cell.log").write_text("precious\n")
    spec = _ray_spec(tmp_path)
    if plant == "open to all":
        root.mkdir()
        root.chmod(0o777)
        message = f"the sweep's scratch folder {root} belongs to user {os.getuid()} with mode 777"
    elif plant == "a link":
        root.symlink_to(victim)
        message = f"the sweep's scratch folder {root} is not a folder (a link or a file)"
    elif plant == "a bad token":
        spec["token"] = "../../victim"
        message = "sweep token '../../victim' is not a sweep's token"
    else:
        (root / "feedfacefeedface" / "finetune").mkdir(parents=True, mode=0o700)
        root.chmod(0o700)
        (root / "feedfacefeedface").chmod(0o700)
        (root / "feedfacefeedface" / "finetune" / "cell.log").symlink_to(victim / "cell.log")
        message = "cell.log is a symbolic link: not written through"
    value = _ray_cell(spec)
    assert not value["outcome"]["ok"] and message in value["outcome"]["error"], value["outcome"]["error"]
    assert [p.name for p in victim.iterdir()] == ["cell.log"] and (victim / "cell.log").read_text() == "precious\n"


def test_a_grid_of_too_many_cells_is_refused_before_any_is_made(tmp_path, capsys):
    axes = ", ".join(f"{k}: [{', '.join(str(v) for v in values)}]" for k, values in (
        ("seed", range(40)), ("epochs", range(1, 41)), ("lr", [round(0.001 * i, 3) for i in range(1, 41)]),
        ("momentum", [round(0.01 * i, 2) for i in range(40)]), ("memory", range(1, 41))))
    text = f"base: {{method: icarl}}\ngrid: {{{axes}}}\n"
    assert len(text) < 2048, "a small file"
    with pytest.raises(SweepError, match=rf"grid file .*grid.yaml makes 102400000 cells \(axes of 40 x 40 x 40 x 40 "
                                         rf"x 40 values\), more than the {MAX_CELLS} a sweep may have: split it"):
        grid_of(text, tmp_path)
    assert main(["sweep", str(tmp_path / "grid.yaml"), "--output-dir", str(tmp_path / "sw"), "--dry-run"]) == 2
    assert "more than the 10000 a sweep may have" in capsys.readouterr().err
    # the variants count too: 100 x 100 cells are allowed, one variant more is not
    square = "grid: {method: [icarl], seed: [%s], epochs: [%s]}\n" % (
        ", ".join(str(i) for i in range(100)), ", ".join(str(i) for i in range(1, 101)))
    assert grid_of(square, tmp_path, "square.yaml").count() == MAX_CELLS
    with pytest.raises(SweepError, match=r"makes 20000 cells \(axes of 1 x 100 x 100 values, 1 variant\(s\)\)"):
        grid_of(square + "variants: {again: {memory: 10}}\n", tmp_path, "more.yaml")


@pytest.mark.parametrize("option,value,message", [
    ("--jobs", "5000", "--jobs 5000: at most 1024 cells run at once"),
    ("--threads", "100000", "--threads 100000: at most 1024 threads per cell"),
])
def test_jobs_and_threads_are_bounded(tmp_path, capsys, option, value, message):
    (tmp_path / "grid.yaml").write_text(ONE_CELL)
    assert main(["sweep", str(tmp_path / "grid.yaml"), "--output-dir", str(tmp_path / "sw"), option, value,
                 "--dry-run"]) == 2
    assert message in capsys.readouterr().err
    with pytest.raises(SweepError, match=message):
        run_sweep(Grid.from_file(tmp_path / "grid.yaml"), tmp_path / "sw", dry_run=True,
                  **{option[2:]: int(value)})
