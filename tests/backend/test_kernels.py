"""Fast CPU kernels (aidge_incremental.accelerate) against independent references.

Conv2D and FC: Aidge's own CPU kernels (correct for these ops, see
AIDGE_NOTES.md), output and every gradient. BatchNorm2D and
GlobalAveragePooling (Aidge has no backward, and no BatchNorm train mode):
a NumPy float64 reference and central finite differences of it; PyTorch for
the running-statistics convention when installed.
"""
import numpy as np
import pytest

import aidge_core as ac
import aidge_backend_cpu  # noqa: F401
import aidge_learning as al

import aidge_incremental as ai
from aidge_incremental.backend.cpu import is_accelerated, unsupported_reason


def rel_err(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-12, np.max(np.abs(b))))


def single_op_graph(node, x_shape):
    graph = ac.sequential([node])
    graph.compile("cpu", ac.dtype.float32, dims=[list(x_shape)])
    return graph


def run_node(make_node, x, params, dy, accelerate):
    """Forward + backward of one node; returns output, dx and param grads.

    ``params`` maps an input index to its value; ``dy`` seeds the output gradient.
    """
    node = make_node()
    graph = single_op_graph(node, x.shape)
    op = node.get_operator()
    for idx, value in params.items():
        np.asarray(op.get_input(idx))[...] = value
    if accelerate:
        assert ai.accelerate(graph) >= 1
        assert is_accelerated(node) or not op.is_atomic()
    sched = ac.SequentialScheduler(graph)
    sched.forward(data=[ac.Tensor(x)])
    out = op.get_output(0)
    y = np.array(out)
    np.asarray(out.grad)[...] = dy.reshape(np.asarray(out.grad).shape)
    sched.backward()
    grads = {idx: np.array(op.get_input(idx).grad) for idx in params}
    return y, np.array(op.get_input(0).grad), grads, op


# ---------------------------------------------------------------- Conv2D, FC

