"""The dataset container and the checks every loader applies to what it read.

Files users hand us are untrusted: they are read only if they are regular
files of bounded size, and the arrays built from them are validated here
(numeric samples, values that survive the float32 model input, integer labels
in a bounded range) before anything is built on them.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..registry import Registry
from .transforms import Augmentation, Normalization

__all__ = ["CHANNEL_COUNTS", "DATASETS", "Dataset", "DatasetError", "DatasetSource", "LAYOUTS", "MAX_LABEL",
           "from_arrays", "image_layout", "register_dataset", "stratified_split"]

#: channel counts the layout detection recognises (grey, RGB, RGBA)
CHANNEL_COUNTS = (1, 3, 4)
#: how 4-D image arrays are laid out: "auto" detects channels-last (:func:`image_layout`)
LAYOUTS = ("auto", "nchw", "nhwc")

#: Largest class label: labels are class indices 0..C-1; 2^20 - 1 leaves room for
#: any real label set (ImageNet-21k has 21,841 classes) while per-class tables
#: indexed by label stay small (a label of 2^40 would ask for 8 TiB).
MAX_LABEL = (1 << 20) - 1
_FLOAT32_MAX = float(np.finfo(np.float32).max)


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
    #: per-channel statistics applied by :meth:`to_input` (None: inputs only scaled to [0, 1])
    normalization: Optional[Normalization] = None
    #: the augmentation training uses unless told otherwise (None: none)
    augmentation: Optional[Augmentation] = None

    def __post_init__(self):
        if self.normalization is not None:
            self.normalization.check(self.input_shape)

    def replace(self, **changes) -> "Dataset":
        """A copy with some fields changed (the arrays are shared, not copied)."""
        return dataclasses.replace(self, **changes)

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.y_train)

    def per_class(self, n: int, seed: int = 0) -> "Dataset":
        """A copy keeping ``n`` training samples of each class (all of a class that has
        fewer), drawn with ``seed``; the test set stays whole, and ``note`` says so."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"samples per class must be an integer >= 1, got {n!r}")
        rng = np.random.default_rng(seed)
        keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(self.y_train == c))[:n]
                                       for c in np.unique(self.y_train)]))
        note = f"{n} training samples per class (drawn with seed {seed}), the test set whole"
        return self.replace(x_train=self.x_train[keep], y_train=self.y_train[keep],
                            note=f"{self.note}; {note}" if self.note else note)

    def to_input(self, x: np.ndarray) -> np.ndarray:
        """A batch of stored samples as the model's float32 input: scaled by
        ``1 / max_value``, then normalised per channel if the dataset says so."""
        out = np.ascontiguousarray(x, dtype=np.float32) / np.float32(self.max_value)
        return out if self.normalization is None else self.normalization(out)


@dataclass(frozen=True)
class DatasetSource:
    """A dataset format or collection, as registered in :data:`DATASETS`.

    ``load(path, seed)`` reads it (``path`` is None when ``needs_path`` is
    false); ``normalization`` and ``augmentation`` are its defaults, stated
    (with their sources) in the file that registers it.
    """
    name: str
    load: Callable[[Optional[str], int], "Dataset"]
    help: str
    needs_path: bool = True
    normalization: Optional[Normalization] = None
    augmentation: Optional[Augmentation] = None


#: every dataset :func:`aidge_incremental.datasets.load_dataset` knows, by name
DATASETS: Registry[DatasetSource] = Registry("dataset", entry_points="aidge_incremental.datasets")


def register_dataset(source: DatasetSource, replace: bool = False) -> DatasetSource:
    """Make ``source`` loadable by name (``--dataset NAME``)."""
    if not isinstance(source, DatasetSource):
        raise TypeError(f"register_dataset takes a DatasetSource, got {type(source).__name__}")
    return DATASETS.register(source.name, source, replace=replace)


def _check_samples(name: str, x: np.ndarray) -> None:
    if x.dtype.kind == "c":
        raise DatasetError(f"{name}: samples are complex ({x.dtype}); a model reads real values: "
                           f"pass np.real(x) or np.abs(x) explicitly")
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"{name}: samples must be numbers, got dtype {x.dtype}")
    if x.ndim < 2:
        raise DatasetError(f"{name}: samples must be an array [N, ...] of vectors or images, "
                           f"got shape {x.shape}")
    if x.dtype.kind == "f":
        if not np.all(np.isfinite(x)):
            raise DatasetError(f"{name}: samples contain NaN or inf")
        if x.dtype.itemsize > 4 and x.size and float(np.max(np.abs(x))) > _FLOAT32_MAX:
            raise DatasetError(f"{name}: sample values up to {float(np.max(np.abs(x))):g} are out "
                               f"of float32 range (|x| <= {_FLOAT32_MAX:g}), the model's input type: "
                               f"rescale them")


