"""The distillation loss, as an operator in a graph and as a function, against
an independent float64 NumPy reference and finite differences."""
import aidge_core
import aidge_learning
import numpy as np
import pytest

import aidge_incremental as ai
from aidge_incremental.loss import (cross_entropy, cross_entropy_with_distillation, distillation,
                                    tensor_value)
from distillation_reference import REFERENCE, central_difference, relative_error, log_softmax

FORMS = ["kl", "bce"]


def random_case(rng):
    batch = int(rng.integers(1, 257))
    classes = int(rng.choice([1, 2, 10, int(rng.integers(1, 1001)), 1000]))
    n_old = int(rng.integers(1, classes + 1))
    temperature = float(rng.uniform(0.5, 10.0))
    scale = float(rng.choice([1.0, 10.0, 80.0]))
    s = np.clip(rng.normal(0, scale / 2, (batch, classes)), -80, 80).astype(np.float32)
    t = np.clip(rng.normal(0, scale / 2, (batch, classes)), -80, 80).astype(np.float32)
    return s, t, n_old, temperature


def loss_graph(node, teacher, student=None):
    """A graph where Producer(teacher) feeds input 1 of the Distillation ``node`` and,
    when given, Producer(student) its input 0."""
    graph = aidge_core.GraphView()
    graph.add(node)
    for index, (name, logits) in enumerate((("student", student), ("teacher", teacher))):
        if logits is not None:
            producer = aidge_core.Producer(aidge_core.Tensor(logits), name)
            producer.add_child(node, 0, index)
            graph.add(producer)
    return graph


@pytest.mark.parametrize("form", FORMS)
def test_function_value_matches_numpy_reference(rng, form):
    for _ in range(40):
        s, t, n_old, temperature = random_case(rng)
        value = tensor_value(distillation(aidge_core.Tensor(s), aidge_core.Tensor(t),
                                          temperature, n_old, form))
        expected = REFERENCE[form](s, t, temperature, n_old)
        assert np.isfinite(value)
        np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-7,
                                   err_msg=f"B={s.shape[0]} C={s.shape[1]} n_old={n_old} T={temperature}")


@pytest.mark.parametrize("form", FORMS)
def test_graph_value_matches_numpy_reference(rng, form):
    for _ in range(8):
        s, t, n_old, temperature = random_case(rng)
        node = ai.Distillation(temperature, n_old, form)
        graph = loss_graph(node, t, s)
        graph.compile("cpu", aidge_core.dtype.float32)
        aidge_core.SequentialScheduler(graph).forward()
        value = np.asarray(node.get_operator().get_output(0))
        assert value.shape == (1,)
        np.testing.assert_allclose(value[0], REFERENCE[form](s, t, temperature, n_old),
                                   rtol=1e-5, atol=1e-7)


def test_extreme_logits_stay_finite():
    s = np.array([[80, -80, 80, -80], [-80, 80, -80, 80]], np.float32)
    t = -s
    for form in FORMS:
        for temperature in (0.5, 1.0, 10.0):
            S = aidge_core.Tensor(s)
            value = tensor_value(distillation(S, aidge_core.Tensor(t), temperature, 0, form))
            assert np.isfinite(value)
            assert np.all(np.isfinite(np.asarray(S.grad)))
            np.testing.assert_allclose(value, REFERENCE[form](s, t, temperature, 4), rtol=1e-5)


@pytest.mark.parametrize("form", FORMS)
def test_function_gradient_matches_finite_differences(rng, form):
    for batch, classes, n_old, temperature in [(3, 5, 5, 2.0), (7, 12, 4, 0.5),
                                               (16, 9, 9, 10.0), (1, 3, 1, 1.0)]:
        s = rng.normal(0, 3, (batch, classes)).astype(np.float32)
        t = rng.normal(0, 3, (batch, classes - 1 if n_old < classes else classes)).astype(np.float32)
        S = aidge_core.Tensor(s)
        distillation(S, aidge_core.Tensor(t), temperature, n_old, form)
        grad = np.asarray(S.grad)
        fd = central_difference(lambda x: REFERENCE[form](x, t, temperature, n_old), s)
        assert np.all(grad[:, n_old:] == 0), "columns beyond n_old get no gradient"
        if np.linalg.norm(fd) == 0:  # one distilled class under softmax: constant loss
            assert np.all(grad == 0)
        else:
            assert relative_error(grad, fd) < 1e-3


