"""The AttentionDistillation operator (LwM, Dhar et al. 2019) and its function form,
against a plain NumPy float64 reference of the paper's formula and central finite
differences of that reference."""
import aidge_core
import numpy as np
import pytest

import aidge_incremental as ai
from aidge_incremental.loss import attention_distillation, tensor_value
from distillation_reference import central_difference, relative_error

EPS = 1e-12


def normalise(q):
    """q / max(‖q‖₂, ε) per sample (torch.nn.functional.normalize's definition)."""
    q = q.reshape(len(q), -1)
    return q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), EPS)


def reference(a, alpha, q_teacher):
    """mean_b ‖ vec(ReLU(Σ_c α_bc A_bc))/‖·‖ − vec(Q_t,b)/‖·‖ ‖₁, float64."""
    a, alpha, q_teacher = (np.asarray(v, np.float64) for v in (a, alpha, q_teacher))
    q_student = np.maximum(np.einsum("bc,bchw->bhw", alpha, a), 0.0)
    return np.mean(np.abs(normalise(q_student) - normalise(q_teacher)).sum(axis=1))


def random_case(rng, batch, channels, h, w, dtype=np.float32):
    a = np.maximum(rng.normal(0, 1, (batch, channels, h, w)), 0).astype(dtype)  # post-ReLU features
    alpha = rng.normal(0, 1, (batch, channels)).astype(dtype)
    q_teacher = np.maximum(rng.normal(0, 1, (batch, h, w)), 0).astype(dtype)
    return a, alpha, q_teacher


def special_cases(rng):
    """Maps that ReLU zeroes entirely, zero teacher maps, one-hot maps, identical maps.
    Pixels where Σ α A is exactly 0 are kinks of ReLU (no derivative): the student maps
    keep every pixel strictly off zero."""
    b, c, h, w = 4, 3, 5, 4
    a, alpha, qt = random_case(rng, b, c, h, w, np.float64)
    a += 0.1
    zero_student = (a, -np.abs(alpha) - 0.1, qt)                 # Σ α A < 0: ReLU zeroes it
    zero_teacher = (a, np.abs(alpha) + 0.1, np.zeros_like(qt))   # teacher map all zero
    onehot_a = np.full((b, c, h, w), -0.2)
    onehot_a[:, :, 2, 1] = 3.0                                   # one pixel on, the rest < 0
    onehot_t = np.zeros((b, h, w))
    onehot_t[:, 0, 3] = 5.0
    one_hot = (onehot_a, np.abs(alpha) + 0.1, onehot_t)          # one-hot student and teacher
    same_t = np.zeros((b, h, w))
    same_t[:, 2, 1] = 1.0
    identical = (onehot_a, np.abs(alpha) + 0.1, same_t)          # student map = teacher map
    mixed = (a, alpha.copy(), qt)
    mixed[1][0] = -np.abs(mixed[1][0]) - 0.1                      # sample 0 zeroed, others not
    return {"zero_student": zero_student, "zero_teacher": zero_teacher, "one_hot": one_hot,
            "identical": identical, "mixed": mixed}


