"""The batch loop: SGD with momentum, weight decay and schedules against
PyTorch; losses on taps; isolated extra passes; produced batches; the
teacher per batch; schedules against aidge_learning; backend checks."""
import sys
import types

import aidge_learning
import numpy as np
import pytest

from aidge_incremental.loss import cross_entropy, tensor_value
from aidge_incremental.models import IncrementalModel
from aidge_incremental.backend import require_backend
from aidge_incremental.training import Batch, BatchHooks, LRSchedule, TrainConfig, isolated_pass, one_hot, train

SHAPE = (1, 4, 4)


def identity(x):
    return np.asarray(x, np.float32)


class CrossEntropy(BatchHooks):
    """CE on the logits, plus optionally ``feature_weight · ½·mean_b ‖features_b‖²``
    on the tap named ``features``."""

    def __init__(self, n_classes, feature_weight=0.0):
        self.n_classes, self.feature_weight = n_classes, feature_weight
        self.updates = 0

    def losses(self, batch, outputs):
        loss = tensor_value(cross_entropy(outputs.logits, outputs.tensor(batch.target_matrix(self.n_classes)),
                                          accumulate=True))
        if self.feature_weight:
            f = np.array(outputs.tap("features"), np.float32)
            outputs.seed(outputs.tap("features"), self.feature_weight * f / len(f))
            loss += self.feature_weight * 0.5 * float((f.astype(np.float64) ** 2).sum(1).mean())
        return loss

    def after_update(self):
        self.updates += 1


