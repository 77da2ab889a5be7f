"""Grad-CAM through Aidge's backward, against PyTorch with the same weights; the live
model (parameter gradients, activations, optimiser) is left untouched."""
import aidge_core
import aidge_learning
import numpy as np
import pytest

from aidge_incremental.gradcam import (GradCAM, grad_cam, grad_cam_weights_vjp, last_conv_layer, linear_head_weights,
                                       plot_grad_cam)
from aidge_incremental.loss import cross_entropy
from aidge_incremental.models import HEAD, IncrementalModel
from network_reference import randomise, torch_forward, torch_parameters

SHAPE = (1, 16, 16)


def lenet(seed=0, n_classes=5):
    model = IncrementalModel("lenet", SHAPE, hidden=(12,), n_classes=n_classes, seed=seed)
    rng = np.random.default_rng(seed + 100)
    params = model.state_dict()
    for name in params:
        if name.endswith("_b"):  # non-zero biases: every term of the layers is exercised
            params[name] = rng.normal(0, 0.1, params[name].shape).astype(np.float32)
    model.load_state_dict(params)
    return model


def torch_grad_cam(model, x, classes):
    """Grad-CAM of the same LeNet in PyTorch (float64), tapping the second conv's ReLU."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in model.state_dict().items()}
    h = F.max_pool2d(F.relu(F.conv2d(torch.tensor(x, dtype=torch.float64), p["conv1_w"], p["conv1_b"])), 2)
    a = F.relu(F.conv2d(h, p["conv2_w"], p["conv2_b"]))
    a.retain_grad()
    h = F.max_pool2d(a, 2).flatten(1)
    h = F.relu(h @ p["fc1_w"].T + p["fc1_b"])
    logits = h @ p["head_w"].T + p["head_b"]
    logits[torch.arange(len(x)), torch.tensor(classes)].sum().backward()
    alpha = a.grad.mean(dim=(2, 3))
    maps = F.relu(torch.einsum("bc,bchw->bhw", alpha, a))
    return maps.detach().numpy(), alpha.numpy(), a.detach().numpy()


def test_maps_match_pytorch_with_the_same_weights(rng):
    model = lenet()
    x = rng.normal(size=(6, *SHAPE)).astype(np.float32)
    classes = np.array([0, 1, 2, 3, 4, 2])
    result = grad_cam(model, x, classes)
    assert isinstance(result, GradCAM)
    maps, alpha, features = torch_grad_cam(model, x, classes)
    assert result.maps.shape == (6, 5, 5) and result.weights.shape == (6, 32)
    for ours, ref in ((result.features, features), (result.weights, alpha), (result.maps, maps)):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    assert np.abs(maps).max() > 0  # the check is not vacuous


def test_each_sample_gets_its_own_class(rng):
    """One backward for the batch = one backward per sample (samples are independent)."""
    model = lenet(seed=3)
    x = rng.normal(size=(3, *SHAPE)).astype(np.float32)
    batch = grad_cam(model, x, [4, 0, 2])
    for b, c in enumerate([4, 0, 2]):
        single = grad_cam(model, x[b:b + 1], [c])
        np.testing.assert_allclose(batch.maps[b], single.maps[0], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(batch.weights[b], single.weights[0], rtol=1e-5, atol=1e-8)


def test_graphview_and_explicit_layer_give_the_same_maps(rng):
    model = lenet(seed=1)
    x = rng.normal(size=(2, *SHAPE)).astype(np.float32)
    a = grad_cam(model, x, [1, 3])
    b = grad_cam(model.graph, x, [1, 3], layer="crelu2")
    np.testing.assert_array_equal(a.maps, b.maps)
    c = grad_cam(model, x, [1, 3], layer="conv1")  # an earlier tap works too
    assert c.features.shape == (2, 16, 14, 14)


def test_default_layer_resolution():
    assert last_conv_layer(lenet()) == "crelu2"
    assert last_conv_layer(lenet().graph) == "crelu2"

    declared = IncrementalModel("lenet", SHAPE, hidden=(12,), n_classes=3)
    declared.last_conv_layer = "crelu1"  # a model that declares its layer is taken at its word
    assert last_conv_layer(declared) == "crelu1"
    mlp = IncrementalModel("mlp", SHAPE, hidden=(8,), n_classes=3)
    with pytest.raises(ValueError, match="no convolutional layer"):
        grad_cam(mlp, np.zeros((1, *SHAPE), np.float32), [0])


@pytest.mark.parametrize("kwargs, error, message", [
    ({"layer": "conv9"}, ValueError, "no layer named 'conv9'"),
    ({"layer": "fc1"}, ValueError, r"\[batch, channels, height, width\]"),
    ({"classes": [0, 5]}, ValueError, r"in \[0, 5\)"),
    ({"classes": [0, -1]}, ValueError, r"in \[0, 5\)"),
    ({"classes": [0]}, ValueError, "one class index per sample"),
    ({"classes": [0.5, 1.0]}, TypeError, "integers"),
    ({"x": np.zeros((2, 1, 8, 8), np.float32)}, ValueError, "the model expects"),
    ({"x": np.full((2, *SHAPE), np.nan, np.float32)}, ValueError, "NaN"),
])
def test_bad_input(kwargs, error, message):
    args = {"x": np.zeros((2, *SHAPE), np.float32), "classes": [0, 1], **kwargs}
    with pytest.raises(error, match=message):
        grad_cam(lenet(), args.pop("x"), args.pop("classes"), **args)


def _train_steps(model, x, onehot, call_grad_cam):
    optimizer = aidge_learning.SGD(momentum=0.9)
    optimizer.set_learning_rate_scheduler(aidge_learning.constant_lr(0.1))
    optimizer.set_parameters(model.parameter_nodes())
    snapshots = []
    for step in range(2):
        model.scheduler.forward(data=[aidge_core.Tensor(x)])
        logits = np.array(model.output)
        if call_grad_cam:  # between forward and backward: the worst place
            grad_cam(model, x[::-1].copy(), np.arange(len(x)) % 3)
            np.testing.assert_array_equal(np.array(model.output), logits)  # activations kept
        cross_entropy(model.output, aidge_core.Tensor(onehot))
        optimizer.reset_grad()
        model.scheduler.backward()
        grads = {n.name(): np.array(n.get_operator().get_output(0).grad) for n in model.parameter_nodes()}
        if call_grad_cam:  # between backward and update
            grad_cam(model, x, np.zeros(len(x), int))
            for n in model.parameter_nodes():
                np.testing.assert_array_equal(np.array(n.get_operator().get_output(0).grad), grads[n.name()])
        optimizer.update()
        snapshots.append((grads, model.state_dict()))
    return snapshots


def test_parameter_gradients_activations_and_optimiser_are_untouched(rng):
    x = rng.normal(size=(4, *SHAPE)).astype(np.float32)
    onehot = np.eye(3, dtype=np.float32)[[0, 1, 2, 1]]
    plain = _train_steps(lenet(seed=7, n_classes=3), x, onehot, call_grad_cam=False)
    with_cam = _train_steps(lenet(seed=7, n_classes=3), x, onehot, call_grad_cam=True)
    for (g1, p1), (g2, p2) in zip(plain, with_cam):
        for name in g1:
            assert np.any(g1[name] != 0) or name.endswith("_b")
            np.testing.assert_array_equal(g1[name], g2[name])
        for name in p1:
            np.testing.assert_array_equal(p1[name], p2[name])


def resnet(seed=0, n_classes=4, shape=(3, 8, 8), **options):
    return randomise(IncrementalModel("resnet20", shape, n_classes=n_classes, seed=seed, **options), seed + 50)


def torch_alpha(model, x, classes, layer, training=False, create_graph=False):
    """Grad-CAM weights by PyTorch: mean_hw of d y_b,class_b / d A (float64)."""
    torch = pytest.importorskip("torch")
    params = torch_parameters(model)
    out = torch_forward(model, params, torch.tensor(np.asarray(x, np.float64)), training)
    score = out[HEAD][torch.arange(len(x)), torch.tensor(classes)].sum()
    (grad,) = torch.autograd.grad(score, out[layer], create_graph=create_graph)
    return grad.mean(dim=(2, 3)), params


def test_resnet_grad_cam_runs_on_our_kernels_and_matches_the_closed_form(rng):
    """A clone gets Aidge's kernels back, which have no GlobalAveragePooling backward: the
    clone is accelerated. Above a ResNet's last stage (GAP, flatten, head) the weights are
    W_head[class] / (H·W) for every input."""
    model = resnet()
    x = rng.normal(size=(5, 3, 8, 8)).astype(np.float32)
    classes = np.array([0, 3, 1, 1, 2])
    result = grad_cam(model, x, classes)
    alpha, _ = torch_alpha(model, x, classes, "stage3")
    np.testing.assert_allclose(result.weights, alpha.numpy(), rtol=1e-5, atol=1e-7)
    closed = linear_head_weights(model, classes, "stage3")
    np.testing.assert_allclose(closed, result.weights, rtol=1e-6, atol=1e-9)
    assert linear_head_weights(lenet(), [0, 1], "crelu2") is None  # max-pool and FC above: no closed form
    assert linear_head_weights(model, [0], "stage2") is None


def _vjp_against_double_backward(model, x, classes, layer, training=False):
    """grad_cam_weights_vjp against d/dθ Σ g·α(θ), α by PyTorch's create_graph=True."""
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(9).standard_normal((len(x), model.tap(layer).dims[1]))
    alpha, params = torch_alpha(model, x, classes, layer, training=training, create_graph=True)
    names = [k for k, v in params.items() if v.requires_grad]
    refs = torch.autograd.grad((alpha * torch.tensor(g)).sum(), [params[k] for k in names], allow_unused=True)
    refs = {k: np.zeros(params[k].shape) if r is None else r.numpy() for k, r in zip(names, refs)}
    with model.mode(training=training):
        model.scheduler.forward(data=[aidge_core.Tensor(np.ascontiguousarray(x))])  # the primal: masks, switches
        ours = grad_cam_weights_vjp(model, layer, classes, g)
    nonzero = [k for k, r in refs.items() if np.abs(r).max() > 0]
    assert sorted(ours) == sorted(nonzero), (sorted(ours), sorted(nonzero))
    for k in nonzero:
        np.testing.assert_allclose(ours[k], refs[k], rtol=1e-4, atol=1e-4 * np.abs(refs[k]).max(), err_msg=k)
    return refs