def run_function(a, alpha, qt, with_alpha=False, **kwargs):
    A, W = aidge_core.Tensor(np.ascontiguousarray(a)), aidge_core.Tensor(np.ascontiguousarray(alpha))
    value = tensor_value(attention_distillation(A, W, aidge_core.Tensor(np.ascontiguousarray(qt)), **kwargs))
    return (value, np.asarray(A.grad), np.asarray(W.grad)) if with_alpha else (value, np.asarray(A.grad))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_value_matches_reference(rng, dtype):
    for shape in [(1, 1, 1, 1), (2, 3, 4, 4), (8, 16, 7, 5), (3, 64, 11, 11)]:
        a, alpha, qt = random_case(rng, *shape, dtype)
        value, _ = run_function(a, alpha, qt)
        np.testing.assert_allclose(value, reference(a, alpha, qt), rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_matches_finite_differences(rng, dtype):
    for shape in [(2, 3, 4, 4), (5, 4, 3, 6), (1, 8, 5, 5)]:
        a, alpha, qt = random_case(rng, *shape, np.float64)
        a = a + 0.05  # no pixel exactly at a ReLU kink
        a, alpha, qt = a.astype(dtype), alpha.astype(dtype), qt.astype(dtype)
        _, grad = run_function(a, alpha, qt)
        fd = central_difference(lambda x: reference(x, alpha, qt), a, eps=1e-4 if dtype == np.float32 else 1e-6)
        assert np.linalg.norm(fd) > 0
        assert relative_error(grad, fd) < 1e-3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_of_the_grad_cam_weights_matches_finite_differences(rng, dtype):
    """∂L/∂α at fixed A (what LwM's exact gradient carries to the layers above the tap)."""
    for shape in [(2, 3, 4, 4), (5, 4, 3, 6), (1, 8, 5, 5)]:
        a, alpha, qt = random_case(rng, *shape, np.float64)
        a = a + 0.05
        a, alpha, qt = a.astype(dtype), alpha.astype(dtype), qt.astype(dtype)
        _, grad_a, grad_alpha = run_function(a, alpha, qt, with_alpha=True)
        fd = central_difference(lambda w: reference(a, w, qt), alpha, eps=1e-4 if dtype == np.float32 else 1e-6)
        assert np.linalg.norm(fd) > 0
        assert relative_error(grad_alpha, fd) < 1e-3
        # the two halves agree: Σ_j A_cj ∂L/∂A_cj = α_c ∂L/∂α_c (both are α_c Σ_j A_cj ∂L/∂z_j)
        lhs = np.einsum("bchw,bchw->bc", a.astype(np.float64), grad_a)
        np.testing.assert_allclose(lhs, alpha * grad_alpha, rtol=1e-3 if dtype == np.float32 else 1e-9,
                                   atol=1e-5 * np.abs(lhs).max())


@pytest.mark.parametrize("case", ["zero_student", "zero_teacher", "one_hot", "identical", "mixed"])
def test_special_maps_value_and_gradient(rng, case):
    a, alpha, qt = special_cases(rng)[case]
    value, grad = run_function(a, alpha, qt)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, reference(a, alpha, qt), rtol=1e-12, atol=1e-12)
    fd = central_difference(lambda x: reference(x, alpha, qt), a, eps=1e-6)
    if np.linalg.norm(fd) < 1e-9:
        np.testing.assert_allclose(grad, 0, atol=1e-9)
    else:
        assert relative_error(grad, fd) < 1e-3
    if case == "zero_student":  # a zeroed map normalises to 0: L = ‖v‖₁ and no gradient
        np.testing.assert_allclose(value, np.mean(normalise(qt).sum(axis=1)), rtol=1e-12)
        assert np.all(grad == 0)
    if case == "identical":
        assert value == pytest.approx(0.0, abs=1e-12)


