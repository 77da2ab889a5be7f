"""Checkpoints and resume: real processes killed with SIGKILL, corrupt files."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from aidge_incremental.checkpoint import CheckpointError, checkpoint_path, load_checkpoint
from aidge_incremental.experiment import ExperimentConfig, run_experiment

ARGS = ["run", "--method", "icarl", "--epochs", "4", "--no-progress"]


def cli(args, cwd, env=None):
    return subprocess.Popen([sys.executable, "-m", "aidge_incremental.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})


def final_metrics(directory):
    data = json.loads((directory / "results.json").read_text())
    return data["class_order"], data["classifiers"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    run_experiment(ExperimentConfig(method="icarl", epochs=4, output_dir=str(out)))
    return final_metrics(out)


@pytest.mark.slow
def test_killed_during_a_step_resumes_to_the_same_result(tmp_path, reference):
    run = tmp_path / "run"
    process = cli(ARGS + ["--output-dir", str(run)], cwd=tmp_path)
    deadline = time.time() + 120
    while not checkpoint_path(run, 1).exists():
        assert process.poll() is None, process.stdout.read()
        assert time.time() < deadline, "no checkpoint after 120 s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # while step 2 trains
    process.wait()
    assert process.returncode == -signal.SIGKILL
    partial = json.loads((run / "results.json").read_text())  # written after each completed step
    assert len(partial["classifiers"]["nme"]["acc_seen"]) < 5, "killed before the end"
    resumed = cli(["run", "--resume", str(run), "--no-progress"], cwd=tmp_path)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert "resumed from" in out
    assert final_metrics(run) == reference


@pytest.mark.slow
def test_killed_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, reference):
    run = tmp_path / "run"
    process = cli(ARGS + ["--output-dir", str(run)], cwd=tmp_path,
                  env={"AIDGE_INCREMENTAL_FAULT": "kill-during-checkpoint-write:2"})
    process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL
    names = {p.name for p in (run / "checkpoints").iterdir()}
    assert {"step-000.ckpt", "step-001.ckpt"} <= names and "step-002.ckpt" not in names
    assert any(n.endswith(".tmp") for n in names), "the half-written file was a temporary"
    assert load_checkpoint(checkpoint_path(run, 1)).step == 1
    resumed = cli(["run", "--resume", str(run), "--no-progress"], cwd=tmp_path)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert final_metrics(run) == reference


def test_corrupt_checkpoints_are_refused_naming_the_file(tmp_path):
    run = tmp_path / "run"
    run_experiment(ExperimentConfig(method="icarl", epochs=1, output_dir=str(run)))
    last = checkpoint_path(run, 4)
    good = last.read_bytes()
    for name, data in {"truncated": good[: len(good) // 2], "empty": b"",
                       "flipped": good[:200] + bytes([good[200] ^ 0xFF]) + good[201:]}.items():
        last.write_bytes(data)
        with pytest.raises(CheckpointError, match="step-004.ckpt"):
            load_checkpoint(last)
        # resuming the run names the bad file and the previous good one
        with pytest.raises(CheckpointError, match="step-003.ckpt"):
            run_experiment(resume=run)
    # the previous good checkpoint still resumes
    result = run_experiment({"output_dir": str(tmp_path / "again")}, resume=checkpoint_path(run, 3))
    assert len(result.main.acc_seen) == 5
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.ckpt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        run_experiment(resume=tmp_path)


def test_export_and_predict_commands(tmp_path):
    from aidge_incremental.cli import main
    run = tmp_path / "run"
    run_experiment(ExperimentConfig(method="icarl", epochs=2, output_dir=str(run)))
    for extra, name in (([], "head.onnx"), (["--nme"], "nme.onnx")):
        assert main(["export", str(checkpoint_path(run, 4)), str(tmp_path / name), *extra]) == 0
        assert main(["predict", str(tmp_path / name), "--classes", "0", "1", "--count", "6"]) == 0
    assert main(["predict", str(checkpoint_path(run, 1)), "--count", "4", "--nme"]) == 0
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"nope")
    assert main(["export", str(bad), str(tmp_path / "x.onnx")]) == 2


# Every method, with and without replay: killed while step 2 trains, resumed, same final metrics.
# Joint derives its data from the scenario (a resumed Joint once trained on the new classes only).
METHOD_RUNS = {
    "finetune": ["--method", "finetune"],
    "finetune+replay": ["--method", "finetune", "--memory", "40", "--selection", "random"],
    "joint": ["--method", "joint"],
    "lwf": ["--method", "lwf"],
    "lwf+replay": ["--method", "lwf", "--memory", "40", "--l2sp-weight", "0.1"],
    "icarl": ["--method", "icarl", "--memory", "40"],
    "mixup": ["--method", "mixup", "--memory", "40"],
    "attentive": ["--method", "attentive", "--memory", "40"],
    "ewc": ["--method", "ewc", "--ewc-lambda", "50000", "--penalise-head"],
    "derpp": ["--method", "derpp", "--memory", "40"],
}
SMALL = ["--epochs", "3", "--hidden", "32", "--no-progress"]


def _options(argv):
    """The ExperimentConfig keywords of a command line like METHOD_RUNS'."""
    out, key = {}, None
    for token in argv:
        if token.startswith("--"):
            key = token[2:].replace("-", "_")
            out[key] = True
        else:
            out[key] = token
    out.pop("no_progress", None)
    conv = {"epochs": int, "memory": int, "l2sp_weight": float, "ewc_lambda": float}
    out = {k: v if v is True else conv.get(k, str)(v) for k, v in out.items()}
    if "hidden" in out:
        out["hidden"] = [int(out["hidden"])]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", list(METHOD_RUNS))