CONV_CASES = [
    # (N, C, H, W, O, KH, KW, stride, bias)
    (1, 3, 7, 9, 5, 3, 3, (1, 1), True),
    (2, 4, 8, 8, 6, 3, 3, (2, 2), False),
    (3, 5, 9, 7, 4, 1, 1, (1, 1), True),
    (2, 6, 9, 9, 8, 1, 1, (2, 2), False),
    (1, 2, 11, 6, 3, 5, 3, (2, 1), True),
    (5, 3, 5, 5, 7, 2, 2, (3, 2), True),
    # stride 1 (the shifted formulation): one sample per chunk (many output
    # channels), several samples per chunk with a partial last chunk, 1x1
    (45, 4, 12, 12, 64, 3, 3, (1, 1), False),
    (37, 16, 10, 13, 16, 3, 3, (1, 1), True),
    (33, 8, 6, 6, 24, 1, 1, (1, 1), False),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_aidge(rng, case):
    N, C, H, W, O, KH, KW, stride, bias = case
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    params = {1: rng.standard_normal((O, C, KH, KW)).astype(np.float32)}
    if bias:
        params[2] = rng.standard_normal(O).astype(np.float32)
    HO, WO = (H - KH) // stride[0] + 1, (W - KW) // stride[1] + 1
    dy = rng.standard_normal((N, O, HO, WO)).astype(np.float32)

    def make():
        return ac.Conv2D(C, O, [KH, KW], stride_dims=list(stride), no_bias=not bias, name="conv")

    ref = run_node(make, x, params, dy, accelerate=False)
    ours = run_node(make, x, params, dy, accelerate=True)
    assert ours[0].shape == (N, O, HO, WO)
    assert rel_err(ours[0], ref[0]) <= 1e-5
    assert rel_err(ours[1], ref[1]) <= 1e-5
    for idx in params:
        assert rel_err(ours[2][idx], ref[2][idx]) <= 1e-5, f"gradient of input #{idx}"


PADDED_CONV_CASES = [
    # (N, C, H, W, O, KH, KW, padding_dims, stride, bias)
    (2, 3, 8, 7, 4, 3, 3, [1, 1, 1, 1], [1, 1], False),
    (2, 3, 8, 7, 4, 3, 3, [1, 1, 1, 1], [2, 2], True),
    (2, 3, 8, 7, 4, 3, 3, [2, 2, 2, 2], [1, 1], False),
    (3, 2, 9, 6, 5, 3, 2, [0, 1, 2, 3], [1, 1], True),   # asymmetric pads
    (1, 4, 5, 5, 3, 5, 5, [2, 2, 2, 2], [1, 1], True),   # kernel as large as the padded input
    (3, 3, 6, 5, 4, 3, 3, [3, 3, 3, 3], [1, 1], True),   # pads > kernel - 1: rows/samples keep their own pads
    (4, 2, 7, 6, 3, 2, 3, [3, 0, 1, 2], [1, 1], False),  # shared rows but not shared columns
    # several chunks per thread and a partial last chunk (16x16 images: one
    # sample per chunk; 6x6: several samples side by side in one product)
    (9, 16, 16, 16, 16, 3, 3, [1, 1, 1, 1], [1, 1], False),
    (23, 8, 6, 6, 12, 3, 3, [1, 1, 1, 1], [1, 1], True),
]


@pytest.mark.parametrize("case", PADDED_CONV_CASES)
def test_padded_conv2d_runs_as_one_kernel_and_matches_aidge(rng, case):
    N, C, H, W, O, KH, KW, pad, stride, bias = case
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    params = {1: rng.standard_normal((O, C, KH, KW)).astype(np.float32)}
    if bias:
        params[2] = rng.standard_normal(O).astype(np.float32)

    def make():
        return ac.PaddedConv2D(C, O, [KH, KW], name="pc", stride_dims=stride, padding_dims=pad,
                               no_bias=not bias)

    probe = single_op_graph(make(), x.shape)
    out_shape = probe.get_ordered_outputs()[0][0].get_operator().get_output(0).dims
    dy = rng.standard_normal(out_shape).astype(np.float32)
    ref = run_node(make, x, params, dy, accelerate=False)
    ours = run_node(make, x, params, dy, accelerate=True)
    meta = ours[3]
    inner = {n.type(): n for n in meta.get_micro_graph().get_nodes()}
    # one kernel: the inner Conv2D reads the Pad's input and the padded tensor
    # is never written
    assert is_accelerated(inner["Conv2D"]) and is_accelerated(inner["Pad"])
    assert not np.any(np.array(inner["Pad"].get_operator().get_output(0)))
    assert ours[0].shape == ref[0].shape
    for a, b in [(ours[0], ref[0]), (ours[1], ref[1])] + [(ours[2][i], ref[2][i]) for i in params]:
        assert rel_err(a, b) <= 1e-5


def test_padded_conv2d_with_edge_padding_runs_its_micro_graph(rng):
    """A PaddedConv2D whose Pad is not a zero padding stays a micro-graph; its
    inner nodes are accelerated where they can be (the Pad in edge mode cannot)."""
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    params = {1: rng.standard_normal((3, 2, 3, 3)).astype(np.float32)}
    dy = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)

    def make():
        node = ac.PaddedConv2D(2, 3, [3, 3], name="pc", padding_dims=[1, 1, 1, 1], no_bias=True)
        for inner in node.get_operator().get_micro_graph().get_nodes():
            if inner.type() == "Pad":
                inner.get_operator().attr.mode = ac.PaddingMode.EDGE
        return node

    probe = make()
    single_op_graph(probe, x.shape)
    assert "zero padding" in unsupported_reason(probe)
    ref = run_node(make, x, params, dy, accelerate=False)
    ours = run_node(make, x, params, dy, accelerate=True)
    inner = {n.type(): n for n in ours[3].get_micro_graph().get_nodes()}
    assert is_accelerated(inner["Conv2D"]) and not is_accelerated(inner["Pad"])
    for a, b in [(ours[0], ref[0]), (ours[1], ref[1]), (ours[2][1], ref[2][1])]:
        assert rel_err(a, b) <= 1e-5


@pytest.mark.parametrize("N,I,O,bias", [(1, 7, 3, True), (5, 13, 11, False), (128, 784, 256, True), (3, 1, 1, True)])
def test_fc_matches_aidge(rng, N, I, O, bias):
    x = rng.standard_normal((N, I)).astype(np.float32)
    params = {1: rng.standard_normal((O, I)).astype(np.float32)}
    if bias:
        params[2] = rng.standard_normal(O).astype(np.float32)
    dy = rng.standard_normal((N, O)).astype(np.float32)

    def make():
        return ac.FC(I, O, no_bias=not bias, name="fc")

    ref = run_node(make, x, params, dy, accelerate=False)
    ours = run_node(make, x, params, dy, accelerate=True)
    assert rel_err(ours[0], ref[0]) <= 1e-5
    assert rel_err(ours[1], ref[1]) <= 1e-5
    for idx in params:
        assert rel_err(ours[2][idx], ref[2][idx]) <= 1e-5