def torch_reference(params, x, y, config, seed, n_classes, feature_weight=0.0, rate=None):
    """The same training in PyTorch (float64): torch.optim.SGD + MultiStepLR per epoch,
    or ``rate(epoch, update)`` set before each update."""
    torch = pytest.importorskip("torch")
    w1 = torch.tensor(params["fc1_w"], dtype=torch.float64, requires_grad=True)
    b1 = torch.tensor(params["fc1_b"], dtype=torch.float64, requires_grad=True)
    w2 = torch.tensor(params["head_w"], dtype=torch.float64, requires_grad=True)
    b2 = torch.tensor(params["head_b"], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w1, b1, w2, b2], lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(config.milestones) or [10 ** 6],
                                                 gamma=config.lr_factor)
    rng = np.random.default_rng(seed)
    xt = torch.tensor(x.reshape(len(x), -1), dtype=torch.float64)
    update = 0
    for epoch in range(config.epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), config.batch_size):
            idx = order[start:start + config.batch_size]
            if rate is not None:
                opt.param_groups[0]["lr"] = rate(epoch, update)
            update += 1
            f = torch.relu(xt[idx] @ w1.T + b1)
            logits = f @ w2.T + b2
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y[idx]))
            if feature_weight:
                loss = loss + feature_weight * 0.5 * (f ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return {"fc1_w": w1, "fc1_b": b1, "head_w": w2, "head_b": b2}


@pytest.mark.parametrize("feature_weight", [0.0, 0.3])
def test_sgd_momentum_weight_decay_multistep_match_pytorch(rng, feature_weight):
    # 10 samples, batch 4: batches of 4, 4 and a last partial batch of 2; 3 epochs with the
    # rate halved after epochs 1 and 2 (9 updates, the first at each rate included).
    model = IncrementalModel("mlp", SHAPE, hidden=(6,), n_classes=3, seed=3)
    x = rng.random((10,) + SHAPE).astype(np.float32)
    y = rng.integers(0, 3, 10)
    config = TrainConfig(epochs=3, lr=0.2, batch_size=4, momentum=0.9, weight_decay=0.05,
                         schedule="multistep", milestones=(1, 2), lr_factor=0.5)
    start = model.state_dict()
    hooks = CrossEntropy(3, feature_weight)
    losses = train(model, x, y, hooks, config, np.random.default_rng(11), to_input=identity)
    assert hooks.updates == 9 and len(losses) == 3
    expected = torch_reference(start, x, y, config, 11, 3, feature_weight)
    trained = model.state_dict()
    for name, value in expected.items():
        np.testing.assert_allclose(trained[name], value.detach().numpy(), rtol=0, atol=1e-5, err_msg=name)
        assert not np.allclose(trained[name], start[name]), f"{name} did not move"


def test_cosine_with_warmup_per_update_matches_pytorch(rng):
    # 3 epochs of 3 updates (4, 4, 2 samples); warm-up over the first epoch's 3 updates
    model = IncrementalModel("mlp", SHAPE, hidden=(6,), n_classes=3, seed=4)
    x = rng.random((10,) + SHAPE).astype(np.float32)
    y = rng.integers(0, 3, 10)
    config = TrainConfig(epochs=3, lr=0.3, batch_size=4, momentum=0.8, weight_decay=0.02, schedule="cosine",
                         min_lr=0.03, warmup_epochs=1)
    start = model.state_dict()
    train(model, x, y, CrossEntropy(3), config, np.random.default_rng(5), to_input=identity)

    def rate(epoch, update):  # CosineAnnealingLR(T_max=3, eta_min=0.03) per epoch, linear warm-up per update
        cosine = 0.03 + (0.3 - 0.03) * (1 + np.cos(np.pi * epoch / 3)) / 2
        return cosine * min(1.0, (update + 1) / 4)
    expected = torch_reference(start, x, y, config, 5, 3, rate=rate)
    for name, value in expected.items():
        np.testing.assert_allclose(model.state_dict()[name], value.detach().numpy(), rtol=0, atol=1e-5,
                                   err_msg=name)


def test_first_step_settings_apply_to_the_first_step_only(rng):
    from aidge_incremental.datasets import from_arrays
    from aidge_incremental.methods.base import IncrementalMethod
    from aidge_incremental.scenario import ClassIncrementalScenario

    class Counting(IncrementalMethod):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.lrs = []

        def before_forward(self, batch):
            self.lrs.append((batch.epoch, batch.lr))
    x = rng.random((40,) + SHAPE).astype(np.float32)
    y = np.repeat(np.arange(4), 10)
    data = from_arrays(x, y, x, y, name="arrays")
    scenario = ClassIncrementalScenario(data, 2, 2, seed=0)
    config = TrainConfig(epochs=1, lr=0.01, batch_size=10, first_step={"epochs": 3, "lr": 0.05,
                                                                       "schedule": "multistep",
                                                                       "milestones": (2,)})
    method = Counting(IncrementalModel("mlp", SHAPE, hidden=(4,), seed=0), config)
    method.learn(scenario.step(0), data)
    assert method.lrs == [(0, 0.05)] * 2 + [(1, 0.05)] * 2 + [(2, 0.05 * 0.1)] * 2
    method.lrs.clear()
    method.learn(scenario.step(1), data)
    assert method.lrs == [(0, 0.01)] * 2


def test_aidge_sgd_alone_skips_weight_decay_on_its_first_update():
    """Why the loop applies weight decay itself (AIDGE_NOTES): one update with
    zero gradient moves nothing in aidge_learning.SGD, while p -= lr·wd·p is due."""
    model = IncrementalModel("mlp", SHAPE, hidden=(3,), n_classes=2, seed=0)
    params = model.parameter_nodes()
    before = {n.name(): np.array(n.get_operator().get_output(0)) for n in params}
    opt = aidge_learning.SGD(momentum=0.9, weight_decay=0.1)
    opt.set_learning_rate_scheduler(aidge_learning.constant_lr(0.5))
    opt.set_parameters(params)
    opt.reset_grad()
    opt.update()
    after = {n.name(): np.array(n.get_operator().get_output(0)) for n in params}
    np.testing.assert_array_equal(after["fc1_w"], before["fc1_w"])


class GradCam(CrossEntropy):
    """CE, plus a Grad-CAM-like extra pass inside the losses hook: one-hot seed
    on the logits, backward, read the features' gradient."""

    def __init__(self, n_classes, head_rows):
        super().__init__(n_classes)
        self.head_rows, self.seen = head_rows, []

    def losses(self, batch, outputs):
        loss = super().losses(batch, outputs)  # the batch's gradients are set first
        with isolated_pass(outputs.model) as p:
            out = p.forward(batch.inputs[::-1].copy())  # other inputs, to disturb the activations
            out.seed(out.logits, one_hot(batch.labels[::-1], self.n_classes), accumulate=False)
            p.backward()
            grad = np.array(out.tap("features").grad, np.float32)
            self.seen.append((grad, self.head_rows()[batch.labels[::-1]]))
        return loss


def test_extra_passes_leave_no_trace(rng):
    x = rng.random((10,) + SHAPE).astype(np.float32)
    y = rng.integers(0, 3, 10)
    config = TrainConfig(epochs=2, lr=0.1, batch_size=4, momentum=0.9, weight_decay=0.01)
    plain = IncrementalModel("mlp", SHAPE, hidden=(6,), n_classes=3, seed=3)
    probed = IncrementalModel("mlp", SHAPE, hidden=(6,), n_classes=3, seed=3)
    train(plain, x, y, CrossEntropy(3), config, np.random.default_rng(1), to_input=identity)
    head = lambda: np.array(probed.graph.get_node("head").get_operator().get_input(1))
    hooks = GradCam(3, head)
    train(probed, x, y, hooks, config, np.random.default_rng(1), to_input=identity)
    a, b = plain.state_dict(), probed.state_dict()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    # the extra pass computed what it should: d logit_c / d features = W_head[c]
    assert len(hooks.seen) == 6
    for grad, rows in hooks.seen:
        np.testing.assert_allclose(grad, rows, rtol=1e-6, atol=1e-7)


def test_isolated_pass_restores_on_error(rng):
    model = IncrementalModel("mlp", SHAPE, hidden=(4,), n_classes=2, seed=0)
    x = rng.random((3,) + SHAPE).astype(np.float32)
    model.scheduler.forward(data=[__import__("aidge_core").Tensor(x)])
    logits = np.array(model.output)
    with pytest.raises(RuntimeError, match="boom"):
        with isolated_pass(model) as p:
            p.forward(rng.random((5,) + SHAPE).astype(np.float32))
            raise RuntimeError("boom")
    np.testing.assert_array_equal(np.array(model.output), logits)


class Mixup(CrossEntropy):
    """Produces the batch: blends each sample with the next one (a blend has no
    index and no single label, only soft targets)."""

    def __init__(self, n_classes, lam=0.7):
        super().__init__(n_classes)
        self.lam, self.batches = lam, []

    def make_batch(self, batch):
        j = np.roll(np.arange(len(batch)), 1)
        t = one_hot(batch.labels, self.n_classes)
        blended = Batch(self.lam * batch.inputs + (1 - self.lam) * batch.inputs[j],
                        labels=np.full(len(batch), -1), indices=np.full(len(batch), -1),
                        targets=self.lam * t + (1 - self.lam) * t[j])
        self.batches.append(blended)
        return blended


def test_a_method_can_produce_the_batch_with_soft_targets(rng):
    torch = pytest.importorskip("torch")
    model = IncrementalModel("mlp", SHAPE, hidden=(5,), n_classes=3, seed=2)
    start = model.state_dict()
    x = rng.random((4,) + SHAPE).astype(np.float32)
    y = np.array([0, 1, 2, 1])
    hooks = Mixup(3)
    config = TrainConfig(epochs=1, lr=0.5, batch_size=4, momentum=0.0)
    train(model, x, y, hooks, config, np.random.default_rng(0), to_input=identity)
    batch = hooks.batches[0]
    # PyTorch: one plain SGD step on the blended batch with soft-target cross-entropy
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in start.items()}
    f = torch.relu(torch.tensor(batch.inputs.reshape(4, -1), dtype=torch.float64) @ p["fc1_w"].T + p["fc1_b"])
    logits = f @ p["head_w"].T + p["head_b"]
    loss = -(torch.tensor(batch.targets, dtype=torch.float64) * torch.log_softmax(logits, 1)).sum(1).mean()
    loss.backward()
    for k, v in p.items():
        np.testing.assert_allclose(model.state_dict()[k], (v - 0.5 * v.grad).detach().numpy(), atol=1e-6)


