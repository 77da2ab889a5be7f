"""The CrossEntropy operator and the function form that runs it, against a NumPy
float64 reference and central finite differences."""
import aidge_core
import aidge_learning
import numpy as np
import pytest

import aidge_incremental as ai
from aidge_incremental.loss import cross_entropy, tensor_value
from distillation_reference import central_difference, log_softmax, relative_error


def reference(s, y):
    """mean_b −Σ_j y_bj log softmax(s_b)_j in float64."""
    s, y = np.asarray(s, np.float64), np.asarray(y, np.float64)
    return -np.mean(np.sum(y * log_softmax(s), axis=1))


def graph_with(node, inputs):
    """Producers feeding ``node``'s inputs in order (None: left for the caller to connect)."""
    graph = aidge_core.GraphView()
    graph.add(node)
    for index, array in enumerate(inputs):
        if array is not None:
            producer = aidge_core.Producer(aidge_core.Tensor(np.ascontiguousarray(array)), f"in{index}")
            producer.add_child(node, 0, index)
            graph.add(producer)
    return graph


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_function_matches_reference_and_finite_differences(rng, dtype):
    for batch, classes, scale, soft in [(1, 1, 1.0, False), (5, 3, 2.0, True), (32, 10, 10.0, False),
                                        (7, 100, 80.0, True), (4, 6, 3.0, False)]:
        s = rng.normal(0, scale, (batch, classes)).astype(dtype)
        if soft:  # soft targets, rows not summing to 1
            y = rng.uniform(0, 1, (batch, classes)).astype(dtype)
        else:
            y = np.eye(classes, dtype=dtype)[rng.integers(0, classes, batch)]
        S = aidge_core.Tensor(s)
        value = tensor_value(cross_entropy(S, aidge_core.Tensor(y)))
        np.testing.assert_allclose(value, reference(s, y), rtol=1e-5 if dtype == np.float32 else 1e-12)
        fd = central_difference(lambda x: reference(x, y), s, eps=1e-4 if dtype == np.float32 else 1e-6)
        if np.linalg.norm(fd) > 1e-9:
            assert relative_error(np.asarray(S.grad), fd) < (1e-3 if dtype == np.float32 else 1e-5)
        else:
            assert np.allclose(np.asarray(S.grad), 0, atol=1e-7)


def test_gradient_is_softmax_minus_target_over_batch(rng):
    s = rng.normal(0, 2, (6, 4)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1]]
    S = aidge_core.Tensor(s)
    cross_entropy(S, aidge_core.Tensor(y))
    np.testing.assert_allclose(np.asarray(S.grad), (np.exp(log_softmax(s.astype(np.float64))) - y) / 6,
                               atol=1e-7)


def test_logits_beyond_88_stay_exact_where_upstream_celoss_gives_nan():
    s = np.array([[89.0, 0.0, -5.0], [1000.0, 999.0, -1000.0], [-300.0, 300.0, 0.0]], np.float32)
    y = np.eye(3, dtype=np.float32)[[1, 1, 0]]
    upstream = tensor_value(aidge_learning.loss.CELoss(aidge_core.Tensor(s), aidge_core.Tensor(y)))
    assert np.isnan(upstream), "upstream CELoss no longer overflows: update the docs"
    S = aidge_core.Tensor(s)
    value = tensor_value(cross_entropy(S, aidge_core.Tensor(y)))
    np.testing.assert_allclose(value, reference(s, y), rtol=1e-6)
    assert np.isfinite(value) and value > 100
    fd = central_difference(lambda x: reference(x, y), s, eps=1e-3)
    assert relative_error(np.asarray(S.grad), fd) < 1e-3


def test_scaling_and_accumulate(rng):
    s = rng.normal(size=(4, 5)).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[[0, 4, 2, 2]]
    S = aidge_core.Tensor(s)
    base = tensor_value(cross_entropy(S, aidge_core.Tensor(y)))
    g1 = np.asarray(S.grad).copy()
    assert tensor_value(cross_entropy(S, aidge_core.Tensor(y), scaling=2.5)) == pytest.approx(2.5 * base, rel=1e-6)
    np.testing.assert_allclose(np.asarray(S.grad), 2.5 * g1, rtol=1e-5, atol=1e-8)
    cross_entropy(S, aidge_core.Tensor(y), scaling=-1.0, accumulate=True)
    np.testing.assert_allclose(np.asarray(S.grad), 1.5 * g1, rtol=1e-5, atol=1e-8)


def test_float32_logits_with_float64_targets(rng):
    s = rng.normal(size=(3, 4)).astype(np.float32)
    y = np.eye(4)[[1, 2, 3]]
    S = aidge_core.Tensor(s)
    value = cross_entropy(S, aidge_core.Tensor(y))
    assert value.dtype == aidge_core.dtype.float32
    np.testing.assert_allclose(tensor_value(value), reference(s, y), rtol=1e-6)