def test_fc_on_4d_input_flattens_like_aidge(rng):
    x = rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
    params = {1: rng.standard_normal((4, 8)).astype(np.float32), 2: rng.standard_normal(4).astype(np.float32)}
    dy = rng.standard_normal((3, 4)).astype(np.float32)
    ref = run_node(lambda: ac.FC(8, 4, name="fc"), x, params, dy, accelerate=False)
    ours = run_node(lambda: ac.FC(8, 4, name="fc"), x, params, dy, accelerate=True)
    for a, b in [(ours[0], ref[0]), (ours[1], ref[1]), (ours[2][1], ref[2][1]), (ours[2][2], ref[2][2])]:
        assert rel_err(a, b) <= 1e-5


def test_backward_accumulates_into_gradients(rng):
    """Two backward passes without zeroing add up, as Aidge's kernels do."""
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    node = ac.Conv2D(3, 4, [3, 3], name="conv")
    graph = single_op_graph(node, x.shape)
    op = node.get_operator()
    np.asarray(op.get_input(1))[...] = rng.standard_normal((4, 3, 3, 3))
    ai.accelerate(graph)
    sched = ac.SequentialScheduler(graph)
    sched.forward(data=[ac.Tensor(x)])
    np.asarray(op.get_output(0).grad)[...] = 1.0
    sched.backward()
    g1 = np.array(op.get_input(1).grad)
    sched.backward()
    np.testing.assert_allclose(np.asarray(op.get_input(1).grad), 2 * g1, rtol=1e-6)


@pytest.mark.parametrize("pads,axes,value", [([1, 1, 1, 1], [-2, -1], 0.0), ([1, 2, 3, 0], [-2, -1], 0.0),
                                             ([0, 5], [1], 0.0), ([2, 1, 0, 3], [2, 3], 1.5)])
def test_pad_matches_aidge(rng, pads, axes, value):
    x = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    probe = single_op_graph(ac.Pad(pads, name="pad", axes=axes, constant_value=value), x.shape)
    out_shape = probe.get_ordered_outputs()[0][0].get_operator().get_output(0).dims
    dy = rng.standard_normal(out_shape).astype(np.float32)

    def make():
        return ac.Pad(pads, name="pad", axes=axes, constant_value=value)

    ref = run_node(make, x, {}, dy, accelerate=False)
    ours = run_node(make, x, {}, dy, accelerate=True)
    np.testing.assert_array_equal(ours[0], ref[0])
    assert rel_err(ours[1], ref[1]) <= 1e-6


def test_pad_edge_mode_keeps_aidge_kernel():
    node = ac.Pad([1, 1, 1, 1], name="pad", mode=ac.PaddingMode.EDGE, axes=[-2, -1])
    single_op_graph(node, (1, 2, 4, 4))
    assert "constant" in unsupported_reason(node)


def test_relu_matches_aidge(rng):
    x = rng.standard_normal((3, 4, 5, 7)).astype(np.float32)
    x[0, 0, 0, :3] = 0.0  # the derivative at 0 must agree too
    dy = rng.standard_normal(x.shape).astype(np.float32)
    ref = run_node(lambda: ac.ReLU(name="relu"), x, {}, dy, accelerate=False)
    ours = run_node(lambda: ac.ReLU(name="relu"), x, {}, dy, accelerate=True)
    np.testing.assert_array_equal(ours[0], ref[0])
    np.testing.assert_array_equal(ours[1], ref[1])


def test_residual_add_with_fan_out_matches_aidge(rng):
    """x -> conv -> add(conv(x), x): the Add's second input is the graph input
    and also feeds the conv, so its gradient sums two paths."""
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 3, 1, 1)).astype(np.float32)
    results = []
    for accelerate in (False, True):
        conv = ac.Conv2D(3, 3, [1, 1], no_bias=True, name="conv")
        add = ac.Add(name="add")
        relu = ac.ReLU(name="relu")
        conv.add_child(add, 0, 0)
        add.add_child(relu, 0, 0)
        graph = ac.GraphView()
        for n in (relu, add, conv):
            graph.add(n)
        graph.set_ordered_inputs([(conv, 0), (add, 1)])
        graph.set_ordered_outputs([(relu, 0)])
        graph.compile("cpu", ac.dtype.float32, dims=[list(x.shape), list(x.shape)])
        np.asarray(conv.get_operator().get_input(1))[...] = w
        if accelerate:
            assert ai.accelerate(graph) == 3
        sched = ac.SequentialScheduler(graph)
        sched.forward(data=[ac.Tensor(x), ac.Tensor(x)])
        out = relu.get_operator().get_output(0)
        np.asarray(out.grad)[...] = 1.0
        sched.backward()
        results.append((np.array(out), np.array(add.get_operator().get_input(1).grad),
                        np.array(conv.get_operator().get_input(1).grad)))
    for a, b in zip(*results):
        assert rel_err(a, b) <= 1e-6