@pytest.mark.parametrize("change,message", [
    (lambda b: setattr(b, "labels", np.full(len(b), 7)), "label 7 is outside"),
    (lambda b: setattr(b, "targets", np.zeros((len(b), 2), np.float32)), "soft targets have shape"),
    (lambda b: setattr(b, "inputs", b.inputs.astype(np.float64)), "float32"),
    (lambda b: setattr(b, "inputs", b.inputs[:, :, :2]), "model expects"),
    (lambda b: b.inputs.__setitem__((0, 0, 0, 0), np.nan), "NaN"),
])
def test_a_bad_produced_batch_is_refused_before_the_forward_pass(rng, change, message):
    class Broken(CrossEntropy):
        def make_batch(self, batch):
            change(batch)
            return batch
    model = IncrementalModel("mlp", SHAPE, hidden=(5,), n_classes=3, seed=2)
    start = model.state_dict()
    x = rng.random((4,) + SHAPE).astype(np.float32)
    with pytest.raises(ValueError, match=message):
        train(model, x, np.array([0, 1, 2, 1]), Broken(3), TrainConfig(epochs=1), rng, to_input=identity)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, start[k])


def test_losses_may_be_named_and_make_batch_must_return_a_batch(rng):
    class Named(CrossEntropy):
        def losses(self, batch, outputs):
            return {"ce": super().losses(batch, outputs), "zero": 0.0}

    class Forgetful(CrossEntropy):
        def make_batch(self, batch):
            batch.labels = batch.labels  # changes it in place, forgets to return it
    x = rng.random((6,) + SHAPE).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    config = TrainConfig(epochs=2, batch_size=4)
    runs = [train(IncrementalModel("mlp", SHAPE, hidden=(3,), n_classes=3, seed=0), x, y, hooks, config,
                  np.random.default_rng(0), to_input=identity) for hooks in (CrossEntropy(3), Named(3))]
    assert runs[0] == runs[1] and len(runs[0]) == 2
    with pytest.raises(TypeError, match="make_batch must return a Batch, got NoneType"):
        train(IncrementalModel("mlp", SHAPE, hidden=(3,), n_classes=3), x, y, Forgetful(3), config, rng,
              to_input=identity)


