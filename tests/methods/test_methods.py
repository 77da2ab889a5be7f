"""Methods: their declared options, the replay component, LwF as published
(against an independent PyTorch reference), and protocols on which each
method's distinctive part measurably matters."""
import inspect

import numpy as np
import pytest

from aidge_incremental.experiment import ExperimentConfig, build_method, run_experiment
from aidge_incremental.methods import METHODS
from aidge_incremental.methods.lwf import new_classes_cross_entropy
from aidge_incremental.options import ConfigError
from aidge_incremental.scenario import ClassIncrementalScenario


# -- declarations -------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_option_is_declared_cited_and_accepted(name, digits):
    cls = METHODS[name]
    parameters = inspect.signature(cls.__init__).parameters
    accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    for option in cls.options:
        assert option.source, f"{name}.{option.name}: the default cites no source"
        assert option.check(option.default) == option.default
        assert option.name in parameters or accepts_kwargs
    # the method is built with every declared option at its default
    config = ExperimentConfig(method=name, **{o.name: o.default for o in cls.options})
    method = build_method(config, digits.input_shape, ClassIncrementalScenario(digits, 2, 2))
    assert method.name == name


def test_an_option_of_another_method_is_refused():
    with pytest.raises(ConfigError, match="'temperature' does not apply to method 'finetune'"):
        ExperimentConfig(method="finetune", temperature=2.0)
    with pytest.raises(ConfigError, match="'memory' does not apply to method 'joint'"):
        ExperimentConfig(method="joint", memory=10)
    with pytest.raises(ConfigError, match="memory_policy must be one of total, per_class; got 'totl'"):
        ExperimentConfig(memory_policy="totl")
    # changing the method drops the old method's own options
    assert ExperimentConfig(method="icarl", memory=50).replace(method="joint").method == "joint"


# -- replay and joint: what a method trains on --------------------------------

def test_replay_adds_the_memory_to_the_training_data(digits):
    scenario = ClassIncrementalScenario(digits, 2, 2, seed=0)
    for name in ("finetune", "lwf", "icarl"):
        method = build_method(ExperimentConfig(method=name, epochs=1, memory=40), digits.input_shape, scenario)
        method.learn(scenario.step(0), digits)
        step = scenario.step(1)
        x, y = method.training_data(step)
        assert len(x) == len(step.x_train) + 40
        assert sorted(np.unique(y).tolist()) == [0, 1, 2, 3]
        assert sorted(np.unique(y[len(step.x_train):]).tolist()) == [0, 1]
    without = build_method(ExperimentConfig(method="finetune", epochs=1), digits.input_shape, scenario)
    without.learn(scenario.step(0), digits)
    assert len(without.training_data(scenario.step(1))[0]) == len(scenario.step(1).x_train)


def test_finetune_with_replay_forgets_less(digits):
    plain, replay = (run_experiment(ExperimentConfig(method="finetune", epochs=10, seed=s, **kw), digits)
                     for s, kw in ((0, {}), (0, {"memory": 100})))
    assert plain.main.acc_seen[-1] < 0.3
    assert replay.main.acc_seen[-1] > plain.main.acc_seen[-1] + 0.3


def test_joint_trains_on_every_class_seen_derived_from_the_scenario(digits):
    """A Joint built afresh (as after --resume) trains on steps 0..t, not on the new classes only."""
    scenario = ClassIncrementalScenario(digits, 2, 2, seed=0)
    method = build_method(ExperimentConfig(method="joint"), digits.input_shape, scenario)
    x, y = method.training_data(scenario.step(2))
    assert sorted(np.unique(y).tolist()) == [0, 1, 2, 3, 4, 5]
    assert len(x) == sum(len(scenario.step(t).x_train) for t in range(3))


def test_l2sp_pulls_toward_the_starting_weights(digits):
    scenario = ClassIncrementalScenario(digits, 2, 2, seed=0)
    distances = []
    for weight in (0.0, 5.0):
        method = build_method(ExperimentConfig(method="finetune", epochs=3, l2sp_weight=weight),
                              digits.input_shape, scenario)
        method.learn(scenario.step(0), digits)
        start = method.model.state_dict()["fc1_w"]
        method.learn(scenario.step(1), digits)
        distances.append(np.linalg.norm(method.model.state_dict()["fc1_w"] - start))
    assert distances[1] < 0.5 * distances[0]


