"""Learning without Memorizing: one batch's update against the paper's objective
differentiated by PyTorch (through the Grad-CAM weights: create_graph=True) on LeNet and
ResNet-20, the classification loss FACIL uses, the attention term's effect, whole runs
that resume exactly, and bad models/options refused before training."""
import numpy as np
import pytest

from aidge_incremental.checkpoint import checkpoint_path
from aidge_incremental.datasets import from_arrays
from aidge_incremental.experiment import ExperimentConfig, build_method, run_experiment
from aidge_incremental.methods import METHODS
from aidge_incremental.methods.lwm import LwM
from aidge_incremental.models import HEAD, IncrementalModel
from aidge_incremental.options import ConfigError
from aidge_incremental.scenario import ClassIncrementalScenario
from network_reference import torch_forward

SIZE = 16  # LeNet on 16x16: conv 14x14 -> pool 7 -> conv 5x5 (the attention map) -> pool 2


def blobs(n_per_class=12, n_classes=6, seed=0):
    """Images of one bright 4x4 square per class (its position is the class) on noise."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, size=(n_per_class * n_classes, SIZE, SIZE)).astype(np.uint8)
    y = np.repeat(np.arange(n_classes), n_per_class)
    for i, c in enumerate(y):
        r, col = 2 + 4 * (c // 3) + rng.integers(0, 3), 1 + 4 * (c % 3) + rng.integers(0, 3)
        x[i, r:r + 4, col:col + 4] = 255
    return from_arrays(x, y, name="blobs", test_fraction=0.25, seed=seed)


@pytest.fixture(scope="module")
def data():
    return blobs()


def lwm(data, **options):
    config = ExperimentConfig(**{"method": "lwm", "model": "lenet", "hidden": [12], "initial": 2, "increment": 2,
                                 "epochs": 1, "batch_size": 512, "lr": 0.05, **options})
    return build_method(config, data.input_shape)


def after_first_step(data, **options):
    """A LwM that has learnt step 0 (3 epochs), and the scenario. Step 1 is one update
    (the whole step in one batch), from a student moved away from the teacher: at the
    start of a step they are equal, so L_AD and its gradient are 0 on the first update."""
    scenario = ClassIncrementalScenario(data, 2, 2, seed=0)
    method = lwm(data, **options)
    method.config = method.config.replace(epochs=3)
    method.learn(scenario.step(0), data)
    method.config = method.config.replace(epochs=1)
    before_step, training_data = method.before_step, method.training_data

    def perturbed_student(step, dataset):
        before_step(step, dataset)  # after the components': the teacher is cloned
        rng = np.random.default_rng(7)
        params = method.model.state_dict()
        for name in params:
            if name.endswith("_w"):
                params[name] = params[name] * (1 + 0.3 * rng.standard_normal(params[name].shape)).astype(np.float32)
        method.model.load_state_dict(params)

    def record_start(step):
        method.student_start = method.model.state_dict()  # after the head grew
        return training_data(step)

    method.before_step, method.training_data = perturbed_student, record_start
    return method, scenario


def test_lwm_is_registered_with_cited_defaults():
    assert METHODS["lwm"] is LwM
    defaults = {o.name: o.default for o in LwM.options}
    assert (defaults["distillation_weight"], defaults["attention_weight"], defaults["temperature"]) == (1.0, 0.1, 2.0)
    assert (defaults["classification_loss"], defaults["attention_gradient"]) == (None, "exact")
    assert all("FACIL" in o.source for o in LwM.options if o.name in ("distillation_weight", "attention_weight",
                                                                      "temperature", "classification_loss"))


def test_the_classification_loss_follows_the_memory_as_in_facil(data):
    """FACIL's LwM: the current head only without exemplars, every head with them."""
    assert lwm(data).classification == "new"
    assert lwm(data, memory=8, selection="random").classification == "seen"
    assert lwm(data, classification_loss="seen").classification == "seen"
    assert lwm(data, memory=8, classification_loss="new").classification == "new"