def test_training_mode_is_on_during_training_only(rng):
    class Spy(IncrementalModel):
        modes = []

        def set_training(self, training):
            self.modes.append(training)

    class Record(CrossEntropy):
        def before_forward(self, batch):
            Spy.modes.append("batch")

    model = Spy("mlp", SHAPE, hidden=(3,), n_classes=2, seed=0)
    x = rng.random((3,) + SHAPE).astype(np.float32)
    train(model, x, np.array([0, 1, 0]), Record(2), TrainConfig(epochs=1, batch_size=2), rng, to_input=identity)
    assert Spy.modes == [True, "batch", "batch", False]


def test_the_teacher_runs_per_batch_on_the_augmented_inputs():
    from aidge_incremental.datasets import DATASETS, from_arrays
    from aidge_incremental.experiment import ExperimentConfig, build_method
    from aidge_incremental.methods.components import TEACHER_LOGITS
    from aidge_incremental.scenario import ClassIncrementalScenario
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(80, 3, 8, 8), dtype=np.uint8)
    y = np.repeat(np.arange(4), 20)
    data = from_arrays(x, y, x[::5], y[::5], name="cifar10").replace(augmentation=DATASETS["cifar10"].augmentation)
    method = build_method(ExperimentConfig(method="lwf", epochs=1, batch_size=16, hidden=(8,)), data.input_shape)
    method.config = TrainConfig(epochs=1, batch_size=16)  # augment: the CIFAR default
    scenario = ClassIncrementalScenario(data, 2, 2, seed=0)
    method.learn(scenario.step(0), data)
    seen, original = [], method.before_forward

    def spy(batch):
        original(batch)
        seen.append((batch.inputs.copy(), batch.indices.copy(), batch.extra[TEACHER_LOGITS]))
    method.before_forward = spy
    step = scenario.step(1)
    method.learn(step, data)
    assert len(seen) == 3  # 40 samples, batches of 16
    augmented = 0
    for inputs, indices, teacher in seen:
        np.testing.assert_allclose(teacher, method.teacher.logits(inputs), rtol=1e-6, atol=1e-6)
        augmented += not np.array_equal(inputs, data.to_input(step.x_train[indices]))
    assert augmented == 3, "batches are augmented with the dataset's default augmentation"


