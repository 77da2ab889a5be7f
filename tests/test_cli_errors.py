"""The command line's errors: a known error exits 2 with one line naming the
problem and the fix, a refused run leaves nothing behind, and no traceback
ever reaches the user."""
import importlib.util
import os
import pathlib
import shutil

import numpy as np
import pytest

from aidge_incremental import cli, experiment
from aidge_incremental.cli import main
from aidge_incremental.export.targets import EXPORT_TARGETS, ExportTarget, register_export_target


def one_line_error(capsys, *needles, absent=()):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("aidge-incremental: error: "), err
    for needle in needles:
        assert needle in lines[0], err
    for needle in absent:
        assert needle not in lines[0], err
    assert "Traceback" not in err
    return lines[0]


def snapshot(folder: pathlib.Path) -> dict:
    """Every file under ``folder``: its bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def images_npz(tmp_path):
    """16x16 grey images of 4 classes, stored channels-last."""
    rng = np.random.default_rng(0)
    path = tmp_path / "images.npz"
    np.savez(path, x_train=rng.integers(0, 256, (120, 16, 16, 1), dtype=np.uint8),
             y_train=np.repeat(np.arange(4), 30))
    return path


def test_cuda_without_a_device_is_refused_before_anything_is_written(tmp_path, capsys):
    from aidge_incremental.backend.cuda import cuda_status
    if cuda_status().problem is None:
        pytest.skip("this machine can run the cuda backend")
    out = tmp_path / "run"
    assert main(["run", "--backend", "cuda", "--epochs", "1", "--output-dir", str(out)]) == 2
    one_line_error(capsys, "backend 'cuda' cannot run here", "--backend cpu")
    assert not out.exists()


def test_int8_export_of_a_cnn_is_refused_before_training(tmp_path, capsys, images_npz):
    out = tmp_path / "run"
    assert main(["run", "--dataset", "npz", "--data-dir", str(images_npz), "--model", "lenet", "--epochs", "1",
                 "--initial", "2", "--increment", "2", "--export-dir", str(out / "export"),
                 "--export-target", "cpp-int8", "--output-dir", str(out)]) == 2
    exporter = all(importlib.util.find_spec(m) for m in ("aidge_export_cpp", "aidge_quantization"))
    if exporter and shutil.which("cmake") and shutil.which("c++"):
        one_line_error(capsys, "export_target cpp-int8: lenet has convolutions", "float32")
    else:
        one_line_error(capsys, "export_target cpp-int8")
    assert not out.exists()


def test_a_failed_export_comes_after_the_step_checkpoint(tmp_path, capsys):
    def write(source, dest, log=None, nme_only=False):
        raise OSError(f"disk full while writing {dest}")

    register_export_target(ExportTarget("failing", "always fails", False, lambda step: f"s{step}",
                                        write, lambda *a: None, lambda p: False))
    try:
        out = tmp_path / "run"
        assert main(["run", "--method", "finetune", "--epochs", "1", "--export-dir", str(tmp_path / "e"),
                     "--export-target", "failing", "--output-dir", str(out), "--no-progress"]) == 2
    finally:
        EXPORT_TARGETS.unregister("failing")
    ckpt = out / "checkpoints" / "step-000.ckpt"
    line = one_line_error(capsys, "export of step 0 failed: disk full", f"saved in {ckpt}", f"--resume {out}")
    assert ckpt.exists() and "aidge-incremental export" in line


def test_resume_of_a_missing_directory_says_so(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["run", "--resume", str(missing)]) == 2
    one_line_error(capsys, f"--resume {missing}: no such run directory or checkpoint file",
                   absent=("is not in a run's checkpoints",))
    assert not missing.exists()


def test_predict_and_export_of_a_missing_file_say_so(tmp_path, capsys):
    missing = tmp_path / "model.onnx"
    assert main(["predict", str(missing)]) == 2
    one_line_error(capsys, f"{missing} does not exist", absent=("digest", "sha256"))
    assert main(["predict", str(tmp_path / "step.ckpt"), "--input", str(tmp_path / "x.npy")]) == 2
    one_line_error(capsys, "does not exist")
    assert main(["export", str(tmp_path / "step-000.ckpt"), str(tmp_path / "out.onnx")]) == 2
    one_line_error(capsys, "step-000.ckpt does not exist")
    assert sorted(os.listdir(tmp_path)) == []


def test_resuming_a_complete_run_changes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--method", "finetune", "--epochs", "1", "--initial", "5", "--increment", "5",
                 "--output-dir", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    before = snapshot(out)
    assert main(["run", "--resume", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "the run is complete, nothing to resume" in printed and "already complete" in printed
    assert snapshot(out) == before


def test_an_unexpected_error_is_one_line_without_traceback(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("internal")

    monkeypatch.setattr(experiment, "run_experiment", broken)
    assert main(["run", "--epochs", "1", "--output-dir", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "internal error: KeyError" in err and "Traceback" not in err
    monkeypatch.setenv(cli.DEBUG_ENV, "1")  # the traceback on demand
    with pytest.raises(KeyError):
        main(["run", "--epochs", "1", "--output-dir", str(tmp_path / "x")])


def test_a_multiline_message_prints_its_first_line(tmp_path, capsys, monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("cmake --build failed for x:\nerror: one\nerror: two")

    monkeypatch.setattr(experiment, "run_experiment", failing)
    assert main(["run", "--epochs", "1", "--output-dir", str(tmp_path / "x")]) == 2
    one_line_error(capsys, "cmake --build failed for x:", f"+2 lines: {cli.DEBUG_ENV}=1")


def test_help_documents_the_npz_layout(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--dataset npz" in out and "[N, H, W, C] (channels-last" in out and "x_test, y_test" in out


def test_channels_last_npz_is_transposed_and_said(tmp_path, capsys, images_npz):
    out = tmp_path / "run"
    assert main(["run", "--dataset", "npz", "--data-dir", str(images_npz), "--method", "finetune",
                 "--epochs", "1", "--initial", "2", "--increment", "2", "--output-dir", str(out),
                 "--no-progress"]) == 0
    assert "read as channels-last (N, H, W, C) and transposed to (N, C, H, W) = (1, 16, 16)" in \
        capsys.readouterr().out


def test_more_known_errors_are_one_line_naming_the_fix(tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    assert main(["run", "--dataset", "npz", "--data-dir", str(tmp_path / "folder"),
                 "--output-dir", str(tmp_path / "a")]) == 2
    one_line_error(capsys, "is a directory: expected a .npz file")
    np.save(tmp_path / "objects.npy", np.array([object()]), allow_pickle=True)
    assert main(["predict", str(tmp_path / "objects.npy"), "--input", str(tmp_path / "objects.npy")]) == 2
    one_line_error(capsys, "is not a plain numeric .npy array", "np.save", absent=("allow_pickle=`",))
    assert main(["run", "--lr", "1e30", "--epochs", "1", "--method", "finetune", "--output-dir",
                 str(tmp_path / "diverged"), "--no-progress"]) == 2
    one_line_error(capsys, "training diverged at epoch 0", "lower the learning rate")
    assert not (tmp_path / "a").exists()
