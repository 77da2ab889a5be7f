"""Learning without Memorizing: one batch's update against the same objective in
PyTorch, the attention term's effect (gamma > 0 vs 0), a whole run on LeNet
that resumes exactly, and bad models/options refused before training."""
import numpy as np
import pytest

from aidge_incremental.checkpoint import checkpoint_path
from aidge_incremental.datasets import from_arrays
from aidge_incremental.experiment import ExperimentConfig, build_method, run_experiment
from aidge_incremental.methods import METHODS
from aidge_incremental.methods.lwm import LwM
from aidge_incremental.models import IncrementalModel
from aidge_incremental.options import ConfigError
from aidge_incremental.scenario import ClassIncrementalScenario

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
    config = ExperimentConfig(method="lwm", model="lenet", hidden=[12], initial=2, increment=2, **{
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
        for name in ("conv1_w", "conv2_w", "fc1_w"):
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
    assert (defaults["distillation_weight"], defaults["attention_weight"], defaults["temperature"]) == (1.0, 1.0, 2.0)
    assert all("FACIL" in o.source for o in LwM.options if o.name in ("distillation_weight", "attention_weight",
                                                                      "temperature"))


def torch_lwm_gradients(teacher_params, student_params, x, labels, n_old, beta, gamma, T):
    """d L / d params of L = CE + beta·KD_T(old) + gamma·L_AD for the same LeNet in PyTorch
    (float64), alpha_s held constant (detached), b = the teacher's top old class."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional

    def forward(p, inputs):
        h = F.max_pool2d(F.relu(F.conv2d(inputs, p["conv1_w"], p["conv1_b"])), 2)
        a = F.relu(F.conv2d(h, p["conv2_w"], p["conv2_b"]))
        h = F.relu(F.max_pool2d(a, 2).flatten(1) @ p["fc1_w"].T + p["fc1_b"])
        return a, h @ p["head_w"].T + p["head_b"]

    def grad_cam(p, b, keep_graph):
        a, logits = forward(p, inputs)
        score = logits[torch.arange(len(b)), b].sum()
        (da,) = torch.autograd.grad(score, a, retain_graph=keep_graph)
        return a, logits, da.mean(dim=(2, 3))

    inputs = torch.tensor(x, dtype=torch.float64)
    tp = {k: torch.tensor(v, dtype=torch.float64) for k, v in teacher_params.items()}
    sp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in student_params.items()}
    for v in tp.values():
        v.requires_grad_(True)  # only for the teacher's Grad-CAM; never updated
    _, t_logits = forward(tp, inputs)
    b = t_logits[:, :n_old].argmax(1).detach()
    a_t, _, alpha_t = grad_cam(tp, b, False)
    q_t = F.relu(torch.einsum("bc,bchw->bhw", alpha_t, a_t.detach())).flatten(1).detach()
    _, _, alpha_s = grad_cam(sp, b, False)
    a_s, logits = forward(sp, inputs)
    q_s = F.relu(torch.einsum("bc,bchw->bhw", alpha_s.detach(), a_s)).flatten(1)
    l_ad = (F.normalize(q_s, dim=1, eps=1e-12) - F.normalize(q_t, dim=1, eps=1e-12)).abs().sum(1).mean()
    ce = F.cross_entropy(logits, torch.tensor(labels))
    soft = torch.softmax(t_logits[:, :n_old].detach() / T, dim=1)
    kd = -(soft * torch.log_softmax(logits[:, :n_old] / T, dim=1)).sum(1).mean()
    (ce + beta * kd + gamma * l_ad).backward()
    return {k: v.grad.numpy() for k, v in sp.items()}, l_ad.item()


def test_one_update_is_the_papers_objective_against_pytorch(data):
    """A whole step of one batch: the update (lr · gradient, SGD's first step) of every
    parameter equals PyTorch's gradient of L_C + beta·L_D + gamma·L_AD (alpha_s constant)."""
    beta, gamma, T = 0.7, 3.0, 2.0
    method, scenario = after_first_step(data, distillation_weight=beta, attention_weight=gamma, temperature=T)
    teacher_params = method.model.state_dict()
    step = scenario.step(1)
    method.learn(step, data)
    student_params = method.student_start
    after = method.model.state_dict()
    grads, l_ad = torch_lwm_gradients(teacher_params, student_params, data.to_input(step.x_train),
                                      step.y_train, 2, beta, gamma, T)
    assert l_ad > 0.05 and method.last_losses["attention"] == pytest.approx(gamma * l_ad, rel=1e-4)
    lr = method.config.lr
    for name, ref in grads.items():
        ours = (student_params[name].astype(np.float64) - after[name]) / lr
        np.testing.assert_allclose(ours, ref, rtol=2e-3, atol=2e-3 * np.abs(ref).max(), err_msg=name)


def test_gamma_changes_the_convolutions_below_the_map_only(data):
    """gamma > 0 vs gamma = 0 after the same update: the attention gradient reaches the
    convolutions (which differ), and nothing above the tapped map (identical)."""
    with_ad, scenario = after_first_step(data, attention_weight=1.0)
    without, _ = after_first_step(data, attention_weight=0.0)
    step = scenario.step(1)
    with_ad.learn(step, data)
    without.learn(step, data)
    start = with_ad.student_start
    for name, value in without.student_start.items():
        np.testing.assert_array_equal(value, start[name])  # same start
    assert with_ad.layer == "crelu2" and with_ad.last_losses["attention"] > 0.05
    assert "attention" not in without.last_losses
    a, b = with_ad.model.state_dict(), without.model.state_dict()
    for name in ("conv1_w", "conv1_b", "conv2_w", "conv2_b"):
        moved = np.abs(a[name] - start[name]).max()
        assert np.abs(a[name] - b[name]).max() > 1e-3 * moved, name
    for name in ("fc1_w", "fc1_b", "head_w", "head_b"):
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
