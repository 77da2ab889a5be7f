"""Run and export directories (rundir.py): locks that a planted link or hard link
cannot turn against a file, and --export-dir locked and checked like --output-dir."""
import fcntl
import json
import os

import pytest

from aidge_incremental.experiment import ExperimentConfig, run_experiment
from aidge_incremental.options import ConfigError
from aidge_incremental.rundir import RunDirectoryError, run_directory


@pytest.mark.parametrize("kind", ["symlink", "dangling symlink", "hard link", "fifo", "directory"])
def test_a_planted_lock_link_never_truncates_its_target(tmp_path, kind):
    """Before: run_directory opened D/.lock with O_RDWR|O_CREAT (following links),
    truncated it and wrote the PID: a link planted there destroyed the linked file."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious data")
    run = tmp_path / "run"
    run.mkdir()
    if kind == "symlink":
        (run / ".lock").symlink_to(victim)
    elif kind == "dangling symlink":
        (run / ".lock").symlink_to(tmp_path / "created-through-the-link")
    elif kind == "hard link":
        os.link(victim, run / ".lock")
    elif kind == "fifo":
        os.mkfifo(run / ".lock")
    else:
        (run / ".lock").mkdir()
    with pytest.raises(RunDirectoryError, match=r"\.lock"):
        with run_directory(run):
            pass
    assert victim.read_text() == "precious data"
    assert not (tmp_path / "created-through-the-link").exists()


def test_the_lock_is_created_exclusively_and_reused(tmp_path):
    with run_directory(tmp_path / "run"):
        lock = tmp_path / "run" / ".lock"
        assert lock.is_file() and not lock.is_symlink()
        assert lock.read_text() == str(os.getpid())
        assert (lock.stat().st_mode & 0o777) == 0o600
    with run_directory(tmp_path / "run"):  # an existing lock of ours is reused
        pass


def test_a_lock_held_by_another_process_is_refused_naming_its_pid(tmp_path):
    run = tmp_path / "run"
    with run_directory(run):
        fd = os.open(run / ".lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


# -- --export-dir ------------------------------------------------------------------------

def tiny(method, **kw):
    return ExperimentConfig(method=method, epochs=1, initial=5, increment=5, hidden=[16], **kw)


def exports(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_a_second_run_in_an_export_dir_is_refused_unless_overwrite(tmp_path):
    """Before: two runs sharing --export-dir left LwF's step-000.onnx beside iCaRL's
    step-000-nme.onnx, each with a valid sidecar."""
    export = tmp_path / "exports"
    run_experiment(tiny("icarl", memory=20, export_dir=str(export)))
    assert "step-000-nme.onnx" in exports(export)
    with pytest.raises(RunDirectoryError, match=r"exports.*already holds.*--overwrite"):
        run_experiment(tiny("lwf", export_dir=str(export)))
    assert "step-000-nme.onnx" in exports(export)  # nothing touched by the refused run
    run_experiment(tiny("lwf", export_dir=str(export)), overwrite=True)
    assert exports(export) == ["step-000.onnx", "step-000.onnx.sha256", "step-001.onnx",
                               "step-001.onnx.sha256"]


def test_an_export_dir_in_use_is_refused(tmp_path):
    export = tmp_path / "exports"
    with run_directory(export):  # another run holds it
        with pytest.raises(RunDirectoryError, match="in use by another run"):
            run_experiment(tiny("finetune", export_dir=str(export)))


def test_a_resumed_run_continues_its_own_exports_only(tmp_path):
    out, export = tmp_path / "run", tmp_path / "exports"
    run_experiment(tiny("lwf", output_dir=str(out), export_dir=str(export)))
    (out / "checkpoints" / "step-001.ckpt").unlink()
    with pytest.raises(ConfigError, match=f"give --export-dir {export}"):
        run_experiment(resume=str(out))  # a folder outside the run, named by the checkpoint: the user says it
    run_experiment({"export_dir": str(export)}, resume=str(out))  # the same run: its exports are its own
    assert exports(export) == ["step-000.onnx", "step-000.onnx.sha256", "step-001.onnx",
                               "step-001.onnx.sha256"]
    other = tmp_path / "other"
    run_experiment(tiny("finetune", output_dir=str(other)))
    (other / "checkpoints" / "step-001.ckpt").unlink()
    with pytest.raises(RunDirectoryError, match="another run"):
        run_experiment({"export_dir": str(export)}, resume=str(other))


def test_export_dir_equal_to_output_dir_is_locked_once(tmp_path):
    out = tmp_path / "run"
    result = run_experiment(tiny("finetune", output_dir=str(out), export_dir=str(out)))
    assert (out / "step-001.onnx").is_file() and (out / "results.json").is_file()
    assert json.loads((out / "results.json").read_text())["method"] == result.method


def test_a_special_file_as_the_export_record_is_not_waited_on(tmp_path):
    """The record of whose exports a folder holds is read like any untrusted file."""
    export = tmp_path / "exports"
    export.mkdir()
    os.mkfifo(export / ".aidge_incremental-exports.json")
    (export / "step-000.onnx").write_bytes(b"someone's")
    with pytest.raises(RunDirectoryError, match="already holds another run's exports"):
        run_experiment(tiny("finetune", export_dir=str(export)))


@pytest.mark.parametrize("sub", ["checkpoints", "tensorboard"])
def test_a_linked_subfolder_is_refused_before_anything_is_deleted_there(tmp_path, sub):
    """Before: checkpoints/ linked to another folder had that folder's files deleted
    (stale temporaries, --overwrite's checkpoints) and the run's written there."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    precious = [elsewhere / ".precious.abcdefgh.tmp", elsewhere / "step-999.ckpt", elsewhere / "events.out.x"]
    for path in precious:
        path.write_bytes(b"keep")
    out = tmp_path / "run"
    out.mkdir()
    (out / sub).symlink_to(elsewhere)
    with pytest.raises(RunDirectoryError, match=f"{sub} is a link"):
        run_experiment(tiny("finetune", output_dir=str(out)), overwrite=True)
    assert all(path.read_bytes() == b"keep" for path in precious)


def test_only_temporaries_of_our_own_writes_are_removed(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    ours, theirs, folder = out / ".results.json.k3j9x0qa.tmp", out / ".precious.tmp", out / ".x.abcdefgh.tmp"
    ours.write_bytes(b"half")
    theirs.write_bytes(b"keep")
    folder.mkdir()
    run_experiment(tiny("finetune", output_dir=str(out)))
    assert not ours.exists() and theirs.read_bytes() == b"keep" and folder.is_dir()
