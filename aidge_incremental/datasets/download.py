"""``--download``: the official files of MNIST, Fashion-MNIST and CIFAR-10/100,
fetched with pooch (the ``download`` extra, imported only here), each checked
against its pinned SHA-256 before anything reads it.

The pins are the SHA-256 of the files at the URLs below, as TensorFlow
Datasets and Keras record them (the MNIST ones also match the two official
``t10k`` files this project's benchmarks use). A file already in the folder
with the right digest is not fetched again; a download whose digest differs
is refused and removed (pooch writes to a temporary file first), so a
corrupted or substituted file is never read. The table is data
(:data:`DOWNLOADS`): tests serve their own files and pins.

Without ``data_dir``, files go to a cache folder: ``$AIDGE_INCREMENTAL_DATA``
if set, else ``~/.cache/aidge_incremental/<dataset>`` (the platform's user
cache folder).
"""
from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

from .base import DatasetError

__all__ = ["DATA_ENV", "DOWNLOADS", "RemoteFile", "data_folder", "download"]

DATA_ENV = "AIDGE_INCREMENTAL_DATA"  #: overrides the cache folder of downloads
INSTALL = 'pip install pooch (the extra: pip install "aidge_incremental[download]")'


@dataclass(frozen=True)
class RemoteFile:
    name: str     #: the file's name in the data folder
    url: str
    sha256: str
    size: int     #: bytes, as published (reported, not trusted: the digest is)


_MNIST = "https://storage.googleapis.com/cvdf-datasets/mnist/"  # the original LeCun files, mirrored
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"  # Zalando Research's
_CIFAR = "https://www.cs.toronto.edu/~kriz/"

#: every dataset --download knows: its files; what the loader reads is the folder
#: (MNIST, Fashion-MNIST) or the single archive (CIFAR)
DOWNLOADS: Dict[str, Tuple[RemoteFile, ...]] = {
    "mnist": (
        RemoteFile("train-images-idx3-ubyte.gz", _MNIST + "train-images-idx3-ubyte.gz",
                   "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
        RemoteFile("train-labels-idx1-ubyte.gz", _MNIST + "train-labels-idx1-ubyte.gz",
                   "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
        RemoteFile("t10k-images-idx3-ubyte.gz", _MNIST + "t10k-images-idx3-ubyte.gz",
                   "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
        RemoteFile("t10k-labels-idx1-ubyte.gz", _MNIST + "t10k-labels-idx1-ubyte.gz",
                   "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
    ),
    "fashion-mnist": (
        RemoteFile("train-images-idx3-ubyte.gz", _FASHION + "train-images-idx3-ubyte.gz",
                   "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
        RemoteFile("train-labels-idx1-ubyte.gz", _FASHION + "train-labels-idx1-ubyte.gz",
                   "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
        RemoteFile("t10k-images-idx3-ubyte.gz", _FASHION + "t10k-images-idx3-ubyte.gz",
                   "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
        RemoteFile("t10k-labels-idx1-ubyte.gz", _FASHION + "t10k-labels-idx1-ubyte.gz",
                   "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
    ),
    "cifar10": (
        RemoteFile("cifar-10-python.tar.gz", _CIFAR + "cifar-10-python.tar.gz",
                   "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce", 170498071),
    ),
    "cifar100": (
        RemoteFile("cifar-100-python.tar.gz", _CIFAR + "cifar-100-python.tar.gz",
                   "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7", 169001437),
    ),
}


def data_folder(dataset: str, data_dir=None) -> pathlib.Path:
    """Where ``dataset``'s downloads go: ``data_dir``, else the cache folder."""
    if data_dir is not None:
        return pathlib.Path(data_dir)
    if os.environ.get(DATA_ENV):
        return pathlib.Path(os.environ[DATA_ENV]) / dataset
    try:
        import platformdirs  # pooch's own dependency
        return pathlib.Path(platformdirs.user_cache_dir("aidge_incremental")) / dataset
    except ImportError:
        return pathlib.Path.home() / ".cache" / "aidge_incremental" / dataset


def download(dataset: str, data_dir=None, files: Optional[Sequence[RemoteFile]] = None,
             progress: bool = False, log: Optional[Callable[[str], None]] = None) -> pathlib.Path:
    """Fetch ``dataset``'s files (``files``: instead of :data:`DOWNLOADS`'s) into
    :func:`data_folder` and return the path its loader reads (the folder, or a
    lone archive). Raises :class:`DatasetError` naming the file on a network
    failure or a digest that differs from the pin."""
    if files is None:
        if dataset not in DOWNLOADS:
            raise DatasetError(f"--download knows {', '.join(sorted(DOWNLOADS))}, not {dataset!r}: give "
                               "--data-dir")
        files = DOWNLOADS[dataset]
    try:
        import pooch
    except ImportError as e:
        raise DatasetError(f"--download fetches with pooch, which cannot be imported ({e}): {INSTALL}") from None
    pooch.get_logger().setLevel("WARNING")  # we say what is downloaded ourselves
    folder = data_folder(dataset, data_dir)
    if folder.exists() and not folder.is_dir():
        raise DatasetError(f"--download writes into a folder: {folder} is a file (give a directory as --data-dir)")
    folder.mkdir(parents=True, exist_ok=True)
    for remote in files:
        present = (folder / remote.name).is_file()
        if log is not None and not present:
            log(f"downloading {remote.url} ({remote.size:,} bytes) to {folder}")
        try:
            pooch.retrieve(remote.url, known_hash=f"sha256:{remote.sha256}", fname=remote.name, path=folder,
                           progressbar=progress)
        except ValueError as e:  # pooch: "SHA256 hash of downloaded file (...) does not match the known hash"
            raise DatasetError(f"{remote.url}: the file downloaded does not have the pinned SHA-256 "
                               f"{remote.sha256} (corrupted or replaced); refused, nothing kept ({_first(e)})") from None
        except OSError as e:  # requests' errors are OSErrors: no network, HTTP 404, ...
            raise DatasetError(f"cannot download {remote.url} ({_first(e)}); check the network, or put the "
                               f"file in {folder} yourself") from None
    return folder / files[0].name if len(files) == 1 else folder


def _first(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
