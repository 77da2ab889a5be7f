"""Models: ResNet structure and parameter counts, forward against an
independent PyTorch implementation, parameters vs state, train/eval modes,
state kept by clone/grow/checkpoints, training, and the engine on ResNet-20."""
import importlib.util
import json

import numpy as np
import pytest

import aidge_core
from aidge_incremental.models import ARCHITECTURES, IncrementalModel


HAVE_FAST = importlib.util.find_spec("aidge_incremental.backend.cpu") is not None
needs_fast = pytest.mark.skipif(not HAVE_FAST, reason="aidge_incremental.backend.cpu is not built")


def _bn_free(architecture, shape, n_classes=3, **options):
    return IncrementalModel(architecture, shape, n_classes=n_classes, kernels="aidge", batchnorm=False,
                            **options)


def _randomise(model, rng, scale=0.3):
    """Random weights everywhere (the Fixup init zeroes some), random running statistics."""
    params = model.state_dict()
    for name, value in params.items():
        if name.endswith("_batch_variance"):
            params[name] = rng.uniform(0.5, 2.0, value.shape).astype(np.float32)
        elif name.endswith("_scale"):
            params[name] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
        else:
            fan_in = int(np.prod(value.shape[1:])) if value.ndim > 1 else 1
            params[name] = (rng.standard_normal(value.shape) * scale / np.sqrt(fan_in)).astype(np.float32)
    model.load_state_dict(params)
    return params


# -- structure --------------------------------------------------------------------------

def _types(graph):
    return [n.type() for n in graph.get_nodes()]


@pytest.mark.parametrize("depth", [20, 32])
def test_cifar_resnets_are_dags_with_residual_adds(depth):
    n = (depth - 2) // 6
    for shortcut in ("A", "B"):
        model = _bn_free(f"resnet{depth}", (3, 32, 32), shortcut=shortcut)
        types = _types(model.graph)
        assert types.count("Add") == 3 * n
        convs = types.count("PaddedConv2D") + types.count("Conv2D")
        # 2n + ... convolutions per stage, one stem, one frozen pooling conv, projections in B
        assert convs == 1 + 6 * n + 1 + (2 if shortcut == "B" else 0)
        if shortcut == "A":  # subsample + channel padding, no parameter
            assert types.count("Pad") == 2 and types.count("MaxPooling2D") == 2
        else:
            assert "Pad" not in types
        # fan-out: a block input feeds both the residual branch and the Add
        fanout = [node for node in model.graph.get_nodes()
                  if node.type() != "Producer" and len(node.get_children()) >= 2]
        assert len(fanout) >= 3 * n
        assert model.last_conv_layer == "stage3"
        assert model.feature_dim == 64


@needs_fast
@pytest.mark.parametrize("depth,paper", [(20, 0.27e6), (32, 0.46e6), (44, 0.66e6), (56, 0.85e6)])
def test_parameter_counts_match_the_paper(depth, paper):
    """He et al. 2016, Table 6 (CIFAR-10, option A), rounded to 0.01 M."""
    model = IncrementalModel(f"resnet{depth}", (3, 32, 32), n_classes=10, kernels="fast")
    assert abs(model.n_parameters() - paper) <= 0.005e6
    option_b = IncrementalModel(f"resnet{depth}", (3, 32, 32), n_classes=10, shortcut="B", kernels="fast")
    # two 1x1 projections (16->32, 32->64) with their BatchNorm scale and shift
    assert option_b.n_parameters() - model.n_parameters() == 16 * 32 + 32 * 64 + 2 * (32 + 64)


@needs_fast
def test_resnet18_has_the_cifar_resnet18_size():
    model = IncrementalModel("resnet18", (3, 32, 32), n_classes=10, kernels="fast")
    assert model.n_parameters() == 11_173_962  # kuangliu/pytorch-cifar ResNet18, 10 classes
    assert model.last_conv_layer == "layer4" and model.feature_dim == 512


