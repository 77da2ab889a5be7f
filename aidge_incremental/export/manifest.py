"""Digests that let ``predict`` refuse a corrupted or tampered export.

An ONNX export ``X.onnx`` gets a sidecar ``X.onnx.sha256`` in ``sha256sum``
format (``<hex>  X.onnx``, one line: ``sha256sum -c X.onnx.sha256`` checks
it); a C++ export directory gets ``MANIFEST.json`` listing the SHA-256 and
size of every file of the project (sources, weights, the built binary), by
their names inside the folder. Both are written atomically and last, so an
interrupted export has no digest and is refused.

A digest guards against accidents (a flipped byte, a truncated copy) and
against edits by someone who does not rewrite the digest too: it is not a
signature, which is why ``predict`` never runs a binary on the strength of a
MANIFEST alone (see :mod:`.trust`).

Renaming: what a sidecar checks is the digest. A file renamed together with
its sidecar (``renamed.onnx`` + ``renamed.onnx.sha256`` naming ``X.onnx``) is
accepted, with a note naming the original; ``sha256sum -c`` would look for the
original name. Sidecars written before this format (JSON, with the size) are
still read and checked.

Everything here is read through :func:`~aidge_incremental.files.open_regular`:
a FIFO, a device or a link to one is refused before any byte is read, and a
file is hashed from the descriptor that was checked.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
from typing import Dict, Iterable, List, Optional, Tuple

from ..files import CHUNK_BYTES, atomic_write, open_regular, read_bounded

__all__ = ["IntegrityError", "MANIFEST", "check_manifest", "check_sidecar", "read_verified", "read_with_sidecar",
           "sha256_file", "write_manifest", "write_sidecar"]

MANIFEST = "MANIFEST.json"
FORMAT = "aidge_incremental-export/1"
_MAX_MANIFEST = 1 << 20  # a manifest is a few kB: refuse to parse more
_MAX_SIDECAR = 1 << 16   # a sidecar is one line
#: what a MANIFEST may list in all: a ResNet-18 export is ~100 MB
MAX_EXPORT_TOTAL = 16 << 30
_LINE = re.compile(r"^(\\?)([0-9a-fA-F]{64}) [ *](.+)$")


class IntegrityError(ValueError):
    """An export whose files do not match their stored digest."""


def sha256_file(path, follow_links: bool = True, limit: Optional[int] = None) -> str:
    """The SHA-256 of a regular file, read from the descriptor that was checked
    (at most ``limit + 1`` bytes when given: a longer file cannot match)."""
    fd = open_regular(path, "file", IntegrityError, follow_links)
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        left = None if limit is None else limit + 1
        while left is None or left > 0:
            block = f.read(CHUNK_BYTES if left is None else min(CHUNK_BYTES, left))
            if not block:
                break
            h.update(block)
            if left is not None:
                left -= len(block)
    return h.hexdigest()


def _sidecar(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.name + ".sha256")


def _escape(name: str) -> Tuple[str, str]:
    """sha256sum's escaping: a name holding a backslash or a newline is written with
    those escaped and the line starts with a backslash."""
    if "\\" in name or "\n" in name or "\r" in name:
        return "\\", name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return "", name


def _unescape(name: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r", "\\": "\\"}.get(m.group(1), m.group(0)), name)


def write_sidecar(path) -> pathlib.Path:
    """``path.sha256`` in sha256sum format, written atomically."""
    path = pathlib.Path(path)
    prefix, name = _escape(path.name)
    side = _sidecar(path)
    atomic_write(side, f"{prefix}{sha256_file(path)}  {name}\n".encode())
    return side


def _read_text(path: pathlib.Path, what: str, limit: int) -> str:
    if not os.path.lexists(path):
        raise IntegrityError(f"{path} is missing: the export has no digest to check it against "
                             f"(not written by aidge_incremental, or not completely)")
    try:
        data = read_bounded(path, what, limit=limit, error=IntegrityError)
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise IntegrityError(f"{what} {path} is unreadable: {e}") from None


def _parse_json(text: str, path: pathlib.Path, what: str) -> dict:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:  # RecursionError: nesting deeper than the parser goes
        raise IntegrityError(f"{what} {path} is unreadable: {type(e).__name__}: {str(e)[:200]}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise IntegrityError(f"{path} is not a {what} of aidge_incremental ({FORMAT})")
    return data


def _check_file(path: pathlib.Path, size, digest) -> None:
    """``path`` is a regular file (not a link) of ``size`` bytes (when known) with this digest."""
    if not os.path.lexists(path):
        raise IntegrityError(f"{path} is missing from the export")
    actual = sha256_file(path, follow_links=False, limit=size if isinstance(size, int) else None)
    if isinstance(size, int):
        real = path.lstat().st_size
        if real != size:
            raise IntegrityError(f"{path} has {real} bytes, the export wrote {size}: truncated or modified")
    if actual != str(digest).lower():
        raise IntegrityError(f"{path} does not match its SHA-256 digest: corrupted, truncated or modified")


def _sidecar_record(path: pathlib.Path) -> Tuple[str, Optional[int], str]:
    """``(digest, size or None, the name it was written for)`` of ``path``'s sidecar."""
    side = _sidecar(path)
    text = _read_text(side, "digest", _MAX_SIDECAR)
    if text.lstrip().startswith("{"):  # the JSON sidecars of earlier versions
        record = _parse_json(text, side, "digest")
        named, size, digest = record.get("file"), record.get("size"), record.get("sha256")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", digest) \
                or not isinstance(size, int) or not isinstance(named, str):
            raise IntegrityError(f"{side} is not a SHA-256 digest of aidge_incremental")
        return digest.lower(), size, named
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise IntegrityError(f"{side} is not a SHA-256 digest of one file: sha256sum format, one line "
                             f"'<64 hex digits>  <name>', expected, got {len(lines)} lines")
    match = _LINE.match(lines[0])
    if not match:
        raise IntegrityError(f"{side} is not a SHA-256 digest in sha256sum format ('<64 hex digits>  <name>')")
    escaped, digest, named = match.groups()
    return digest.lower(), None, _unescape(named) if escaped else named