# -- LwF as published -----------------------------------------------------------

def test_new_classes_cross_entropy_against_pytorch(rng):
    torch = pytest.importorskip("torch")
    logits = rng.normal(size=(7, 6)) * 3
    labels = np.array([3, 4, 5, 3, 1, 5, 0])  # two replayed old-class samples (1, 0)
    value, grad = new_classes_cross_entropy(logits, labels, n_old=3)
    t = torch.tensor(logits, requires_grad=True)
    new = torch.tensor(labels >= 3)
    loss = (torch.nn.functional.cross_entropy(t[new][:, 3:], torch.tensor(labels[labels >= 3] - 3),
                                              reduction="sum")
            + torch.nn.functional.cross_entropy(t[~new], torch.tensor(labels[labels < 3]), reduction="sum")) / 7
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-5, atol=1e-7)


def _first_batch_of_step_1(digits, method_name, **options):
    """A method that has learnt step 0 (4 classes), at the first batch of step 1 (3 new
    classes), with the student moved away from the teacher (60 % noise on its weights: at
    the start of a step they are equal, and every distillation gradient is 0). Returns the
    batch, the logits, their gradient from ``method.losses`` and the loss terms."""
    from aidge_incremental.training import Batch, Outputs
    scenario = ClassIncrementalScenario(digits, 4, 3, seed=0)
    method = build_method(ExperimentConfig(method=method_name, epochs=1, initial=4, increment=3, **options),
                          digits.input_shape)
    method.learn(scenario.step(0), digits)
    step = scenario.step(1)
    method.start_step(step, digits)
    noise = np.random.default_rng(5)
    params = method.model.state_dict()
    for name in params:
        params[name] = params[name] * (1 + 0.6 * noise.standard_normal(params[name].shape)).astype(np.float32)
    method.model.load_state_dict(params)
    inputs = digits.to_input(step.x_train[:16])
    batch = Batch(inputs, step.y_train[:16])
    method.before_forward(batch)
    method.model.scheduler.forward(data=[Outputs(method.model).tensor(inputs)])
    outputs = Outputs(method.model)
    value = method.losses(batch, outputs)
    return (batch, np.array(outputs.logits, np.float64), np.array(outputs.logits.grad, np.float64),
            np.asarray(batch.extra["teacher_logits"], np.float64), value)


def _pinned(ours, reference, wrong, atol):
    """``ours`` equals ``reference``, and each ``wrong`` variant (a part switched off or
    changed) is far from it: the comparison can see that part."""
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=atol)
    for what, variant in wrong.items():
        gap = np.abs(variant - reference).max()
        assert gap > max(20 * atol, 0.05 * np.abs(reference).max()), f"the test cannot see {what} ({gap:.2g})"


def test_lwf_batch_gradient_is_li_and_hoiem_objective(digits):
    """One batch through LwF.losses with a student that differs from its teacher: the
    gradient on the logits is that of CE(new outputs) + lambda · soft-target CE at T (no T²
    factor), by PyTorch — and the same reference with T = 1, lambda = 1, a T² factor or no
    distillation is far from it (each of T, lambda and the T² handling is pinned)."""
    torch = pytest.importorskip("torch")
    lam, T = 3.0, 2.0
    batch, logits, grad, teacher, value = _first_batch_of_step_1(digits, "lwf", distillation_weight=lam,
                                                                 temperature=T)

    def reference(lam, T, t2=1.0):
        s = torch.tensor(logits, requires_grad=True)
        l_new = torch.nn.functional.cross_entropy(s[:, 4:], torch.tensor(batch.labels - 4))
        soft = torch.softmax(torch.tensor(teacher) / T, dim=1)
        l_old = -(soft * torch.log_softmax(s[:, :4] / T, dim=1)).sum(dim=1).mean()
        (l_new + lam * t2 * l_old).backward()
        entropy = -(soft * torch.log(soft)).sum(dim=1).mean()
        return s.grad.numpy(), (l_new + lam * t2 * (l_old - entropy)).item()

    ref, ref_value = reference(lam, T)
    _pinned(grad, ref, {"T": reference(lam, 1.0)[0], "lambda": reference(1.0, T)[0],
                        "the T² factor": reference(lam, T, T * T)[0], "distillation": reference(0.0, T)[0]},
            atol=1e-6)
    # the value reported is lambda·KL: the objective less lambda·H(teacher), a constant
    assert sum(value.values()) == pytest.approx(ref_value, rel=1e-4)
    assert value["distillation"] > 0.01


