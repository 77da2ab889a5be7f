"""Files we write and files we are handed: atomic writes, bounded reads.

Every file the package writes (results, checkpoints, exports, memories) goes
through :func:`atomic_write`: a crash leaves either the old or the new file,
never a torn one, and the file is created under a fresh name of its own
(``mkstemp``: exclusive, never through a link planted in the folder) before
it is renamed over the destination.

Every file a user hands us is untrusted: :func:`open_regular` opens it
without blocking and refuses anything but a regular file before a byte is
read (a FIFO would block, /dev/zero or a link to it would be read without
end); :func:`read_bounded` then reads it in chunks, allocating what the file
holds, never the bound; :func:`read_bounded_stream` bounds what a
decompressing stream may expand to: at most ``MAX_EXPANSION_RATIO`` times its
compressed size (and never less than ``MIN_EXPANSION_BOUND``).
"""
from __future__ import annotations

import errno
import os
import pathlib
import stat
import tempfile

__all__ = ["MAX_EXPANSION_RATIO", "MAX_FILE_BYTES", "MIN_EXPANSION_BOUND", "BoundedStream", "atomic_write",
           "expansion_bound", "open_regular", "read_bounded", "read_bounded_stream"]

#: Largest file (or decompressed member) a loader reads: 4 GiB, over 20x the largest
#: supported source (CIFAR-100's 155 MB training pickle, MNIST's 47 MB images).
MAX_FILE_BYTES = 4 << 30
#: Largest expansion of compressed data: the datasets we read expand 1.1x (CIFAR's
#: .tar.gz) to 5x (MNIST's gzipped images); a bomb expands 1000x. Data this
#: compressible is read once decompressed by its owner (no limit then).
MAX_EXPANSION_RATIO = 100
#: What any compressed input may expand to whatever its size (small test files of
#: zeros compress far beyond the ratio).
MIN_EXPANSION_BOUND = 64 << 20
#: Read size of the bounded readers: memory grows with what is read, by this much.
CHUNK_BYTES = 1 << 20


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
    that mkstemp creates is 0600, so its mode is set before the rename. A link
    planted at ``path`` is replaced, never written through; a directory, device,
    FIFO or socket at ``path`` is refused (renaming over it would replace a
    device node such as /dev/null), naming it.
    """
    path = pathlib.Path(path)
    try:
        existing = os.lstat(path).st_mode
    except FileNotFoundError:
        existing = None
    if existing is not None and not (stat.S_ISREG(existing) or stat.S_ISLNK(existing)):
        raise OSError(f"{path} is a {_kind(existing)}, not a file to write: give the path of a file "
                      "(an existing file is replaced)")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


_KINDS = ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
          (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "special file")


def open_regular(path, what: str, error: type = ValueError, follow_links: bool = True) -> int:
    """A read-only descriptor of ``path`` once it is known to be a regular file;
    ``error`` (a ValueError subclass) naming the file otherwise.

    Opened without blocking (a FIFO with no writer would block ``open`` itself),
    then checked on the descriptor, so a path swapped after a check cannot slip
    a device in. ``follow_links=False`` refuses a symbolic link too (files that
    must be the export's own, not a link to somewhere else).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP and not follow_links:
            raise error(f"{what} {path} is a symbolic link: not followed") from None
        raise error(f"cannot read {what} {path}: {e.strerror}") from None
    try:
        info = os.fstat(fd)
    except OSError as e:
        os.close(fd)
        raise error(f"cannot read {what} {path}: {e.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise error(f"{what} {path} is not a regular file (a {_kind(info.st_mode)}): not read")
    return fd


def _read_chunks(f, bound: int, first: int, too_large) -> bytes:
    """Read ``f`` to its end in chunks, calling ``too_large()`` (which raises) once
    more than ``bound`` bytes came; memory grows only with what was read."""
    chunks, total, want = [], 0, max(1, first)
    while True:
        block = f.read(min(want, bound + 1 - total))
        if not block:
            break
        chunks.append(block)
        total += len(block)
        if total > bound:
            too_large()
        want = CHUNK_BYTES
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_bounded(path, what: str, limit: int = MAX_FILE_BYTES, error: type = ValueError,
                 follow_links: bool = True) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ``error`` (a ValueError
    subclass, e.g. DatasetError) naming the file otherwise (see :func:`open_regular`).

    A file is read whole in one allocation of its size (a file that grows while
    read is read on in chunks up to ``limit``), never of ``limit``.
    """
    path = pathlib.Path(path)
    fd = open_regular(path, what, error, follow_links)
    with os.fdopen(fd, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise error(f"{what} {path} holds {size} bytes, more than the {limit} it may hold")

        def too_large():
            raise error(f"{what} {path} holds more than the {limit} bytes it may hold")
        return _read_chunks(f, limit, size + 1, too_large)


def expansion_bound(compressed_size, limit: int = MAX_FILE_BYTES) -> int:
    """What data of ``compressed_size`` bytes may decompress to."""
    if compressed_size is None:
        return limit
    return min(limit, max(MIN_EXPANSION_BOUND, MAX_EXPANSION_RATIO * int(compressed_size)))


def _expansion_message(what: str, name, bound: int, compressed_size) -> str:
    message = f"{what} {name} expands past {bound} bytes"
    if compressed_size is not None and bound < MAX_FILE_BYTES:
        message += (f" ({MAX_EXPANSION_RATIO}x its {compressed_size} compressed bytes, the decompression ratio "
                    f"limit: a compression bomb, or data to decompress yourself before reading it)")
    return message


def read_bounded_stream(stream, name, what: str, limit: int = MAX_FILE_BYTES, error: type = ValueError,
                        compressed_size=None) -> bytes:
    """A decompressing stream (gzip, tar member) read in chunks up to
    :func:`expansion_bound` (``limit``, and ``MAX_EXPANSION_RATIO`` times
    ``compressed_size`` when given): a compression bomb is refused once it
    passes the bound, having cost at most the bound in memory."""
    bound = expansion_bound(compressed_size, limit)

    def too_large():
        raise error(_expansion_message(what, name, bound, compressed_size))
    return _read_chunks(stream, bound, CHUNK_BYTES, too_large)


class BoundedStream:
    """A read-only stream over a decompressing one (``gzip.GzipFile``...) that raises
    ``error`` once more than :func:`expansion_bound` bytes came out of it: for
    readers that consume a stream themselves (``tarfile`` in stream mode)."""

    def __init__(self, stream, name, what: str, compressed_size, error: type = ValueError,
                 limit: int = MAX_FILE_BYTES):
        self._stream, self._name, self._what, self._error = stream, name, what, error
        self._compressed = compressed_size
        self.bound = expansion_bound(compressed_size, limit)
        self.produced = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return read_bounded_stream(self, self._name, self._what, self.bound, self._error)
        data = self._stream.read(min(size, self.bound + 1 - self.produced))
        self.produced += len(data)
        if self.produced > self.bound:
            raise self._error(_expansion_message(self._what, self._name, self.bound, self._compressed))
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._stream.close()