def test_node_in_a_scheduled_graph_trains_without_a_manual_seed(rng):
    """FC -> CrossEntropy: scheduler.forward(); scheduler.backward() gives the exact
    gradient of the parameters (the node seeds d loss / d loss = 1 itself)."""
    batch, features, classes = 5, 3, 4
    x = rng.normal(size=(batch, features)).astype(np.float32)
    y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, batch)]
    fc = aidge_core.FC(features, classes, name="fc")
    node = ai.CrossEntropy(name="ce")
    graph = graph_with(node, [None, y])
    fc.add_child(node, 0, 0)
    graph.add(fc)
    graph.compile("cpu", aidge_core.dtype.float32, dims=[[batch, features]])
    w = rng.normal(0, 0.5, (classes, features)).astype(np.float32)
    b = rng.normal(0, 0.5, classes).astype(np.float32)
    fc.get_operator().get_input(1).copy_from(aidge_core.Tensor(w))
    fc.get_operator().get_input(2).copy_from(aidge_core.Tensor(b))
    scheduler = aidge_core.SequentialScheduler(graph)
    for _ in range(2):  # every forward re-seeds (the scheduler zeroes gradients in forward)
        scheduler.forward(data=[aidge_core.Tensor(x)])
        scheduler.backward()
    value = np.asarray(node.get_operator().get_output(0))[0]
    np.testing.assert_allclose(value, reference(x @ w.T + b, y), rtol=1e-5)
    grad_w = np.asarray(fc.get_operator().get_input(1).grad)
    fd_w = central_difference(lambda m: reference(x @ m.T + b, y), w)
    assert relative_error(grad_w, fd_w) < 1e-3
    # a weight is an explicit seed written after forward
    scheduler.forward(data=[aidge_core.Tensor(x)])
    node.get_operator().get_output(0).grad.copy_from(aidge_core.Tensor(np.array([0.25], np.float32)))
    scheduler.backward()
    assert relative_error(np.asarray(fc.get_operator().get_input(1).grad), 0.25 * fd_w) < 1e-3


def test_float64_graph(rng):
    s = rng.normal(0, 3, (4, 7))
    y = rng.dirichlet(np.ones(7), 4)
    node = ai.CrossEntropy()
    graph = graph_with(node, [s, y])
    graph.compile("cpu", aidge_core.dtype.float64)
    aidge_core.SequentialScheduler(graph).forward()
    np.testing.assert_allclose(np.asarray(node.get_operator().get_output(0))[0], reference(s, y), rtol=1e-12)


def _t(a):
    return aidge_core.Tensor(np.asarray(a))


@pytest.mark.parametrize("prediction, target, message", [
    (np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32), "shapes differ"),
    (np.zeros((2, 3), np.float32), np.zeros((3, 3), np.float32), "shapes differ"),
    (np.full((2, 3), np.nan, np.float32), np.zeros((2, 3), np.float32), "non-finite"),
    (np.zeros((2, 3), np.float32), np.array([[0, np.inf, 0], [0, 0, 0]], np.float32), "non-finite"),
    (np.zeros((2, 3), np.float32), -np.ones((2, 3), np.float32), ">= 0"),
    (np.zeros((3,), np.float32), np.zeros((3,), np.float32), "2-D"),
    (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), "not empty"),
])
def test_function_rejects_bad_input_and_leaves_the_gradient_alone(prediction, target, message):
    P = _t(prediction)
    if prediction.size:
        P.grad.copy_from(_t(np.full(prediction.shape, 7.0, np.float32)))
    with pytest.raises(ValueError, match=message):
        cross_entropy(P, _t(target))
    if prediction.size:
        assert np.all(np.asarray(P.grad) == 7.0)


def test_function_rejects_bad_scaling_and_types():
    with pytest.raises(ValueError, match="argument .scaling. must be a finite number"):
        cross_entropy(_t(np.zeros((2, 3), np.float32)), _t(np.zeros((2, 3), np.float32)), scaling=float("inf"))
    with pytest.raises(TypeError, match="float32 or float64"):
        cross_entropy(_t(np.zeros((2, 3), np.int32)), _t(np.zeros((2, 3), np.float32)))


def test_node_rejects_bad_input():
    for s, y, message in [(np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32), "shapes differ"),
                          (np.zeros((2, 3), np.float32), np.zeros((2, 3)), "same data type"),
                          (np.zeros((2, 3), np.float32), -np.ones((2, 3), np.float32), ">= 0")]:
        graph = graph_with(ai.CrossEntropy(), [s, y])
        with pytest.raises((ValueError, RuntimeError), match=message):
            graph.set_backend("cpu")
            graph.forward_dims()
            aidge_core.SequentialScheduler(graph).forward()