def test_bad_models_are_refused():
    with pytest.raises(ValueError, match="architecture must be one of"):
        IncrementalModel("resnet33", (3, 32, 32), kernels="aidge")
    with pytest.raises(ValueError, match="C x H x W"):
        IncrementalModel("resnet20", (784,), kernels="aidge", batchnorm=False)
    with pytest.raises(ValueError, match="positive"):
        IncrementalModel("resnet20", (3, 0, 32), kernels="aidge", batchnorm=False)
    with pytest.raises(ValueError, match="no hidden"):
        IncrementalModel("resnet20", (3, 32, 32), hidden=(64,), kernels="aidge", batchnorm=False)
    with pytest.raises(ValueError, match="invalid option"):
        IncrementalModel("resnet20", (3, 32, 32), kernels="aidge", batchnorm=False, width=3)
    with pytest.raises(ValueError, match="shortcut"):
        IncrementalModel("resnet20", (3, 32, 32), kernels="aidge", batchnorm=False, shortcut="C")
    with pytest.raises(ValueError, match="BatchNorm2D"):
        IncrementalModel("resnet20", (3, 32, 32), kernels="aidge")
    with pytest.raises(ValueError, match="kernels"):
        IncrementalModel("mlp", (1, 8, 8), kernels="slow")
    with pytest.raises(ValueError, match="too small"):
        IncrementalModel("lenet", (1, 8, 8), kernels="aidge")
    with pytest.raises(ValueError, match="backend"):
        IncrementalModel("mlp", (1, 8, 8), backend="tpu")
    if importlib.util.find_spec("aidge_backend_cuda") is None:
        with pytest.raises(RuntimeError, match="aidge-backend-cuda==0.10.1 is not installed"):
            IncrementalModel("mlp", (1, 8, 8), backend="cuda")
    model = _bn_free("resnet20", (1, 8, 8))
    with pytest.raises(ValueError, match="no layer 'stage4'"):
        model.tap("stage4")


# -- forward against PyTorch ----------------------------------------------------------------

def _torch_resnet(torch, params, depth=None, shortcut="A", last_relu=False, widths=(16, 32, 64),
                  blocks=None, prefix="stage", batchnorm=False):
    """An independent functional ResNet (basic blocks) in PyTorch, reading our weights by name."""
    F = torch.nn.functional
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
    n = blocks or (depth - 2) // 6

    def conv(x, name, stride, pad):
        return F.conv2d(x, t[f"{name}_w"], t.get(f"{name}_b"), stride=stride, padding=pad)

    def norm(x, name):
        if not batchnorm:
            return x
        return F.batch_norm(x, t[f"{name}_batch_mean"], t[f"{name}_batch_variance"], t[f"{name}_scale"],
                            t[f"{name}_shift"], training=False, eps=1e-5)

    def forward(x):
        x = F.relu(norm(conv(x, "conv1", 1, 1), "bn1"))
        for s, width in enumerate(widths, start=1):
            for i in range(1, n + 1):
                p = f"{prefix}{s}_block{i}"
                stride = 2 if (s > 1 and i == 1) else 1
                y = F.relu(norm(conv(x, f"{p}_conv1", stride, 1), f"{p}_bn1"))
                y = norm(conv(y, f"{p}_conv2", 1, 1), f"{p}_bn2")
                if x.shape[1] == width and stride == 1:
                    short = x
                elif shortcut == "A":  # iCaRL: x[:, :, ::2, ::2], then out//4 zero channels each side
                    short = F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, width // 4, width // 4))
                else:
                    short = norm(conv(x, f"{p}_proj", stride, 0), f"{p}_proj_bn")
                x = y + short
                if last_relu or not (s == len(widths) and i == n):
                    x = F.relu(x)
        features = x.mean(dim=(2, 3))
        return features, F.linear(features, t["head_w"], t["head_b"])
    return forward


@pytest.mark.parametrize("shortcut,shape,last_relu", [("A", (3, 16, 16), False), ("B", (3, 16, 16), True),
                                                      ("A", (1, 9, 7), False), ("A", (1, 28, 28), True)])
def test_bn_free_resnet20_forward_matches_pytorch(shortcut, shape, last_relu, rng):
    torch = pytest.importorskip("torch")
    model = _bn_free("resnet20", shape, n_classes=4, shortcut=shortcut, last_relu=last_relu)
    params = _randomise(model, rng)
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    features, logits = _torch_resnet(torch, params, depth=20, shortcut=shortcut, last_relu=last_relu)(
        torch.tensor(x, dtype=torch.float64))
    np.testing.assert_allclose(model.features(x), features.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.logits(x), logits.numpy(), rtol=1e-4, atol=1e-5)


def test_bn_free_resnet18_forward_matches_pytorch(rng):
    torch = pytest.importorskip("torch")
    model = _bn_free("resnet18", (3, 8, 8), n_classes=5)
    params = _randomise(model, rng)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    _, logits = _torch_resnet(torch, params, shortcut="B", last_relu=True, widths=(64, 128, 256, 512),
                              blocks=2, prefix="layer")(torch.tensor(x, dtype=torch.float64))
    np.testing.assert_allclose(model.logits(x), logits.numpy(), rtol=1e-4, atol=1e-5)


