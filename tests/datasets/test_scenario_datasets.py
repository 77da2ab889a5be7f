"""Scenarios and dataset loaders, with files written by the tests themselves."""
import gzip
import io
import os
import pathlib
import pickle

import numpy as np
import pytest

from aidge_incremental.datasets import (DATASETS, Augmentation, DatasetError, from_arrays, load_cifar,
                                        load_dataset, load_digits, load_fashion_mnist, load_mnist, load_npz,
                                        read_idx)
from aidge_incremental.scenario import ClassIncrementalScenario


def write_idx(path, array, compress=False):
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    (gzip.open if compress else open)(path, "wb").write(payload)


def test_digits_is_embedded_and_stratified():
    ds = load_digits()
    assert ds.x_train.dtype == np.uint8 and ds.input_shape == (1, 8, 8)
    assert len(ds.x_train) + len(ds.x_test) == 1797
    x = ds.to_input(ds.x_train[:3])
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    counts = np.bincount(ds.y_test)
    assert counts.min() >= 34 and counts.max() <= 38


def test_digits_read_from_scikit_learns_file_equal_its_loader():
    """The embedded digits are read from scikit-learn's data file without importing
    scikit-learn (seconds of start-up): the same images and labels as its loader."""
    sk = pytest.importorskip("sklearn.datasets").load_digits()
    from aidge_incremental.datasets.digits import _digits_arrays
    images, labels = _digits_arrays()
    np.testing.assert_array_equal(images, sk.images)
    np.testing.assert_array_equal(labels, sk.target)


