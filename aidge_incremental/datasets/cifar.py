"""CIFAR-10 / CIFAR-100 from the official "python version" archives.

The batches are Python pickles: a dict with ``data`` (a uint8 array
[N, 3072]: the 1024 red values of a 32x32 image row by row, then green, then
blue) and ``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100), lists of
ints. Unpickling runs whatever callable a file names, so a crafted batch would
run code: the batches are read with a restricted unpickler that resolves only
the globals NumPy's own array pickles use (``_reconstruct``, ``ndarray``,
``dtype``, ``_codecs.encode`` for strings re-pickled by Python 3 at protocol
2, and for protocol 5 ``_frombuffer``), each replaced by a checked equivalent
of our own, refusing any other before it is called. An array is built only
from data the pickle holds: ``_reconstruct`` makes nothing but NumPy's empty
placeholder (``ndarray`` may be named as its type, never called), whose
``__setstate__`` must bring exactly the bytes its shape and dtype need, and
``_frombuffer``'s buffer must be exactly that size; all that unpickling
allocates (arrays, re-encoded strings) is bounded by the ratio limit of
:mod:`aidge_incremental.files` relative to the file's size. What it returns is
then checked field by field: nothing but the documented structure is accepted.

Archives are read as a stream (``.tar``, ``.tar.gz``, ``.tar.bz2``,
``.tar.xz``), their decompression bounded by the ratio limit of
:mod:`aidge_incremental.files`.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import math
import os
import pathlib
import pickle
import tarfile
import zlib

import numpy as np

from ..files import (MAX_EXPANSION_RATIO, MAX_FILE_BYTES, BoundedStream, expansion_bound, open_regular,
                     read_bounded, read_bounded_stream)
from .base import Dataset, DatasetError, DatasetSource, from_arrays, register_dataset
from .transforms import Augmentation, Normalization

__all__ = ["CIFAR_URL", "load_cifar", "read_cifar_batch"]

CIFAR_URL = "the CIFAR page (www.cs.toronto.edu/~kriz/cifar.html), 'python version'"


class _Allocations:
    """What one unpickling allocates (array data, re-encoded strings), bounded by
    the ratio limit relative to the pickle's size: data shared through the pickle's
    memo cannot be multiplied without bound."""

    def __init__(self, size: int):
        self.size, self.bound, self.total = size, expansion_bound(size), 0

    def charge(self, nbytes: int, what: str) -> None:
        self.total += nbytes
        if self.total > self.bound:
            raise pickle.UnpicklingError(
                f"unpickling {what} would allocate {self.total} bytes in all, more than {self.bound} "
                f"({MAX_EXPANSION_RATIO}x the file's {self.size} bytes, the decompression ratio limit)")


def _plain_dtype(dtype) -> np.dtype:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.subdtype is not None or dtype.itemsize == 0:
        raise pickle.UnpicklingError(f"an array's dtype must be a plain NumPy dtype, got {dtype!r}")
    return dtype


def _shape(shape) -> tuple:
    if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise pickle.UnpicklingError(f"an array's shape must be a tuple of sizes, got {shape!r}")
    return shape


def _backed(buffer, shape: tuple, dtype: np.dtype) -> int:
    """The byte count of an array of ``shape`` and ``dtype``, which ``buffer`` (bytes
    from the pickle) must hold exactly."""
    if not isinstance(buffer, (bytes, bytearray)):
        raise pickle.UnpicklingError(f"an array's data must be bytes, got {type(buffer).__name__}")
    nbytes = math.prod(shape) * dtype.itemsize
    if len(buffer) != nbytes:
        raise pickle.UnpicklingError(f"an array of shape {shape} and dtype {dtype} needs {nbytes} bytes, "
                                     f"its data holds {len(buffer)}")
    return nbytes


class _NdarrayName:
    """What ``numpy.ndarray`` resolves to: the type NumPy's pickles hand to
    ``_reconstruct``, which cannot be called (``ndarray(shape, dtype)`` would
    allocate any size, uninitialised, from a few bytes of pickle)."""

    def __new__(cls, *args, **kwargs):
        raise pickle.UnpicklingError("numpy.ndarray may be named only as _reconstruct's type, not called")


class _UnpickledArray(np.ndarray):
    """An array as the unpickler builds it: its state (``__setstate__``, the BUILD
    opcode) is checked first -- a plain dtype, and data bytes from the pickle that
    are exactly what the shape and dtype need -- and what it allocates is charged
    to the unpickling. Handed on as a plain ndarray (``np.asarray``)."""

    def __setstate__(self, state):
        allocations = getattr(self, "_allocations", None)
        if allocations is None:
            raise pickle.UnpicklingError("an array's state can be set only while it is unpickled")
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("an array's state must be (version, shape, dtype, fortran order, data)")
        if len(state) == 5 and type(state[0]) is not int:
            raise pickle.UnpicklingError(f"an array's state has version {state[0]!r}")
        shape, dtype, fortran, data = state[-4:]
        shape, dtype = _shape(shape), _plain_dtype(dtype)
        if not isinstance(fortran, bool):
            raise pickle.UnpicklingError(f"an array's Fortran order must be a bool, got {fortran!r}")
        allocations.charge(_backed(data, shape, dtype), "an array")
        super().__setstate__(state)


def _reconstruct(allocations: _Allocations):
    """``numpy._core.multiarray._reconstruct`` as NumPy's pickles call it: an empty
    placeholder (type ``numpy.ndarray``, shape (0,), dtype 'b'), to be given its
    shape, dtype and data by ``__setstate__``; anything else is refused."""
    def reconstruct(subtype, shape, dtype):
        if subtype is not _NdarrayName or shape != (0,) or dtype not in (b"b", "b"):
            raise pickle.UnpicklingError(f"_reconstruct is admitted only as NumPy's pickles call it "
                                         f"(numpy.ndarray, (0,), b'b'), got ({getattr(subtype, '__name__', subtype)!r}"
                                         f", {shape!r}, {dtype!r})")
        placeholder = np.ndarray.__new__(_UnpickledArray, (0,), np.uint8)
        placeholder._allocations = allocations
        return placeholder
    return reconstruct


def _latin1_encode(allocations: _Allocations):
    """``_codecs.encode`` as Python 3 pickles bytes at protocol 2: latin-1 only."""
    def encode(text, encoding="latin1"):
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise pickle.UnpicklingError("_codecs.encode is admitted only to rebuild latin-1 bytes")
        allocations.charge(len(text), "a string")
        return text.encode("latin1")
    return encode


def _frombuffer(allocations: _Allocations):
    """NumPy's protocol-5 array reconstruction (``numpy._core.numeric._frombuffer``),
    with its arguments checked: bytes of a plain dtype, exactly the size the shape says."""
    def frombuffer(buffer, dtype, shape, order="C"):
        dtype, shape = _plain_dtype(dtype), _shape(shape)
        if order not in ("C", "F"):
            raise pickle.UnpicklingError(f"an array's order must be 'C' or 'F', got {order!r}")
        allocations.charge(_backed(buffer, shape, dtype), "an array")
        array = np.frombuffer(buffer, dtype).reshape(shape, order=order).view(_UnpickledArray)
        array._allocations = allocations  # a later BUILD on it is checked as _reconstruct's are
        return array
    return frombuffer


_ALLOWED = {
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): lambda allocations: _NdarrayName,
    ("numpy", "dtype"): lambda allocations: np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _CifarUnpickler(pickle.Unpickler):
    """Resolves only the globals listed in ``_ALLOWED``; anything else is refused
    before it can be called (no import, no attribute lookup of the named object).
    What unpickling allocates is bounded relative to the pickle's ``size``."""

    def __init__(self, file, size: int, **kwargs):
        super().__init__(file, **kwargs)
        self._allocations = _Allocations(size)

    def find_class(self, module, name):
        factory = _ALLOWED.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a CIFAR batch")
        return factory(self._allocations)

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent references are not allowed in a CIFAR batch")