def test_broadcasting_add_keeps_aidge_kernel():
    add = ac.Add(name="add")
    graph = ac.GraphView()
    graph.add(add)
    graph.compile("cpu", ac.dtype.float32, dims=[[2, 3, 4, 4], [1, 3, 1, 1]])
    assert ai.accelerate(graph) == 0
    assert "broadcasting" in unsupported_reason(add)


# ------------------------------------------------------- BatchNorm2D, GAP

def bn_forward_ref(x, gamma, beta, rmean, rvar, training, momentum, eps):
    """NumPy float64 BatchNorm2D; returns y and the updated running stats."""
    x = x.astype(np.float64)
    if training:
        mu = x.mean(axis=(0, 2, 3))
        var = x.var(axis=(0, 2, 3))  # biased, to normalise
        m = x.size // x.shape[1]
        new_mean = rmean * momentum + mu * (1 - momentum)
        new_var = rvar * momentum + var * m / (m - 1) * (1 - momentum)  # unbiased
    else:
        mu, var = rmean.astype(np.float64), rvar.astype(np.float64)
        new_mean, new_var = rmean, rvar
    xhat = (x - mu[None, :, None, None]) / np.sqrt(var[None, :, None, None] + eps)
    y = gamma[None, :, None, None] * xhat + beta[None, :, None, None]
    return y, new_mean, new_var


def central_fd(f, arr, h=1e-6):
    """Gradient of the scalar f() w.r.t. arr (float64, modified in place and restored)."""
    grad = np.zeros_like(arr)
    flat, gflat = arr.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * h)
    return grad


def run_bn(x, gamma, beta, rmean, rvar, dy, training, momentum=0.9, eps=1e-5):
    C = x.shape[1]
    node = ac.BatchNorm2D(C, epsilon=eps, momentum=momentum, name="bn")
    graph = single_op_graph(node, x.shape)
    op = node.get_operator()
    op.attr.training_mode = training
    for idx, v in zip(range(1, 5), (gamma, beta, rmean, rvar)):
        np.asarray(op.get_input(idx))[...] = v
    assert ai.accelerate(graph) == 1
    sched = ac.SequentialScheduler(graph)
    sched.forward(data=[ac.Tensor(x)])
    y = np.array(op.get_output(0))
    np.asarray(op.get_output(0).grad)[...] = dy
    sched.backward()
    return (y, np.array(op.get_input(0).grad), np.array(op.get_input(1).grad), np.array(op.get_input(2).grad),
            np.array(op.get_input(3)), np.array(op.get_input(4)))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(1, 2, 3, 3), (3, 4, 5, 2), (4, 3, 1, 1), (2, 1, 7, 5)])
def test_batchnorm_vs_numpy_and_finite_differences(rng, training, shape):
    N, C, H, W = shape
    x = rng.standard_normal(shape) * 2.0 + 0.5
    gamma = rng.uniform(0.5, 1.5, C)
    beta = rng.standard_normal(C)
    rmean = rng.standard_normal(C) * 0.1
    rvar = rng.uniform(0.5, 2.0, C)
    dy = rng.standard_normal(shape)
    f32 = np.float32
    y, dx, dg, db, new_mean, new_var = run_bn(x.astype(f32), gamma.astype(f32), beta.astype(f32),
                                               rmean.astype(f32), rvar.astype(f32), dy.astype(f32), training)
    y_ref, m_ref, v_ref = bn_forward_ref(x, gamma, beta, rmean, rvar, training, 0.9, 1e-5)
    assert rel_err(y, y_ref) <= 1e-5
    assert rel_err(new_mean, m_ref) <= 1e-5 and rel_err(new_var, v_ref) <= 1e-5

    def loss():
        return float(np.sum(bn_forward_ref(x, gamma, beta, rmean, rvar, training, 0.9, 1e-5)[0] * dy))

    for ours, wrt in [(dx, x), (dg, gamma), (db, beta)]:
        assert rel_err(ours, central_fd(loss, wrt)) <= 1e-4