@needs_fast
def test_batchnorm_resnet_eval_forward_matches_pytorch(rng):
    torch = pytest.importorskip("torch")
    model = IncrementalModel("resnet20", (3, 12, 12), n_classes=4, kernels="fast")
    params = _randomise(model, rng)
    x = rng.standard_normal((3, 3, 12, 12)).astype(np.float32)
    _, logits = _torch_resnet(torch, params, depth=20, batchnorm=True)(torch.tensor(x, dtype=torch.float64))
    np.testing.assert_allclose(model.logits(x), logits.numpy(), rtol=1e-4, atol=1e-4)


# -- parameters vs state, train vs eval ---------------------------------------------------------

@needs_fast
def test_running_statistics_are_state_not_parameters():
    model = IncrementalModel("resnet20", (1, 8, 8), n_classes=3, kernels="fast")
    trainable = {node.name() for node in model.parameter_nodes()}
    state = model.state_names
    assert state and all(n.endswith(("_batch_mean", "_batch_variance")) for n in state)
    assert not trainable & state
    assert trainable | state == set(model.state_dict())
    assert {"conv1_w", "bn1_scale", "bn1_shift", "head_w", "head_b"} <= trainable
    assert {"bn1_batch_mean", "bn1_batch_variance"} <= state


@needs_fast
def test_train_mode_uses_batch_statistics_and_eval_mode_running_ones(rng):
    model = IncrementalModel("resnet20", (1, 8, 8), n_classes=3, kernels="fast")
    x = rng.standard_normal((6, 1, 8, 8)).astype(np.float32)
    before = model.state_dict()
    assert not model.training
    # eval: a sample's output does not depend on the rest of the batch, nothing is updated
    alone = model.logits(x[:1])
    np.testing.assert_allclose(model.logits(x)[:1], alone, rtol=1e-5, atol=1e-6)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    # train: the batch statistics change the output, and the running statistics move
    model.set_training(True)
    model.scheduler.forward(data=[aidge_core.Tensor(x)])
    in_batch = np.array(model.output)[:1]
    assert model.training
    after = model.state_dict()
    assert not np.allclose(in_batch, alone, atol=1e-4)
    moved = [k for k in model.state_names if not np.array_equal(after[k], before[k])]
    assert "bn1_batch_mean" in moved and "bn1_batch_variance" in moved
    # Aidge's convention, momentum 0.9: running <- 0.9 running + 0.1 batch (mean: from 0)
    model.set_training(False)
    model.logits(x)  # an eval pass leaves the running statistics alone
    assert np.array_equal(model.state_dict()["bn1_batch_mean"], after["bn1_batch_mean"])
    # inference restores the previous mode
    model.set_training(True)
    model.features(x)
    assert model.training


@needs_fast
def test_running_mean_follows_aidge_momentum(rng):
    model = IncrementalModel("resnet20", (1, 8, 8), n_classes=3, kernels="fast")
    x = rng.standard_normal((5, 1, 8, 8)).astype(np.float32)
    params = model.state_dict()
    torch = pytest.importorskip("torch")
    conv1 = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64),
                                       torch.tensor(params["conv1_w"], dtype=torch.float64), padding=1)
    with model.mode(training=True):
        model.scheduler.forward(data=[aidge_core.Tensor(x)])
    expected = 0.1 * conv1.mean(dim=(0, 2, 3)).numpy()
    np.testing.assert_allclose(model.state_dict()["bn1_batch_mean"], expected, rtol=1e-4, atol=1e-6)


@needs_fast
def test_state_survives_clone_grow_load_and_checkpoints(tmp_path, rng):
    from aidge_incremental.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    model = IncrementalModel("resnet20", (1, 8, 8), n_classes=2, kernels="fast")
    params = _randomise(model, rng)
    x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
    reference = model.logits(x)
    twin = model.clone()
    np.testing.assert_array_equal(twin.logits(x), reference)
    model.grow(3)
    grown = model.state_dict()
    for name in model.state_names:
        np.testing.assert_array_equal(grown[name], params[name])
    np.testing.assert_array_equal(model.logits(x)[:, :2], reference)
    path = save_checkpoint(tmp_path / "step-000.ckpt", Checkpoint(0, {}, {"class_order": list(range(5))}, model.state_dict(),
                                                                    model.rng_state, {}))
    restored = IncrementalModel("resnet20", (1, 8, 8), n_classes=5, seed=7, kernels="fast")
    restored.load_state_dict(load_checkpoint(path).params)
    np.testing.assert_array_equal(restored.logits(x), model.logits(x))
    bad = dict(grown)
    bad["bn1_batch_variance"] = -np.ones_like(bad["bn1_batch_variance"])
    with pytest.raises(ValueError, match="negative"):
        restored.load_state_dict(bad)
    np.testing.assert_array_equal(restored.logits(x), model.logits(x))  # unchanged by the refusal