def _key(batch: dict, name: str):
    for key in (name.encode(), name):
        if key in batch:
            return batch[key]
    raise DatasetError(f"no '{name}' entry")


def read_cifar_batch(data: bytes, source, label_key: str):
    """``(images [N, 3, 32, 32] uint8, labels [N] int64)`` of one pickled batch,
    read without running any code the file names."""
    try:
        batch = _CifarUnpickler(io.BytesIO(data), len(data), encoding="bytes").load()
    except Exception as e:  # pickle raises many types on a damaged or hostile file
        raise DatasetError(f"CIFAR file {source} is not a readable CIFAR pickle: {e}") from None
    try:
        if not isinstance(batch, dict) or not all(isinstance(k, (bytes, str)) for k in batch):
            raise DatasetError(f"a dict with bytes or str keys expected, got {type(batch).__name__}")
        x, labels = _key(batch, "data"), _key(batch, label_key)
        if not isinstance(x, np.ndarray):
            raise DatasetError(f"'data' must be a NumPy array, got {type(x).__name__}")
        x = np.asarray(x)  # a plain ndarray, not the unpickler's _UnpickledArray
        if isinstance(labels, np.ndarray):
            labels = np.asarray(labels)
        if x.dtype != np.uint8:
            # The format stores 0..255 bytes; a cast would destroy other data
            # (floats in [0, 1] would become 0 or 1).
            raise DatasetError(f"'data' must hold uint8 pixels 0..255 as the CIFAR format does, got "
                               f"{x.dtype}; convert it explicitly (e.g. (x * 255).round().astype("
                               f"np.uint8) for values in [0, 1])")
        if x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
            raise DatasetError(f"'data' has shape {x.shape}, expected [N, 3072]")
        if not isinstance(labels, (list, np.ndarray)) or isinstance(labels, np.ndarray) and \
                labels.dtype.kind not in "iu":
            raise DatasetError(f"'{label_key}' must be a list of ints, got {type(labels).__name__}")
        if isinstance(labels, list) and not all(type(v) is int for v in labels):
            raise DatasetError(f"'{label_key}' must be a list of ints")
        if len(labels) != len(x):
            raise DatasetError(f"{len(x)} images but {len(labels)} labels")
        if len(labels) and not all(0 <= int(v) < 100 for v in labels):
            raise DatasetError(f"'{label_key}' holds values outside 0..99")
    except DatasetError as e:
        raise DatasetError(f"CIFAR file {source}: {e}") from None
    # Row layout: 1024 red, 1024 green, 1024 blue values, each a 32x32 image row by row.
    return np.ascontiguousarray(x.reshape(-1, 3, 32, 32)), np.asarray(labels, np.int64)


