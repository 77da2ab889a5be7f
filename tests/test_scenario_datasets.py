"""Scenarios and dataset loaders, with files written by the tests themselves."""
import gzip
import pickle

import numpy as np
import pytest

from aidge_incremental.datasets import (DatasetError, from_arrays, load_cifar, load_digits, load_mnist,
                                        load_npz, read_idx)
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


def test_cifar_loader(tmp_path, rng):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 255, (20, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, 20))
        batches[name] = (data, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
    ds = load_cifar(tmp_path, 10)
    assert ds.x_train.shape == (100, 3, 32, 32) and ds.x_test.shape == (20, 3, 32, 32)
    np.testing.assert_array_equal(ds.x_test.reshape(20, -1), batches["test_batch"][0])
    (folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a readable pickle"):
        load_cifar(tmp_path, 10)
    with pytest.raises(DatasetError, match="not found"):
        load_cifar(tmp_path, 100)


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
