"""MNIST from its IDX files (gzipped or not).

IDX: two zero bytes, a type code, the number of dimensions (>= 1), one
big-endian uint32 per dimension, then the values, big-endian
(yann.lecun.com/exdb/mnist). Every field is checked against the file's size
before anything is allocated.
"""
from __future__ import annotations

import gzip
import io
import math
import pathlib
import zlib
from typing import Optional

import numpy as np

from ..files import read_bounded, read_bounded_stream
from .base import Dataset, DatasetError, DatasetSource, from_arrays, register_dataset

MNIST_URL = "the MNIST database (yann.lecun.com/exdb/mnist or any mirror)"

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not."""
    path = pathlib.Path(path)
    data = read_bounded(path, "IDX file", error=DatasetError)
    if path.suffix == ".gz":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
                data = read_bounded_stream(f, path, "gzipped IDX file", error=DatasetError,
                                           compressed_size=len(data))
        except (OSError, EOFError, zlib.error) as e:
            raise DatasetError(f"cannot read IDX file {path}: {e}") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DatasetError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    if ndim == 0:
        raise DatasetError(f"{path}: IDX header announces 0 dimensions; samples need at least one")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    if len(data) - header != expected:
        raise DatasetError(f"{path}: {len(data) - header} bytes of data, {expected} expected for "
                           f"shape {dims} (truncated or corrupt file)")
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find(directory: pathlib.Path, stem: str) -> Optional[pathlib.Path]:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (directory / name).exists():
            return directory / name
    return None


def _read_split(files, split):
    images, labels = read_idx(files[f"{split}-images"]), read_idx(files[f"{split}-labels"])
    if images.ndim not in (2, 3):
        raise DatasetError(f"{files[f'{split}-images']}: images of shape {images.shape}, expected "
                           f"[N, H, W] (or [N, D])")
    if labels.ndim != 1:
        raise DatasetError(f"{files[f'{split}-labels']}: labels of shape {labels.shape}, expected [N]")
    return images, labels


def load_idx_dataset(directory, name: str, url: str, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """A dataset in MNIST's layout: ``train-*`` and ``t10k-*`` IDX files in
    ``directory`` (MNIST, Fashion-MNIST). ``name`` and ``url`` name it in messages.

    With both splits present, the official train/test split is used. When only
    the 10,000-image ``t10k`` split is present, it is split into train and test
    parts (stratified, ``seed``), and the dataset's ``note`` says so.
    """
    directory = pathlib.Path(directory)
    title = name.upper() if name == "mnist" else name
    if not directory.is_dir():
        raise DatasetError(f"{title} directory {directory} does not exist; it should hold "
                           f"t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) "
                           f"(and train-*), from {url}")
    files = {f"{split}-{kind}": _find(directory, f"{split}-{kind}-idx{rank}-ubyte")
             for split in ("train", "t10k") for kind, rank in (("images", 3), ("labels", 1))}
    if files["t10k-images"] is None or files["t10k-labels"] is None:
        raise DatasetError(f"no {title} IDX files in {directory}: expected t10k-images-idx3-ubyte(.gz) "
                           f"and t10k-labels-idx1-ubyte(.gz) (and train-*), from {url}")
    x_test, y_test = _read_split(files, "t10k")
    if (files["train-images"] is None) != (files["train-labels"] is None):
        present = "train-images" if files["train-images"] is not None else "train-labels"
        raise DatasetError(f"{directory} holds {present} but not its partner file: the training split "
                           f"needs both train-images-idx3-ubyte(.gz) and train-labels-idx1-ubyte(.gz)")
    if files["train-images"] is not None:
        x_train, y_train = _read_split(files, "train")
        return from_arrays(x_train, y_train, x_test, y_test, name=name)
    dataset = from_arrays(x_test, y_test, name=name, test_fraction=test_fraction, seed=seed)
    dataset.note = f"{title} t10k only: {dataset.note}"
    return dataset


def load_mnist(directory, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """MNIST from ``train-*`` and ``t10k-*`` IDX files in ``directory``: the
    official 60,000/10,000 split when both are there (:func:`load_idx_dataset`)."""
    return load_idx_dataset(directory, "mnist", MNIST_URL, test_fraction, seed)


# Scaled to [0, 1], neither normalised nor augmented: the split-MNIST protocols
# of iCaRL and LwF (flipping or shifting a digit can change its meaning).
register_dataset(DatasetSource("mnist", lambda path, seed: load_mnist(path, seed=seed),
                               f"MNIST IDX files in a directory ({MNIST_URL})"))

__all__ = ["MNIST_URL", "load_idx_dataset", "load_mnist", "read_idx"]