@needs_fast
def test_optimizer_never_touches_running_statistics(rng):
    """Weight decay on every parameter_nodes() entry; the running statistics move only
    by BatchNorm's own update (same as in a forward-only train pass)."""
    from aidge_incremental.training import TrainConfig
    x = rng.standard_normal((8, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    trained = IncrementalModel("resnet20", (1, 8, 8), n_classes=3, kernels="fast")
    forward_only = trained.clone()
    config = TrainConfig(epochs=1, lr=0.1, batch_size=8, weight_decay=0.5)
    _train_ce(trained, x, y, 3, config)
    with forward_only.mode(training=True):
        forward_only.scheduler.forward(data=[aidge_core.Tensor(x)])
    a, b = trained.state_dict(), forward_only.state_dict()
    assert not trained.training
    for name in trained.state_names:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a["conv1_w"], b["conv1_w"])


def _train_ce(model, x, y, n_classes, config, seed=0):
    """Cross-entropy training through the engine's batch loop; the loss per epoch."""
    from aidge_incremental.loss import cross_entropy, tensor_value
    from aidge_incremental.training import BatchHooks, train

    class CE(BatchHooks):
        def losses(self, batch, outputs):
            target = outputs.tensor(batch.target_matrix(n_classes))
            return tensor_value(cross_entropy(outputs.logits, target, accumulate=True))
    return train(model, x, y, CE(), config, np.random.default_rng(seed), to_input=lambda raw: raw)


# -- training ------------------------------------------------------------------------------------

@needs_fast
def test_a_batchnorm_resnet_learns(digits):
    from aidge_incremental.training import TrainConfig
    keep = digits.y_train < 3
    x = digits.to_input(digits.x_train[keep][:96])
    y = digits.y_train[keep][:96]
    model = IncrementalModel("resnet20", digits.input_shape, n_classes=3, kernels="fast")
    losses = _train_ce(model, x, y, 3, TrainConfig(epochs=6, lr=0.05, batch_size=32))
    assert losses[-1] < 0.5 * losses[0]
    assert np.mean(model.predict(x) == y) > 0.8


def test_a_bn_free_resnet_learns_with_aidge_kernels(digits):
    from aidge_incremental.training import TrainConfig
    keep = digits.y_train < 2
    x = digits.to_input(digits.x_train[keep][:16])
    y = digits.y_train[keep][:16]
    model = _bn_free("resnet20", digits.input_shape, n_classes=2)
    losses = _train_ce(model, x, y, 2, TrainConfig(epochs=3, lr=0.1, batch_size=16))
    assert losses[-1] < 0.85 * losses[0]  # Aidge's conv backward is slow: 3 steps only


# -- engine and CLI ------------------------------------------------------------------------------------

def _write_idx(path, array):
    array = np.ascontiguousarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.tobytes())


@pytest.fixture
def tiny_mnist(tmp_path, rng):
    """4 classes of 28x28 images: a bright square whose position gives the class."""
    def make(n):
        y = np.arange(n) % 4
        x = (rng.random((n, 28, 28)) * 40).astype(np.uint8)
        for i, c in enumerate(y):
            r, q = divmod(int(c), 2)
            x[i, 4 + 12 * r:12 + 12 * r, 4 + 12 * q:12 + 12 * q] = 250
        return x, y.astype(np.uint8)
    for split, n in (("train", 48), ("t10k", 16)):
        x, y = make(n)
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte", x)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte", y)
    return tmp_path


@needs_fast
def test_icarl_runs_on_resnet20_end_to_end(tiny_mnist):
    from aidge_incremental import ExperimentConfig, run_experiment
    config = ExperimentConfig(method="icarl", dataset="mnist", data_dir=str(tiny_mnist), model="resnet20",
                              kernels="fast",
                              initial=2, increment=2, memory=8, epochs=3, batch_size=16, lr=0.05)
    result = run_experiment(config)
    acc = result.classifiers["nme"].acc_seen
    assert len(acc) == 2 and acc[0] > 0.6


