"""Datasets for class-incremental scenarios, one module per source format.

Every loader returns a :class:`Dataset` whose images are kept in their stored
type (uint8 for MNIST and CIFAR, so replay memories stay 4x smaller than
float32) in NCHW layout; :meth:`Dataset.to_input` turns a batch into the float32
tensor a model reads. Files are untrusted input: they are read only when they
are regular files of bounded size, never unpickled freely, and what they hold
is validated in :mod:`.base` before use.

- :func:`load_digits`: scikit-learn's 8x8 digits, shipped with scikit-learn
  (the embedded default: no download);
- :func:`load_mnist`: MNIST IDX files (gzipped or not) from a directory;
- :func:`load_cifar`: CIFAR-10 / CIFAR-100 python-pickle archives (restricted unpickler);
- :func:`load_npz` / :func:`from_arrays`: your own arrays.
"""
from __future__ import annotations

from .base import Dataset, DatasetError, MAX_LABEL, from_arrays, stratified_split
from .cifar import CIFAR_URL, load_cifar
from .digits import load_digits
from .mnist import MNIST_URL, load_mnist, read_idx
from .npz import load_npz

__all__ = ["Dataset", "DatasetError", "MAX_LABEL", "from_arrays", "load_cifar", "load_dataset",
           "load_digits", "load_mnist", "load_npz", "read_idx", "stratified_split"]


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