def _check_labels(name: str, y: np.ndarray) -> None:
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DatasetError(f"{name}: labels must be a vector of integers, got {y.dtype} {y.shape}")
    low, high = int(y.min()), int(y.max())
    if low < 0:
        raise DatasetError(f"{name}: labels must be >= 0, got {low}")
    if high > MAX_LABEL:
        raise DatasetError(f"{name}: label {high} is beyond the largest supported label {MAX_LABEL}: "
                           f"labels are class indices, renumber them 0..C-1")


def _check_arrays(name, x, y):
    if x.ndim == 0 or y.ndim == 0:
        raise DatasetError(f"{name}: samples and labels must be arrays, got shapes {x.shape} "
                           f"and {y.shape}")
    if len(x) != len(y):
        raise DatasetError(f"{name}: {len(x)} samples but {len(y)} labels")
    if len(x) == 0:
        raise DatasetError(f"{name}: no sample")
    _check_samples(name, x)
    _check_labels(name, y)


def _as_array(value, name: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as e:
        raise DatasetError(f"{name} cannot be read as an array: {e}") from None


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


def image_layout(shape) -> str:
    """"nhwc" for a 4-D image array stored channels-last, "nchw" otherwise.

    The rule: [N, A, B, C] is channels-last when its last axis C is a channel
    count (1, 3 or 4) and its second axis A is not, e.g. [N, 32, 32, 3] or
    [N, 28, 28, 1]; anything else ([N, 3, 32, 32], and the ambiguous [N, 3, 4, 3])
    is read as channels-first."""
    if len(shape) == 4 and shape[3] in CHANNEL_COUNTS and shape[1] not in CHANNEL_COUNTS:
        return "nhwc"
    return "nchw"


def from_arrays(x_train, y_train, x_test=None, y_test=None, name="arrays", max_value=None,
                test_fraction=0.2, seed=0, layout: str = "auto") -> Dataset:
    """A dataset from NumPy arrays; without a test set, a stratified split is made.

    Images are expected as [N, H, W] or [N, C, H, W] (or flat vectors [N, D]),
    or channels-last [N, H, W, C]: with ``layout="auto"`` a 4-D array that
    :func:`image_layout` finds channels-last is transposed to [N, C, H, W] and
    the dataset's ``note`` says so ("nchw"/"nhwc" state the layout instead),
    of a real numeric type (complex data is refused: convert it explicitly);
    float64 values must fit in float32, the model's input type. Labels are
    integers in [0, MAX_LABEL]. ``max_value`` defaults to 255 for uint8 data
    and 1 otherwise.
    """
    if layout not in LAYOUTS:
        raise DatasetError(f"{name}: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    x_train, y_train = _as_array(x_train, f"{name} x_train"), _as_array(y_train, f"{name} y_train")
    _check_arrays(f"{name} train", x_train, y_train)
    notes = []
    if layout == "auto" and image_layout(x_train.shape) == "nhwc":
        layout = "nhwc"
        notes.append(f"images {tuple(x_train.shape[1:])} read as channels-last (N, H, W, C) and transposed "
                     f"to (N, C, H, W) = {(x_train.shape[3],) + tuple(x_train.shape[1:3])}")
    if layout == "nhwc":
        if x_train.ndim != 4:
            raise DatasetError(f"{name}: layout nhwc needs 4-D images [N, H, W, C], got shape {x_train.shape}")
        x_train = np.ascontiguousarray(x_train.transpose(0, 3, 1, 2))
        if x_test is not None:
            x_test = _as_array(x_test, f"{name} x_test")
            if x_test.ndim != 4:
                raise DatasetError(f"{name}: x_test of shape {x_test.shape}, expected [N, H, W, C] as x_train")
            x_test = np.ascontiguousarray(x_test.transpose(0, 3, 1, 2))
    if x_test is None:
        tr, te = stratified_split(y_train, test_fraction, seed)
        x_test, y_test = x_train[te], y_train[te]
        x_train, y_train = x_train[tr], y_train[tr]
        notes.append(f"train/test: stratified {1 - test_fraction:.0%}/{test_fraction:.0%} split, seed {seed}")
    x_test, y_test = _as_array(x_test, f"{name} x_test"), _as_array(y_test, f"{name} y_test")
    for split, (x, y) in {"train": (x_train, y_train), "test": (x_test, y_test)}.items():
        _check_arrays(f"{name} {split}", x, y)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"{name}: train samples {x_train.shape[1:]} and test samples "
                           f"{x_test.shape[1:]} differ in shape")
    if x_train.ndim == 3:  # [N, H, W] -> [N, 1, H, W]
        x_train, x_test = x_train[:, None], x_test[:, None]
    if max_value is None:
        max_value = 255.0 if x_train.dtype == np.uint8 else 1.0
    if not (isinstance(max_value, (int, float, np.integer, np.floating))
            and math.isfinite(max_value) and max_value > 0):
        raise DatasetError(f"{name}: max_value must be a finite number > 0, got {max_value!r}")
    return Dataset(name, x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64),
                   float(max_value), "; ".join(notes))
