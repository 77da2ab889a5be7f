"""NumPy ``.npy`` arrays and ``.npz`` archives from untrusted bytes, read within bounds.

``np.load`` allocates the shape a ``.npy`` header declares before reading a
byte of data (a 128-byte file declaring shape (1e10, 8, 8) asks for 4.7 TiB:
a MemoryError), and decompresses an ``.npz`` member whatever it expands to
(a 1 MB archive of ``np.savez_compressed`` zeros holds a GiB). Here:

* :func:`load_npy` parses the header alone (``numpy.lib.format``), refuses
  object dtypes (``allow_pickle=False``), dtypes of no size and sub-array
  dtypes, and a header whose declared byte count differs from the bytes that
  follow it, before anything is allocated;
* :func:`read_npz` bounds an archive from its zip headers (every member's
  expansion by ``MAX_EXPANSION_RATIO`` times its compressed size, their total by
  that ratio of the archive's size), reads each member through a bounded stream,
  and checks its header against its declared size before reading its data.

Every refusal is ``error`` (a ValueError subclass: CheckpointError,
DatasetError...) naming the source and what is wrong.
"""
from __future__ import annotations

import io
import math
import zipfile
import zlib
from typing import Dict, Tuple

import numpy as np
from numpy.lib import format as _format

from .files import MAX_EXPANSION_RATIO, MAX_FILE_BYTES, expansion_bound, read_bounded_stream

__all__ = ["load_npy", "read_npz"]

#: Zip compression methods an .npz member may use: np.savez stores, np.savez_compressed deflates.
#: (bzip2 and lzma members decompress a read's input without an output bound.)
_COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


class _Refused(Exception):
    """Why bytes are not a readable array (turned into the caller's error type)."""


def _header_reader(version):
    if version == (1, 0):
        return _format.read_array_header_1_0
    if version == (2, 0):
        return _format.read_array_header_2_0
    for module in ("numpy.lib._format_impl", "numpy.lib.format"):  # version 3.0 (utf-8 field names)
        try:
            reader = getattr(__import__(module, fromlist=["_read_array_header"]), "_read_array_header")
        except (ImportError, AttributeError):
            continue
        return lambda fp: reader(fp, version)
    raise _Refused(f"its .npy format version {version[0]}.{version[1]} is not read")


def _read_header(fp) -> Tuple[np.dtype, tuple, bool, int, int]:
    """``(dtype, shape, fortran_order, count, nbytes)`` of the .npy header at ``fp``'s
    position; nothing of the declared size is allocated."""
    try:
        version = _format.read_magic(fp)
        shape, fortran, dtype = _header_reader(version)(fp)
    except _Refused:
        raise
    except Exception as e:  # noqa: BLE001  (the header is untrusted: any parse failure is a refusal)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise _Refused(f"not a .npy array: {first}") from None
    if not isinstance(dtype, np.dtype):
        raise _Refused(f"its dtype {dtype!r} is not a NumPy dtype")
    if dtype.hasobject:
        raise _Refused(f"its dtype {dtype} holds Python objects: not read, that would need pickle")
    if dtype.subdtype is not None:
        raise _Refused(f"its dtype {dtype} has a sub-array shape, which np.save never writes")
    if dtype.itemsize == 0:
        raise _Refused(f"its dtype {dtype} has no size")
    if not all(type(d) is int and d >= 0 for d in shape):
        raise _Refused(f"its shape {shape!r} is not a tuple of sizes")
    count = math.prod(shape)
    return dtype, shape, bool(fortran), count, count * dtype.itemsize


def _array(buffer, offset: int, dtype: np.dtype, shape: tuple, fortran: bool, count: int) -> np.ndarray:
    """The array of ``count`` items at ``offset`` of ``buffer`` (exactly that many
    bytes there, already checked), writable as np.load's are."""
    x = np.frombuffer(buffer, dtype, count=count, offset=offset)
    x = x.reshape(shape[::-1]).transpose() if fortran else x.reshape(shape)
    return x if x.flags.writeable else x.copy(order="K")


def _declared(shape, dtype, nbytes: int) -> str:
    return f"its header declares shape {shape} of {dtype}, {nbytes} bytes"


