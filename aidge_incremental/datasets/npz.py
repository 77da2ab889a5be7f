"""Your own arrays in a ``.npz`` file (read without pickle)."""
from __future__ import annotations

import io
import pathlib
import zipfile

import numpy as np

from ..files import MAX_EXPANSION_RATIO, MAX_FILE_BYTES, expansion_bound, read_bounded
from .base import Dataset, DatasetError, DatasetSource, from_arrays, register_dataset

__all__ = ["load_npz"]


def load_npz(path) -> Dataset:
    """A ``.npz`` with ``x_train, y_train`` and optionally ``x_test, y_test``.

    Arrays are read with ``allow_pickle=False``; their decompressed size is
    bounded; complex samples are refused (convert them explicitly).
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise DatasetError(f"{path} does not exist: expected a .npz with x_train, y_train "
                           f"(and x_test, y_test)")
    data = read_bounded(path, ".npz file", error=DatasetError)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            total = sum(info.file_size for info in z.infolist())
            compressed = any(info.compress_type != zipfile.ZIP_STORED for info in z.infolist())
        bound = expansion_bound(len(data) if compressed else None)
        if total > bound:
            raise DatasetError(f"{path}: its arrays expand to {total} bytes, more than {bound}"
                               + (f" ({MAX_EXPANSION_RATIO}x the file's size, the decompression ratio limit: save "
                                  "it with np.savez, uncompressed)" if bound < MAX_FILE_BYTES else ""))
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except DatasetError:
        raise
    except Exception as e:  # zipfile and numpy raise many types on a damaged file
        raise DatasetError(f"{path} is not a readable .npz file: {e}") from e
    if "x_train" not in arrays or "y_train" not in arrays:
        raise DatasetError(f"{path} holds {sorted(arrays)}; expected x_train, y_train "
                           f"(and optionally x_test, y_test)")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DatasetError(f"{path}: x_test and y_test go together, got only one of them")
    return from_arrays(arrays["x_train"], arrays["y_train"], arrays.get("x_test"),
                       arrays.get("y_test"), name=path.stem)


register_dataset(DatasetSource("npz", lambda path, seed: load_npz(path),
                               "your own arrays: a .npz with x_train, y_train (and x_test, y_test)"))
