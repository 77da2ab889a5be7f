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


def _keep_steps(result, steps):
    """The results of the first ``steps`` steps only."""
    for h in result["classifiers"].values():
        for key in ("acc_seen", "acc_new", "acc_old", "acc_top5", "acc_seen_task_aware", "matrix",
                    "matrix_task_aware"):
            del h[key][steps:]
    for key in ("classes_seen", "step_seconds"):
        del result[key][steps:]


@pytest.mark.parametrize("change,message", [
    (lambda c: c.result.__setitem__("class_order", c.result["class_order"][::-1]), "class order"),
    (lambda c: c.result.__setitem__("class_order", [0] * 10), "class order"),
    (lambda c: c.result.__setitem__("class_order", c.result["class_order"][:5]), "class order"),
    (lambda c: setattr(c, "step", 7), "step 7"),
    (lambda c: setattr(c, "step", -1), "step -1"),
    (lambda c: setattr(c, "step", 0), "acc_seen must be a list of 1 accuracies, one per step up to its step 0"),
    # results of step 0 too: the model's head is what disagrees
    (lambda c: (setattr(c, "step", 0), _keep_steps(c.result, 1)), "head has 10 outputs"),
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


# -- what a checkpoint's members hold: bounded before anything is decompressed or allocated ---------

def npy_bytes(shape, descr="<f4", body=b""):
    """A .npy file with the header given, followed by ``body`` (whatever its size)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue() + body


def npz_bytes(members, compression=zipfile.ZIP_STORED):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def replace_member(path, member, data, meta_change=None):
    def change(name, old):
        if name == member:
            return data
        if name == "meta.json" and meta_change is not None:
            meta = json.loads(old)
            meta_change(meta)
            return json.dumps(meta).encode()
        return old
    rewrite(path, change)


@pytest.mark.parametrize("member", ["params.npz", "method.npz"])
def test_a_compression_bomb_inside_an_npz_member_is_refused_from_its_headers(good, monkeypatch, member):
    """Before: only the checkpoint's own members were bounded; a 1 MB checkpoint whose
    params.npz held a np.savez_compressed GiB reached 2.2 GB before 'contents do not match
    their digest'. Here the digest matches: only the member's expansion ratio refuses it."""
    from aidge_incremental import files
    from aidge_incremental.checkpoint import _params_digest
    monkeypatch.setattr(files, "MIN_EXPANSION_BOUND", 1 << 20)  # the ratio, at a test's scale
    bomb = {"w": np.zeros(1 << 20, np.float32)}  # 4 MiB of zeros: 4 kB deflated
    packed = io.BytesIO()
    np.savez_compressed(packed, **bomb)
    assert files.MAX_EXPANSION_RATIO * len(packed.getvalue()) < (4 << 20)

    def meta_change(meta):
        if member == "params.npz":
            meta["params_sha256"] = _params_digest(bomb)
        else:
            meta["method_arrays"] = ["w"]
    replace_member(good, member, packed.getvalue(), meta_change)
    with pytest.raises(CheckpointError, match=rf"step-001\.ckpt: {member}: member 'w\.npy' expands to "
                                              rf"{(4 << 20) + 128} bytes.*decompression ratio limit"):
        load_checkpoint(good)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_an_npy_header_declaring_more_than_its_member_holds_is_refused_before_allocating(
        good, tmp_path, capsys, compression):
    """Before: np.load allocated the declared shape (1e12 float32: 3.6 TiB), a MemoryError
    ('internal error', exit 1) from run --resume and export."""
    from aidge_incremental.cli import main
    replace_member(good, "params.npz", npz_bytes({"w.npy": npy_bytes((10 ** 12,), body=bytes(12))}, compression))
    message = r"step-001\.ckpt: params\.npz: member 'w\.npy': its header declares shape \(1000000000000,\)"
    with pytest.raises(CheckpointError, match=message + r" of float32, 4000000000000 bytes; the member holds 12"):
        load_checkpoint(good)
    assert main(["export", str(good), str(tmp_path / "out.onnx")]) == 2
    err = capsys.readouterr().err
    assert "its header declares shape (1000000000000,)" in err and "internal error" not in err, err
    # and a header declaring less than the member holds
    replace_member(good, "params.npz", npz_bytes({"w.npy": npy_bytes((2,), body=bytes(12))}, compression))
    with pytest.raises(CheckpointError, match=r"params\.npz: member 'w\.npy': .* 8 bytes; the member holds 12"):
        load_checkpoint(good)


@pytest.mark.parametrize("members,message", [
    ({"w.npy": npy_bytes((2,), "|O", bytes(16))}, r"member 'w\.npy' is not a readable \.npy array \(its dtype "
                                                   r"object holds Python objects"),
    ({"w.npy": b"\x93NUMPY\x01\x00" + b"\xff\xff"}, r"member 'w\.npy' is not a readable \.npy array"),
    ({"w.txt": b"text"}, r"member 'w\.txt' is not an array"),
])
def test_npz_members_that_are_not_plain_arrays_are_refused(good, members, message):
    replace_member(good, "params.npz", npz_bytes(members))
    with pytest.raises(CheckpointError, match=r"step-001\.ckpt: params\.npz: " + message):
        load_checkpoint(good)


def test_a_checkpoint_member_compressed_otherwise_than_deflate_is_refused(good):
    with zipfile.ZipFile(good) as z:
        members = {name: z.read(name) for name in z.namelist()}
    with zipfile.ZipFile(good, "w", zipfile.ZIP_BZIP2) as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(CheckpointError, match=r"step-001\.ckpt: member 'meta\.json' uses zip compression method 12"):
        load_checkpoint(good)


def test_a_memory_with_undecodable_text_is_a_checkpoint_error(good):
    """ExemplarMemory.from_bytes raises UnicodeDecodeError (a ValueError) for a crafted
    string field: the loader reports it as a corrupt checkpoint naming the file."""
    def undecodable(name, data):
        if name != "method/memory.bin":
            return data
        payload = bytearray(data[32:])
        payload[24:27] = b"\xff\xfe\xfd"  # the dtype string (checksum recomputed)
        payload = bytes(payload)
        return data[:16] + struct.pack("<QQ", len(payload), fnv1a64(payload)) + payload
    rewrite(good, undecodable)
    with pytest.raises(CheckpointError, match=r"corrupt checkpoint .*step-001\.ckpt: UnicodeDecodeError"):
        load_checkpoint(good)


# -- the results a checkpoint records ---------------------------------------------------------------

def _first(result):
    return result["classifiers"][next(iter(result["classifiers"]))]


@pytest.mark.parametrize("change,field", [
    (lambda r: _first(r)["acc_seen"].__setitem__(1, 7.5), r"acc_seen\[1\] = 7\.5 is not an accuracy"),
    (lambda r: _first(r)["acc_new"].__setitem__(0, "0.9"), r"acc_new\[0\] = '0\.9' is not an accuracy"),
    (lambda r: _first(r)["acc_old"].__setitem__(1, -0.1), r"acc_old\[1\] = -0\.1 is not an accuracy"),
    (lambda r: _first(r)["acc_seen"].__setitem__(1, None), r"acc_seen\[1\] = None is not an accuracy"),
    (lambda r: _first(r)["acc_seen"].append(0.5), r"acc_seen must be a list of 2 accuracies, one per step up"),
    (lambda r: _first(r)["matrix"][1].append(0.5), r"matrix\[1\] must be a list of 2 accuracies \(row 1"),
    (lambda r: _first(r)["matrix"].pop(), r"matrix must be a lower-triangular matrix of 2 rows"),
    (lambda r: _first(r)["matrix_task_aware"][0].__setitem__(0, True), r"matrix_task_aware\[0\]\[0\] = True"),
    (lambda r: _first(r).__setitem__("confusion", [[1, -2]]), r"confusion must be a matrix of counts"),
    (lambda r: r.__setitem__("classes_seen", [5, 0]), r"classes_seen must be 2 positive integers"),
    (lambda r: r.__setitem__("classes_seen", [5.0, 10.0]), r"classes_seen must be 2 positive integers"),
    (lambda r: r.__setitem__("classifiers", []), r"classifiers must map"),
    (lambda r: r.__setitem__("step_seconds", ["1s"]), r"step_seconds must be"),
    (lambda r: r.__setitem__("n_steps", 1), r"n_steps = 1"),
])
def test_crafted_results_are_refused_when_the_checkpoint_is_loaded(icarl_run, tmp_path, change, field):
    """Before: acc_seen[1] = 7.5 gave 'average incremental 194.80%' in results.json, string
    accuracies an internal TypeError after training a step."""
    path = crafted_copy(icarl_run, tmp_path, change_meta=lambda c: change(c.result))
    with pytest.raises(CheckpointError, match=r"step-001\.ckpt: its results' (classifiers\['\w+'\]\.)?" + field):
        load_checkpoint(path)


def test_a_run_resumed_from_crafted_results_writes_nothing(icarl_run, tmp_path):
    from aidge_incremental.experiment import run_experiment
    path = crafted_copy(icarl_run, tmp_path, change_meta=lambda c: _first(c.result)["acc_seen"].__setitem__(1, 7.5))
    with pytest.raises(CheckpointError, match=r"acc_seen\[1\] = 7\.5"):
        run_experiment(resume=str(path), config={"output_dir": str(tmp_path / "resumed")})
    assert not (tmp_path / "resumed" / "results.json").exists()
    # the run's own checkpoint passes every check
    from aidge_incremental.checkpoint import checkpoint_path
    assert load_checkpoint(checkpoint_path(icarl_run, 1)).step == 1