def load_npy(data, source, error: type = ValueError, what: str = "a readable .npy array",
             hint: str = "") -> np.ndarray:
    """The array of the ``.npy`` bytes ``data`` (as ``np.load(..., allow_pickle=False)``
    reads it), or ``error("{source} is not {what} ({why}){hint}")``: an object dtype,
    a malformed header, or a header whose declared size is not the size of the data
    that follows it; refused from the header, before any allocation."""
    fp = io.BytesIO(data)
    try:
        dtype, shape, fortran, count, nbytes = _read_header(fp)
        held = len(data) - fp.tell()
        if held != nbytes:
            raise _Refused(f"{_declared(shape, dtype, nbytes)}; the file holds {held} bytes of data")
    except _Refused as e:
        raise error(f"{source} is not {what} ({e}){hint}") from None
    return _array(data, len(data) - nbytes, dtype, shape, fortran, count)


class _Counting:
    """A stream that counts what was read from it (the .npy header's length)."""

    def __init__(self, stream):
        self.stream, self.count = stream, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        return data


def read_npz(data: bytes, source, error: type = ValueError, limit: int = MAX_FILE_BYTES) -> Dict[str, np.ndarray]:
    """``{name: array}`` of the ``.npz`` bytes ``data`` (member ``name.npy``), as
    ``np.load(..., allow_pickle=False)`` gives them; ``error`` naming ``source`` and
    the member for a bomb, a malformed or lying header, or a damaged archive.

    Before anything is decompressed, from the zip headers: only stored and deflated
    members, each expanding to at most :func:`~aidge_incremental.files.expansion_bound`
    of its compressed size (and ``limit``), all of them to at most that of the
    archive's size. Each member's .npy header is then read and must declare exactly
    the member's size; its data is read through a bounded stream.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            _check_infos(infos, len(data), source, limit)
            return {info.filename[:-4]: _read_member(z, info, source) for info in infos}
    except _Refused as e:
        raise error(str(e)) from None
    # zipfile reports malformed headers as NotImplementedError (unknown compression),
    # RuntimeError (encrypted member) or AttributeError, besides the usual ones.
    except (zipfile.BadZipFile, zlib.error, KeyError, ValueError, OSError, EOFError, TypeError,
            NotImplementedError, RuntimeError, AttributeError, RecursionError) as e:
        raise error(f"{source} is not a readable .npz archive: {type(e).__name__}: {e}") from None


def _check_infos(infos, size: int, source, limit: int) -> None:
    names = set()
    for info in infos:
        name = info.filename
        if not name.endswith(".npy") or len(name) == 4:
            raise _Refused(f"{source}: member {name!r} is not an array (NAME.npy)")
        if name in names:
            raise _Refused(f"{source}: member {name!r} is stored twice")
        names.add(name)
        if info.compress_type not in _COMPRESSIONS:
            raise _Refused(f"{source}: member {name!r} uses zip compression method {info.compress_type}; "
                           f"an .npz member is stored or deflated")
        bound = expansion_bound(info.compress_size, limit)
        if info.file_size > bound:
            raise _Refused(f"{source}: member {name!r} expands to {info.file_size} bytes, more than {bound} "
                           f"({MAX_EXPANSION_RATIO}x its {info.compress_size} compressed bytes, the decompression "
                           f"ratio limit, or {limit}): a compression bomb")
    total, bound = sum(info.file_size for info in infos), expansion_bound(size, limit)
    if total > bound:
        raise _Refused(f"{source}: its members expand to {total} bytes, more than {bound} ({MAX_EXPANSION_RATIO}x "
                       f"its {size} bytes, the decompression ratio limit, or {limit}): a compression bomb")


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, source) -> np.ndarray:
    where = f"{source}: member {info.filename!r}"
    with z.open(info) as stream:
        counting = _Counting(stream)
        try:
            dtype, shape, fortran, count, nbytes = _read_header(counting)
        except _Refused as e:
            raise _Refused(f"{where} is not a readable .npy array ({e})") from None
        if counting.count + nbytes != info.file_size:
            raise _Refused(f"{where}: {_declared(shape, dtype, nbytes)}; the member holds "
                           f"{info.file_size - counting.count} bytes of data")
        # at most the declared size, itself within the member's expansion bound (_check_infos)
        body = read_bounded_stream(stream, f"{source}:{info.filename}", "array", limit=nbytes, error=_Refused)
    if len(body) != nbytes:
        raise _Refused(f"{where}: {_declared(shape, dtype, nbytes)}; its data ends after {len(body)}")
    return _array(body, 0, dtype, shape, fortran, count)