def test_weights_vjp_on_lenet_against_pytorch_double_backward(rng):
    """Above LeNet's last conv: max-pool, flatten, FC, ReLU, head; above its first conv also
    the second conv and its ReLU. Only the weights above the tap get a gradient."""
    model = lenet(seed=2)
    x = rng.normal(size=(6, *SHAPE)).astype(np.float32)
    classes = np.array([0, 4, 1, 1, 3, 2])
    refs = _vjp_against_double_backward(model, x, classes, "crelu2")
    assert {k for k, r in refs.items() if np.abs(r).max() > 0} == {"fc1_w", "head_w"}
    refs = _vjp_against_double_backward(model, x, classes, "crelu1")
    assert {k for k, r in refs.items() if np.abs(r).max() > 0} == {"conv2_w", "fc1_w", "head_w"}


def test_weights_vjp_on_resnet_against_pytorch_double_backward(rng):
    """ResNet-20's last stage (GAP, head: the head's rows of the classes only), and an
    earlier stage in inference mode (convolutions, BatchNorm as a scale, additions and
    zero-padded shortcuts above it); BatchNorm in training mode above the tap is refused."""
    model = resnet(seed=1)
    x = rng.normal(size=(4, 3, 8, 8)).astype(np.float32)
    classes = np.array([2, 0, 2, 3])
    refs = _vjp_against_double_backward(model, x, classes, "stage3", training=True)
    assert [k for k, r in refs.items() if np.abs(r).max() > 0] == ["head_w"]
    assert np.flatnonzero(np.abs(refs["head_w"]).sum(1)).tolist() == [0, 2, 3]
    refs = _vjp_against_double_backward(model, x, classes, "stage2")
    assert {"stage3_block1_conv1_w", "stage3_block1_bn1_scale", "head_w"} <= \
        {k for k, r in refs.items() if np.abs(r).max() > 0}
    with model.mode(training=True):
        model.scheduler.forward(data=[aidge_core.Tensor(np.ascontiguousarray(x))])
        with pytest.raises(ValueError, match="BatchNorm in training mode"):
            grad_cam_weights_vjp(model, "stage2", classes, np.zeros((4, 32)))


def test_plot_writes_a_png(tmp_path, rng):
    model = lenet()
    x = rng.normal(size=(3, *SHAPE)).astype(np.float32)
    teacher = grad_cam(model, x, [0, 1, 2])
    student = grad_cam(lenet(seed=5), x, [0, 1, 2])
    path = plot_grad_cam(tmp_path / "cam.png", x, teacher.maps, student.maps, titles=["a", "b", "c"])
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["cam.png"]  # no temporary left behind
    with pytest.raises(ValueError, match="map stacks"):
        plot_grad_cam(tmp_path / "bad.png", x, teacher.maps, student.maps[:2])