@pytest.mark.parametrize("form", FORMS)
def test_graph_gradient_through_fc_matches_finite_differences(rng, form):
    batch, in_features, classes, n_old, temperature = 6, 4, 5, 3, 2.0
    x = rng.normal(size=(batch, in_features)).astype(np.float32)
    teacher = rng.normal(0, 2, (batch, n_old)).astype(np.float32)

    fc = aidge_core.FC(in_features, classes, name="fc")
    node = ai.Distillation(temperature, n_old, form, name="kd")
    graph = loss_graph(node, teacher)
    fc.add_child(node, 0, 0)
    graph.add(fc)
    graph.compile("cpu", aidge_core.dtype.float32, dims=[[batch, in_features]])
    weight = rng.normal(0, 0.5, (classes, in_features)).astype(np.float32)
    bias = rng.normal(0, 0.5, (classes,)).astype(np.float32)
    fc.get_operator().get_input(1).copy_from(aidge_core.Tensor(weight))
    fc.get_operator().get_input(2).copy_from(aidge_core.Tensor(bias))

    scheduler = aidge_core.SequentialScheduler(graph)
    scheduler.forward(data=[aidge_core.Tensor(x)])
    node.get_operator().get_output(0).grad.ones()  # d loss / d loss
    scheduler.backward()
    grad_w = np.asarray(fc.get_operator().get_input(1).grad)
    grad_b = np.asarray(fc.get_operator().get_input(2).grad)

    ref = REFERENCE[form]
    fd_w = central_difference(lambda w: ref(x @ w.T + bias, teacher, temperature, n_old), weight)
    fd_b = central_difference(lambda b: ref(x @ weight.T + b, teacher, temperature, n_old), bias)
    assert relative_error(grad_w, fd_w) < 1e-3
    assert relative_error(grad_b, fd_b) < 1e-3
    # the teacher is a fixed target: no gradient flows to it
    teacher_out = graph.get_node("teacher").get_operator().get_output(0)
    assert not teacher_out.has_grad() or not np.any(np.asarray(teacher_out.grad))


def test_cloned_graph_keeps_a_working_node(rng):
    s = rng.normal(size=(4, 6)).astype(np.float32)
    t = rng.normal(size=(4, 6)).astype(np.float32)
    node = ai.Distillation(3.0, 4, "bce", name="kd")
    graph = loss_graph(node, t, s)
    graph.compile("cpu", aidge_core.dtype.float32)
    clone = graph.clone()
    aidge_core.SequentialScheduler(clone).forward()
    cloned = clone.get_node("kd").get_operator()
    assert cloned.attr.dict()["n_old"] == 4 and cloned.form == "bce"
    np.testing.assert_allclose(np.asarray(cloned.get_output(0))[0],
                               REFERENCE["bce"](s, t, 3.0, 4), rtol=1e-5)


def test_float64_logits(rng):
    s = rng.normal(0, 5, (5, 7))
    t = rng.normal(0, 5, (5, 7))
    S = aidge_core.Tensor(s)
    assert S.dtype == aidge_core.dtype.float64
    value = tensor_value(distillation(S, aidge_core.Tensor(t), 1.5, 6, "kl"))
    np.testing.assert_allclose(value, REFERENCE["kl"](s, t, 1.5, 6), rtol=1e-12)
    fd = central_difference(lambda x: REFERENCE["kl"](x, t, 1.5, 6), s, eps=1e-6)
    assert relative_error(np.asarray(S.grad), fd) < 1e-6


def test_scaling_and_accumulate(rng):
    s = rng.normal(size=(4, 5)).astype(np.float32)
    t = rng.normal(size=(4, 5)).astype(np.float32)
    S = aidge_core.Tensor(s)
    base = tensor_value(distillation(S, aidge_core.Tensor(t)))
    g1 = np.asarray(S.grad).copy()
    scaled = tensor_value(distillation(S, aidge_core.Tensor(t), scaling=3.0))
    np.testing.assert_allclose(scaled, 3 * base, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(S.grad), 3 * g1, rtol=1e-5, atol=1e-8)
    distillation(S, aidge_core.Tensor(t), accumulate=True)
    np.testing.assert_allclose(np.asarray(S.grad), 4 * g1, rtol=1e-5, atol=1e-8)


