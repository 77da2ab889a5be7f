"""Your own arrays in a ``.npz`` file (read without pickle)."""
from __future__ import annotations

import io
import pathlib
import zipfile


from ..files import MAX_EXPANSION_RATIO, MAX_FILE_BYTES, expansion_bound, read_bounded
from ..npyfile import read_npz
from .base import Dataset, DatasetError, DatasetSource, from_arrays, register_dataset

__all__ = ["NPZ_LAYOUT", "load_npz"]

#: the .npz layout, as ``run --help`` states it
NPZ_LAYOUT = """\
--dataset npz --data-dir FILE.npz: your own arrays, read without pickle:
  x_train  samples: [N, D] vectors, [N, H, W] grey images, [N, C, H, W] images
           (channels-first), or [N, H, W, C] (channels-last: detected when the
           last axis is 1, 3 or 4 and the second is not, then transposed, and
           the run says so); any real numeric type, uint8 read as 0..255
  y_train  [N] integer labels, 0 <= label < 2^20
  x_test, y_test  optional (else a stratified 80/20 split of the train arrays)"""


def load_npz(path) -> Dataset:
    """A ``.npz`` with ``x_train, y_train`` and optionally ``x_test, y_test``
    (:data:`NPZ_LAYOUT`; channels-last images are detected and transposed).

    Arrays are read with ``allow_pickle=False``; their decompressed size is
    bounded; complex samples are refused (convert them explicitly).
    """
    path = pathlib.Path(path)
    if not path.exists() or path.is_dir():
        raise DatasetError(f"{path} {'is a directory' if path.exists() else 'does not exist'}: expected a .npz "
                           f"file with x_train, y_train (and x_test, y_test)")
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
        arrays = read_npz(data, path, error=DatasetError)  # each header checked before allocating
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
