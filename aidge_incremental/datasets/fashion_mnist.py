"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv 1708.07747): 70,000 grey
28x28 images of 10 kinds of clothing, in MNIST's IDX layout and file names
(``train-*``: 60,000, ``t10k-*``: 10,000), read by the MNIST reader
(:func:`~.mnist.load_idx_dataset`). Harder than MNIST, so class-incremental
methods separate on it.

**Normalisation.** Mean 0.2860, std 0.3530: the mean and the (population)
standard deviation of every pixel of the 60,000 training images scaled to
[0, 1] (47,040,000 values; computed with
``x = read_idx("train-images-idx3-ubyte.gz") / 255; x.mean(), x.std()`` ->
0.28604, 0.35302), the figures commonly published for the dataset.

**Augmentation.** A random 28x28 crop of the image padded by 2 zero pixels,
and a horizontal flip with probability 1/2. Both are label-preserving here:
the ten classes are kinds of garment or shoe, whose mirror image is the same
kind (a left shoe mirrored is a right shoe), unlike digits. Flip and crop are
the augmentation of the strongest Fashion-MNIST results listed in the
dataset's README (zalandoresearch/fashion-mnist, "Benchmark": WRN-28-10 and
its random-erasing variant, "random crops/horizontal flips"; their code,
zhunzhong07/Random-Erasing ``fashionmnist.py``, pads by 4). We pad by 2, as
the README's CapsNet entry ("shift at most 2 pixel and horizontal flip"):
the garments fill most of the 28x28 frame (trousers and dresses touch its
top and bottom), so a 4-pixel shift would cut a seventh of the object off.
"""
from __future__ import annotations

from .base import Dataset, DatasetSource, register_dataset
from .mnist import load_idx_dataset
from .transforms import Augmentation, Normalization

__all__ = ["FASHION_MNIST_AUGMENTATION", "FASHION_MNIST_NORMALIZATION", "FASHION_MNIST_URL",
           "load_fashion_mnist"]

FASHION_MNIST_URL = "github.com/zalandoresearch/fashion-mnist (or Debian's dataset-fashion-mnist package)"

#: mean and std of the 60,000 training images' pixels in [0, 1] (module docstring)
FASHION_MNIST_NORMALIZATION = Normalization((0.2860,), (0.3530,))
#: random crop of the image padded by 2 pixels, horizontal flip (module docstring)
FASHION_MNIST_AUGMENTATION = Augmentation(padding=2, flip=True)


def load_fashion_mnist(directory, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Fashion-MNIST from its IDX files in ``directory``: the official
    60,000/10,000 split when both splits are there; with the ``t10k`` files only,
    a stratified split of them (the dataset's ``note`` says so)."""
    return load_idx_dataset(directory, "fashion-mnist", FASHION_MNIST_URL, test_fraction, seed)


register_dataset(DatasetSource(
    "fashion-mnist", lambda path, seed: load_fashion_mnist(path, seed=seed),
    f"Fashion-MNIST IDX files in a directory ({FASHION_MNIST_URL})",
    normalization=FASHION_MNIST_NORMALIZATION, augmentation=FASHION_MNIST_AUGMENTATION))
