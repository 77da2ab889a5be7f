"""Digests that let ``predict`` refuse a corrupted or tampered export.

An ONNX export ``X.onnx`` gets a sidecar ``X.onnx.sha256`` (JSON: name, size,
SHA-256); a C++ export directory gets ``MANIFEST.json`` listing the SHA-256 and
size of every file of the project (sources, weights, the built binary).
Both are written atomically and last, so an interrupted export has no digest
and is refused. A digest guards against accidents (a flipped byte, a truncated
copy) and against edits by someone who does not rewrite the digest too: it is
not a signature.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Dict, Iterable

from ..files import atomic_write

__all__ = ["IntegrityError", "MANIFEST", "sha256_file", "write_sidecar", "check_sidecar",
           "write_manifest", "check_manifest"]

MANIFEST = "MANIFEST.json"
FORMAT = "aidge_incremental-export/1"
_MAX_MANIFEST = 1 << 20  # a manifest is a few kB: refuse to parse more


class IntegrityError(ValueError):
    """An export whose files do not match their stored digest."""


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sidecar(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.name + ".sha256")


def write_sidecar(path) -> pathlib.Path:
    path = pathlib.Path(path)
    record = {"format": FORMAT, "file": path.name, "size": path.stat().st_size, "sha256": sha256_file(path)}
    side = _sidecar(path)
    atomic_write(side, (json.dumps(record, indent=1) + "\n").encode())
    return side


def _read_json(path: pathlib.Path, what: str) -> dict:
    try:
        if path.stat().st_size > _MAX_MANIFEST:
            raise IntegrityError(f"{path} is too large to be a {what}")
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise IntegrityError(f"{path} is missing: the export has no digest to check it against "
                             f"(not written by aidge_incremental, or not completely)") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise IntegrityError(f"{what} {path} is unreadable: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise IntegrityError(f"{path} is not a {what} of aidge_incremental ({FORMAT})")
    return data


def _check_file(path: pathlib.Path, size, digest) -> None:
    if not path.is_file():
        raise IntegrityError(f"{path} is missing from the export")
    actual = path.stat().st_size
    if actual != size:
        raise IntegrityError(f"{path} has {actual} bytes, the export wrote {size}: truncated or modified")
    if sha256_file(path) != digest:
        raise IntegrityError(f"{path} does not match its SHA-256 digest: corrupted or modified")


def check_sidecar(path) -> None:
    """Raise :class:`IntegrityError` unless ``path`` matches its ``.sha256`` sidecar."""
    path = pathlib.Path(path)
    record = _read_json(_sidecar(path), "digest")
    if record.get("file") != path.name:
        raise IntegrityError(f"the digest {_sidecar(path)} is for {record.get('file')!r}, not {path.name}")
    _check_file(path, record.get("size"), record.get("sha256"))


def write_manifest(folder, files: Iterable[pathlib.Path]) -> pathlib.Path:
    folder = pathlib.Path(folder)
    entries: Dict[str, dict] = {}
    for path in sorted(files):
        rel = path.relative_to(folder).as_posix()
        entries[rel] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    out = folder / MANIFEST
    atomic_write(out, (json.dumps({"format": FORMAT, "files": entries}, indent=1) + "\n").encode())
    return out


def check_manifest(folder) -> Dict[str, dict]:
    """Check every file listed in ``folder/MANIFEST.json``; the listed entries."""
    folder = pathlib.Path(folder)
    data = _read_json(folder / MANIFEST, "manifest")
    entries = data.get("files")
    if not isinstance(entries, dict) or not entries:
        raise IntegrityError(f"{folder / MANIFEST} lists no file")
    root = folder.resolve()
    for rel, entry in entries.items():
        path = (folder / rel)
        if not isinstance(entry, dict) or root not in path.resolve().parents:
            raise IntegrityError(f"{folder / MANIFEST} has an invalid entry {rel!r}")
        _check_file(path, entry.get("size"), entry.get("sha256"))
    return entries
