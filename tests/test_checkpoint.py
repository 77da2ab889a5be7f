"""Checkpoints and resume: real processes killed with SIGKILL, corrupt files."""
import json
import os
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
    assert not (run / "results.json").exists(), "killed before the end"
    resumed = cli(["run", "--resume", str(run), "--no-progress"], cwd=tmp_path)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert "resumed from" in out
    assert final_metrics(run) == reference


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
            run_experiment(ExperimentConfig(), resume=run)
    # the previous good checkpoint still resumes
    result = run_experiment(ExperimentConfig(output_dir=str(tmp_path / "again")),
                            resume=checkpoint_path(run, 3))
    assert len(result.main.acc_seen) == 5
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.ckpt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        run_experiment(ExperimentConfig(), resume=tmp_path)


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