@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_batchnorm_one_pass_statistics_are_as_accurate_as_two_passes(rng, offset):
    """The forward reads the batch once for its statistics (each plane's mean
    and squared deviations, merged across planes): on activations far from zero
    whose planes have different means, mean and variance still match float64."""
    shape = (16, 3, 8, 8)
    plane_means = rng.standard_normal((16, 3, 1, 1)) * 3.0
    x = (offset + plane_means + rng.standard_normal(shape) * 0.1).astype(np.float32)
    ones, zeros = np.ones(3, np.float32), np.zeros(3, np.float32)
    y, _, _, _, new_mean, new_var = run_bn(x, ones, zeros, zeros, ones, np.zeros(shape, np.float32), True,
                                           momentum=0.0)
    x64 = x.astype(np.float64)
    m = x64.size // 3
    np.testing.assert_allclose(new_mean, x64.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(new_var, x64.var(axis=(0, 2, 3)) * m / (m - 1), rtol=1e-5)
    y_ref = bn_forward_ref(x64, ones, zeros, zeros, ones, True, 0.0, 1e-5)[0]
    assert np.max(np.abs(y - y_ref)) < 1e-4


def bn_relu_graph(C, x_shape, consumers=1):
    """Conv-free BatchNorm2D -> ReLU (and, with consumers=2, the BatchNorm's output
    also added to the ReLU's: not fusable)."""
    bn, relu = ac.BatchNorm2D(C, name="bn"), ac.ReLU(name="relu")
    bn.add_child(relu, 0, 0)
    graph = ac.GraphView()
    for n in (bn, relu):
        graph.add(n)
    out = relu
    if consumers == 2:
        add = ac.Add(name="add")
        relu.add_child(add, 0, 0)
        bn.add_child(add, 0, 1)
        graph.add(add)
        out = add
    graph.set_ordered_inputs([(bn, 0)])
    graph.set_ordered_outputs([(out, 0)])
    graph.compile("cpu", ac.dtype.float32, dims=[list(x_shape)])
    return graph, bn, out


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_fused_with_its_relu_vs_numpy_and_finite_differences(rng, training):
    """A BatchNorm2D whose output goes to one ReLU alone runs as one kernel that
    writes the ReLU's output (the BatchNorm's own output is not computed): output,
    running statistics and every gradient match max(0, BatchNorm(x)) in float64."""
    from aidge_incremental.backend.cpu import is_fused_away
    shape = (3, 4, 5, 2)
    C = shape[1]
    x = rng.standard_normal(shape) * 2.0 + 0.5
    gamma, beta = rng.uniform(0.5, 1.5, C), rng.standard_normal(C)
    rmean, rvar = rng.standard_normal(C) * 0.1, rng.uniform(0.5, 2.0, C)
    dy = rng.standard_normal(shape)
    graph, bn, relu = bn_relu_graph(C, shape)
    op = bn.get_operator()
    op.attr.training_mode = training
    for idx, v in zip(range(1, 5), (gamma, beta, rmean, rvar)):
        np.asarray(op.get_input(idx))[...] = v
    assert ai.accelerate(graph) == 2
    assert is_fused_away(bn) and not is_fused_away(relu)
    sched = ac.SequentialScheduler(graph)
    sched.forward(data=[ac.Tensor(x.astype(np.float32))])
    out = relu.get_operator().get_output(0)
    np.asarray(out.grad)[...] = dy
    sched.backward()
    y_ref, m_ref, v_ref = bn_forward_ref(x, gamma, beta, rmean, rvar, training, 0.9, 1e-5)
    assert rel_err(np.array(out), np.maximum(y_ref, 0)) <= 1e-5
    assert rel_err(np.array(op.get_input(3)), m_ref) <= 1e-5 and rel_err(np.array(op.get_input(4)), v_ref) <= 1e-5

    def loss():
        return float(np.sum(np.maximum(bn_forward_ref(x, gamma, beta, rmean, rvar, training, 0.9, 1e-5)[0], 0) * dy))

    for ours, wrt in [(op.get_input(0).grad, x), (op.get_input(1).grad, gamma), (op.get_input(2).grad, beta)]:
        assert rel_err(np.array(ours), central_fd(loss, wrt)) <= 1e-4


def test_batchnorm_whose_output_is_also_used_elsewhere_is_not_fused(rng):
    from aidge_incremental.backend.cpu import is_fused_away
    shape = (2, 3, 4, 4)
    graph, bn, add = bn_relu_graph(3, shape, consumers=2)
    op = bn.get_operator()
    op.attr.training_mode = True
    for idx, v in zip(range(1, 5), (1.0, 0.0, 0.0, 1.0)):  # scale, shift, running mean, running variance
        np.asarray(op.get_input(idx))[...] = v
    assert ai.accelerate(graph) == 3
    assert not is_fused_away(bn)
    x = rng.standard_normal(shape).astype(np.float32)
    ac.SequentialScheduler(graph).forward(data=[ac.Tensor(x)])
    y_ref = bn_forward_ref(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True, 0.9, 1e-5)[0]
    assert rel_err(np.array(add.get_operator().get_output(0)), np.maximum(y_ref, 0) + y_ref) <= 1e-5


def test_tapping_a_fused_batchnorm_says_which_layer_to_read(rng):
    from aidge_incremental.models import IncrementalModel
    model = IncrementalModel("resnet20", (3, 8, 8), n_classes=2)
    with pytest.raises(ValueError, match="fuse this BatchNorm with the ReLU it feeds"):
        model.tap("bn1")
    assert model.tap("relu1") is not None
    assert model.tap(model.last_conv_layer) is not None  # Grad-CAM's layer: an Add, computed


def test_batchnorm_training_mode_is_read_at_run_time(rng):
    """Switching op.attr.training_mode after accelerate changes the forward."""
    x = rng.standard_normal((4, 2, 3, 3)).astype(np.float32) * 3 + 1
    node = ac.BatchNorm2D(2, name="bn")
    graph = single_op_graph(node, x.shape)
    op = node.get_operator()
    np.asarray(op.get_input(1))[...] = 1.0
    np.asarray(op.get_input(4))[...] = 1.0
    ai.accelerate(graph)
    sched = ac.SequentialScheduler(graph)
    outs = []
    for mode in (False, True, False):
        al.set_batchnorm_training_mode(graph, mode) if hasattr(al, "set_batchnorm_training_mode") \
            else setattr(op.attr, "training_mode", mode)
        assert op.attr.training_mode == mode
        sched.forward(data=[ac.Tensor(x)])
        outs.append(np.array(op.get_output(0)))
    np.testing.assert_allclose(outs[0], x, rtol=1e-5, atol=1e-5)  # running stats 0 / 1 at start
    assert abs(outs[1].mean()) < 1e-5 and abs(outs[1].std() - 1) < 1e-3  # batch statistics
    assert not np.allclose(outs[2], outs[0])  # running stats moved during the train forward


def test_batchnorm_running_stats_match_pytorch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((6, 3, 4, 4)).astype(np.float32) * 2 + 1
    dy = rng.standard_normal(x.shape).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, 3).astype(np.float32)
    beta = rng.standard_normal(3).astype(np.float32)
    y, dx, dg, db, rm, rv = run_bn(x, gamma, beta, np.zeros(3, np.float32), np.ones(3, np.float32), dy, True)
    bn = torch.nn.BatchNorm2d(3, eps=1e-5, momentum=0.1)  # torch momentum = 1 - Aidge momentum
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = bn(xt)
    yt.backward(torch.from_numpy(dy))
    assert rel_err(y, yt.detach().numpy()) <= 1e-5
    assert rel_err(rm, bn.running_mean.numpy()) <= 1e-5
    assert rel_err(rv, bn.running_var.numpy()) <= 1e-5
    assert rel_err(dx, xt.grad.numpy()) <= 1e-4
    assert rel_err(dg, bn.weight.grad.numpy()) <= 1e-5
    assert rel_err(db, bn.bias.grad.numpy()) <= 1e-5