@needs_fast
def test_cli_runs_resnet20(tiny_mnist, tmp_path, capsys):
    from aidge_incremental.cli import main
    out = tmp_path / "run"
    assert main(["run", "--dataset", "mnist", "--data-dir", str(tiny_mnist), "--model", "resnet20",
                 "--kernels", "fast", "--epochs", "1", "--memory", "8", "--batch-size", "16",
                 "--output-dir", str(out),
                 "--no-progress"]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["model"] == "resnet20" and data["config"]["kernels"] == "fast"


def test_cli_refuses_batchnorm_with_aidge_kernels(tiny_mnist, tmp_path, capsys):
    from aidge_incremental.cli import main
    assert main(["run", "--dataset", "mnist", "--data-dir", str(tiny_mnist), "--model", "resnet20",
                 "--kernels", "aidge", "--epochs", "1", "--output-dir", str(tmp_path / "r"),
                 "--no-progress"]) == 2
    assert "BatchNorm2D" in capsys.readouterr().err


def test_architectures_listed():
    assert {"mlp", "lenet", "resnet20", "resnet32", "resnet44", "resnet56", "resnet18"} <= set(ARCHITECTURES)


@needs_fast
@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_onnx_export_of_a_batchnorm_resnet_uses_running_statistics(tmp_path, rng, shortcut):
    onnxruntime = pytest.importorskip("onnxruntime")
    import onnx
    from aidge_incremental.export import export_model
    model = IncrementalModel("resnet20", (1, 8, 8), n_classes=3, kernels="fast", shortcut=shortcut)
    _randomise(model, rng)
    x = rng.random((4, 1, 8, 8)).astype(np.float32)
    model.set_training(True)  # an export is in eval mode whatever the model's mode
    path = export_model(model, tmp_path / "r20.onnx", [0, 1, 2])
    assert model.training
    exported = onnx.load(str(path))
    bns = [n for n in exported.graph.node if n.op_type == "BatchNormalization"]
    assert len(bns) == 19 + (2 if shortcut == "B" else 0)
    assert all(a.i == 0 for n in bns for a in n.attribute if a.name == "training_mode")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": x})[0], model.logits(x), rtol=1e-4, atol=1e-4)


@needs_fast
def test_tap_gives_the_last_conv_stage_and_its_gradient(rng):
    """What Grad-CAM needs: the last convolutional stage's output and, after a backward
    pass, its gradient."""
    from aidge_incremental.loss import cross_entropy
    from aidge_incremental.training import one_hot
    model = IncrementalModel("resnet20", (1, 8, 8), n_classes=3, kernels="fast")
    x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    with model.mode(training=False):
        model.scheduler.forward(data=[aidge_core.Tensor(x)])
        cross_entropy(model.output, aidge_core.Tensor(one_hot(np.array([0, 1]), 3)))
        model.scheduler.backward()
    stage = model.tap(model.last_conv_layer)
    assert list(stage.dims) == [2, 64, 2, 2]
    value, grad = np.array(stage), np.array(stage.grad)
    # reference: mean cross-entropy through head and global average pooling, in NumPy
    w, b = model.state_dict()["head_w"].astype(np.float64), model.state_dict()["head_b"]
    features = value.mean(axis=(2, 3)).astype(np.float64)
    logits = features @ w.T + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d_features = (p - np.eye(3)[[0, 1]]) / 2 @ w
    np.testing.assert_allclose(grad, np.broadcast_to(d_features[:, :, None, None] / 4, grad.shape),
                               rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(features, model.features(x), rtol=1e-5, atol=1e-6)


@needs_fast
def test_a_resumed_resnet_run_ends_as_the_uninterrupted_one(tiny_mnist, tmp_path):
    """Checkpoints hold the BatchNorm running statistics: resuming after step 0 gives
    the same final results as running straight through."""
    from aidge_incremental import ExperimentConfig, run_experiment
    from aidge_incremental.checkpoint import checkpoint_path, load_checkpoint
    config = ExperimentConfig(method="icarl", dataset="mnist", data_dir=str(tiny_mnist), model="resnet20",
                              initial=2, increment=2, memory=8, epochs=2, batch_size=16,
                              output_dir=str(tmp_path / "full"))
    full = run_experiment(config)
    first = checkpoint_path(tmp_path / "full", 0)
    saved = load_checkpoint(first).params
    assert "bn1_batch_mean" in saved and np.any(saved["bn1_batch_mean"] != 0)
    resumed = run_experiment({"output_dir": str(tmp_path / "resumed")}, resume=first)
    assert resumed.classifiers["nme"].acc_seen == full.classifiers["nme"].acc_seen
    assert resumed.classifiers["head"].acc_seen == full.classifiers["head"].acc_seen
    a = load_checkpoint(checkpoint_path(tmp_path / "full", 1)).params
    b = load_checkpoint(checkpoint_path(tmp_path / "resumed", 1)).params
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
