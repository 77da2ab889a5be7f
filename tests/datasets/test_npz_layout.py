"""Channels-last images in a .npz: detected by a stated rule, transposed, and said."""
import numpy as np
import pytest

from aidge_incremental.datasets import DatasetError, from_arrays, load_npz
from aidge_incremental.datasets.base import image_layout


@pytest.mark.parametrize("shape,layout", [
    ((5, 32, 32, 3), "nhwc"), ((5, 28, 28, 1), "nhwc"), ((5, 8, 8, 4), "nhwc"),
    ((5, 3, 32, 32), "nchw"), ((5, 1, 28, 28), "nchw"), ((5, 4, 8, 8), "nchw"),
    ((5, 3, 4, 3), "nchw"),  # ambiguous: read as channels-first, as the rule says
    ((5, 32, 32, 2), "nchw"), ((5, 28, 28), "nchw"), ((5, 64), "nchw"),
])
def test_layout_rule(shape, layout):
    assert image_layout(shape) == layout


def test_both_layouts_of_one_npz_give_the_same_dataset(tmp_path, rng):
    nchw = rng.integers(0, 256, (40, 3, 10, 12), dtype=np.uint8)
    y = np.repeat(np.arange(4), 10)
    test = rng.integers(0, 256, (8, 3, 10, 12), dtype=np.uint8)
    np.savez(tmp_path / "first.npz", x_train=nchw, y_train=y, x_test=test, y_test=y[::5])
    np.savez(tmp_path / "last.npz", x_train=nchw.transpose(0, 2, 3, 1), y_train=y,
             x_test=test.transpose(0, 2, 3, 1), y_test=y[::5])
    first, last = load_npz(tmp_path / "first.npz"), load_npz(tmp_path / "last.npz")
    assert first.input_shape == last.input_shape == (3, 10, 12)
    # element by element against the stored channels-last array
    assert last.x_train[7, 2, 4, 5] == nchw.transpose(0, 2, 3, 1)[7, 4, 5, 2]
    np.testing.assert_array_equal(first.x_train, last.x_train)
    np.testing.assert_array_equal(first.x_test, last.x_test)
    assert first.note == ""
    assert "read as channels-last (N, H, W, C) and transposed to (N, C, H, W) = (3, 10, 12)" in last.note


def test_a_stated_layout_overrides_the_rule(rng):
    x = rng.random((6, 3, 4, 3)).astype(np.float32)  # ambiguous: auto reads it channels-first
    y = np.array([0, 1] * 3)
    assert from_arrays(x, y, x, y).input_shape == (3, 4, 3)
    assert from_arrays(x, y, x, y, layout="nhwc").input_shape == (3, 3, 4)
    with pytest.raises(DatasetError, match="layout nhwc needs 4-D images"):
        from_arrays(x[:, 0], y, layout="nhwc")
    with pytest.raises(DatasetError, match="layout must be one of auto, nchw, nhwc"):
        from_arrays(x, y, layout="chw")


def test_an_npz_member_declaring_more_than_it_holds_is_refused_before_allocating(tmp_path):
    """Before: np.load allocated the shape a member's .npy header declared (a 1e10-row
    x_train in a file of a few hundred bytes)."""
    import io
    import zipfile
    from numpy.lib import format as npy_format
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 10, 8, 8)})
    path = tmp_path / "lying.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x_train.npy", header.getvalue() + b"\0" * 64)
        buf = io.BytesIO()
        np.save(buf, np.zeros(3, np.int64))
        z.writestr("y_train.npy", buf.getvalue())
    with pytest.raises(DatasetError, match="lying.npz"):
        load_npz(path)