def load_cifar(path, n_classes: int = 10) -> Dataset:
    """CIFAR-10 or CIFAR-100 from the official python-pickle archive (``.tar.gz``)
    or its extracted folder (``cifar-10-batches-py`` / ``cifar-100-python``).

    The batches are read by a restricted unpickler (module docstring): a file
    that names anything else than NumPy's array reconstruction is refused.
    """
    if n_classes not in (10, 100):
        raise ValueError(f"CIFAR has 10 or 100 classes, not {n_classes}")
    path = pathlib.Path(path)
    folder = "cifar-10-batches-py" if n_classes == 10 else "cifar-100-python"
    names = ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]) if n_classes == 10 \
        else (["train"], ["test"])
    label_key = "labels" if n_classes == 10 else "fine_labels"
    members = {}
    if path.is_file():
        _read_archive(path, set(names[0] + names[1]), label_key, members)
    else:
        for candidate in (path, path / folder):
            if all((candidate / n).exists() for n in names[0] + names[1]):
                for n in names[0] + names[1]:
                    data = read_bounded(candidate / n, "CIFAR file", error=DatasetError)
                    members[n] = read_cifar_batch(data, candidate / n, label_key)
                break
    missing = [n for n in names[0] + names[1] if n not in members]
    if missing:
        raise DatasetError(f"CIFAR-{n_classes} files {missing} not found in {path}: expected the "
                           f"archive or its '{folder}' folder, from {CIFAR_URL}")
    if n_classes == 10:
        for n in names[0] + names[1]:
            if len(members[n][1]) and members[n][1].max() >= 10:
                raise DatasetError(f"CIFAR-10 batch {n}: labels go up to {members[n][1].max()}, "
                                   f"expected 0..9")

    def stack(split):
        return (np.concatenate([members[n][0] for n in split]),
                np.concatenate([members[n][1] for n in split]))
    (x_train, y_train), (x_test, y_test) = stack(names[0]), stack(names[1])
    return from_arrays(x_train, y_train, x_test, y_test, name=f"cifar{n_classes}")


