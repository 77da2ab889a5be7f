"""Checkpoints: everything needed to continue a run after a completed step.

One file per step (``step-003.ckpt``), a zip holding ``meta.json`` (format
version, configuration, class order, metrics so far, the method's scalar
state and RNG states), ``params.npz`` (the model) and the method's arrays and
byte blobs (the replay memory, in its own checksummed format). A file is
written whole to a temporary name, fsynced, then renamed: a run killed in the
middle of a save leaves the previous checkpoint intact. Zip CRCs, the memory
checksum and a SHA-256 of the parameters catch corruption; a bad file raises
:class:`CheckpointError` naming it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import re
import signal
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from .files import MAX_EXPANSION_RATIO, atomic_write, expansion_bound, open_regular

__all__ = ["Checkpoint", "CheckpointError", "checkpoint_path", "latest_checkpoint", "load_checkpoint",
           "save_checkpoint", "CHECKPOINT_DIR"]

# 2: options declared by the methods (distillation_weight, memory for every method, ...),
#    the replay memory under 'replay_memory'
FORMAT_VERSION = 2
CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step-(\d+)\.ckpt$")
_MEMBER = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
# Fault injection for the crash tests: "kill-during-checkpoint-write:STEP" makes the
# process SIGKILL itself half-way through writing that step's checkpoint.
FAULT_ENV = "AIDGE_INCREMENTAL_FAULT"


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupted or of an unknown version."""


@dataclass
class Checkpoint:
    step: int                     #: last completed step
    config: dict
    result: dict                  #: RunResult.to_dict() after that step
    params: Dict[str, np.ndarray]
    model_rng: dict
    method_state: dict            #: values: JSON-able, np.ndarray or bytes
    path: Optional[pathlib.Path] = field(default=None, compare=False)


def checkpoint_path(directory, step: int) -> pathlib.Path:
    return pathlib.Path(directory) / CHECKPOINT_DIR / f"step-{step:03d}.ckpt"


