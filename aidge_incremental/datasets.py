"""Datasets for class-incremental scenarios.

Every loader returns a :class:`Dataset` whose images are kept in their stored
type (uint8 for MNIST and CIFAR, so replay memories stay 4x smaller than
float32) in NCHW layout; :meth:`Dataset.to_input` turns a batch into the float32
tensor a model reads.

- :func:`load_digits`: scikit-learn's 8x8 digits, shipped with scikit-learn
  (the embedded default: no download);
- :func:`load_mnist`: MNIST IDX files (gzipped or not) from a directory;
- :func:`load_cifar`: CIFAR-10 / CIFAR-100 python-pickle archives;
- :func:`load_npz` / :func:`from_arrays`: your own arrays.
"""
from __future__ import annotations

import gzip
import os
import pathlib
import pickle
import tarfile
from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["Dataset", "DatasetError", "from_arrays", "load_cifar", "load_dataset", "load_digits",
           "load_mnist", "load_npz", "read_idx"]

MNIST_URL = "the MNIST database (yann.lecun.com/exdb/mnist or any mirror)"
CIFAR_URL = "the CIFAR page (www.cs.toronto.edu/~kriz/cifar.html), 'python version'"


class DatasetError(ValueError):
    """A dataset file is missing or malformed; the message says what was expected."""


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    max_value: float = 1.0  #: inputs are divided by this (255 for uint8 images)
    note: str = ""          #: how the split was made, when it is not the official one

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.y_train)

    def to_input(self, x: np.ndarray) -> np.ndarray:
        """A batch of stored samples as the model's float32 input."""
        return np.ascontiguousarray(x, dtype=np.float32) / np.float32(self.max_value)


def _check_arrays(name, x, y):
    if len(x) != len(y):
        raise DatasetError(f"{name}: {len(x)} samples but {len(y)} labels")
    if len(x) == 0:
        raise DatasetError(f"{name}: no sample")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{name}: labels must be a vector of integers, got {y.dtype} {y.shape}")
    if y.min() < 0:
        raise DatasetError(f"{name}: labels must be >= 0, got {int(y.min())}")
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        raise DatasetError(f"{name}: samples contain NaN or inf")


def stratified_split(y: np.ndarray, test_fraction: float, seed: int):
    """Indices (train, test) with the same class proportions, reproducible from seed."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def from_arrays(x_train, y_train, x_test=None, y_test=None, name="arrays", max_value=None,
                test_fraction=0.2, seed=0) -> Dataset:
    """A dataset from NumPy arrays; without a test set, a stratified split is made.

    Images are expected as [N, H, W] or [N, C, H, W] (or flat vectors [N, D]).
    ``max_value`` defaults to 255 for uint8 data and 1 otherwise.
    """
    x_train, y_train = np.asarray(x_train), np.asarray(y_train)
    _check_arrays(f"{name} train", x_train, y_train)
    note = ""
    if x_test is None:
        tr, te = stratified_split(y_train, test_fraction, seed)
        x_test, y_test = x_train[te], y_train[te]
        x_train, y_train = x_train[tr], y_train[tr]
        note = f"train/test: stratified {1 - test_fraction:.0%}/{test_fraction:.0%} split, seed {seed}"
    x_test, y_test = np.asarray(x_test), np.asarray(y_test)
    for split, (x, y) in {"train": (x_train, y_train), "test": (x_test, y_test)}.items():
        _check_arrays(f"{name} {split}", x, y)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"{name}: train samples {x_train.shape[1:]} and test samples "
                           f"{x_test.shape[1:]} differ in shape")
    if x_train.ndim == 3:  # [N, H, W] -> [N, 1, H, W]
        x_train, x_test = x_train[:, None], x_test[:, None]
    if max_value is None:
        max_value = 255.0 if x_train.dtype == np.uint8 else 1.0
    return Dataset(name, x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64),
                   float(max_value), note)


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's handwritten digits: 1,797 images of 8x8, values 0..16, 10 classes."""
    from sklearn.datasets import load_digits as sk_digits
    digits = sk_digits()
    images = digits.images.astype(np.uint8)  # integers 0..16
    return from_arrays(images, digits.target, name="digits", max_value=16.0,
                       test_fraction=test_fraction, seed=seed)


