"""Which exported binaries ``predict`` may run.

A C++ export folder holds a compiled program (``model/run_export``). Its
MANIFEST is an unsigned digest: whoever hands us a folder can rewrite it, so a
folder received from someone else is code, like a pickle. ``predict`` runs a
binary only when

- this project built it, on this machine, for this user: :func:`cpp.build`
  records the SHA-256 of every binary it builds in a file kept outside any
  export folder, ``$XDG_STATE_HOME/aidge_incremental/trusted_binaries.json``
  (``~/.local/state/...`` by default; a folder of mode 0700, the file written
  atomically under a lock); or
- the user says so with ``--trust-binary`` (``trust_binary=True``).

Otherwise it says why and how to rebuild the binary from the folder's sources
(``aidge-incremental export --rebuild FOLDER``, see :func:`step.rebuild_export`),
which records the new binary.

The record is keyed by the binary's digest: the same bytes are the same
program wherever the folder is moved or copied, and a binary that differs by
one byte is not in it. The path and the machine it was built on are kept
beside each digest for the user's information only.

What runs is never the folder's file: :func:`private_copy` copies it into a
private directory (0700) while hashing the bytes copied, and the digest that
is checked -- against the MANIFEST and the record -- is the copy's, so the
folder's file cannot be swapped between the check and the run.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import shutil
import socket
import stat
import tempfile
import time
from typing import Dict, Optional, Tuple

from ..files import CHUNK_BYTES, atomic_write, open_regular, read_bounded
from .errors import ExportError

__all__ = ["STORE_NAME", "UntrustedBinaryError", "is_built_here", "private_copy", "record_built_binary",
           "sha256_of", "trust_store_path"]

STORE_NAME = "trusted_binaries.json"
FORMAT = "aidge_incremental trusted binaries/1"
#: records kept (oldest dropped first): each build adds one
MAX_RECORDS = 10_000
_MAX_STORE = 8 << 20


class UntrustedBinaryError(ExportError):
    """An export's binary that this project did not build here, and that the user did not trust."""


def trust_store_path() -> pathlib.Path:
    """Where the digests of the binaries built here are recorded."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return pathlib.Path(base) / "aidge_incremental" / STORE_NAME


def _machine_id() -> str:
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            return pathlib.Path(path).read_text().strip()[:64]
        except OSError:
            continue
    return socket.gethostname()


def sha256_of(path) -> str:
    fd = open_regular(path, "binary", ExportError, follow_links=False)
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            h.update(block)
    return h.hexdigest()


def _read_store(path: pathlib.Path) -> Tuple[Dict[str, dict], Optional[str]]:
    """The records, and why the store could not be read (None when it could)."""
    if not os.path.lexists(path):
        return {}, None
    try:
        data = json.loads(read_bounded(path, "record of built binaries", limit=_MAX_STORE, error=ExportError,
                                       follow_links=False))
    except (ExportError, ValueError, RecursionError) as e:
        return {}, f"{path} is unreadable ({type(e).__name__}: {str(e)[:120]})"
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("binaries"), dict):
        return {}, f"{path} is not a record of aidge_incremental ({FORMAT})"
    return {k: v for k, v in data["binaries"].items() if isinstance(v, dict)}, None


@contextlib.contextmanager
def _store_lock(folder: pathlib.Path):
    import fcntl
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def record_built_binary(binary) -> str:
    """Record ``binary`` (just built by this project) as built here; its digest."""
    binary = pathlib.Path(binary)
    digest = sha256_of(binary)
    store = trust_store_path()
    store.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = store.parent.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise ExportError(f"{store.parent} is not a directory of yours: the record of built binaries is not kept "
                          "there")
    os.chmod(store.parent, 0o700)
    with _store_lock(store.parent):
        records, _ = _read_store(store)  # an unreadable record is replaced (what it held can be rebuilt)
        records.pop(digest, None)
        records[digest] = {"path": str(binary.resolve()), "machine": _machine_id(), "built": int(time.time())}
        while len(records) > MAX_RECORDS:
            records.pop(next(iter(records)))
        atomic_write(store, (json.dumps({"format": FORMAT, "binaries": records}, indent=1) + "\n").encode())
    return digest


def is_built_here(digest: str) -> Tuple[bool, Optional[str]]:
    """Whether a binary of this digest was built by this project here; and, when the
    record cannot be read, why."""
    records, problem = _read_store(trust_store_path())
    return digest in records, problem


def private_copy(path: pathlib.Path, directory: pathlib.Path) -> Tuple[pathlib.Path, str]:
    """Copy the regular file ``path`` (not a link) into ``directory`` as an executable
    only its owner can touch; the copy's path and the SHA-256 of the bytes copied."""
    fd = open_regular(path, "binary", ExportError, follow_links=False)
    target = pathlib.Path(directory) / path.name
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as source:
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o700)
        with os.fdopen(out, "wb") as copy:
            for block in iter(lambda: source.read(CHUNK_BYTES), b""):
                h.update(block)
                copy.write(block)
    return target, h.hexdigest()


def trusted_copy(folder: pathlib.Path, rel: str, entries: dict, directory: pathlib.Path,
                 trust_binary: bool) -> pathlib.Path:
    """A private copy of the export's binary ``folder/rel`` that may be run: its digest
    is the MANIFEST's, and this project built it here (or ``trust_binary``).
    :class:`UntrustedBinaryError` says why not, and how to rebuild it."""
    from .manifest import IntegrityError
    copy, digest = private_copy(folder / rel, directory)
    if digest != str(entries[rel]["sha256"]).lower():
        raise IntegrityError(f"{folder / rel} does not match its SHA-256 digest: modified since it was checked")
    if trust_binary:
        return copy
    built, problem = is_built_here(digest)
    if not built:
        why = f" ({problem}: nothing in it is trusted)" if problem else ""
        raise UntrustedBinaryError(
            f"{folder / rel} was not built by aidge_incremental on this machine (its SHA-256 is not in "
            f"{trust_store_path()}{why}): running it would run whatever code it holds. Rebuild it from the "
            f"exported sources with `aidge-incremental export --rebuild {folder}`, or pass --trust-binary if you "
            f"trust where this folder comes from")
    return copy


@contextlib.contextmanager
def private_directory():
    """A directory only this user can read (0700), removed afterwards: beside the
    record of built binaries when that folder can be made (a temporary folder may be
    mounted noexec), else in the temporary folder."""
    base = trust_store_path().parent
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = pathlib.Path(tempfile.mkdtemp(prefix="run-", dir=base))
    except OSError:
        path = pathlib.Path(tempfile.mkdtemp(prefix="aidge_incremental-run-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