def _renamed(path: pathlib.Path, named: str) -> List[str]:
    if named != path.name:
        return [f"{_sidecar(path)} is the digest of {named!r}: the file was renamed; its content is what was "
                "checked"]
    return []


def check_sidecar(path) -> List[str]:
    """Raise :class:`IntegrityError` unless ``path`` matches its ``.sha256`` sidecar;
    returns notes (a sidecar naming another file: the pair was renamed)."""
    path = pathlib.Path(path)
    digest, size, named = _sidecar_record(path)
    _check_file(path, size, digest)
    return _renamed(path, named)


#: largest exported file read whole (protobuf's own limit is 2 GiB)
MAX_EXPORT_BYTES = 2 << 30


def read_with_sidecar(path, limit: int = MAX_EXPORT_BYTES) -> Tuple[bytes, List[str]]:
    """The bytes of ``path``, read once and checked against its ``.sha256`` sidecar
    (what is then used is what was checked); and notes as :func:`check_sidecar`'s."""
    path = pathlib.Path(path)
    digest, size, named = _sidecar_record(path)
    data = read_bounded(path, "exported file", limit=limit, error=IntegrityError)
    if size is not None and len(data) != size:
        raise IntegrityError(f"{path} has {len(data)} bytes, the export wrote {size}: truncated or modified")
    if hashlib.sha256(data).hexdigest() != digest:
        raise IntegrityError(f"{path} does not match its SHA-256 digest: corrupted, truncated or modified")
    return data, _renamed(path, named)


def write_manifest(folder, files: Iterable[pathlib.Path]) -> pathlib.Path:
    folder = pathlib.Path(folder)
    entries: Dict[str, dict] = {}
    for path in sorted(files):
        rel = path.relative_to(folder).as_posix()
        entries[rel] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    out = folder / MANIFEST
    atomic_write(out, (json.dumps({"format": FORMAT, "files": entries}, indent=1) + "\n").encode())
    return out


def _entry_path(folder: pathlib.Path, rel) -> Optional[pathlib.Path]:
    """The path a manifest entry names, if it stays inside the folder (no absolute
    path, no '..', no link on the way)."""
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel or "\0" in rel:
        return None
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    path = folder
    for part in parts[:-1]:
        path = path / part
        if path.is_symlink():
            return None
    return folder.joinpath(*parts)


def check_manifest(folder, required: Iterable[str] = ()) -> Dict[str, dict]:
    """Check every file listed in ``folder/MANIFEST.json``; the listed entries.

    ``required``: the files the caller will read or run, which the manifest must
    list (an unlisted file is not covered by any digest)."""
    folder = pathlib.Path(folder)
    data = _parse_json(_read_text(folder / MANIFEST, "manifest", _MAX_MANIFEST), folder / MANIFEST, "manifest")
    entries = data.get("files")
    if not isinstance(entries, dict) or not entries:
        raise IntegrityError(f"{folder / MANIFEST} lists no file")
    for rel in required:
        if rel not in entries:
            raise IntegrityError(f"{folder / MANIFEST} does not list {rel}, which predict reads or runs: "
                                 "an export whose files are not all covered by its digests is not served")
    sizes = [e.get("size") for e in entries.values() if isinstance(e, dict)]
    if sum(v for v in sizes if isinstance(v, int) and v > 0) > MAX_EXPORT_TOTAL:
        raise IntegrityError(f"{folder / MANIFEST} lists more than {MAX_EXPORT_TOTAL} bytes of files: not an export "
                             "of aidge_incremental (hashing them all would take hours)")
    for rel, entry in entries.items():
        path = _entry_path(folder, rel)
        if path is None or not isinstance(entry, dict) or not isinstance(entry.get("size"), int) \
                or not isinstance(entry.get("sha256"), str):
            raise IntegrityError(f"{folder / MANIFEST} has an invalid entry {str(rel)[:100]!r}")
        if path.is_symlink():
            raise IntegrityError(f"{path} is a symbolic link: an export's files are its own, not links")
        _check_file(path, entry["size"], entry["sha256"])
    return entries


def read_verified(folder, rel: str, entries: Dict[str, dict], limit: int = _MAX_MANIFEST) -> bytes:
    """The bytes of ``folder/rel``, read once and checked against its manifest entry:
    what is used is exactly what was checked (no second read to swap in between)."""
    folder = pathlib.Path(folder)
    entry = entries.get(rel)
    if entry is None:
        raise IntegrityError(f"{folder / MANIFEST} does not list {rel}")
    data = read_bounded(folder / rel, "export file", limit=limit, error=IntegrityError, follow_links=False)
    if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"].lower():
        raise IntegrityError(f"{folder / rel} does not match its SHA-256 digest: modified since it was checked")
    return data
