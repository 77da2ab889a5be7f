"""Run and export directories: where a run writes its results, checkpoints and
exports, held by one run at a time, and the checkpoint a ``--resume`` path
designates.

Both kinds of directory are held the same way: a lock file ``.lock`` that the
run creates exclusively, or reuses only if it is a regular file of the user's
with a single link, opened without following links -- a link planted in a
shared directory is refused, never written through -- then locked with
``flock`` (released by the kernel even if the process is killed).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import pathlib
import re
import shutil
import stat
from typing import Optional

from .checkpoint import CHECKPOINT_DIR, Checkpoint, CheckpointError, latest_checkpoint, load_checkpoint
from .files import atomic_write, read_bounded

__all__ = ["EXPORT_RECORD", "RUN_FILES", "RunDirectoryError", "export_directory", "resolve_checkpoint",
           "run_dir_of", "run_directory", "run_identity"]


class RunDirectoryError(ValueError):
    """An output directory holds another run, or is in use by a running one."""


#: files a run writes in its output directory (what --overwrite removes)
RUN_FILES = ("results.json", "results.csv", "accuracy.png", "comparison.png")
LOCK = ".lock"
#: which run wrote the exports of an export directory (see export_directory)
EXPORT_RECORD = ".aidge_incremental-exports.json"
#: what a run writes in an export directory: step-NNN.onnx(.sha256), step-NNN-nme.onnx(.sha256), step-NNN/
_EXPORT_NAME = re.compile(r"^step-\d{3,}(-nme)?(\.onnx(\.sha256)?)?$")
#: left by an interrupted export: atomic_write's temporary files, export_cpp's folders
#: what files.atomic_write leaves behind when killed: ".NAME.<mkstemp's 8 characters>.tmp"
_ATOMIC_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")
_EXPORT_TEMPORARY = re.compile(r"^\.step-\d{3,}.*\.(tmp|tmp-\w+|old-\d+)$")


def _lock(folder: pathlib.Path, option: str) -> int:
    """The descriptor of ``folder/.lock``, held exclusively; RunDirectoryError when
    another run holds it or when it is not a lock file of ours."""
    import fcntl
    path = folder / LOCK
    flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # an earlier run's lock (or anything else planted there)
        try:
            fd = os.open(path, flags | os.O_NONBLOCK)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise RunDirectoryError(f"{path} is a symbolic link: a lock is never opened through a link (it "
                                        f"could make this run overwrite the file it points to); remove it, or "
                                        f"give another {option}") from None
            raise RunDirectoryError(f"cannot open the lock {path}: {e.strerror}; give another {option}") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_uid != os.geteuid():
            os.close(fd)
            why = ("not a regular file" if not stat.S_ISREG(info.st_mode) else
                   f"a file with {info.st_nlink} links (another name of some other file)" if info.st_nlink != 1
                   else f"owned by uid {info.st_uid}, not by you")
            raise RunDirectoryError(f"{path} is {why}: not used as this run's lock; remove it if it is stale, "
                                    f"or give another {option}")
    except OSError as e:
        raise RunDirectoryError(f"cannot create the lock {path}: {e.strerror}; give another {option}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise RunDirectoryError(f"{folder} is in use by another run (pid {owner}); give another {option}") from None
    os.ftruncate(fd, 0)  # our own file: a regular file of ours with one link, now locked
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


@contextlib.contextmanager
def run_directory(path, resuming: bool = False, overwrite: bool = False):
    """Hold ``path`` for one run: an exclusive lock (``.lock``, see the module's
    docstring), temporary files of an interrupted save removed, and a directory
    holding an older run refused unless the run resumes it or ``overwrite`` is set
    (which removes that run's files)."""
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fd = _lock(path, "--output-dir")
    try:
        checkpoints = path / CHECKPOINT_DIR
        for sub in (CHECKPOINT_DIR, "tensorboard"):  # a run writes and deletes there: its own folders only
            if (path / sub).is_symlink() or (os.path.lexists(path / sub) and not (path / sub).is_dir()):
                raise RunDirectoryError(f"{path / sub} is a link or not a folder: a run keeps its {sub} in a "
                                        "folder of its own output directory; remove it, or give another "
                                        "--output-dir")
        for folder in (path, checkpoints):  # left by a run killed while writing (atomic_write's names only)
            for tmp in folder.iterdir() if folder.is_dir() else ():
                if _ATOMIC_TEMPORARY.match(tmp.name) and tmp.is_file() and not tmp.is_symlink():
                    tmp.unlink()
        if not resuming:
            old = sorted(p.name for p in path.iterdir() if p.name in RUN_FILES)
            if checkpoints.is_dir() and any(checkpoints.glob("step-*.ckpt")):
                old.append(f"{CHECKPOINT_DIR}/")
            if old and not overwrite:
                raise RunDirectoryError(f"{path} already holds a run ({', '.join(old)}): continue it with "
                                        f"--resume {path}, replace it with --overwrite, or give another "
                                        "--output-dir")
            if old:
                for name in RUN_FILES:
                    (path / name).unlink(missing_ok=True)
                for ckpt in checkpoints.glob("step-*.ckpt") if checkpoints.is_dir() else ():
                    ckpt.unlink()
        yield path
    finally:
        os.close(fd)  # releases the lock


def run_identity(config: dict) -> str:
    """What tells one run from another in the folders it writes: a digest of its
    configuration, less where it writes (a resumed run may write elsewhere)."""
    kept = {k: v for k, v in config.items() if k not in ("output_dir", "export_dir")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def _export_record(path: pathlib.Path) -> Optional[dict]:
    record = path / EXPORT_RECORD
    if not os.path.lexists(record):
        return None
    try:
        data = json.loads(read_bounded(record, "export record", limit=1 << 16, error=RunDirectoryError,
                                       follow_links=False))
    except (RunDirectoryError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _remove_exports(path: pathlib.Path, names) -> None:
    for name in names:
        target = path / name
        if target.is_dir() and not target.is_symlink():
            if not (target / "MANIFEST.json").exists():
                raise RunDirectoryError(f"{target} is not an export of aidge_incremental (no MANIFEST.json): "
                                        "not removed; give another --export-dir")
            shutil.rmtree(target)
        else:
            target.unlink()


@contextlib.contextmanager
def export_directory(path, run: str, resuming: bool = False, overwrite: bool = False, locked: bool = False,
                     method: str = "?"):
    """Hold the export directory ``path`` for the run whose :func:`run_identity` is
    ``run``, as :func:`run_directory` holds an output directory: locked (unless
    ``locked``: it is the output directory, already held), and refused when it holds
    exports of another run -- any exports if this run does not resume, exports of
    another configuration if it does -- unless ``overwrite``, which removes them
    first. The folder records the run it holds exports of (``EXPORT_RECORD``)."""
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fd = None if locked else _lock(path, "--export-dir")
    try:
        for name in os.listdir(path):  # left by an export killed while writing
            if _EXPORT_TEMPORARY.match(name):
                target = path / name
                shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
        exports = sorted(name for name in os.listdir(path) if _EXPORT_NAME.match(name))
        record = _export_record(path)
        ours = resuming and record is not None and record.get("run") == run
        if exports and not ours:
            if not overwrite:
                shown = ", ".join(exports[:4]) + (", ..." if len(exports) > 4 else "")
                whose = "" if not record else f" (a {record.get('method', '?')} run)"
                raise RunDirectoryError(f"export folder {path} already holds another run's exports{whose}: "
                                        f"{shown}; give another --export-dir, or --overwrite to replace them")
            _remove_exports(path, exports)
        if record is None or record.get("run") != run:
            atomic_write(path / EXPORT_RECORD, (json.dumps({"format": "aidge_incremental exports/1", "run": run,
                                                            "method": method}, indent=1) + "\n").encode())
        yield path
    finally:
        if fd is not None:
            os.close(fd)


def run_dir_of(resume) -> Optional[pathlib.Path]:
    """The run directory a --resume path designates: the directory itself, or
    the parent of the checkpoints/ folder holding a .ckpt; None for a lone file."""
    path = pathlib.Path(resume)
    if path.is_dir():
        return path.parent if path.name == CHECKPOINT_DIR else path
    return path.parent.parent if path.parent.name == CHECKPOINT_DIR else None


def resolve_checkpoint(resume) -> Checkpoint:
    path = pathlib.Path(resume)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"no checkpoint (checkpoints/step-NNN.ckpt) in {path}")
        path = found
    try:
        return load_checkpoint(path)
    except CheckpointError as e:
        older = sorted(path.parent.glob("step-*.ckpt"))
        older = [p for p in older if p.name < path.name]
        hint = f"; the previous checkpoint {older[-1]} can be resumed with --resume {older[-1]}" if older else ""
        raise CheckpointError(f"{e}{hint}") from e