# -- schedules ----------------------------------------------------------------------------


def test_schedules_match_aidge_learning_where_it_has_them():
    # cosine per epoch = aidge_learning.cosine_lr with one scheduler step per epoch
    ours = [LRSchedule(0.1, 12, "cosine").epoch_lr(e) for e in range(12)]
    np.testing.assert_allclose(ours, aidge_learning.cosine_lr(0.1, 12).lr_profile(12), rtol=1e-6, atol=1e-8)
    ours = [LRSchedule(0.1, 12, "cosine", min_lr=0.02).epoch_lr(e) for e in range(12)]
    np.testing.assert_allclose(ours, aidge_learning.cosine_lr(0.1, 12, 0.2).lr_profile(12), rtol=1e-6, atol=1e-8)
    # regular milestones = step_lr's fixed period
    ours = [LRSchedule(0.1, 9, "multistep", (3, 6), 0.5).epoch_lr(e) for e in range(9)]
    np.testing.assert_allclose(ours, aidge_learning.step_lr(0.1, 3, 0.5).lr_profile(9), rtol=1e-6, atol=1e-8)
    # linear warm-up per update = set_nb_warmup_steps (2 epochs of 3 updates)
    expected = aidge_learning.constant_lr(0.1)
    expected.set_nb_warmup_steps(6)
    np.testing.assert_allclose(LRSchedule(0.1, 4, warmup_epochs=2).profile(3), expected.lr_profile(12), rtol=1e-6, atol=1e-8)


def test_irregular_milestones_match_pytorch_multisteplr():
    torch = pytest.importorskip("torch")
    # iCaRL's reference protocol: 70 epochs, lr 2.0 divided by 5 at epochs 49 and 63
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [49, 63], gamma=0.2)
    expected = []
    for _ in range(70):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [LRSchedule(2.0, 70, "multistep", (49, 63), 0.2).epoch_lr(e) for e in range(70)]
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_milestones_past_the_last_epoch_are_refused():
    """Before: a milestone at or past the last epoch, which never applies, was accepted
    silently (a warm-up as long was refused)."""
    with pytest.raises(ValueError, match=r"milestones \[49, 63\].*past the last epoch.*epochs = 10"):
        LRSchedule(2.0, 10, "multistep", (5, 49, 63), 0.2)
    with pytest.raises(ValueError, match=r"milestones \[10\]"):
        TrainConfig(epochs=10, schedule="multistep", milestones=(10,))
    assert LRSchedule(2.0, 10, "multistep", (9,), 0.2).profile(1)[-1] == pytest.approx(0.4)
    # first_step's milestones are checked against first_step's epochs
    TrainConfig(epochs=2, schedule="multistep", milestones=(1,), first_step={"epochs": 200, "milestones": (60, 120)})
    with pytest.raises(ValueError, match=r"first_step: .*milestones \[60, 120\]"):
        TrainConfig(epochs=2, schedule="multistep", milestones=(1,), first_step={"milestones": (60, 120)})