def test_batchnorm_training_with_a_single_value_per_channel_raises():
    node = ac.BatchNorm2D(2, name="bn")
    graph = single_op_graph(node, (1, 2, 1, 1))
    node.get_operator().attr.training_mode = True
    ai.accelerate(graph)
    with pytest.raises(RuntimeError, match="more than one value per channel"):
        ac.SequentialScheduler(graph).forward(data=[ac.Tensor(np.ones((1, 2, 1, 1), np.float32))])


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 4, 5, 7), (2, 3, 8, 8)])
def test_global_average_pooling_vs_numpy_and_finite_differences(rng, shape):
    x = rng.standard_normal(shape)
    node = ac.GlobalAveragePooling(name="gap")
    graph = single_op_graph(node, shape)
    assert ai.accelerate(graph) == 1
    op = node.get_operator()
    sched = ac.SequentialScheduler(graph)
    sched.forward(data=[ac.Tensor(x.astype(np.float32))])
    y = np.array(op.get_output(0))
    dy = rng.standard_normal(y.shape)
    np.asarray(op.get_output(0).grad)[...] = dy
    sched.backward()
    dx = np.array(op.get_input(0).grad)
    assert rel_err(y.reshape(shape[:2]), x.mean(axis=(2, 3))) <= 1e-5
    fd = central_fd(lambda: float(np.sum(x.mean(axis=(2, 3)).reshape(dy.shape) * dy)), x)
    assert rel_err(dx, fd) <= 1e-5


# ------------------------------------------------- accelerate() semantics

