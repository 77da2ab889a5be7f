"""Every convolution algorithm of the fast kernels (im2col, shifted, Winograd
F(2x2, 3x3) and F(4x4, 3x3)) against a float64 NumPy convolution and its
adjoints, against each other, and against central finite differences; and the
autotune table (choice by measurement, cache file, modes).

The conftest sets AIDGE_INCREMENTAL_AUTOTUNE=off for the suite; the tests of the
table switch the mode themselves and restore it.
"""
import os
import numpy as np
import pytest

from aidge_incremental import _core

ALGORITHMS = ["im2col", "shifted", "winograd2", "winograd4"]
# float32 rounding of each algorithm, relative to the largest output (measured
# here on N(0, 1) data: im2col/shifted ~1e-7, winograd2 ~3e-7, winograd4 ~2e-6)
TOLERANCE = {"im2col": 1e-5, "shifted": 1e-5, "winograd2": 2e-5, "winograd4": 1e-4}

# (N, C, H, W, O, (KH, KW), padding (top, left, bottom, right)): odd sizes,
# 1x1 and 2x2 images, C = 1 and 3, batch 1, chunks of several samples with a
# partial last one, asymmetric and zero padding, pads wider than the kernel's reach
SHAPES = [
    (2, 3, 7, 9, 5, (3, 3), (1, 1, 1, 1)),
    (1, 1, 5, 5, 1, (3, 3), (1, 1, 1, 1)),
    (3, 4, 1, 1, 6, (3, 3), (1, 1, 1, 1)),
    (2, 5, 2, 3, 3, (3, 3), (1, 1, 1, 1)),
    (4, 3, 6, 6, 4, (3, 3), (0, 0, 0, 0)),
    (2, 2, 9, 6, 3, (3, 3), (0, 1, 2, 1)),
    (1, 3, 5, 8, 2, (3, 3), (2, 3, 2, 0)),
    (37, 16, 8, 8, 16, (3, 3), (1, 1, 1, 1)),
    (9, 8, 13, 11, 12, (3, 3), (1, 1, 1, 1)),
    (3, 4, 10, 10, 5, (5, 5), (2, 2, 2, 2)),
    (5, 6, 9, 7, 4, (1, 1), (0, 0, 0, 0)),
]