def _params_digest(params: Dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(params):
        h.update(name.encode())
        h.update(np.ascontiguousarray(params[name], np.float32).tobytes())
    return h.hexdigest()


def save_checkpoint(path, ckpt: Checkpoint) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scalars, arrays, blobs = {}, {}, {}
    for key, value in ckpt.method_state.items():
        if isinstance(value, np.ndarray):
            arrays[key] = value
        elif isinstance(value, (bytes, bytearray)):
            blobs[key] = bytes(value)
        else:
            scalars[key] = value
    meta = {"format": "aidge_incremental checkpoint", "version": FORMAT_VERSION, "step": ckpt.step,
            "config": ckpt.config, "result": ckpt.result, "model_rng": ckpt.model_rng,
            "method_state": scalars, "method_arrays": sorted(arrays), "method_blobs": sorted(blobs),
            "params_sha256": _params_digest(ckpt.params)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("meta.json", json.dumps(meta, allow_nan=False))
        # float32 weights barely deflate (9 % for a ResNet-20) at 80 ms a checkpoint: stored as they are
        z.writestr("params.npz", _npz_bytes(ckpt.params), compress_type=zipfile.ZIP_STORED)
        z.writestr("method.npz", _npz_bytes(arrays))
        for key, blob in blobs.items():
            z.writestr(f"method/{key}.bin", blob)
    data = buffer.getvalue()
    if os.environ.get(FAULT_ENV) == f"kill-during-checkpoint-write:{ckpt.step}":
        fd, _ = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.write(fd, data[: len(data) // 2])
        os.fsync(fd)
        os.kill(os.getpid(), signal.SIGKILL)
    atomic_write(path, data)
    return path


def _npz_bytes(arrays: Dict[str, np.ndarray]) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def load_checkpoint(path) -> Checkpoint:
    path = pathlib.Path(path)
    if not os.path.lexists(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    fd = open_regular(path, "checkpoint", CheckpointError)  # a FIFO or a device is refused before any read
    try:
        with os.fdopen(fd, "rb") as f, zipfile.ZipFile(f) as z:
            _check_members(z, path, os.fstat(f.fileno()).st_size)
            meta = json.loads(z.read("meta.json"))
            if not isinstance(meta, dict) or meta.get("format") != "aidge_incremental checkpoint":
                raise CheckpointError(f"{path} is not an aidge_incremental checkpoint")
            if meta.get("version") != FORMAT_VERSION:
                raise CheckpointError(f"checkpoint {path} has format version {meta.get('version')}, "
                                      f"this version reads {FORMAT_VERSION}")
            _check_meta(meta, path)
            params = _read_npz(z.read("params.npz"))
            arrays = _read_npz(z.read("method.npz"))
            blobs = {key: z.read(f"method/{key}.bin") for key in meta["method_blobs"]}
            if set(arrays) != set(meta["method_arrays"]) or _params_digest(params) != meta["params_sha256"]:
                raise CheckpointError(f"corrupt checkpoint {path}: contents do not match their digest")
            _check_memory_blobs(blobs, path)
            state = dict(meta["method_state"])
            state.update(arrays)
            state.update(blobs)
            checkpoint = Checkpoint(meta["step"], meta["config"], meta["result"], params,
                                    meta["model_rng"], state, path)
    except CheckpointError:
        raise
    # zipfile reports malformed headers as NotImplementedError (unknown compression),
    # RuntimeError (encrypted member) or AttributeError, besides the usual ones.
    except (zipfile.BadZipFile, zlib.error, KeyError, ValueError, OSError, EOFError, TypeError,
            NotImplementedError, RuntimeError, AttributeError, RecursionError) as e:
        raise CheckpointError(f"corrupt checkpoint {path}: {type(e).__name__}: {e}") from e
    return checkpoint


#: Largest decompressed content of a checkpoint (16 GiB): a zip bomb is refused
#: from its headers, before anything is decompressed.
MAX_CHECKPOINT_BYTES = 16 << 30


def _check_members(z: zipfile.ZipFile, path, size: int) -> None:
    total = sum(info.file_size for info in z.infolist())
    bound = expansion_bound(size, MAX_CHECKPOINT_BYTES)
    if total > bound:
        raise CheckpointError(f"corrupt checkpoint {path}: members expand to {total} bytes, more than {bound} "
                              f"({MAX_EXPANSION_RATIO}x its {size} bytes, the decompression ratio limit, or "
                              f"{MAX_CHECKPOINT_BYTES})")


def _check_meta(meta: dict, path) -> None:
    """The types and ranges of meta.json's fields, before anything uses them (what
    they must agree with -- the model, the scenario -- is checked when a method is
    restored: experiment.restore_method)."""
    step = meta.get("step")
    if type(step) is not int or step < 0:
        raise CheckpointError(f"checkpoint {path}: step {step!r} is not a step number (an integer >= 0)")
    for key in ("config", "result", "model_rng", "method_state"):
        if not isinstance(meta.get(key), dict):
            raise CheckpointError(f"checkpoint {path}: '{key}' must be a JSON object, got "
                                  f"{type(meta.get(key)).__name__}")
    for key in ("method_arrays", "method_blobs"):
        names = meta.get(key)
        if not isinstance(names, list) or not all(isinstance(n, str) and _MEMBER.match(n) for n in names):
            raise CheckpointError(f"checkpoint {path}: '{key}' must list member names")
    order = meta["result"].get("class_order")
    if not isinstance(order, list) or not all(type(c) is int for c in order) or len(set(order)) != len(order):
        raise CheckpointError(f"checkpoint {path}: its class order must be a list of distinct integer labels, "
                              f"got {str(order)[:100]}")
    if not isinstance(meta.get("params_sha256"), str):
        raise CheckpointError(f"checkpoint {path}: 'params_sha256' is missing")


def _check_memory_blobs(blobs: Dict[str, bytes], path) -> None:
    """Validate every replay memory a checkpoint carries (every field, see
    ExemplarMemory.from_bytes) now, naming the checkpoint, rather than when a
    method restores it."""
    from .memory import CorruptFileError, ExemplarMemory
    for key, blob in blobs.items():
        if blob[:8] == b"AIDGEMEM" and blob[12:16] == (1).to_bytes(4, "little"):
            try:
                ExemplarMemory.from_bytes(blob, source=f"{path}:method/{key}.bin")
            except CorruptFileError as e:
                raise CheckpointError(f"corrupt checkpoint {path}: {e}") from e


def _read_npz(data: bytes) -> Dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def latest_checkpoint(directory) -> Optional[pathlib.Path]:
    """The newest ``step-NNN.ckpt`` of a run directory (or of its checkpoints/ folder);
    temporary files left by an interrupted save are ignored."""
    directory = pathlib.Path(directory)
    folder = directory / CHECKPOINT_DIR if (directory / CHECKPOINT_DIR).is_dir() else directory
    found = [(int(m.group(1)), p) for p in folder.glob("step-*.ckpt") if (m := _NAME.match(p.name))]
    return max(found)[1] if found else None