def torch_lwm_gradients(model, teacher_params, student_params, x, labels, n_old, beta, gamma, T, layer,
                        exact=True, training=False):
    """d L / d params of L = CE(new outputs) + beta·KD_T(old) + gamma·L_AD for the same network
    in PyTorch (float64), b = the teacher's top old class. ``exact``: the student's Grad-CAM
    weights are differentiated (create_graph=True); else detached (held constant)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    inputs = torch.tensor(np.asarray(x, np.float64))

    def grad_cam(params, run_training, keep):
        out = torch_forward(model, params, inputs, run_training)
        score = out[HEAD][torch.arange(len(b)), b].sum()
        (da,) = torch.autograd.grad(score, out[layer], create_graph=keep, retain_graph=True)
        return out, da.mean(dim=(2, 3))

    tp = {k: torch.tensor(np.asarray(v, np.float64), requires_grad=True) for k, v in teacher_params.items()}
    sp = {k: torch.tensor(np.asarray(v, np.float64), requires_grad=k not in model.state_names)
          for k, v in student_params.items()}
    t_logits = torch_forward(model, tp, inputs)[HEAD].detach()
    b = t_logits[:, :n_old].argmax(1)
    t_out, alpha_t = grad_cam(tp, False, False)
    q_t = F.relu(torch.einsum("bc,bchw->bhw", alpha_t, t_out[layer])).flatten(1).detach()
    out, alpha_s = grad_cam(sp, training, exact)
    if not exact:
        alpha_s = alpha_s.detach()
    logits = out[HEAD]
    q_s = F.relu(torch.einsum("bc,bchw->bhw", alpha_s, out[layer])).flatten(1)
    l_ad = (F.normalize(q_s, dim=1, eps=1e-12) - F.normalize(q_t, dim=1, eps=1e-12)).abs().sum(1).mean()
    ce = F.cross_entropy(logits[:, n_old:], torch.tensor(labels - n_old))
    soft = torch.softmax(t_logits[:, :n_old] / T, dim=1)
    kd = -(soft * torch.log_softmax(logits[:, :n_old] / T, dim=1)).sum(1).mean()
    (ce + beta * kd + gamma * l_ad).backward()
    return {k: v.grad.numpy() for k, v in sp.items() if v.requires_grad}, l_ad.item()


def _check_update(method, teacher_params, step, data, reference, lr):
    """The update (lr · gradient, SGD's first step) of every parameter equals the reference."""
    start, after = method.student_start, method.model.state_dict()
    for name, ref in reference.items():
        ours = (start[name].astype(np.float64) - after[name]) / lr
        np.testing.assert_allclose(ours, ref, rtol=2e-3, atol=2e-3 * np.abs(ref).max(), err_msg=name)


@pytest.mark.parametrize("gradient", ["exact", "first_order"])
def test_one_update_on_lenet_is_the_papers_objective_against_pytorch(data, gradient):
    """A whole step of one batch on LeNet: the update equals PyTorch's gradient of
    L_C + beta·L_D + gamma·L_AD, differentiated through the Grad-CAM weights (exact) or with
    them held constant (first_order), and the two differ on the layers above the tap."""
    beta, gamma, T = 0.7, 3.0, 2.0
    method, scenario = after_first_step(data, distillation_weight=beta, attention_weight=gamma, temperature=T,
                                        attention_gradient=gradient)
    teacher_params = method.model.state_dict()
    step = scenario.step(1)
    method.learn(step, data)
    x = data.to_input(step.x_train)
    grads, l_ad = torch_lwm_gradients(method.model, teacher_params, method.student_start, x, step.y_train, 2,
                                      beta, gamma, T, "crelu2", exact=gradient == "exact")
    assert l_ad > 0.05 and method.last_losses["attention"] == pytest.approx(gamma * l_ad, rel=1e-4)
    _check_update(method, teacher_params, step, data, grads, method.config.lr)
    other, _ = torch_lwm_gradients(method.model, teacher_params, method.student_start, x, step.y_train, 2,
                                   beta, gamma, T, "crelu2", exact=gradient != "exact")
    for name in ("fc1_w", "head_w"):  # the Grad-CAM weights' term is not small
        assert np.abs(other[name] - grads[name]).max() > 0.2 * np.abs(grads[name]).max(), name
    for name in ("conv1_w", "conv2_w", "fc1_b", "head_b"):  # and reaches nothing else
        np.testing.assert_allclose(other[name], grads[name], rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module")
def resnet_data():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 255, size=(36, 3, 8, 8)).astype(np.uint8)
    y = np.repeat(np.arange(4), 9)
    for i, c in enumerate(y):  # a bright channel per class
        x[i, c % 3, :, :] = np.maximum(x[i, c % 3], 200 - 40 * (c // 3))
    return from_arrays(x, y, x[::3], y[::3], name="colours")


def test_one_update_on_resnet20_is_the_papers_objective_against_pytorch(resnet_data):
    """ResNet-20 (BatchNorm in training mode below the tap, GAP and the head above): the
    Grad-CAM weights are W_head[b]/(H·W); the update equals PyTorch's double backward."""
    beta, gamma, T = 1.0, 2.0, 2.0
    scenario = ClassIncrementalScenario(resnet_data, 2, 2, seed=0)
    config = ExperimentConfig(method="lwm", model="resnet20", initial=2, increment=2, epochs=2, batch_size=512,
                              lr=0.05, distillation_weight=beta, attention_weight=gamma, temperature=T)
    method = build_method(config, resnet_data.input_shape)
    method.learn(scenario.step(0), resnet_data)
    method.config = method.config.replace(epochs=1)
    teacher_params = method.model.state_dict()
    step = scenario.step(1)
    rng = np.random.default_rng(4)
    start = None

    def perturbed(step_, dataset, before=method.before_step):
        nonlocal start
        before(step_, dataset)
        params = method.model.state_dict()
        for name in params:
            if name.endswith("_w") or name.endswith("_scale"):
                params[name] = (params[name] + 0.1 * rng.standard_normal(params[name].shape)).astype(np.float32)
        method.model.load_state_dict(params)

    def record(step_, data_=method.training_data):
        method.student_start = method.model.state_dict()
        return data_(step_)

    method.before_step, method.training_data = perturbed, record
    method.learn(step, resnet_data)
    grads, l_ad = torch_lwm_gradients(method.model, teacher_params, method.student_start,
                                      resnet_data.to_input(step.x_train), step.y_train, 2, beta, gamma, T,
                                      "stage3", exact=True, training=True)
    assert l_ad > 0.05 and method.last_losses["attention"] == pytest.approx(gamma * l_ad, rel=1e-3)
    _check_update(method, teacher_params, step, resnet_data, grads, method.config.lr)


def test_without_attention_lwm_is_lwf(data):
    """gamma = 0 with the new-classes loss is LwF (Li & Hoiem) at T = 2, lambda = 1: the same run."""
    common = dict(model="lenet", hidden=[12], initial=2, increment=2, epochs=2, batch_size=16)
    a = run_experiment(ExperimentConfig(method="lwm", attention_weight=0.0, **common), data)
    b = run_experiment(ExperimentConfig(method="lwf", **common), data)
    assert a.to_dict()["classifiers"] == b.to_dict()["classifiers"]
    a_params, b_params = a.trained_method.model.state_dict(), b.trained_method.model.state_dict()
    assert all(np.array_equal(a_params[k], b_params[k]) for k in a_params)


def test_gamma_changes_the_convolutions_and_exactly_the_weights_above(data):
    """gamma > 0 vs gamma = 0 after the same update: the attention gradient reaches the
    convolutions below the map (through A) and the weights above it (through the Grad-CAM
    weights, exact gradient only), never the biases above."""
    exact, scenario = after_first_step(data, attention_weight=1.0)
    first, _ = after_first_step(data, attention_weight=1.0, attention_gradient="first_order")
    without, _ = after_first_step(data, attention_weight=0.0)
    step = scenario.step(1)
    for method in (exact, first, without):
        method.learn(step, data)
    start = exact.student_start
    for name, value in without.student_start.items():
        np.testing.assert_array_equal(value, start[name])  # same start
    assert exact.layer == "crelu2" and exact.last_losses["attention"] > 0.05
    assert "attention" not in without.last_losses
    a, f, b = exact.model.state_dict(), first.model.state_dict(), without.model.state_dict()
    for name in ("conv1_w", "conv1_b", "conv2_w", "conv2_b"):
        moved = np.abs(a[name] - start[name]).max()
        assert np.abs(a[name] - b[name]).max() > 1e-3 * moved, name
    for name in ("fc1_w", "head_w"):
        np.testing.assert_array_equal(f[name], b[name], err_msg=name)
        assert np.abs(a[name] - b[name]).max() > 1e-3 * np.abs(a[name] - start[name]).max(), name
    for name in ("fc1_b", "head_b"):
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize("memory", [0, 8])
def test_a_run_on_lenet_resumes_to_identical_results(tmp_path, data, memory):
    options = dict(method="lwm", model="lenet", hidden=[12], initial=2, increment=2, epochs=2, batch_size=16,
                   memory=memory, selection="random" if memory else "herding")
    full = run_experiment(ExperimentConfig(**options, output_dir=str(tmp_path / "full")), data)
    assert len(full.main.acc_seen) == 3 and full.main.acc_seen[0] > 0.7  # it learns
    resumed = run_experiment({"output_dir": str(tmp_path / "resumed")}, data,
                             resume=checkpoint_path(tmp_path / "full", 0))
    assert resumed.to_dict()["classifiers"] == full.to_dict()["classifiers"]


def test_a_model_without_convolution_is_refused_before_training(data):
    scenario = ClassIncrementalScenario(data, 2, 2, seed=0)
    method = build_method(ExperimentConfig(method="lwm", model="mlp", hidden=[12]), data.input_shape)
    with pytest.raises(ValueError, match="LwM needs a convolutional model"):
        method.learn(scenario.step(0), data)
    assert method.model.n_classes == 0 and method.losses_per_epoch == []  # nothing changed
    with pytest.raises(ValueError, match="LwM needs a convolutional model"):
        run_experiment(ExperimentConfig(method="lwm", model="mlp", hidden=[12]), data)


def test_bad_attention_layers_and_options_are_refused(data):
    scenario = ClassIncrementalScenario(data, 2, 2, seed=0)
    for layer, message in (("conv9", "is not a layer of the model"),
                           ("fc1", r"\[batch, channels, height, width\]")):
        method = lwm(data, attention_layer=layer)
        with pytest.raises(ValueError, match=message):
            method.learn(scenario.step(0), data)
        assert method.model.n_classes == 0
    with pytest.raises(ConfigError, match="attention_weight must be >= 0"):
        ExperimentConfig(method="lwm", attention_weight=-1.0)
    with pytest.raises(ConfigError, match="'attention_weight' does not apply to method 'lwf'"):
        ExperimentConfig(method="lwf", attention_weight=1.0)
    model = IncrementalModel("lenet", (1, SIZE, SIZE), hidden=(12,))
    with pytest.raises(ValueError, match="attention_weight must be a finite number"):
        LwM(model, attention_weight=float("nan"))


@pytest.mark.parametrize("model", ["resnet20", "resnet18"])
def test_lwm_runs_on_resnets_from_the_command_line_without_warnings(tmp_path, resnet_data, capfd, model):
    """The paper's own models: the Grad-CAM clone runs on our kernels (Aidge's have no
    GlobalAveragePooling backward) and nothing is printed per batch (the skip-backward
    annotations once warned on every call)."""
    from aidge_incremental.cli import main
    path = tmp_path / "colours.npz"
    np.savez(path, x_train=resnet_data.x_train, y_train=resnet_data.y_train, x_test=resnet_data.x_test,
             y_test=resnet_data.y_test)
    capfd.readouterr()
    assert main(["run", "--method", "lwm", "--model", model, "--dataset", "npz", "--data-dir", str(path),
                 "--initial", "2", "--increment", "2", "--epochs", "1", "--batch-size", "12", "--no-progress",
                 "--output-dir", str(tmp_path / "run")]) == 0
    out, err = capfd.readouterr()
    assert "Traceback" not in err and "deprecated" not in (out + err).lower() and "warning" not in err.lower()
    assert (tmp_path / "run" / "results.json").exists()


def test_batchnorm_above_the_map_is_refused_for_the_exact_gradient(resnet_data):
    scenario = ClassIncrementalScenario(resnet_data, 2, 2, seed=0)
    config = ExperimentConfig(method="lwm", model="resnet20", attention_layer="stage2", epochs=1)
    method = build_method(config, resnet_data.input_shape)
    with pytest.raises(ValueError, match="free of BatchNorm.*'stage3_block1_bn1'"):
        method.learn(scenario.step(0), resnet_data)
    assert method.model.n_classes == 0
    first_order = build_method(config.replace(attention_gradient="first_order"), resnet_data.input_shape)
    first_order.learn(scenario.step(0), resnet_data)  # allowed: α held constant
