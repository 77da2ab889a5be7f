"""FastSGD (the training loop's optimiser on the cpu backend) against a NumPy
float64 implementation of torch.optim.SGD's rule; PyTorch itself is the
reference of the loop-level test in tests/test_training.py."""
import numpy as np
import pytest

import aidge_core as ac
import aidge_backend_cpu  # noqa: F401

from aidge_incremental import _core


def cpu_tensor(values):
    t = ac.Tensor(np.ascontiguousarray(values, dtype=np.float32))
    t.set_backend("cpu")
    return t


def set_grad(t, g):
    np.asarray(t.grad)[...] = g


def reference(p, grads, lrs, momentum, wd):
    p = p.astype(np.float64)
    buf = None
    for g, lr in zip(grads, lrs):
        d = g.astype(np.float64) + wd * p
        if momentum:
            buf = d if buf is None else momentum * buf + d
            d = buf
        p = p - lr * d
    return p


@pytest.mark.parametrize("momentum,wd", [(0.9, 0.0), (0.9, 5e-4), (0.0, 0.0), (0.0, 1e-3), (0.5, 0.1)])
def test_updates_match_pytorch_rule(rng, momentum, wd):
    shapes = [(300, 7), (7,), (70000,)]  # the last one runs the OpenMP loop
    values = [rng.standard_normal(s) for s in shapes]
    tensors = [cpu_tensor(v) for v in values]
    sgd = _core.FastSGD(tensors, momentum, wd)
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(4)]
    lrs = [0.1, 0.1, 0.05, 0.02]  # a rate change keeps the momentum
    for step, lr in enumerate(lrs):
        for t, g in zip(tensors, grads[step]):
            set_grad(t, g)
        sgd.update(lr)
    assert sgd.step == 4
    for i, t in enumerate(tensors):
        expected = reference(values[i], [g[i] for g in grads], lrs, momentum, wd)
        np.testing.assert_allclose(np.array(t), expected, rtol=2e-5, atol=2e-6)


def test_reset_grad_zeroes_every_gradient(rng):
    tensors = [cpu_tensor(rng.standard_normal((4, 3))), cpu_tensor(rng.standard_normal(5))]
    for t in tensors:
        set_grad(t, 1.0)
    _core.FastSGD(tensors, 0.9, 0.0).reset_grad()
    assert all(not np.any(np.array(t.grad)) for t in tensors)


@pytest.mark.parametrize("momentum,wd,match", [(1.0, 0.0, "momentum"), (-0.1, 0.0, "momentum"),
                                               (0.9, -1.0, "weight_decay"), (0.9, float("nan"), "weight_decay")])
def test_bad_hyper_parameters_are_refused(rng, momentum, wd, match):
    with pytest.raises(ValueError, match=match):
        _core.FastSGD([cpu_tensor(rng.standard_normal(3))], momentum, wd)


def test_non_float32_parameter_is_refused():
    t = ac.Tensor(np.zeros(3, np.float64))
    t.set_backend("cpu")
    with pytest.raises(ValueError, match="parameter #0 is not a contiguous float32"):
        _core.FastSGD([t], 0.9, 0.0)


def test_failed_update_changes_nothing(rng):
    good, bad = cpu_tensor(rng.standard_normal(6)), cpu_tensor(rng.standard_normal(4))
    sgd = _core.FastSGD([good, bad], 0.9, 0.0)
    set_grad(good, 1.0)
    set_grad(bad, 1.0)
    bad.set_datatype(ac.dtype.float64)  # changed under the optimiser (a re-compile to float64)
    before = np.array(good).copy()
    with pytest.raises(RuntimeError, match="parameter #1"):
        sgd.update(0.1)
    np.testing.assert_array_equal(np.array(good), before)
    assert sgd.step == 0
    with pytest.raises(ValueError, match="argument .lr. must be a finite number"):
        sgd.update(float("inf"))