def test_a_diverging_run_says_diverged_and_names_the_learning_rate(tmp_path, capsys):
    """Before: --lr 1e6 stopped with the loss kernel's "non-finite logits"."""
    from aidge_incremental.cli import main
    assert main(["run", "--method", "finetune", "--lr", "1e6", "--epochs", "1", "--output-dir",
                 str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "diverged" in err and "1e+06" in err and "lr" in err, err


def test_first_step_overrides():
    config = TrainConfig(epochs=70, lr=0.1, weight_decay=2e-4, schedule="multistep", milestones=(49, 63),
                         first_step={"epochs": 200, "lr": 0.1, "weight_decay": 5e-4,
                                     "milestones": (60, 120, 170)})
    first, later = config.for_step(0), config.for_step(1)
    assert (first.epochs, first.weight_decay, tuple(first.milestones)) == (200, 5e-4, (60, 120, 170))
    assert (later.epochs, later.weight_decay, tuple(later.milestones)) == (70, 2e-4, (49, 63))
    assert first.first_step is None and later.first_step is None
    assert TrainConfig().for_step(0) == TrainConfig()


@pytest.mark.parametrize("kwargs,message", [
    (dict(schedule="step"), "schedule must be one of constant, multistep, cosine; got 'step'"),
    (dict(schedule="multistep"), "needs milestones"),
    (dict(schedule="multistep", milestones=(5, 3), epochs=10), "strictly increasing"),
    (dict(milestones=(3,)), "multistep schedule only"),
    (dict(lr=0.0), "lr must be"),
    (dict(lr=float("nan")), "lr must be"),
    (dict(momentum=1.0), "momentum"),
    (dict(weight_decay=-1e-4), "weight_decay"),
    (dict(warmup_epochs=30), "warmup_epochs"),
    (dict(first_step={"learning_rate": 0.1}), r"first_step: unknown settings \[.learning_rate.\]"),
    (dict(first_step={"lr": -1.0}), "lr must be"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


# -- backend ------------------------------------------------------------------------------


def test_backend_choice(monkeypatch, rng):
    assert require_backend("cpu") == "cpu"
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        require_backend("tpu")
    monkeypatch.setitem(sys.modules, "aidge_incremental.backend.cuda", None)  # as if the module were absent
    with pytest.raises(RuntimeError, match="CUDA support is not installed"):
        require_backend("cuda")
    fake = types.ModuleType("aidge_incremental.backend.cuda")

    def no_gpu():
        raise RuntimeError("no CUDA driver found")
    fake.ensure_cuda_backend = no_gpu
    monkeypatch.setitem(sys.modules, "aidge_incremental.backend.cuda", fake)
    with pytest.raises(RuntimeError, match="no CUDA driver"):
        require_backend("cuda")
    # a model on that backend is refused when it is made, before any training
    with pytest.raises(RuntimeError, match="no CUDA driver"):
        IncrementalModel("mlp", SHAPE, hidden=(3,), n_classes=2, seed=0, backend="cuda")
    # and train() checks the model's backend before touching anything
    model = IncrementalModel("mlp", SHAPE, hidden=(3,), n_classes=2, seed=0)
    model.backend = "cuda"
    hooks = CrossEntropy(2)
    with pytest.raises(RuntimeError, match="no CUDA driver"):
        train(model, rng.random((2,) + SHAPE).astype(np.float32), np.array([0, 1]), hooks, TrainConfig(),
              rng, to_input=identity)
    assert hooks.updates == 0
