"""Output files: atomic writes that give results, checkpoints and memories the
mode any new file gets (0666 less the umask), not mkstemp's 0600."""
import os
import stat

import numpy as np
import pytest

from aidge_incremental.checkpoint import Checkpoint, save_checkpoint
from aidge_incremental.evaluation import ClassifierHistory, RunResult
from aidge_incremental.files import atomic_write
from aidge_incremental.memory import ExemplarMemory


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def small_result():
    history = ClassifierHistory()
    history.record(np.array([0, 1, 1]), np.array([0, 1, 0]), [np.array([0, 1])])
    return RunResult("finetune", {}, [0, 1], {"head": history}, classes_seen=[2])


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002, 0o027])
def test_written_files_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    expected = 0o666 & ~mask
    atomic_write(tmp_path / "plain.bin", b"x")
    small_result().write(tmp_path / "run")
    save_checkpoint(tmp_path / "step-000.ckpt",
                    Checkpoint(0, {}, small_result().to_dict(), {"w": np.zeros(2, np.float32)}, {}, {}))
    memory = ExemplarMemory(budget=4, selection="random")
    memory.update(np.zeros((4, 2), np.uint8), np.array([0, 0, 1, 1]))
    memory.save(tmp_path / "memory.aim")
    for name in ("plain.bin", "run/results.json", "run/results.csv", "step-000.ckpt", "memory.aim"):
        assert mode(tmp_path / name) == expected, (name, oct(mode(tmp_path / name)))


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path, umask):
    path = tmp_path / "results.json"
    atomic_write(path, b"old")
    with pytest.raises(TypeError):
        atomic_write(path, "not bytes")  # fails after the temporary file was created
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    os.chmod(path, 0o600)  # an existing file's mode is not kept: a new file replaces it
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o644
