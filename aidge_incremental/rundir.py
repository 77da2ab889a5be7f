"""Run directories: where a run writes its results and checkpoints, held by one
run at a time, and the checkpoint a ``--resume`` path designates."""
from __future__ import annotations

import contextlib
import os
import pathlib
from typing import Optional

from .checkpoint import CHECKPOINT_DIR, Checkpoint, CheckpointError, latest_checkpoint, load_checkpoint

__all__ = ["RUN_FILES", "RunDirectoryError", "resolve_checkpoint", "run_dir_of", "run_directory"]


class RunDirectoryError(ValueError):
    """An output directory holds another run, or is in use by a running one."""


#: files a run writes in its output directory (what --overwrite removes)
RUN_FILES = ("results.json", "results.csv", "accuracy.png", "comparison.png")


@contextlib.contextmanager
def run_directory(path, resuming: bool = False, overwrite: bool = False):
    """Hold ``path`` for one run: an exclusive lock (``.lock``, released by the
    kernel even if the process is killed), temporary files of an interrupted
    save removed, and a directory holding an older run refused unless the run
    resumes it or ``overwrite`` is set (which removes that run's files)."""
    import fcntl
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise RunDirectoryError(f"{path} is in use by another run (pid {owner}); "
                                    "give another --output-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        checkpoints = path / CHECKPOINT_DIR
        for folder in (path, checkpoints):  # left by a run killed while writing
            for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
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