def test_cross_entropy_with_distillation_objective(rng):
    batch, classes, n_old, lam, temperature = 8, 6, 4, 0.7, 2.0
    s = rng.normal(size=(batch, classes)).astype(np.float32)
    t = rng.normal(size=(batch, n_old)).astype(np.float32)
    labels = rng.integers(0, classes, batch)
    onehot = np.eye(classes, dtype=np.float32)[labels]
    S = aidge_core.Tensor(s)
    total = cross_entropy_with_distillation(S, aidge_core.Tensor(onehot), aidge_core.Tensor(t),
                                            lambda_=lam, temperature=temperature, n_old=n_old)

    def objective(x):
        ce = -np.mean(log_softmax(x)[np.arange(batch), labels])
        return ce + lam * REFERENCE["kl"](x, t, temperature, n_old)

    np.testing.assert_allclose(total, objective(s.astype(np.float64)), rtol=1e-5)
    assert relative_error(np.asarray(S.grad), central_difference(objective, s)) < 1e-3


def test_ours_is_consistent_where_upstream_kd_is_not(rng):
    """aidge_learning.loss.KD returns mean_b CE(softmax(t/T), softmax(s/T)) but sets a
    gradient softmax(s/T) − softmax(t/T), without the 1/B and 1/T of the derivative.
    Ours returns a value whose derivative is the gradient it sets."""
    batch, classes, temperature = 8, 5, 2.0
    s = rng.normal(0, 2, (batch, classes)).astype(np.float32)
    t = rng.normal(0, 2, (batch, classes)).astype(np.float32)

    def upstream_value(x):
        return -np.mean(np.sum(np.exp(log_softmax(t / temperature)) * log_softmax(x / temperature), axis=1))

    S = aidge_core.Tensor(s)
    theirs = tensor_value(aidge_learning.loss.KD(S, aidge_core.Tensor(t), temperature))
    np.testing.assert_allclose(theirs, upstream_value(s.astype(np.float64)), rtol=1e-5)
    their_err = relative_error(np.asarray(S.grad), central_difference(upstream_value, s))
    assert their_err > 0.5, "upstream KD gradient now matches its value: update the README"

    S = aidge_core.Tensor(s)
    distillation(S, aidge_core.Tensor(t), temperature, 0, "kl")
    ours = lambda x: REFERENCE["kl"](x, t, temperature, classes)
    assert relative_error(np.asarray(S.grad), central_difference(ours, s)) < 1e-3


# --- bad input -------------------------------------------------------------------

def _t(a):
    return aidge_core.Tensor(np.asarray(a))


@pytest.mark.parametrize("student, teacher, kwargs, message", [
    (np.zeros((4, 5), np.float32), np.zeros((3, 5), np.float32), {}, "batch size mismatch"),
    (np.zeros((4, 3), np.float32), np.zeros((4, 5), np.float32), {}, "n_old = 5 out of range"),
    (np.zeros((4, 5), np.float32), np.zeros((4, 5), np.float32), {"n_old": 6}, "out of range"),
    (np.zeros((4, 5), np.float32), np.zeros((4, 5), np.float32), {"n_old": -1}, "argument .n_old. must be an integer in \\[0, "),
    (np.zeros((4, 5), np.float32), np.zeros((4, 5), np.float32), {"temperature": 0.0}, "temperature"),
    (np.zeros((4, 5), np.float32), np.zeros((4, 5), np.float32), {"temperature": -2.0}, "temperature"),
    (np.zeros((4, 5), np.float32), np.zeros((4, 5), np.float32), {"temperature": float("nan")}, "temperature"),
    (np.zeros((0, 5), np.float32), np.zeros((0, 5), np.float32), {}, "empty batch"),
    (np.zeros((5,), np.float32), np.zeros((5,), np.float32), {}, "2-D"),
    (np.full((2, 3), np.nan, np.float32), np.zeros((2, 3), np.float32), {}, "non-finite"),
    (np.zeros((2, 3), np.float32), np.array([[0, np.inf, 0], [0, 0, 0]], np.float32), {}, "non-finite"),
    (np.zeros((4, 5), np.float32), np.zeros((4, 5), np.float64), {}, "same data type"),
    (np.zeros((4, 5), np.float32), np.zeros((4, 5), np.float32), {"form": "l2"}, "'kl' or 'bce'"),
])
def test_function_rejects_bad_input(student, teacher, kwargs, message):
    with pytest.raises(ValueError, match=message):
        distillation(_t(student), _t(teacher), **kwargs)


