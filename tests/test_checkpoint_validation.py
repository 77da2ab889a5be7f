"""Reading checkpoints: every malformed header, field or embedded memory raises
CheckpointError naming the file (and the field), never another exception."""
import io
import json
import os
import struct
import zipfile

import numpy as np
import pytest

from aidge_incremental.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from aidge_incremental.memory import ExemplarMemory


def fnv1a64(data: bytes) -> int:
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) % 2 ** 64
    return h


@pytest.fixture
def good(tmp_path):
    memory = ExemplarMemory(budget=4, selection="random")
    memory.update(np.arange(8, dtype=np.uint8).reshape(4, 2), np.array([0, 0, 1, 1]))
    path = tmp_path / "step-001.ckpt"
    save_checkpoint(path, Checkpoint(1, {"method": "icarl"}, {"class_order": [0, 1]},
                                     {"w": np.ones(3, np.float32)}, {"seed": 0},
                                     {"memory": memory.to_bytes(), "lr": 0.1}))
    return path


def rewrite(path, change):
    """Copy the checkpoint's members through change(name, data) -> data, re-zipped
    (zip CRCs recomputed: only what the reader validates can catch it)."""
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, change(name, data))
    path.write_bytes(out.getvalue())


def test_the_good_checkpoint_loads(good):
    ckpt = load_checkpoint(good)
    assert ckpt.step == 1 and ExemplarMemory.from_bytes(ckpt.method_state["memory"]).class_sets == [(0, 2), (1, 2)]


def test_hostile_memory_in_a_checkpoint_names_file_and_field(good):
    def hostile(name, data):
        if name != "method/memory.bin":
            return data
        payload = bytearray(data[32:])
        dtype_at = 8 + 8  # rank 1, one dimension, then the dtype string's length
        assert payload[dtype_at:dtype_at + 8] == struct.pack("<Q", 3)
        payload[dtype_at + 8:dtype_at + 11] = b"|O8"[:3]  # dtype object, checksum recomputed
        payload = bytes(payload)
        return data[:16] + struct.pack("<QQ", len(payload), fnv1a64(payload)) + payload
    rewrite(good, hostile)
    with pytest.raises(CheckpointError, match=r"step-001\.ckpt.*dtype '\|O8'"):
        load_checkpoint(good)


@pytest.mark.parametrize("case", ["meta is a list", "unknown compression", "arrays not a list",
                                  "encrypted flag", "missing member"])
def test_malformed_headers_and_fields_raise_checkpoint_error(good, case):
    if case == "meta is a list":
        rewrite(good, lambda n, d: json.dumps([1, 2]).encode() if n == "meta.json" else d)
    elif case == "arrays not a list":
        def change(n, d):
            if n != "meta.json":
                return d
            meta = json.loads(d)
            meta["method_arrays"] = 5
            return json.dumps(meta).encode()
        rewrite(good, change)
    elif case == "missing member":
        with zipfile.ZipFile(good) as z:
            members = {n: z.read(n) for n in z.namelist() if n != "params.npz"}
        with zipfile.ZipFile(good, "w") as z:
            for n, d in members.items():
                z.writestr(n, d)
    else:
        data = bytearray(good.read_bytes())
        for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # every local and central header
            at = data.find(sig)
            while at >= 0:
                if case == "unknown compression":  # method field: 99
                    offset = 8 if sig == b"PK\x03\x04" else 10
                    data[at + offset:at + offset + 2] = struct.pack("<H", 99)
                else:  # general-purpose flag bit 0: encrypted
                    offset = 6 if sig == b"PK\x03\x04" else 8
                    data[at + offset] |= 1
                at = data.find(sig, at + 4)
        good.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"step-001\.ckpt"):
        load_checkpoint(good)


def test_devices_are_not_read(tmp_path):
    if os.path.exists("/dev/zero"):
        with pytest.raises(CheckpointError, match="not a regular file"):
            load_checkpoint("/dev/zero")
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_checkpoint(tmp_path)


# -- a checkpoint consistent with itself but not with the model or the scenario ------------------

@pytest.fixture(scope="module")
def icarl_run(tmp_path_factory):
    from aidge_incremental.experiment import ExperimentConfig, run_experiment
    out = tmp_path_factory.mktemp("icarl_run")
    run_experiment(ExperimentConfig(method="icarl", memory=40, epochs=1, initial=5, increment=5, hidden=[16],
                                    output_dir=str(out)))
    return out


def crafted_copy(run, tmp_path, change_meta=None, change_state=None):
    """A copy of the run's last checkpoint with meta.json (and the method's state) changed,
    re-zipped with valid CRCs and digests: only the checks against the model catch it."""
    from aidge_incremental.checkpoint import checkpoint_path
    ckpt = load_checkpoint(checkpoint_path(run, 1))
    if change_meta is not None:
        change_meta(ckpt)
    if change_state is not None:
        change_state(ckpt.method_state)
    path = tmp_path / "crafted" / "checkpoints" / "step-001.ckpt"
    save_checkpoint(path, ckpt)
    return path


@pytest.mark.parametrize("change,message", [
    (lambda c: c.result.__setitem__("class_order", c.result["class_order"][::-1]), "class order"),
    (lambda c: c.result.__setitem__("class_order", [0] * 10), "class order"),
    (lambda c: c.result.__setitem__("class_order", c.result["class_order"][:5]), "class order"),
    (lambda c: setattr(c, "step", 7), "step 7"),
    (lambda c: setattr(c, "step", -1), "step -1"),
    (lambda c: setattr(c, "step", 0), "head has 10 outputs"),
])
def test_crafted_checkpoint_metadata_is_refused_by_export_and_resume(icarl_run, tmp_path, capsys, change,
                                                                     message):
    """Before: a crafted class order exported with rc 0 and a wrong class map."""
    from aidge_incremental.cli import main
    from aidge_incremental.experiment import run_experiment
    path = crafted_copy(icarl_run, tmp_path, change_meta=change)
    assert main(["export", str(path), str(tmp_path / "out.onnx")]) == 2
    err = capsys.readouterr().err
    assert message in err and "step-001.ckpt" in err, err
    assert not (tmp_path / "out.onnx").exists()
    with pytest.raises(CheckpointError, match=message):
        run_experiment(resume=str(path), config={"output_dir": str(tmp_path / "resumed")})


def replace_memory(state, x, y, budget=40):
    memory = ExemplarMemory(budget=budget, selection="random")
    memory.update(x, y)
    state["replay_memory"] = memory.to_bytes()


@pytest.mark.parametrize("x,y,message", [
    (np.zeros((10, 3, 8, 8), np.uint8), np.repeat(np.arange(5), 2), r"shape \(3, 8, 8\)"),
    (np.zeros((10, 1, 8, 8), np.uint8), np.repeat(np.arange(10, 15), 2), r"classes \[10, 11, 12, 13, 14\]"),
    (np.zeros((10, 1, 8, 8), np.uint8), np.repeat(np.arange(3), [4, 3, 3]), "classes seen"),
    (np.zeros((10, 1, 8, 8), np.float32), np.arange(10), "dtype float32"),
])
def test_a_memory_consistent_with_itself_but_not_with_the_model_is_refused(icarl_run, tmp_path, x, y, message):
    """Before: such a memory failed later, inside NumPy or Aidge, with their messages."""
    from aidge_incremental.experiment import run_experiment
    path = crafted_copy(icarl_run, tmp_path, change_state=lambda s: replace_memory(s, x, y))
    with pytest.raises(CheckpointError, match=message):
        run_experiment(resume=str(path), config={"output_dir": str(tmp_path / "resumed")})