def test_scaling_and_accumulate(rng):
    a, alpha, qt = random_case(rng, 3, 4, 5, 5)
    base, g1, w1 = run_function(a, alpha, qt, with_alpha=True)
    A = aidge_core.Tensor(a)
    args = (aidge_core.Tensor(alpha), aidge_core.Tensor(qt))
    assert tensor_value(attention_distillation(A, *args, scaling=2.0)) == pytest.approx(2 * base, rel=1e-6)
    np.testing.assert_allclose(np.asarray(A.grad), 2 * g1, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(np.asarray(args[0].grad), 2 * w1, rtol=1e-5, atol=1e-9)
    attention_distillation(A, *args, scaling=0.5, accumulate=True)
    np.testing.assert_allclose(np.asarray(A.grad), 2.5 * g1, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(np.asarray(args[0].grad), 2.5 * w1, rtol=1e-5, atol=1e-9)
    attention_distillation(A, *args, scaling=1.0)  # not accumulating: both gradients replaced
    np.testing.assert_allclose(np.asarray(args[0].grad), w1, rtol=1e-5, atol=1e-9)
    # the teacher map never receives a gradient
    assert not args[1].has_grad() or not np.any(np.asarray(args[1].grad))


def conv2d(x, w, b):
    """Valid 2-D cross-correlation, NCHW, float64 (the reference of Aidge's Conv2D)."""
    n, c, h, wd = x.shape
    k = w.shape[2]
    out = np.zeros((n, w.shape[0], h - k + 1, wd - k + 1))
    for i in range(k):
        for j in range(k):
            out += np.einsum("nchw,oc->nohw", x[:, :, i:i + h - k + 1, j:j + wd - k + 1], w[:, :, i, j])
    return out + b[None, :, None, None]


def test_node_through_a_small_cnn_in_a_scheduled_graph(rng):
    """x → Conv2D → ReLU (the tapped map) → AttentionDistillation(α, Q_t): the scheduler's
    backward gives the exact gradient of the conv parameters, without a manual seed."""
    batch, cin, cout, size, k = 3, 2, 4, 7, 3
    x = rng.normal(size=(batch, cin, size, size)).astype(np.float32)
    w = rng.normal(0, 0.5, (cout, cin, k, k)).astype(np.float32)
    bias = rng.normal(0, 0.1, cout).astype(np.float32)
    alpha = rng.normal(0, 1, (batch, cout)).astype(np.float32)
    qt = np.maximum(rng.normal(size=(batch, size - k + 1, size - k + 1)), 0).astype(np.float32)

    conv = aidge_core.Conv2D(cin, cout, [k, k], name="conv")
    relu = aidge_core.ReLU(name="relu")
    node = ai.AttentionDistillation(name="lad")
    conv.add_child(relu, 0, 0)
    relu.add_child(node, 0, 0)
    graph = aidge_core.GraphView()
    for n in (conv, relu, node):
        graph.add(n)
    for index, (name, value) in enumerate((("alpha", alpha), ("teacher_map", qt)), start=1):
        producer = aidge_core.Producer(aidge_core.Tensor(value), name)
        producer.add_child(node, 0, index)
        graph.add(producer)
    graph.compile("cpu", aidge_core.dtype.float32, dims=[[batch, cin, size, size]])
    conv.get_operator().get_input(1).copy_from(aidge_core.Tensor(w))
    conv.get_operator().get_input(2).copy_from(aidge_core.Tensor(bias))
    scheduler = aidge_core.SequentialScheduler(graph)
    scheduler.forward(data=[aidge_core.Tensor(x)])
    scheduler.backward()

    x64 = x.astype(np.float64)
    loss = lambda w_, b_: reference(np.maximum(conv2d(x64, w_, b_), 0), alpha, qt)
    np.testing.assert_allclose(np.asarray(node.get_operator().get_output(0))[0],
                               loss(w.astype(np.float64), bias.astype(np.float64)), rtol=1e-5)
    fd_w = central_difference(lambda m: loss(m, bias.astype(np.float64)), w)
    fd_b = central_difference(lambda v: loss(w.astype(np.float64), v), bias)
    assert relative_error(np.asarray(conv.get_operator().get_input(1).grad), fd_w) < 1e-3
    assert relative_error(np.asarray(conv.get_operator().get_input(2).grad), fd_b) < 1e-3
    clone = graph.clone()  # a cloned graph keeps a working node with its attribute
    assert clone.get_node("lad").get_operator().epsilon == pytest.approx(1e-12)


# --- bad input -------------------------------------------------------------------

def _t(a):
    return aidge_core.Tensor(np.ascontiguousarray(a))


GOOD = (np.ones((2, 3, 4, 5), np.float32), np.ones((2, 3), np.float32), np.ones((2, 4, 5), np.float32))


@pytest.mark.parametrize("index, bad, message", [
    (2, np.ones((2, 4, 6), np.float32), "different shapes"),
    (2, np.ones((2, 5, 4), np.float32), "different shapes"),
    (2, np.ones((3, 4, 5), np.float32), "different shapes"),
    (2, np.ones((2, 1, 4, 5), np.float32), "teacher map must be 3-D"),
    (1, np.ones((2, 4), np.float32), "do not match"),
    (1, np.ones((3, 3), np.float32), "do not match"),
    (0, np.ones((2, 3, 20), np.float32), "must be 4-D"),
    (1, np.ones((2, 3)), "same data type"),
    (0, np.full((2, 3, 4, 5), np.nan, np.float32), "non-finite"),
    (2, np.full((2, 4, 5), np.inf, np.float32), "non-finite"),
    (0, np.ones((2, 3, 0, 5), np.float32), "empty"),
])
def test_function_rejects_bad_input_and_leaves_state_alone(index, bad, message):
    arrays = list(GOOD)
    arrays[index] = bad
    tensors = [_t(a) for a in arrays]
    if arrays[0].size:
        tensors[0].grad.copy_from(_t(np.full(arrays[0].shape, 7.0, arrays[0].dtype)))
    with pytest.raises(ValueError, match=message):
        attention_distillation(*tensors)
    if arrays[0].size:
        assert np.all(np.asarray(tensors[0].grad) == 7.0)


def test_bad_epsilon_and_types():
    with pytest.raises(ValueError, match="epsilon"):
        attention_distillation(*[_t(a) for a in GOOD], epsilon=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        ai.AttentionDistillation(epsilon=-1.0)
    with pytest.raises(TypeError, match="float32 or float64"):
        attention_distillation(_t(GOOD[0].astype(np.int32)), _t(GOOD[1]), _t(GOOD[2]))


def test_node_rejects_maps_of_different_shapes():
    node = ai.AttentionDistillation()
    graph = aidge_core.GraphView()
    graph.add(node)
    for index, value in enumerate((GOOD[0], GOOD[1], np.ones((2, 5, 5), np.float32))):
        producer = aidge_core.Producer(_t(value), f"p{index}")
        producer.add_child(node, 0, index)
        graph.add(producer)
    with pytest.raises((ValueError, RuntimeError), match="different shapes"):
        graph.set_backend("cpu")
        graph.forward_dims()
        aidge_core.SequentialScheduler(graph).forward()


def test_function_form_composes_with_cross_entropy_on_a_live_model(rng):
    """The LwM step: CE on the logits + γ·L_AD on the tapped map of the live graph, one
    scheduler.backward(): the parameter gradients equal PyTorch's (α held constant)."""
    torch = pytest.importorskip("torch")
    from aidge_incremental.loss import cross_entropy
    from aidge_incremental.models import IncrementalModel
    model = IncrementalModel("lenet", (1, 16, 16), hidden=(8,), n_classes=3, seed=4)
    x = rng.normal(size=(4, 1, 16, 16)).astype(np.float32)
    labels = np.array([0, 2, 1, 2])
    onehot = np.eye(3, dtype=np.float32)[labels]
    gamma = 0.7
    # positive weights on post-ReLU features: student maps with many active pixels
    alpha = rng.uniform(0.1, 1.0, (4, 32)).astype(np.float32)
    qt = np.maximum(rng.normal(size=(4, 5, 5)), 0).astype(np.float32)  # a teacher map

    model.scheduler.forward(data=[aidge_core.Tensor(x)])
    cross_entropy(model.output, aidge_core.Tensor(onehot))
    tap = model.graph.get_node("crelu2").get_operator().get_output(0)
    attention_distillation(tap, aidge_core.Tensor(alpha), aidge_core.Tensor(qt), scaling=gamma)
    model.scheduler.backward()
    ours = {n.name(): np.array(n.get_operator().get_output(0).grad) for n in model.parameter_nodes()}

    F = torch.nn.functional
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in model.state_dict().items()}
    h = F.max_pool2d(F.relu(F.conv2d(torch.tensor(x, dtype=torch.float64), p["conv1_w"], p["conv1_b"])), 2)
    a = F.relu(F.conv2d(h, p["conv2_w"], p["conv2_b"]))
    logits = F.relu(F.max_pool2d(a, 2).flatten(1) @ p["fc1_w"].T + p["fc1_b"]) @ p["head_w"].T + p["head_b"]
    q = F.relu(torch.einsum("bc,bchw->bhw", torch.tensor(alpha, dtype=torch.float64), a)).flatten(1)
    lad = (F.normalize(q, dim=1) - F.normalize(torch.tensor(qt, dtype=torch.float64).flatten(1), dim=1)).abs().sum(1).mean()
    ce = F.cross_entropy(logits, torch.tensor(labels))
    ce_only = torch.autograd.grad(ce, p["conv2_w"], retain_graph=True)[0].numpy()
    (ce + gamma * lad).backward()
    for name, grad in ours.items():
        ref = p[name].grad.numpy()
        assert relative_error(grad, ref) < 1e-4, name
    # the attention term is a visible part of that gradient
    assert relative_error(ce_only, p["conv2_w"].grad.numpy()) > 1e-2