def test_function_rejects_non_float_tensors():
    with pytest.raises(TypeError, match="float32 or float64"):
        distillation(_t(np.zeros((2, 3), np.int32)), _t(np.zeros((2, 3), np.float32)))
    with pytest.raises(TypeError, match="aidge_core.Tensor"):
        distillation(np.zeros((2, 3), np.float32), _t(np.zeros((2, 3), np.float32)))


def test_node_rejects_bad_input_with_python_exceptions():
    with pytest.raises(ValueError, match="temperature"):
        ai.Distillation(temperature=0.0)
    with pytest.raises(ValueError, match="'kl' or 'bce'"):
        ai.Distillation(form="mse")
    cases = [
        (np.zeros((4, 5), np.float32), np.zeros((3, 5), np.float32), "batch size mismatch"),
        (np.zeros((4, 5), np.int32), np.zeros((4, 5), np.int32), "float32 or float64"),
        (np.full((2, 3), np.nan, np.float32), np.zeros((2, 3), np.float32), "non-finite"),
    ]
    for s, t, message in cases:
        graph = loss_graph(ai.Distillation(2.0, 0, "kl"), t, s)
        with pytest.raises((ValueError, RuntimeError), match=message):
            graph.set_backend("cpu")
            graph.forward_dims()
            aidge_core.SequentialScheduler(graph).forward()


# --- cross-entropy ---------------------------------------------------------------

def test_cross_entropy_matches_reference_and_finite_differences(rng):
    for batch, classes, scale in [(1, 1, 1.0), (5, 3, 2.0), (32, 10, 10.0), (7, 100, 80.0)]:
        s = rng.normal(0, scale, (batch, classes)).astype(np.float32)
        labels = rng.integers(0, classes, batch)
        onehot = np.eye(classes, dtype=np.float32)[labels]

        def reference(x):
            return -np.mean(log_softmax(np.asarray(x, np.float64))[np.arange(batch), labels])

        S = aidge_core.Tensor(s)
        value = tensor_value(cross_entropy(S, aidge_core.Tensor(onehot)))
        np.testing.assert_allclose(value, reference(s), rtol=1e-5, atol=1e-7)
        fd = central_difference(reference, s)
        if np.linalg.norm(fd) > 0:
            assert relative_error(np.asarray(S.grad), fd) < 1e-3


def test_cross_entropy_is_finite_where_upstream_celoss_is_not():
    s = np.array([[200.0, 0.0, -200.0]], np.float32)
    y = np.array([[0.0, 1.0, 0.0]], np.float32)
    upstream = tensor_value(aidge_learning.loss.CELoss(aidge_core.Tensor(s), aidge_core.Tensor(y)))
    assert np.isnan(upstream), "upstream CELoss is now stable: update the docs"
    S = aidge_core.Tensor(s)
    assert tensor_value(cross_entropy(S, aidge_core.Tensor(y))) == pytest.approx(200.0, rel=1e-6)
    np.testing.assert_allclose(np.asarray(S.grad), [[1.0, -1.0, 0.0]], atol=1e-6)