def test_every_method_resumes_to_identical_metrics_after_sigkill(tmp_path, name):
    argv = METHOD_RUNS[name] + SMALL
    reference = tmp_path / "reference"
    run_experiment(ExperimentConfig(**_options(argv), output_dir=str(reference)))
    run = tmp_path / "run"
    process = cli(["run", *argv, "--output-dir", str(run)], cwd=tmp_path)
    deadline = time.time() + 300
    while not checkpoint_path(run, 1).exists():
        assert process.poll() is None, process.stdout.read()
        assert time.time() < deadline, "no checkpoint after 300 s"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = json.loads((run / "results.json").read_text())  # written after each completed step
    whole = json.loads((reference / "results.json").read_text())
    assert len(partial["classes_seen"]) < len(whole["classes_seen"]), "killed before the end"
    resumed = cli(["run", "--resume", str(run), "--no-progress"], cwd=tmp_path)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    assert final_metrics(run) == final_metrics(reference)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """A finished 5-step iCaRL run (1 epoch a step)."""
    run = tmp_path_factory.mktemp("short") / "run"
    run_experiment(ExperimentConfig(method="icarl", epochs=1, hidden=[32], memory=40, output_dir=str(run)))
    return run


def _partial_copy(run, destination, last_step):
    """A copy of ``run`` as if it had been killed after ``last_step``."""
    (destination / "checkpoints").mkdir(parents=True)
    for t in range(last_step + 1):
        shutil.copy(checkpoint_path(run, t), checkpoint_path(destination, t))
    return destination


def test_resume_writes_where_the_user_says(tmp_path, short_run):
    from aidge_incremental.cli import main
    before = {p: p.stat().st_mtime_ns for p in short_run.rglob("*") if p.is_file()}
    moved = _partial_copy(short_run, tmp_path / "moved", 2)
    assert main(["run", "--resume", str(moved), "--no-progress"]) == 0
    assert (moved / "results.json").exists() and checkpoint_path(moved, 4).exists()
    assert final_metrics(moved) == final_metrics(short_run)
    assert json.loads((moved / "results.json").read_text())["config"]["output_dir"] == str(moved)
    # a checkpoint file resumes into its own run directory; --output-dir elsewhere
    other = _partial_copy(short_run, tmp_path / "other", 3)
    assert main(["run", "--resume", str(checkpoint_path(other, 1)), "--output-dir", str(tmp_path / "third"),
                 "--no-progress"]) == 0
    assert final_metrics(tmp_path / "third") == final_metrics(short_run)
    assert not (other / "results.json").exists()
    lone = tmp_path / "lone.ckpt"
    shutil.copy(checkpoint_path(short_run, 1), lone)
    assert main(["run", "--resume", str(lone)]) == 2
    after = {p: p.stat().st_mtime_ns for p in short_run.rglob("*") if p.is_file()}
    assert after == before, "the original run was not touched"


def test_resume_refuses_contradicting_options(tmp_path, short_run, capsys):
    from aidge_incremental.cli import main
    moved = _partial_copy(short_run, tmp_path / "moved", 2)
    assert main(["run", "--resume", str(moved), "--epochs", "5"]) == 2
    err = capsys.readouterr().err
    assert "contradict" in err and "epochs = 5 (the checkpoint has 1)" in err
    assert main(["run", "--resume", str(moved), "--method", "lwf"]) == 2
    with pytest.raises(SystemExit):  # argparse: invalid int value
        main(["run", "--resume", str(moved), "--memory", "oops"])
    assert not checkpoint_path(moved, 3).exists(), "nothing ran"
    # the same values are not a contradiction
    assert main(["run", "--resume", str(moved), "--epochs", "1", "--memory", "40", "--no-progress"]) == 0
    assert final_metrics(moved) == final_metrics(short_run)


def test_a_directory_holding_a_run_is_refused_unless_overwrite(tmp_path, short_run, capsys):
    from aidge_incremental.cli import main
    old = _partial_copy(short_run, tmp_path / "old", 4)
    args = ["run", "--method", "finetune", "--epochs", "1", "--hidden", "16", "--output-dir", str(old),
            "--no-progress"]
    assert main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert json.loads((old / "results.json").read_text())["method"] == "finetune"
    assert sorted(p.name for p in (old / "checkpoints").iterdir()) == [f"step-00{t}.ckpt" for t in range(5)]


def test_a_locked_directory_is_refused(tmp_path, capsys):
    from aidge_incremental.cli import main
    from aidge_incremental.rundir import run_directory
    with run_directory(tmp_path / "busy"):
        assert main(["run", "--epochs", "1", "--output-dir", str(tmp_path / "busy")]) == 2
        assert f"in use by another run (pid {os.getpid()})" in capsys.readouterr().err
    # released at the end of the run (and by the kernel if the process dies)
    with run_directory(tmp_path / "busy"):
        pass


def test_stale_temporary_files_are_removed_on_resume(tmp_path, short_run):
    moved = _partial_copy(short_run, tmp_path / "moved", 2)
    stale = [moved / "checkpoints" / ".step-003.ckpt.x1y2z3w4.tmp", moved / ".results.json.abc_defg.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    run_experiment(resume=moved)
    assert not any(p.exists() for p in stale)
