"""Files we write and files we are handed: atomic writes, bounded reads.

Every file the package writes (results, checkpoints, exports, memories) goes
through :func:`atomic_write`: a crash leaves either the old or the new file,
never a torn one. Every file a user hands us is untrusted: :func:`read_bounded`
reads only regular files of bounded size (a device such as /dev/zero or a FIFO
is refused instead of read without end), and :func:`read_bounded_stream` bounds
what a decompressing stream may expand to.
"""
from __future__ import annotations

import os
import pathlib
import stat
import tempfile

__all__ = ["MAX_FILE_BYTES", "atomic_write", "read_bounded", "read_bounded_stream"]

#: Largest file (or decompressed member) a loader reads: 4 GiB, over 20x the largest
#: supported source (CIFAR-100's 155 MB training pickle, MNIST's 47 MB images).
MAX_FILE_BYTES = 4 << 30


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it
    (/proc/self/status); elsewhere set and restored at once."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new file.

    The file gets the mode any new file gets (0666 less the umask), as results,
    checkpoints and exports are shared like other outputs: the temporary file
    that mkstemp creates is 0600, so its mode is set before the rename.
    """
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_bounded(path, what: str, limit: int = MAX_FILE_BYTES, error: type = ValueError) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ``error`` (a ValueError
    subclass, e.g. DatasetError) naming the file otherwise.

    The type is checked on the opened file (no race with a swapped path), so a
    device such as /dev/zero or a FIFO is refused instead of read without end.
    """
    path = pathlib.Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is not a regular file")
        if info.st_size > limit:
            raise error(f"{what} {path} holds {info.st_size} bytes, more than the {limit} "
                               f"a dataset file may hold")
        return f.read(limit + 1)[:limit]


def read_bounded_stream(stream, name, what: str, limit: int = MAX_FILE_BYTES, error: type = ValueError) -> bytes:
    """At most ``limit`` bytes of a decompressing stream (gzip, tar member): a
    compressed bomb is refused once it passes the limit."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise error(f"{what} {name} expands past {limit} bytes")
    return data