def small_cnn():
    return ac.sequential([
        ac.PaddedConv2D(2, 4, [3, 3], name="c1", padding_dims=[1, 1, 1, 1]),
        ac.ReLU(name="r1"),
        ac.Conv2D(4, 6, [3, 3], stride_dims=[2, 2], name="c2"),
        ac.ReLU(name="r2"),
        ac.Conv2D(6, 6, [1, 1], no_bias=True, name="c3"),
        ac.ReLU(name="r3"),
        ac.FC(6 * 3 * 3, 5, name="fc"),
    ])


def fill_params(graph, seed):
    rng = np.random.default_rng(seed)
    for p in sorted(ac.producers(graph), key=lambda n: n.name()):
        t = p.get_operator().get_output(0)
        np.asarray(t)[...] = rng.standard_normal(t.dims).astype(np.float32) * 0.3


def train_steps(accelerate, steps=3):
    graph = small_cnn()
    graph.compile("cpu", ac.dtype.float32, dims=[[4, 2, 8, 8]])
    fill_params(graph, 7)
    if accelerate:
        assert ai.accelerate(graph) == 8  # c1's Pad and Conv2D (one fused kernel), c2, c3, fc, three ReLUs
    opt = al.SGD(momentum=0.9)
    opt.set_learning_rate_scheduler(al.constant_lr(0.05))
    opt.set_parameters(list(ac.producers(graph)))
    sched = ac.SequentialScheduler(graph)
    rng = np.random.default_rng(3)
    for _ in range(steps):
        x = rng.standard_normal((4, 2, 8, 8)).astype(np.float32)
        y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 4)]
        sched.forward(data=[ac.Tensor(x)])
        out = graph.get_ordered_outputs()[0][0].get_operator().get_output(0)
        al.loss.CELoss(out, ac.Tensor(y))
        opt.reset_grad()
        sched.backward()
        opt.update()
    return {p.name(): np.array(p.get_operator().get_output(0)) for p in ac.producers(graph)}


def test_three_sgd_steps_same_parameters_with_and_without_accelerate():
    ref = train_steps(False)
    ours = train_steps(True)
    start = train_steps(False, steps=0)
    assert ref.keys() == ours.keys()
    for name in ref:
        assert not np.allclose(ref[name], start[name]), f"{name} did not train"
        assert rel_err(ours[name], ref[name]) <= 1e-5, name


def test_accelerate_is_idempotent_and_counts():
    graph = small_cnn()
    graph.compile("cpu", ac.dtype.float32, dims=[[2, 2, 8, 8]])
    assert ai.accelerate(graph) == 8
    assert ai.accelerate(graph) == 0
    assert is_accelerated(graph.get_node("r1"))


def test_clone_gets_aidge_kernels_and_can_be_accelerated():
    graph = small_cnn()
    graph.compile("cpu", ac.dtype.float32, dims=[[2, 2, 8, 8]])
    ai.accelerate(graph)
    clone = graph.clone()
    assert not is_accelerated(clone.get_node("c2"))  # the copy asks Aidge's registry
    assert is_accelerated(graph.get_node("c2"))      # the original keeps ours
    assert ai.accelerate(clone) == 8
    x = np.random.default_rng(1).standard_normal((2, 2, 8, 8)).astype(np.float32)
    fill_params(graph, 2)
    fill_params(clone, 2)
    assert rel_err(run_graph(clone, x), run_graph(graph, x)) <= 1e-6


def test_compile_same_backend_keeps_ours_other_backend_returns_to_aidge():
    graph = small_cnn()
    graph.compile("cpu", ac.dtype.float32, dims=[[2, 2, 8, 8]])
    ai.accelerate(graph)
    # Aidge's set_backend keeps an implementation whose backend name is unchanged
    graph.compile("cpu", ac.dtype.float32, dims=[[3, 2, 8, 8]])
    assert is_accelerated(graph.get_node("c2"))
    assert ai.accelerate(graph) == 0


def run_graph(graph, x):
    sched = ac.SequentialScheduler(graph)
    sched.forward(data=[ac.Tensor(x)])
    return np.array(graph.get_ordered_outputs()[0][0].get_operator().get_output(0))


def test_recompiled_to_float64_behaves_as_aidge(rng):
    """compile(float64) after float32 keeps implementations (same backend name)
    but leaves the parameters float32; Aidge's own kernels refuse that mix, and
    an accelerated graph does exactly the same (our impl hands non-float32
    tensors to Aidge's registry kernel) rather than reading float64 as float32."""
    x = rng.standard_normal((2, 2, 8, 8))
    errors = []
    for accelerate in (False, True):
        graph = small_cnn()
        graph.compile("cpu", ac.dtype.float32, dims=[[2, 2, 8, 8]])
        if accelerate:
            ai.accelerate(graph)
        graph.compile("cpu", ac.dtype.float64, dims=[[2, 2, 8, 8]])
        with pytest.raises(RuntimeError, match="registrar key") as err:
            run_graph(graph, x)
        errors.append(str(err.value).split(" for registrable")[0])
    assert errors[0] == errors[1]


