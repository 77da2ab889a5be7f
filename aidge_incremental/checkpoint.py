"""Checkpoints: everything needed to continue a run after a completed step.

One file per step (``step-003.ckpt``), a zip holding ``meta.json`` (format
version, configuration, class order, metrics so far, the method's scalar
state and RNG states), ``params.npz`` (the model) and the method's arrays and
byte blobs (the replay memory, in its own checksummed format). A file is
written whole to a temporary name, fsynced, then renamed: a run killed in the
middle of a save leaves the previous checkpoint intact. Zip CRCs, the memory
checksum and a SHA-256 of the parameters catch corruption; a bad file raises
:class:`CheckpointError` naming it.

A checkpoint handed to ``run --resume``, ``export`` or ``predict`` is untrusted:
its zip members and the members of its ``.npz`` archives are bounded by the
decompression ratio limit from their headers and read through bounded streams,
each array's ``.npy`` header must declare exactly the bytes it holds (checked
before anything is allocated: :mod:`aidge_incremental.npyfile`), and every field
of ``meta.json`` is checked, the results so far (accuracies in [0, 1], lists of
one entry per step, a lower-triangular matrix) included.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
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

from .files import MAX_EXPANSION_RATIO, atomic_write, expansion_bound, open_regular, read_bounded_stream
from .npyfile import read_npz

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
            meta = json.loads(_member(z, "meta.json", path))
            if not isinstance(meta, dict) or meta.get("format") != "aidge_incremental checkpoint":
                raise CheckpointError(f"{path} is not an aidge_incremental checkpoint")
            if meta.get("version") != FORMAT_VERSION:
                raise CheckpointError(f"checkpoint {path} has format version {meta.get('version')}, "
                                      f"this version reads {FORMAT_VERSION}")
            _check_meta(meta, path)
            _check_result(meta["result"], meta["step"], path)
            params = read_npz(_member(z, "params.npz", path), f"checkpoint {path}: params.npz", CheckpointError)
            arrays = read_npz(_member(z, "method.npz", path), f"checkpoint {path}: method.npz", CheckpointError)
            blobs = {key: _member(z, f"method/{key}.bin", path) for key in meta["method_blobs"]}
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
    for info in z.infolist():
        # bzip2 and lzma members decompress a read's input without an output bound
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(f"corrupt checkpoint {path}: member {info.filename!r} uses zip compression "
                                  f"method {info.compress_type}; a checkpoint's members are stored or deflated")
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


def _member(z: zipfile.ZipFile, name: str, path) -> bytes:
    """A member's bytes, read through a bounded stream: at most the size its header
    declares (bounded with the others by _check_members)."""
    info = z.getinfo(name)
    with z.open(info) as stream:
        return read_bounded_stream(stream, f"{path}:{name}", "checkpoint member", limit=info.file_size,
                                   error=CheckpointError)


def _is_accuracy(value, none: bool = False) -> bool:
    if value is None:
        return none
    return type(value) in (int, float) and 0.0 <= value <= 1.0  # NaN and inf compare out of range


def _check_result(result: dict, step: int, path) -> None:
    """The results recorded up to ``step`` (RunResult.to_dict()), checked before a
    resumed run extends them or a report averages them: every accuracy a finite
    number in [0, 1] (null only where a figure does not apply), one entry per step
    done, a lower-triangular matrix, classes seen positive integers. Fields a
    hand-written checkpoint leaves out are not required here (resuming needs them
    and says so: experiment._prepare)."""
    steps = step + 1

    def bad(field, why):
        return CheckpointError(f"checkpoint {path}: its results' {field} {why}")

    def accuracies(field, values, none=False, length=None):
        if not isinstance(values, list) or len(values) != (steps if length is None else length):
            count = (f"{steps} accuracies, one per step up to its step {step}" if length is None
                     else f"{length} accuracies (row {length - 1} of a lower-triangular matrix)")
            raise bad(field, f"must be a list of {count}, got {_shown(values)}")
        for i, a in enumerate(values):
            if not _is_accuracy(a, none):
                raise bad(f"{field}[{i}]", f"= {a!r} is not an accuracy (a number in [0, 1]"
                                           f"{' or null' if none else ''})")

    def matrix(field, rows, none=False):
        if not isinstance(rows, list) or len(rows) != steps:
            raise bad(field, f"must be a lower-triangular matrix of {steps} rows, one per step up to its step "
                             f"{step}, got {_shown(rows)}")
        for t, row in enumerate(rows):
            accuracies(f"{field}[{t}]", row, none, length=t + 1)

    for key, kind in (("method", str), ("dataset_note", str), ("config", dict), ("environment", dict)):
        if key in result and not isinstance(result[key], kind):
            raise bad(key, f"must be a {'string' if kind is str else 'JSON object'}, got "
                           f"{type(result[key]).__name__}")
    if "classifiers" in result:
        classifiers = result["classifiers"]
        if not isinstance(classifiers, dict) or not classifiers:
            raise bad("classifiers", "must map each classifier's name to its history")
        for name, h in classifiers.items():
            where = f"classifiers[{name!r}]"
            if not isinstance(h, dict):
                raise bad(where, f"must be a JSON object, got {type(h).__name__}")
            for key in ("acc_seen", "acc_new", "acc_old", "matrix"):
                if key not in h:
                    raise bad(f"{where}.{key}", "is missing")
            accuracies(f"{where}.acc_seen", h["acc_seen"])
            accuracies(f"{where}.acc_new", h["acc_new"])
            accuracies(f"{where}.acc_old", h["acc_old"], none=True)
            matrix(f"{where}.matrix", h["matrix"])
            for key in ("acc_top5", "acc_seen_task_aware"):
                if key in h:
                    accuracies(f"{where}.{key}", h[key], none=True)
            if "matrix_task_aware" in h:
                matrix(f"{where}.matrix_task_aware", h["matrix_task_aware"], none=True)
            confusion = h.get("confusion", [])
            if not isinstance(confusion, list) or not all(
                    isinstance(r, list) and len(r) == len(confusion[0]) and all(_is_count(c) for c in r)
                    for r in confusion):
                raise bad(f"{where}.confusion", "must be a matrix of counts (integers >= 0)")
    if "classes_seen" in result:
        seen = result["classes_seen"]
        if not isinstance(seen, list) or len(seen) != steps or not all(_is_count(c) and c > 0 for c in seen):
            raise bad("classes_seen", f"must be {steps} positive integers, one per step up to its step {step}, "
                                      f"got {_shown(seen)}")
    seconds = result.get("step_seconds", [])
    if not isinstance(seconds, list) or len(seconds) > steps or not all(
            _is_count(s) or type(s) is float and math.isfinite(s) and s >= 0 for s in seconds):
        raise bad("step_seconds", f"must be at most {steps} durations (numbers >= 0), got {_shown(seconds)}")
    epochs = result.get("epochs", [])
    if not isinstance(epochs, list) or not all(
            isinstance(e, dict) and all(v is None or type(v) in (int, float, str, bool) for v in e.values())
            for e in epochs):
        raise bad("epochs", "must be a list of training-log rows (JSON objects of numbers)")
    n_steps = result.get("n_steps", 0)
    if not _is_count(n_steps) or not (n_steps == 0 or steps <= n_steps < 1 << 20):
        raise bad("n_steps", f"= {n_steps!r} is not the scenario's number of steps (0, or {steps} or more)")


def _is_count(value) -> bool:
    return type(value) is int and value >= 0


def _shown(value, limit: int = 100) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def latest_checkpoint(directory) -> Optional[pathlib.Path]:
    """The newest ``step-NNN.ckpt`` of a run directory (or of its checkpoints/ folder);
    temporary files left by an interrupted save are ignored."""
    directory = pathlib.Path(directory)
    folder = directory / CHECKPOINT_DIR if (directory / CHECKPOINT_DIR).is_dir() else directory
    found = [(int(m.group(1)), p) for p in folder.glob("step-*.ckpt") if (m := _NAME.match(p.name))]
    return max(found)[1] if found else None