def _old_class_accuracy(digits, name, seed, **options):
    """After 2 steps of 5 classes: accuracy on the old classes' test samples,
    (within) predicting among the old classes' outputs and (overall) among all."""
    scenario = ClassIncrementalScenario(digits, 5, 5, seed=seed)
    config = ExperimentConfig(method=name, seed=seed, initial=5, increment=5, epochs=10, **options)
    method = build_method(config, digits.input_shape, scenario)
    for t in range(2):
        method.learn(scenario.step(t), digits)
    step = scenario.step(1)
    old = step.y_test < 5
    logits = method.model.logits(digits.to_input(step.x_test[old]))
    return (float(np.mean(logits[:, :5].argmax(1) == step.y_test[old])),
            float(np.mean(logits.argmax(1) == step.y_test[old])))


@pytest.fixture(scope="module")
def old_class_accuracy(digits):
    return {name: np.array([_old_class_accuracy(digits, name, s) for s in (0, 1)]) for name in ("finetune", "lwf")}


def test_lwf_keeps_the_old_classes_finetune_forgets(old_class_accuracy):
    lwf, finetune = old_class_accuracy["lwf"].mean(0), old_class_accuracy["finetune"].mean(0)
    # among the old classes' outputs (what distillation preserves)
    assert lwf[0] >= 0.9 and finetune[0] <= 0.7 and lwf[0] - finetune[0] >= 0.25
    # among every output: finetune predicts only new classes; LwF's L_new on the new
    # outputs leaves the old ones competitive
    assert finetune[1] <= 0.05 and lwf[1] >= 0.5


# -- the teacher: frozen, in inference mode --------------------------------------------

def test_the_teacher_runs_in_inference_mode_on_a_batchnorm_model(rng):
    """ResNet-20 (BatchNorm), LwF: every batch's teacher logits are those of the previous
    model in inference mode, computed by PyTorch from its weights and running statistics,
    and the teacher's statistics never move. A teacher in training mode would normalise
    each batch with its own statistics (far from these, checked) and update its running ones."""
    torch = pytest.importorskip("torch")
    from aidge_incremental.datasets import from_arrays
    from aidge_incremental.methods.components import Teacher
    from aidge_incremental.models import HEAD
    from network_reference import torch_forward
    x = rng.integers(0, 256, size=(48, 3, 8, 8)).astype(np.uint8)
    y = np.repeat(np.arange(4), 12)
    x[np.arange(48), y % 3] //= 3  # a darker channel per class
    data = from_arrays(x, y, x[::4], y[::4], name="colours")
    scenario = ClassIncrementalScenario(data, 2, 2, seed=0)
    method = build_method(ExperimentConfig(method="lwf", model="resnet20", initial=2, increment=2, epochs=2,
                                           batch_size=8), data.input_shape)
    method.learn(scenario.step(0), data)
    frozen = method.model.state_dict()
    moved = [k for k in method.model.state_names if k.endswith("_batch_mean") and np.abs(frozen[k]).max() > 1e-3]
    assert moved, "the running statistics moved during step 0 (else inference and training modes agree less visibly)"
    part = next(p for p in method.parts if isinstance(p, Teacher))
    seen = []
    original = part.before_forward

    def recording(batch):
        original(batch)
        seen.append((batch.inputs.copy(), np.array(batch.extra["teacher_logits"])))

    part.before_forward = recording
    method.learn(scenario.step(1), data)
    params = {k: torch.tensor(np.asarray(v, np.float64)) for k, v in frozen.items()}
    teacher_model = part.model
    for inputs, logits in seen:
        reference = torch_forward(teacher_model, params, torch.tensor(inputs, dtype=torch.float64))[HEAD].numpy()
        np.testing.assert_allclose(logits, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())
        in_training = torch_forward(teacher_model, params, torch.tensor(inputs, dtype=torch.float64),
                                    training=True)[HEAD].numpy()
        assert np.abs(in_training - reference).max() > 0.05 * np.abs(reference).max()  # the test can tell
    assert len(seen) == 6  # 2 epochs of 3 batches
    after = teacher_model.state_dict()
    for name, value in frozen.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)