def test_import_does_not_replace_aidge_registry():
    graph = small_cnn()
    graph.compile("cpu", ac.dtype.float32, dims=[[2, 2, 8, 8]])
    assert not any(is_accelerated(n) for n in graph.get_nodes())


def test_unsupported_attribute_keeps_aidge_kernel(rng):
    node = ac.Conv2D(2, 3, [3, 3], dilation_dims=[2, 2], name="dil")
    graph = single_op_graph(node, (1, 2, 9, 9))
    assert ai.accelerate(graph) == 0
    assert not is_accelerated(node)
    assert "dilation" in unsupported_reason(node)


def test_other_datatype_keeps_aidge_kernel():
    node = ac.FC(4, 3, name="fc64")
    graph = ac.sequential([node])
    graph.compile("cpu", ac.dtype.float64, dims=[[2, 4]])
    assert ai.accelerate(graph) == 0
    assert "float32" in unsupported_reason(node)


def test_accelerate_rejects_non_graph():
    with pytest.raises(TypeError, match="GraphView"):
        ai.accelerate("not a graph")


def test_batchnorm_network_trains_like_pytorch():
    """Conv -> BatchNorm (train mode) -> ReLU -> GAP -> FC, 3 SGD steps with
    momentum: parameters and running statistics equal PyTorch's."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    w_conv = (rng.standard_normal((4, 2, 3, 3)) * 0.4).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, 4).astype(np.float32)
    beta = (rng.standard_normal(4) * 0.1).astype(np.float32)
    w_fc = (rng.standard_normal((3, 4)) * 0.5).astype(np.float32)
    b_fc = (rng.standard_normal(3) * 0.1).astype(np.float32)
    data = [(rng.standard_normal((5, 2, 6, 6)).astype(np.float32), rng.integers(0, 3, 5)) for _ in range(3)]

    graph = ac.sequential([ac.Conv2D(2, 4, [3, 3], no_bias=True, name="conv"), ac.BatchNorm2D(4, name="bn"),
                           ac.ReLU(name="relu"), ac.GlobalAveragePooling(name="gap"), ac.FC(4, 3, name="fc")])
    graph.compile("cpu", ac.dtype.float32, dims=[[5, 2, 6, 6]])
    values = {"conv_w": w_conv, "bn_scale": gamma, "bn_shift": beta, "bn_batch_mean": np.zeros(4, np.float32),
              "bn_batch_variance": np.ones(4, np.float32), "fc_w": w_fc, "fc_b": b_fc}
    for p in ac.producers(graph):
        np.asarray(p.get_operator().get_output(0))[...] = values[p.name()]
    graph.get_node("bn").get_operator().attr.training_mode = True
    assert ai.accelerate(graph) == 5
    trainable = [p for p in ac.producers(graph) if p.name() not in ("bn_batch_mean", "bn_batch_variance")]
    opt = al.SGD(momentum=0.9)
    opt.set_learning_rate_scheduler(al.constant_lr(0.1))
    opt.set_parameters(trainable)
    sched = ac.SequentialScheduler(graph)
    for x, labels in data:
        sched.forward(data=[ac.Tensor(x)])
        out = graph.get_node("fc").get_operator().get_output(0)
        al.loss.CELoss(out, ac.Tensor(np.eye(3, dtype=np.float32)[labels]))
        opt.reset_grad()
        sched.backward()
        opt.update()

    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(2, 4, 3, bias=False), nn.BatchNorm2d(4, eps=1e-5, momentum=0.1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(w_conv))
        net[1].weight.copy_(torch.from_numpy(gamma))
        net[1].bias.copy_(torch.from_numpy(beta))
        net[5].weight.copy_(torch.from_numpy(w_fc))
        net[5].bias.copy_(torch.from_numpy(b_fc))
    topt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net.train()
    for x, labels in data:
        topt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(labels)).backward()
        topt.step()
    ours = {p.name(): np.array(p.get_operator().get_output(0)) for p in ac.producers(graph)}
    ref = {"conv_w": net[0].weight, "bn_scale": net[1].weight, "bn_shift": net[1].bias,
           "bn_batch_mean": net[1].running_mean, "bn_batch_variance": net[1].running_var,
           "fc_w": net[5].weight, "fc_b": net[5].bias}
    for name, t in ref.items():
        r = t.detach().numpy()
        assert not np.allclose(r, values[name]), f"{name} did not change"
        assert rel_err(ours[name], r) <= 1e-5, name
