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
- :func:`load_fashion_mnist`: Fashion-MNIST, the same IDX layout, with its own
  normalisation and augmentation;
- :func:`load_cifar`: CIFAR-10 / CIFAR-100 python-pickle archives (restricted unpickler);
- :func:`load_npz` / :func:`from_arrays`: your own arrays.
"""
from __future__ import annotations

from .base import (DATASETS, Dataset, DatasetError, DatasetSource, MAX_LABEL, from_arrays, register_dataset,
                   stratified_split)
from .transforms import Augmentation, Normalization
# one module per source; each registers itself in DATASETS
from .cifar import CIFAR_URL, load_cifar
from .digits import load_digits
from .mnist import MNIST_URL, load_idx_dataset, load_mnist, read_idx
from .fashion_mnist import FASHION_MNIST_URL, load_fashion_mnist
from .npz import load_npz

__all__ = ["Augmentation", "DATASETS", "Dataset", "DatasetError", "DatasetSource", "MAX_LABEL", "Normalization",
           "from_arrays", "load_cifar", "load_dataset", "load_digits", "load_fashion_mnist", "load_idx_dataset",
           "load_mnist", "load_npz", "read_idx", "register_dataset", "stratified_split"]


def load_dataset(name: str, data_dir=None, seed: int = 0, normalize: bool = True, download: bool = False,
                 log=None) -> Dataset:
    """A registered dataset by name (:data:`DATASETS`: ``digits``, the embedded
    default, ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``, ``npz``...), with its default
    augmentation and, unless ``normalize`` is false, its normalisation.
    ``download``: fetch its official files first (:mod:`.download`) into
    ``data_dir`` or the cache folder."""
    source = DATASETS[name]
    if download:
        if not source.needs_path:
            raise DatasetError(f"dataset '{name}' ships with the package: --download does not apply")
        from .download import download as fetch
        data_dir = fetch(name, data_dir, log=log)
    if source.needs_path and data_dir is None:
        raise DatasetError(f"dataset '{name}' needs a data directory or file (--data-dir)"
                           + (", or --download" if name in _downloadable() else ""))
    dataset = source.load(None if not source.needs_path else data_dir, seed)
    return dataset.replace(normalization=source.normalization if normalize else None,
                           augmentation=source.augmentation)


def _downloadable():
    from .download import DOWNLOADS
    return DOWNLOADS