# -- iCaRL: the paper's BCE distillation ----------------------------------------------

def test_icarl_batch_gradient_is_ce_plus_the_papers_bce_distillation(digits):
    """iCaRL's objective on a batch with a student away from its teacher: CE over the
    classes seen + lambda · mean_b Σ_old BCE(sigmoid(s), target sigmoid(t)) (Rebuffi et
    al. 2017, Sec. 2.2), by PyTorch; KL distillation (PyCIL's) or none is far from it."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    lam = 0.8
    batch, logits, grad, teacher, value = _first_batch_of_step_1(digits, "icarl", distillation_weight=lam,
                                                                 memory=40)
    labels = torch.tensor(batch.labels)

    def reference(form, lam=lam):
        s = torch.tensor(logits, requires_grad=True)
        t = torch.tensor(teacher)
        if form == "bce":
            kd = F.binary_cross_entropy_with_logits(s[:, :4], torch.sigmoid(t), reduction="sum") / len(s)
        else:  # Hinton's KL at T = 1
            kd = F.kl_div(F.log_softmax(s[:, :4], dim=1), F.softmax(t, dim=1), reduction="batchmean")
        (F.cross_entropy(s, labels) + lam * kd).backward()
        return s.grad.numpy()

    _pinned(grad, reference("bce"), {"the BCE form (KL instead)": reference("kl"),
                                     "distillation": reference("bce", 0.0), "lambda": reference("bce", 1.0)},
            atol=1e-6)
    assert value["distillation"] > 0.01


# -- iCaRL: distillation and herding both matter -----------------------------------
# Measured (NME last-step accuracy, digits, 5 steps of 2, memory 10 = 1 exemplar per
# class at the end, lr 0.1, 30 epochs, seeds 0-5, OpenBLAS SkylakeX kernels, one thread):
# full 0.614 ± 0.107, distillation off 0.494 ± 0.089, random selection 0.442 ± 0.104.
# The ordering holds on the mean, not on every seed: seed 1 goes the other way for both
# parts (full 0.432, off 0.507, random 0.518) and seed 3 for distillation (full 0.543,
# off 0.563). Hence the tests compare means over seeds 0-2 (0.597 / 0.433 / 0.479), with
# margins about half the measured gaps. On the default protocol (memory 200, lr 0.05)
# neither part matters (issue 12).
ICARL_HARD = dict(method="icarl", memory=10, lr=0.1, epochs=30)


@pytest.fixture(scope="module")
def icarl_ablation(digits):
    variants = {"full": {}, "no distillation": {"distillation_weight": 0.0}, "random": {"selection": "random"}}
    return {name: np.array([run_experiment(ExperimentConfig(seed=s, **ICARL_HARD, **kw), digits)
                            .metrics()["nme"]["last_accuracy"] for s in (0, 1, 2)])
            for name, kw in variants.items()}


def test_icarl_without_distillation_is_worse(icarl_ablation):
    full, off = icarl_ablation["full"], icarl_ablation["no distillation"]
    assert full.mean() - off.mean() >= 0.08, (full, off)


def test_icarl_without_herding_is_worse(icarl_ablation):
    full, random = icarl_ablation["full"], icarl_ablation["random"]
    assert full.mean() - random.mean() >= 0.08, (full, random)