#: what a compressed archive starts with -> the stream that decompresses it
_COMPRESSIONS = ((b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw)), (b"BZh", bz2.BZ2File),
                 (b"\xfd7zXZ\x00", lzma.LZMAFile))


def _read_archive(path: pathlib.Path, wanted: set, label_key: str, members: dict) -> None:
    """The wanted batches of a CIFAR tar archive, read as one stream: each member once,
    in order, its decompression bounded by the ratio limit (files.BoundedStream)."""
    fd = open_regular(path, "CIFAR archive", DatasetError)
    with os.fdopen(fd, "rb") as raw:
        size = os.fstat(raw.fileno()).st_size
        head = raw.read(8)
        raw.seek(0)
        try:
            opener = next((open_ for magic, open_ in _COMPRESSIONS if head.startswith(magic)), None)
            stream = raw if opener is None else BoundedStream(opener(raw), path, "CIFAR archive", size, DatasetError)
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    base = os.path.basename(member.name)
                    if base not in wanted:
                        continue
                    if not member.isfile():
                        raise DatasetError(f"CIFAR archive {path}: member {member.name} is not a regular file")
                    if member.size > MAX_FILE_BYTES:
                        raise DatasetError(f"CIFAR archive {path}: member {member.name} of {member.size} bytes is "
                                           f"too large")
                    data = read_bounded_stream(tar.extractfile(member), member.name, "CIFAR member",
                                               error=DatasetError)
                    members[base] = read_cifar_batch(data, f"{path}:{member.name}", label_key)
        except DatasetError:
            raise
        except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as e:
            raise DatasetError(f"cannot read CIFAR archive {path} (truncated, corrupt or not a tar archive): "
                               f"{type(e).__name__}: {e}") from None


#: Per-channel mean and std of the training images (in [0, 1]). CIFAR-10: the
#: statistics of its 50 000 training images, as published with torchvision
#: examples (std 0.2470, 0.2435, 0.2616; PyCIL uses the widely copied
#: (0.2023, 0.1994, 0.2010) instead). CIFAR-100: PyCIL's ``utils/data.py`` values.
CIFAR10_NORMALIZATION = Normalization((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_NORMALIZATION = Normalization((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))
#: Random 32x32 crop of the image padded by 4 zero pixels, and horizontal flip:
#: the CIFAR augmentation of iCaRL's and PyCIL's reference code.
CIFAR_AUGMENTATION = Augmentation(padding=4, flip=True)

for _classes, _stats in ((10, CIFAR10_NORMALIZATION), (100, CIFAR100_NORMALIZATION)):
    register_dataset(DatasetSource(
        f"cifar{_classes}", lambda path, seed, n=_classes: load_cifar(path, n),
        f"CIFAR-{_classes}: the python-version archive or its folder ({CIFAR_URL})",
        normalization=_stats, augmentation=CIFAR_AUGMENTATION))