def reference(x, w, b, pads, stride=(1, 1)):
    """float64 cross-correlation (Aidge's Conv2D), padding (top, left, bottom, right)."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    t, l, bo, r = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (l, r)))
    O, C, KH, KW = w.shape
    HO = (xp.shape[2] - KH) // stride[0] + 1
    WO = (xp.shape[3] - KW) // stride[1] + 1
    y = np.zeros((x.shape[0], O, HO, WO))
    for ki in range(KH):
        for kj in range(KW):
            window = xp[:, :, ki:ki + stride[0] * HO:stride[0], kj:kj + stride[1] * WO:stride[1]]
            y += np.einsum("nchw,oc->nohw", window, w[:, :, ki, kj])
    return y + (0 if b is None else b.astype(np.float64)[None, :, None, None])


def reference_backward(x, w, dy, pads, stride=(1, 1)):
    """float64 gradients of sum(y * dy): the adjoint written out, independently."""
    x, w, dy = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    t, l, bo, r = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (l, r)))
    dxp = np.zeros_like(xp)
    O, C, KH, KW = w.shape
    HO, WO = dy.shape[2:]
    dw = np.zeros_like(w)
    for ki in range(KH):
        for kj in range(KW):
            sl = (slice(None), slice(None), slice(ki, ki + stride[0] * HO, stride[0]),
                  slice(kj, kj + stride[1] * WO, stride[1]))
            dw[:, :, ki, kj] = np.einsum("nohw,nchw->oc", dy, xp[sl])
            dxp[sl] += np.einsum("nohw,oc->nchw", dy, w[:, :, ki, kj])
    dx = dxp[:, :, t:t + x.shape[2], l:l + x.shape[3]]
    return dx, dw, dy.sum(axis=(0, 2, 3))


def rel_err(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / max(1e-30, np.max(np.abs(b))))


def applies(algorithm, kernel, stride=(1, 1)):
    if algorithm == "im2col":
        return True
    if algorithm == "shifted":
        return stride == (1, 1)
    return stride == (1, 1) and kernel == (3, 3)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}x{s[2]}x{s[3]}-O{s[4]}-k{s[5][0]}-p{s[6]}")
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_algorithm_matches_float64_reference(rng, shape, algorithm):
    N, C, H, W, O, kernel, pads = shape
    if not applies(algorithm, kernel):
        with pytest.raises(ValueError, match="does not apply"):
            _core.conv2d_forward(np.zeros((N, C, H, W), np.float32), np.zeros((O, C, *kernel), np.float32),
                                 padding=pads, algorithm=algorithm)
        return
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C, *kernel)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    y = _core.conv2d_forward(x, w, b, padding=pads, algorithm=algorithm)
    expected = reference(x, w, b, pads)
    assert y.shape == expected.shape
    assert rel_err(y, expected) < TOLERANCE[algorithm]

    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = _core.conv2d_backward(x, w, dy, padding=pads, algorithm=algorithm, bias=True)
    rdx, rdw, rdb = reference_backward(x, w, dy, pads)
    assert rel_err(dx, rdx) < TOLERANCE[algorithm]
    assert rel_err(dw, rdw) < TOLERANCE[algorithm]
    assert rel_err(db, rdb) < 1e-5


@pytest.mark.parametrize("shape", [s for s in SHAPES if s[5] == (3, 3)][:6] + [SHAPES[7]],
                         ids=lambda s: f"{s[0]}x{s[1]}x{s[2]}x{s[3]}-O{s[4]}-p{s[6]}")
def test_winograd_agrees_with_the_shifted_kernel_and_finite_differences(rng, shape):
    """Winograd against the existing shifted-product kernel, and its backward
    against central differences of its own forward (the convolution is linear,
    so the difference quotient is exact up to float32 rounding)."""
    N, C, H, W, O, kernel, pads = shape
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C, *kernel)).astype(np.float32)
    y_shifted = _core.conv2d_forward(x, w, padding=pads, algorithm="shifted")
    dy = rng.standard_normal(y_shifted.shape).astype(np.float32)
    grads_shifted = _core.conv2d_backward(x, w, dy, padding=pads, algorithm="shifted")
    for algorithm in ("winograd2", "winograd4"):
        y = _core.conv2d_forward(x, w, padding=pads, algorithm=algorithm)
        assert rel_err(y, y_shifted.astype(np.float64)) < TOLERANCE[algorithm]
        dx, dw, _ = _core.conv2d_backward(x, w, dy, padding=pads, algorithm=algorithm)
        assert rel_err(dx, grads_shifted[0].astype(np.float64)) < TOLERANCE[algorithm]
        assert rel_err(dw, grads_shifted[1].astype(np.float64)) < TOLERANCE[algorithm]

        def loss(xv, wv):
            return float(np.sum(_core.conv2d_forward(xv, wv, padding=pads, algorithm=algorithm)
                                .astype(np.float64) * dy))
        for direction_of, grad in (("x", dx), ("w", dw)):
            v = rng.standard_normal(x.shape if direction_of == "x" else w.shape).astype(np.float32)
            eps = np.float32(0.5)
            if direction_of == "x":
                fd = (loss(x + eps * v, w) - loss(x - eps * v, w)) / (2 * eps)
            else:
                fd = (loss(x, w + eps * v) - loss(x, w - eps * v)) / (2 * eps)
            analytic = float(np.sum(grad.astype(np.float64) * v))
            assert abs(fd - analytic) <= 1e-3 * max(1.0, abs(analytic)), (algorithm, direction_of, fd, analytic)


def test_backward_accumulates_and_skips_absent_gradients(rng):
    """The kernels add into dx/dw/db (Aidge's contract): two backward calls of a
    pair of kernels on shared gradient buffers are checked through the graph in
    test_kernels.py; here, each algorithm's result does not depend on what is asked."""
    x = rng.standard_normal((3, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((3, 5, 6, 6)).astype(np.float32)
    for algorithm in ("shifted", "winograd2", "winograd4"):
        dx, dw, db = _core.conv2d_backward(x, w, dy, padding=(1, 1, 1, 1), algorithm=algorithm, bias=True)
        dx2, dw2, none = _core.conv2d_backward(x, w, dy, padding=(1, 1, 1, 1), algorithm=algorithm)
        assert none is None
        np.testing.assert_array_equal(dx, dx2)
        np.testing.assert_array_equal(dw, dw2)


def test_winograd_error_against_float64_on_a_resnet_layer(rng):
    """The error each algorithm makes on a ResNet 3x3 layer (64 channels, 8x8),
    relative to the float64 result: F(4x4, 3x3) rounds more than F(2x2, 3x3),
    which rounds more than the direct products; all stay far below what SGD notices."""
    x = np.maximum(rng.standard_normal((8, 64, 8, 8)), 0).astype(np.float32)  # post-ReLU activations
    w = (rng.standard_normal((64, 64, 3, 3)) * np.sqrt(2 / (64 * 9))).astype(np.float32)
    pads = (1, 1, 1, 1)
    expected = reference(x, w, None, pads)
    errors = {a: rel_err(_core.conv2d_forward(x, w, padding=pads, algorithm=a), expected)
              for a in ("shifted", "winograd2", "winograd4")}
    assert errors["shifted"] <= errors["winograd2"] * 1.5 + 1e-7
    assert errors["winograd2"] < errors["winograd4"]
    assert errors["winograd4"] < 1e-5


def test_bad_arguments_raise_clear_errors():
    x = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(ValueError, match="argument 'w' must be"):
        _core.conv2d_forward(x, np.zeros((3, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match="larger than the padded"):
        _core.conv2d_forward(x, np.zeros((3, 2, 7, 7), np.float32))
    with pytest.raises(ValueError, match="unknown convolution algorithm"):
        _core.conv2d_forward(x, np.zeros((3, 2, 3, 3), np.float32), algorithm="fft")
    with pytest.raises(ValueError, match="does not apply"):
        _core.conv2d_forward(x, np.zeros((3, 2, 3, 3), np.float32), stride=(2, 2), algorithm="winograd2")
    with pytest.raises(ValueError, match="argument 'dy' must be"):
        _core.conv2d_backward(x, np.zeros((3, 2, 3, 3), np.float32), np.zeros((1, 3, 5, 5), np.float32))


# ------------------------------------------------------------------ autotune

@pytest.fixture
def autotune(tmp_path, monkeypatch):
    """Autotune on, with a cache file of the test's own; the suite's mode after."""
    previous = _core.conv_autotune_mode()
    path = tmp_path / "autotune.txt"
    monkeypatch.setenv("AIDGE_INCREMENTAL_AUTOTUNE_FILE", str(path))
    _core.set_conv_autotune_mode("rebuild")
    yield path
    _core.set_conv_autotune_mode(previous)


def test_autotune_measures_once_and_writes_the_cache_file(rng, autotune):
    x = rng.standard_normal((5, 8, 12, 12)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    y = _core.conv2d_forward(x, w, padding=(1, 1, 1, 1))
    table = dict(_core.conv_autotune_table())
    forward = [k for k in table if k.startswith("forward/N8/C8/H12xW12/O8/K3x3/S1x1/P1,1,1,1/")]
    assert len(forward) == 1 and table[forward[0]] in ("shifted", "winograd2", "winograd4")
    # the result is the chosen algorithm's
    np.testing.assert_array_equal(y, _core.conv2d_forward(x, w, padding=(1, 1, 1, 1), algorithm=table[forward[0]]))
    assert forward[0].endswith("/" + _core.blas_core_name())
    lines = [ln.split() for ln in autotune.read_text().splitlines() if not ln.startswith("#")]
    assert [forward[0], table[forward[0]]] in lines
    # strided convolutions have one algorithm: nothing to measure, no entry
    _core.conv2d_forward(x, w, stride=(2, 2), padding=(1, 1, 1, 1))
    assert not [k for k in dict(_core.conv_autotune_table()) if "/S2x2/" in k]


def test_autotune_reuses_the_file_and_ignores_malformed_lines(rng, autotune):
    x = rng.standard_normal((4, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    _core.conv2d_forward(x, w, padding=(1, 1, 1, 1))
    (key, measured), = [kv for kv in _core.conv_autotune_table() if kv[0].startswith("forward/N4/C3/H9xW9/")]
    other = "winograd4" if measured != "winograd4" else "winograd2"
    _core.set_conv_autotune_mode("rebuild")  # forget what was measured...
    autotune.write_text("# comment\n"
                        f"{key} {other}\n"
                        f"{key.replace('/N4/', '/N8/')} fft\n"
                        "garbage line with too many fields\n"
                        "forward/bad\x01key winograd2\n")
    _core.set_conv_autotune_mode("on")  # ...and read the file at the next lookup
    y = _core.conv2d_forward(x, w, padding=(1, 1, 1, 1))
    np.testing.assert_array_equal(y, _core.conv2d_forward(x, w, padding=(1, 1, 1, 1), algorithm=other))
    assert dict(_core.conv_autotune_table()) == {key: other}


def test_autotune_off_uses_the_fixed_choice_and_no_file(rng, autotune):
    _core.set_conv_autotune_mode("off")
    assert _core.conv_autotune_file() == ""
    x = rng.standard_normal((2, 32, 6, 6)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    y = _core.conv2d_forward(x, w, padding=(1, 1, 1, 1))
    np.testing.assert_array_equal(y, _core.conv2d_forward(x, w, padding=(1, 1, 1, 1), algorithm="winograd4"))
    assert not autotune.exists()
    with pytest.raises(ValueError, match="'on' \\(default\\), 'off' or 'rebuild'"):
        _core.set_conv_autotune_mode("sometimes")


def test_the_autotune_cache_is_not_written_through_a_planted_link(tmp_path):
    """Before: the cache was written to the predictable '<file>.<pid>.tmp' with a
    truncating open, so a link planted there truncated its target."""
    import subprocess
    import sys
    victim, cache = tmp_path / "victim", tmp_path / "conv.txt"
    victim.write_text("precious\n")
    code = ("import os, numpy as np\n"
            f"os.symlink({str(victim)!r}, {str(cache)!r} + f'.{{os.getpid()}}.tmp')\n"
            "import aidge_incremental\n"
            "from aidge_incremental import _core\n"
            "x = np.ones((2, 4, 8, 8), np.float32); w = np.ones((4, 4, 3, 3), np.float32)\n"
            "_core.conv2d_forward(x, w, padding=(1, 1, 1, 1))\n")
    env = dict(os.environ, AIDGE_INCREMENTAL_AUTOTUNE="rebuild", AIDGE_INCREMENTAL_AUTOTUNE_FILE=str(cache))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path, timeout=120)
    assert victim.read_text() == "precious\n"
    assert cache.is_file() and not cache.is_symlink() and "autotune table" in cache.read_text()