# ------------------------------------------------------------------ MNIST --

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not."""
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"cannot read IDX file {path}: {e}") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DatasetError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        raise DatasetError(f"{path}: {len(data) - header} bytes of data, {expected} expected for "
                           f"shape {dims} (truncated or corrupt file)")
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find(directory: pathlib.Path, stem: str) -> Optional[pathlib.Path]:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (directory / name).exists():
            return directory / name
    return None


def load_mnist(directory, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """MNIST from ``train-*`` and ``t10k-*`` IDX files in ``directory``.

    When only the 10,000-image ``t10k`` split is present, it is split into
    train and test parts (stratified, ``seed``), and the dataset's ``note``
    says so.
    """
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"MNIST directory {directory} does not exist; it should hold "
                           f"t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) "
                           f"(and train-*), from {MNIST_URL}")
    files = {f"{split}-{kind}": _find(directory, f"{split}-{kind}-idx{rank}-ubyte")
             for split in ("train", "t10k") for kind, rank in (("images", 3), ("labels", 1))}
    if files["t10k-images"] is None or files["t10k-labels"] is None:
        raise DatasetError(f"no MNIST IDX files in {directory}: expected t10k-images-idx3-ubyte(.gz) "
                           f"and t10k-labels-idx1-ubyte(.gz) (and train-*), from {MNIST_URL}")
    x_test, y_test = read_idx(files["t10k-images"]), read_idx(files["t10k-labels"])
    if files["train-images"] is not None and files["train-labels"] is not None:
        x_train, y_train = read_idx(files["train-images"]), read_idx(files["train-labels"])
        return from_arrays(x_train, y_train, x_test, y_test, name="mnist")
    dataset = from_arrays(x_test, y_test, name="mnist", test_fraction=test_fraction, seed=seed)
    dataset.note = f"MNIST t10k only: {dataset.note}"
    return dataset


# ------------------------------------------------------------------ CIFAR --

def _unpickle(source, name):
    try:
        return pickle.load(source, encoding="bytes")
    except Exception as e:  # pickle raises many types on a damaged file
        raise DatasetError(f"CIFAR file {name} is not a readable pickle: {e}") from e


def load_cifar(path, n_classes: int = 10) -> Dataset:
    """CIFAR-10 or CIFAR-100 from the official python-pickle archive (``.tar.gz``)
    or its extracted folder (``cifar-10-batches-py`` / ``cifar-100-python``).

    The archives are pickles: load only files you trust.
    """
    if n_classes not in (10, 100):
        raise ValueError(f"CIFAR has 10 or 100 classes, not {n_classes}")
    path = pathlib.Path(path)
    folder = "cifar-10-batches-py" if n_classes == 10 else "cifar-100-python"
    names = ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]) if n_classes == 10 \
        else (["train"], ["test"])
    label_key = b"labels" if n_classes == 10 else b"fine_labels"
    members = {}
    if path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                base = os.path.basename(member.name)
                if base in names[0] + names[1]:
                    members[base] = _unpickle(tar.extractfile(member), member.name)
    else:
        for candidate in (path, path / folder):
            if all((candidate / n).exists() for n in names[0] + names[1]):
                for n in names[0] + names[1]:
                    with open(candidate / n, "rb") as f:
                        members[n] = _unpickle(f, candidate / n)
                break
    missing = [n for n in names[0] + names[1] if n not in members]
    if missing:
        raise DatasetError(f"CIFAR-{n_classes} files {missing} not found in {path}: expected the "
                           f"archive or its '{folder}' folder, from {CIFAR_URL}")

    def stack(split):
        try:
            x = np.concatenate([np.asarray(members[n][b"data"], np.uint8) for n in split])
            y = np.concatenate([np.asarray(members[n][label_key], np.int64) for n in split])
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(f"CIFAR-{n_classes} batch without the expected data/labels: {e}") from e
        if x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
            raise DatasetError(f"CIFAR-{n_classes}: rows of {x.shape[1:]} values, expected 3072")
        return x.reshape(-1, 3, 32, 32), y
    (x_train, y_train), (x_test, y_test) = stack(names[0]), stack(names[1])
    return from_arrays(x_train, y_train, x_test, y_test, name=f"cifar{n_classes}")


def load_npz(path) -> Dataset:
    """A ``.npz`` with ``x_train, y_train`` and optionally ``x_test, y_test``."""
    path = pathlib.Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist: expected a .npz with x_train, y_train "
                           f"(and x_test, y_test)") from None
    except Exception as e:
        raise DatasetError(f"{path} is not a readable .npz file: {e}") from e
    if "x_train" not in arrays or "y_train" not in arrays:
        raise DatasetError(f"{path} holds {sorted(arrays)}; expected x_train, y_train "
                           f"(and optionally x_test, y_test)")
    return from_arrays(arrays["x_train"], arrays["y_train"], arrays.get("x_test"),
                       arrays.get("y_test"), name=path.stem)


def load_dataset(name: str, data_dir=None, seed: int = 0) -> Dataset:
    """By name: ``digits`` (default, embedded), ``mnist``, ``cifar10``, ``cifar100``, ``npz``."""
    if name == "digits":
        return load_digits(seed=seed)
    if data_dir is None:
        raise DatasetError(f"dataset '{name}' needs a data directory or file (--data-dir)")
    if name == "mnist":
        return load_mnist(data_dir, seed=seed)
    if name in ("cifar10", "cifar100"):
        return load_cifar(data_dir, int(name[5:]))
    if name == "npz":
        return load_npz(data_dir)
    raise ValueError(f"unknown dataset '{name}': digits, mnist, cifar10, cifar100 or npz")