def test_scenario_steps():
    ds = load_digits()
    sc = ClassIncrementalScenario(ds, initial=4, increment=2, seed=3)
    assert sc.n_steps == 4 and len(list(sc)) == 4
    seen = set()
    for t, step in enumerate(sc):
        assert set(np.unique(step.y_train)) == set(step.classes.tolist())
        seen |= set(step.classes.tolist())
        assert set(np.unique(step.y_test)) == seen, "test restricted to the classes seen so far"
        # relabelling is consistent with the class order
        original = sc.original_labels(step.y_train)
        assert set(np.unique(original)) == set(sc.class_order[step.classes].tolist())
    explicit = ClassIncrementalScenario(ds, 2, 2, class_order=[9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    step = explicit.step(0)
    assert sorted(np.unique(explicit.original_labels(step.y_train)).tolist()) == [8, 9]
    with pytest.raises(ValueError, match="cannot be cut"):
        ClassIncrementalScenario(ds, 3, 2)
    with pytest.raises(ValueError, match="permutation"):
        ClassIncrementalScenario(ds, 2, 2, class_order=[0, 1, 2])
    with pytest.raises(IndexError):
        sc.step(4)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_loader(tmp_path, rng, compress):
    images = rng.integers(0, 255, (60, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 6).astype(np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, compress)
    np.testing.assert_array_equal(read_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}"), images)
    ds = load_mnist(tmp_path)  # test split only: stratified split, said in the note
    assert "t10k only" in ds.note and ds.input_shape == (1, 28, 28)
    assert len(ds.x_train) + len(ds.x_test) == 60
    # with the training split too, the official split is used
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images, compress)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels, compress)
    ds = load_mnist(tmp_path)
    assert ds.note == "" and len(ds.x_train) == 60 and len(ds.x_test) == 60


def test_mnist_errors(tmp_path, rng):
    with pytest.raises(DatasetError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="no MNIST IDX files"):
        load_mnist(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(path, rng.integers(0, 255, (5, 4, 4), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        read_idx(path)
    path.write_bytes(b"\x01\x02" + data[2:])
    with pytest.raises(DatasetError, match="bad magic"):
        read_idx(path)
    gz = tmp_path / "broken.gz"
    gz.write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(gz)


#: the full Fashion-MNIST, where this workplace keeps it (../shared/data beside the repository) or
#: $FASHION_MNIST_DIR; the statistics test is skipped without it
FASHION_MNIST = pathlib.Path(os.environ.get("FASHION_MNIST_DIR", pathlib.Path(__file__).resolve().parents[2].parent
                                            / "shared" / "data" / "fashion-mnist"))


def test_fashion_mnist_reads_the_idx_layout_with_its_own_transforms(tmp_path, rng):
    images = rng.integers(0, 255, (40, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 4).astype(np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, True)
    ds = load_dataset("fashion-mnist", tmp_path)
    assert ds.name == "fashion-mnist" and "fashion-mnist t10k only" in ds.note
    assert ds.normalization.mean == (0.2860,) and ds.normalization.std == (0.3530,)
    assert ds.augmentation == Augmentation(padding=2, flip=True)
    x = ds.to_input(ds.x_train[:2])
    np.testing.assert_allclose(x, (ds.x_train[:2] / 255 - 0.2860) / 0.3530, rtol=1e-5, atol=1e-5)
    assert load_dataset("fashion-mnist", tmp_path, normalize=False).normalization is None
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, True)
    with pytest.raises(DatasetError, match="train-images but not its partner"):
        load_fashion_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, True)
    ds = load_fashion_mnist(tmp_path)  # both splits: the official one
    assert ds.note == "" and len(ds.x_train) == 40 and len(ds.x_test) == 40
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no fashion-mnist IDX files"):
        load_fashion_mnist(tmp_path / "empty")
    assert DATASETS["mnist"].normalization is None  # MNIST stays unnormalised (its docstring)


@pytest.mark.skipif(not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists(),
                    reason="the full Fashion-MNIST is not on this machine")
def test_fashion_mnist_statistics_are_those_of_its_training_images():
    ds = load_fashion_mnist(FASHION_MNIST)
    assert (len(ds.x_train), len(ds.x_test)) == (60000, 10000)
    x = ds.x_train.astype(np.float64) / 255
    stats = DATASETS["fashion-mnist"].normalization
    assert abs(x.mean() - stats.mean[0]) < 5e-5 and abs(x.std() - stats.std[0]) < 5e-5


def py2_cifar_pickle(data: np.ndarray, labels, label_key=b"labels") -> bytes:
    """A batch exactly as the official archives store it: a Python 2 protocol-2
    pickle (str keys as SHORT_BINSTRING, the array through
    numpy.core.multiarray._reconstruct + ndarray.__setstate__), assembled opcode by
    opcode so that the test does not depend on how this Python pickles."""
    import struct

    def string(b):
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<I", len(b)) + b

    def integer(v):
        return b"K" + bytes([v]) if v < 256 else b"M" + struct.pack("<H", v)
    dtype = (b"cnumpy\ndtype\n" + string(b"u1") + integer(0) + integer(1) + b"\x87R"
             + b"(" + integer(3) + string(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + integer(0)
             + b"tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + integer(0) + b"\x85"
             + string(b"b") + b"\x87R" + b"(" + integer(1) + integer(data.shape[0])
             + integer(data.shape[1]) + b"\x86" + dtype + b"\x89" + string(data.tobytes()) + b"tb")
    label_list = b"](" + b"".join(integer(int(v)) for v in labels) + b"e"
    return (b"\x80\x02}(" + string(b"batch_label") + string(b"training batch 1 of 5")
            + string(b"data") + array + string(label_key) + label_list
            + string(b"filenames") + b"](" + string(b"x.png") + b"e" + b"u.")


def cifar_folder(tmp_path, rng, n=20):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 255, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        batches[name] = (data, labels)
        (folder / name).write_bytes(py2_cifar_pickle(data, labels))
    return folder, batches


def test_cifar_loader_reads_the_official_format_in_channel_order(tmp_path, rng):
    folder, batches = cifar_folder(tmp_path, rng)
    # one image with a known layout: red plane = 10, green = 20, blue = 30, and one
    # marked pixel at row 1, column 2 of the blue plane
    image = np.concatenate([np.full(1024, 10), np.full(1024, 20), np.full(1024, 30)]).astype(np.uint8)
    image[2048 + 1 * 32 + 2] = 255
    data, labels = batches["test_batch"]
    data[0] = image
    (folder / "test_batch").write_bytes(py2_cifar_pickle(data, labels))
    ds = load_cifar(tmp_path, 10)
    assert ds.x_train.shape == (100, 3, 32, 32) and ds.x_test.shape == (20, 3, 32, 32)
    assert ds.x_train.dtype == np.uint8 and ds.max_value == 255
    first = ds.x_test[0]
    assert [int(first[c].min()) for c in range(3)] == [10, 20, 30]
    assert first[2, 1, 2] == 255 and first[2, 2, 1] == 30 and int((first == 255).sum()) == 1
    np.testing.assert_array_equal(ds.y_test, labels)
    np.testing.assert_array_equal(ds.x_train[:20].reshape(20, -1), batches["data_batch_1"][0])
    # the same files through a Python 3 pickle (protocol 2 and the default) load identically
    import pickle
    for protocol in (2, pickle.DEFAULT_PROTOCOL):
        (folder / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": labels}, protocol))
        np.testing.assert_array_equal(load_cifar(tmp_path, 10).x_test[0], first)
    (folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a readable CIFAR pickle"):
        load_cifar(tmp_path, 10)
    with pytest.raises(DatasetError, match="not found"):
        load_cifar(tmp_path, 100)


class _Evil:
    """Unpickling this runs a shell command that creates a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("packed", ["folder", "tar.gz"])
def test_cifar_malicious_pickle_is_refused_without_running(tmp_path, rng, packed):
    import pickle
    import tarfile
    folder, batches = cifar_folder(tmp_path, rng, n=4)
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": _Evil(marker), b"labels": [0, 1, 2, 3]}, protocol=2)
    (folder / "data_batch_3").write_bytes(evil)
    assert not marker.exists()
    source = tmp_path
    if packed == "tar.gz":
        source = tmp_path / "cifar-10-python.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(folder, arcname="cifar-10-batches-py")
    with pytest.raises(DatasetError, match="'posix.system' is not allowed|'os.system' is not allowed"):
        load_cifar(source, 10)
    assert not marker.exists(), "the pickle's code ran"
    # other callables reachable through pickle are refused too
    for payload in (pickle.dumps(_Evil(marker).__reduce__()[0]), pickle.dumps(eval),
                    pickle.dumps(np.load)):
        (folder / "data_batch_3").write_bytes(payload)
        with pytest.raises(DatasetError, match="is not allowed"):
            load_cifar(tmp_path, 10)
    assert not marker.exists()


def test_cifar_refuses_values_a_cast_would_destroy(tmp_path, rng):
    import pickle
    folder, batches = cifar_folder(tmp_path, rng, n=4)
    data, labels = batches["data_batch_2"]
    cases = {"uint8 pixels 0..255": data.astype(np.float64) / 255,   # floats in [0, 1]
             "shape": data[:, :100],
             "labels.*list of ints": None}
    for message, x in cases.items():
        batch = {b"data": x if x is not None else data,
                 b"labels": labels if x is not None else [0.5] * 4}
        (folder / "data_batch_2").write_bytes(pickle.dumps(batch))
        with pytest.raises(DatasetError, match=message):
            load_cifar(tmp_path, 10)


def test_npz_loader(tmp_path, rng):
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=rng.random((40, 5)).astype(np.float32), y_train=np.arange(40) % 4)
    ds = load_npz(path)
    assert ds.input_shape == (5,) and "stratified" in ds.note
    np.savez(tmp_path / "bad.npz", images=np.zeros(3))
    with pytest.raises(DatasetError, match="expected x_train"):
        load_npz(tmp_path / "bad.npz")
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DatasetError, match="not a readable"):
        load_npz(tmp_path / "corrupt.npz")
    with pytest.raises(DatasetError, match="does not exist"):
        load_npz(tmp_path / "missing.npz")
    with pytest.raises(DatasetError, match="NaN"):
        from_arrays(np.full((4, 2), np.nan), np.arange(4))
    with pytest.raises(DatasetError, match="labels must be >= 0"):
        from_arrays(np.zeros((4, 2)), np.array([0, 1, -1, 2]))
    with pytest.raises(DatasetError, match="4 samples but 3 labels"):
        from_arrays(np.zeros((4, 2)), np.arange(3))


def test_values_a_cast_would_destroy_are_refused(tmp_path, rng):
    # float64 beyond float32 would become inf in the model's input
    with pytest.raises(DatasetError, match="out of float32 range"):
        from_arrays(np.array([[1e300, 0.0]] * 4), np.arange(4) % 2)
    # complex data would lose its imaginary part
    path = tmp_path / "complex.npz"
    np.savez(path, x_train=(rng.random((8, 3)) + 1j).astype(np.complex64), y_train=np.arange(8) % 2)
    with pytest.raises(DatasetError, match="complex"):
        load_npz(path)
    with pytest.raises(DatasetError, match="samples must be numbers"):
        from_arrays(np.array([["a", "b"]] * 4), np.arange(4) % 2)
    # a label far beyond any class count would make per-class tables huge
    with pytest.raises(DatasetError, match="largest supported label"):
        from_arrays(np.zeros((4, 2)), np.array([0, 1, 2 ** 40, 1]))
    with pytest.raises(DatasetError, match="largest supported label"):
        from_arrays(np.zeros((4, 2)), np.array([0, 1, 2 ** 63, 1], np.uint64))
    # finite float64 within float32 range, and integers, are accepted as they are
    ds = from_arrays(np.array([[1e30, 0.0]] * 4), np.arange(4) % 2, test_fraction=0.5)
    assert np.isfinite(ds.to_input(ds.x_train)).all()


def test_idx_files_are_validated_before_use(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 0]) + b"\x07")  # 0 dimensions: a scalar
    with pytest.raises(DatasetError, match="0 dimensions"):
        read_idx(path)
    # labels stored as a matrix, images as a vector
    write_idx(path, np.zeros((6, 4, 4), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros((6, 2), np.uint8))
    with pytest.raises(DatasetError, match="labels of shape"):
        load_mnist(tmp_path)
    # huge announced dimensions do not overflow into a small expected size
    path.write_bytes(bytes([0, 0, 0x08, 4]) + (2 ** 32 - 1).to_bytes(4, "big") * 4 + b"\x00" * 16)
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        read_idx(path)


def test_devices_and_fifos_are_not_read_without_bound(tmp_path):
    import os
    for device in ("/dev/zero", "/dev/urandom"):
        if os.path.exists(device):
            with pytest.raises(DatasetError, match="not a regular file"):
                read_idx(device)
            with pytest.raises(DatasetError, match="not a regular file"):
                load_npz(device)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        os.symlink("/dev/zero", folder / name)
    with pytest.raises(DatasetError, match="not a regular file"):
        load_cifar(tmp_path, 10)
    fifo = tmp_path / "t10k-images-idx3-ubyte"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match="not a regular file"):
        read_idx(fifo)


def test_gzip_bomb_is_bounded(tmp_path, monkeypatch):
    from aidge_incremental import files
    from aidge_incremental.datasets import mnist
    monkeypatch.setattr(mnist, "read_bounded_stream",
                        lambda f, name, what, error, **kw: files.read_bounded_stream(f, name, what, limit=1000,
                                                                                 error=error))
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, 1]) + (10 ** 6).to_bytes(4, "big") + bytes(10 ** 6))
    with pytest.raises(DatasetError, match="expands past 1000 bytes"):
        read_idx(path)


def test_cifar_batches_pickled_with_protocol_5_load_through_the_restricted_unpickler(tmp_path, rng):
    """Before: protocol 5 pickles an array as numpy's _frombuffer over a pickle buffer,
    which the restricted unpickler refused."""
    folder, batches = cifar_folder(tmp_path, rng, n=6)
    data, labels = batches["test_batch"]
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": labels}, protocol=5))
    dataset = load_cifar(tmp_path, 10)
    np.testing.assert_array_equal(dataset.x_test.reshape(len(data), -1), data)
    np.testing.assert_array_equal(dataset.y_test, labels)
    # a Fortran-ordered and a read-only array take the same path
    for array in (np.asfortranarray(data), np.frombuffer(data.tobytes(), np.uint8).reshape(data.shape)):
        (folder / "test_batch").write_bytes(pickle.dumps({b"data": array, b"labels": labels}, protocol=5))
        np.testing.assert_array_equal(load_cifar(tmp_path, 10).x_test.reshape(len(data), -1), data)
    # the buffer's size must match the dtype and shape it claims
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": _Frombuffer(data.tobytes(), (60, 3072)),
                                                      b"labels": labels}, protocol=5))
    with pytest.raises(DatasetError, match="not a readable CIFAR pickle.*60, 3072"):
        load_cifar(tmp_path, 10)
    # and an object dtype is refused, not reconstructed
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.array([object()] * 3, dtype=object),
                                                      b"labels": labels}, protocol=5))
    with pytest.raises(DatasetError, match="not a readable CIFAR pickle|is not allowed"):
        load_cifar(tmp_path, 10)


class _Frombuffer:
    """Pickles as a protocol-5 array (numpy's _frombuffer) whose shape need not fit its buffer."""

    def __init__(self, buffer, shape):
        self.buffer, self.shape = buffer, shape

    def __reduce_ex__(self, protocol):
        frombuffer = np.arange(2).__reduce_ex__(5)[0]
        return frombuffer, (pickle.PickleBuffer(self.buffer), np.dtype(np.uint8), self.shape, "C")


class _Reduces:
    """Pickles as ``func(*args)``, then ``__setstate__(state)`` if a state is given."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


_RECONSTRUCT = np.arange(2).__reduce__()[0]      # numpy._core.multiarray._reconstruct
_FROMBUFFER = np.arange(2).__reduce_ex__(5)[0]   # numpy._core.numeric._frombuffer
_U1 = np.dtype(np.uint8)


def _placeholder(state):
    """An array pickled as NumPy pickles one: _reconstruct(ndarray, (0,), b'b'), then its state."""
    return _Reduces(_RECONSTRUCT, (np.ndarray, (0,), b"b"), state)


@pytest.mark.parametrize("case", ["ndarray called", "_reconstruct of a shape", "object state",
                                  "state of a _frombuffer array", "short data"])
def test_cifar_arrays_must_be_backed_by_the_pickles_bytes(tmp_path, rng, case):
    """Before: numpy.ndarray(shape, dtype) and _reconstruct(ndarray, shape, dtype) were callable
    from a pickle: a 600 kB file gave a 921 MB array of uninitialised memory as images (an
    object-dtype state with fewer items than its shape even crashed NumPy)."""
    folder, batches = cifar_folder(tmp_path, rng, n=4)
    data, labels = batches["test_batch"]
    n = 100
    array = {"ndarray called": _Reduces(np.ndarray, ((n, 3072), _U1)),
             "_reconstruct of a shape": _Reduces(_RECONSTRUCT, (np.ndarray, (n, 3072), _U1)),
             "object state": _placeholder((1, (2, 3072), np.dtype(object), False, [0] * (2 * 3072))),
             "state of a _frombuffer array": _Reduces(_FROMBUFFER, (b"", _U1, (0,), "C"),
                                                      (1, (1, 3072), np.dtype(object), False, [0] * 3072)),
             "short data": _placeholder((1, (n, 3072), _U1, False, bytes(10)))}[case]
    for protocol in (2, 5):
        (folder / "test_batch").write_bytes(pickle.dumps({b"data": array, b"labels": [0] * n}, protocol))
        with pytest.raises(DatasetError, match="test_batch is not a readable CIFAR pickle"):
            load_cifar(tmp_path, 10)
    # the same construction with the data the shape needs loads (protocol 2, as the archives are)
    (folder / "test_batch").write_bytes(pickle.dumps(
        {b"data": _placeholder((1, data.shape, _U1, False, data.tobytes())), b"labels": labels}, 2))
    np.testing.assert_array_equal(load_cifar(tmp_path, 10).x_test.reshape(len(data), -1), data)


def test_cifar_unpickling_allocation_is_bounded_by_the_ratio_limit(tmp_path, rng, monkeypatch):
    """Before: one byte string in the pickle's memo backed any number of arrays."""
    from aidge_incremental import files
    monkeypatch.setattr(files, "MIN_EXPANSION_BOUND", 1 << 20)
    folder, _ = cifar_folder(tmp_path, rng, n=4)
    raw = bytes(3072 * 20)  # pickled once, referenced by every array through the memo
    arrays = [_placeholder((1, (20, 3072), _U1, False, raw)) for _ in range(120)]
    payload = pickle.dumps({b"data": arrays, b"labels": [0] * 20}, 2)
    assert len(payload) < 2 * len(raw) and 120 * len(raw) > files.MAX_EXPANSION_RATIO * len(payload)
    (folder / "test_batch").write_bytes(payload)
    with pytest.raises(DatasetError, match=r"test_batch is not a readable CIFAR pickle.*decompression ratio"):
        load_cifar(tmp_path, 10)


@pytest.mark.parametrize("cut", [10, 200, 0.5, 0.9])
def test_a_truncated_cifar_archive_is_a_dataset_error(tmp_path, rng, cut):
    """Before: a truncated .tar.gz gave a bare EOFError traceback."""
    import tarfile
    folder, _ = cifar_folder(tmp_path, rng, n=4)
    source = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(source, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    data = source.read_bytes()
    archive = tmp_path / "cut" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(data[:cut if isinstance(cut, int) else int(len(data) * cut)])
    with pytest.raises(DatasetError, match=r"cut/cifar-10-python\.tar\.gz"):
        load_cifar(archive, 10)


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_a_cifar_archive_bomb_is_refused_by_its_ratio(tmp_path, compression):
    import tarfile
    from aidge_incremental import files
    archive = tmp_path / f"cifar-10-python.tar.{compression}"
    size = files.MIN_EXPANSION_BOUND + (1 << 20)
    with tarfile.open(archive, f"w:{compression}") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = size
        tar.addfile(info, io.BytesIO(bytes(size)))
    with pytest.raises(DatasetError, match="ratio"):
        load_cifar(archive, 10)

def test_a_per_class_training_subset_keeps_the_test_set_whole(digits):
    from aidge_incremental.experiment import ExperimentConfig, run_experiment
    small = digits.per_class(20, seed=3)
    assert np.bincount(small.y_train).tolist() == [20] * 10
    assert small.x_test is digits.x_test and "20 training samples per class" in small.note
    np.testing.assert_array_equal(digits.per_class(20, seed=3).x_train, small.x_train)  # seeded
    assert not np.array_equal(digits.per_class(20, seed=4).x_train, small.x_train)
    assert len(digits.per_class(10_000).x_train) == len(digits.x_train)  # a class with fewer keeps them all
    with pytest.raises(ValueError, match="integer >= 1"):
        digits.per_class(0)
    result = run_experiment(ExperimentConfig(method="finetune", epochs=1, train_per_class=15), digits)
    assert "15 training samples per class" in result.dataset_note