def test_cross_entropy_rejects_bad_input():
    with pytest.raises(ValueError, match="shapes differ"):
        cross_entropy(_t(np.zeros((2, 3), np.float32)), _t(np.zeros((2, 4), np.float32)))
    with pytest.raises(ValueError, match="non-finite"):
        cross_entropy(_t(np.full((2, 3), np.nan, np.float32)), _t(np.zeros((2, 3), np.float32)))
    with pytest.raises(ValueError, match=">= 0"):
        cross_entropy(_t(np.zeros((2, 3), np.float32)), _t(-np.ones((2, 3), np.float32)))
    with pytest.raises(TypeError, match="float32 or float64"):
        cross_entropy(_t(np.zeros((2, 3), np.int32)), _t(np.zeros((2, 3), np.float32)))


# --- a terminal loss node seeds itself ---------------------------------------------

@pytest.mark.parametrize("form", FORMS)
def test_node_backward_without_a_manual_seed_gives_the_exact_gradient(rng, form):
    """SequentialScheduler.forward() zeroes every gradient (Aidge 0.10.1). Before the
    node seeded d loss / d loss = 1 in its own forward, backward without
    ``get_output(0).grad.ones()`` silently gave the FC zero gradients."""
    batch, in_features, classes, temperature = 4, 3, 5, 2.0
    x = rng.normal(size=(batch, in_features)).astype(np.float32)
    teacher = rng.normal(0, 2, (batch, classes)).astype(np.float32)
    fc = aidge_core.FC(in_features, classes, name="fc")
    node = ai.Distillation(temperature, 0, form, name="kd")
    graph = loss_graph(node, teacher)
    fc.add_child(node, 0, 0)
    graph.add(fc)
    graph.compile("cpu", aidge_core.dtype.float32, dims=[[batch, in_features]])
    weight = rng.normal(0, 0.5, (classes, in_features)).astype(np.float32)
    fc.get_operator().get_input(1).copy_from(aidge_core.Tensor(weight))
    scheduler = aidge_core.SequentialScheduler(graph)
    fd = central_difference(lambda w: REFERENCE[form](x @ w.T, teacher, temperature, classes), weight)
    for _ in range(3):  # every step: forward (zeroes gradients, re-seeds), backward
        scheduler.forward(data=[aidge_core.Tensor(x)])
        np.testing.assert_array_equal(np.asarray(node.get_operator().get_output(0).grad), [1.0])
        scheduler.backward()
        grad = np.asarray(fc.get_operator().get_input(1).grad)
        assert np.linalg.norm(grad) > 0
        assert relative_error(grad, fd) < 1e-3
    # weighting the loss: write the seed after forward
    scheduler.forward(data=[aidge_core.Tensor(x)])
    node.get_operator().get_output(0).grad.copy_from(aidge_core.Tensor(np.array([3.0], np.float32)))
    scheduler.backward()
    assert relative_error(np.asarray(fc.get_operator().get_input(1).grad), 3 * fd) < 1e-3


def test_function_form_gives_the_node_value(rng):
    """The function form goes through the Distillation operator: same value as the node."""
    s = rng.normal(size=(3, 4)).astype(np.float32)
    t = rng.normal(size=(3, 4)).astype(np.float32)
    node = ai.Distillation(2.0, 0, "kl")
    graph = loss_graph(node, t, s)
    graph.compile("cpu", aidge_core.dtype.float32)
    aidge_core.SequentialScheduler(graph).forward()
    value = distillation(aidge_core.Tensor(s), aidge_core.Tensor(t))
    assert tensor_value(value) == np.asarray(node.get_operator().get_output(0))[0]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("temperature,scaling", [(1e-45, 0.0), (1e-45, 1.0), (1e-40, 1.0), (1e-30, 1e30)])
def test_a_loss_that_overflows_is_an_error_not_nan(rng, form, temperature, scaling):
    """Before: temperature=1e-45, scaling=0 returned NaN (an infinite BCE loss times 0)."""
    s = rng.normal(0, 3, (4, 3)).astype(np.float32)
    S = aidge_core.Tensor(s)
    try:
        value = tensor_value(distillation(S, aidge_core.Tensor(-s), temperature, 0, form, scaling=scaling))
    except ValueError as e:
        assert "temperature" in str(e) or "overflow" in str(e), e
        assert str(temperature)[:4] in str(e) or "overflow" in str(e), e
        return
    assert np.isfinite(value) and np.all(np.isfinite(np.asarray(S.grad)))
