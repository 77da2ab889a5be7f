"""DER++ (Buzzega et al. 2020, as mammoth's models/derpp.py): one batch's loss
terms and every parameter gradient against a PyTorch reference of mammoth's
three passes; the reservoir receives the batch's raw samples with the forward's
logits; α = β = 0 is Finetune exactly; each term helps; bad options and
checkpoint states are refused."""
import numpy as np
import pytest

from aidge_incremental.experiment import ExperimentConfig, build_method, run_experiment
from aidge_incremental.memory import CorruptFileError
from aidge_incremental.methods.derpp import LOGITS
from aidge_incremental.options import ConfigError
from aidge_incremental.scenario import ClassIncrementalScenario
from aidge_incremental.training import Batch, Outputs, train
from mlp_reference import torch_mlp

HIDDEN = [16, 12]


def second_step(digits, head):
    """DER++ (buffer 60, α = 0.3, β = 0.7, minibatches of 9) one epoch into step 1 of
    2+2 classes; with the growing head its buffer holds logits of width 2 (step 0)
    and 4 (step 1), with head 'all' of width 10."""
    scenario = ClassIncrementalScenario(digits, 2, 2, seed=0)
    config = ExperimentConfig(method="derpp", epochs=1, hidden=HIDDEN, initial=2, increment=2, memory=60,
                              der_alpha=0.3, der_beta=0.7, replay_batch_size=9, batch_size=16, head=head)
    method = build_method(config, digits.input_shape, scenario)
    method.learn(scenario.step(0), digits)
    x, y = method.start_step(scenario.step(1), digits)  # then one epoch of step 1, through the loop
    train(method.model, x, y, method, method.config.for_step(1), method.rng, to_input=digits.to_input)
    return method, scenario


@pytest.fixture
def in_second_step(digits):
    return second_step(digits, "grow")


def test_the_buffer_holds_logits_of_both_widths(in_second_step):
    method, _ = in_second_step
    values, valid = method.buffer.extra(LOGITS)
    assert len(method.buffer) == 60 and values.shape == (60, 4)
    assert set(valid.tolist()) == {2, 4}
    assert not values[valid == 2][:, 2:].any()


@pytest.mark.parametrize("head", ["all", "grow"])
def test_one_batch_is_mammoths_loss_against_pytorch(digits, head):
    """mammoth's observe(): CE(f(x), y) + α·MSE(f(x'), z') + β·CE(f(x''), y''), three
    forward/backward passes accumulating into the gradients; with the growing head the
    MSE is over each stored row's valid columns. Ours: one concatenated pass (no
    BatchNorm here: the same)."""
    torch = pytest.importorskip("torch")
    method, scenario = second_step(digits, head)
    width = 10 if head == "all" else 4
    assert method.model.n_classes == width
    step = scenario.step(1)
    model = method.model
    params = model.state_dict()
    indices = np.arange(5, 21)
    raw = step.x_train[indices]
    batch = Batch(digits.to_input(raw), step.y_train[indices].astype(np.int64), indices=indices)

    # the minibatches mammoth's get_data would draw, from the same generator
    rng = np.random.default_rng()
    rng.bit_generator.state = method.rng.bit_generator.state
    draw_alpha = rng.choice(60, size=9, replace=False)
    draw_beta = rng.choice(60, size=9, replace=False)
    samples, labels = method.buffer.samples().copy(), method.buffer.labels().copy()
    stored, valid = method.buffer.extra(LOGITS)

    made = method.make_batch(batch)
    assert len(made) == 16 + 18
    model.set_training(True)
    model.scheduler.forward(data=[Outputs(model).tensor(made.inputs)])
    terms = method.losses(made, Outputs(model))
    forward_logits = np.array(Outputs(model).logits)[:16]
    model.scheduler.backward()
    nodes = model.parameter_nodes()
    method.before_update(nodes)
    model.set_training(False)

    p, logits = torch_mlp(params)
    F = torch.nn.functional
    ce = F.cross_entropy(logits(batch.inputs), torch.tensor(batch.labels))
    out_a = logits(digits.to_input(samples[draw_alpha]))
    mask = torch.tensor(np.arange(width)[None, :] < valid[draw_alpha][:, None])
    mse = ((out_a - torch.tensor(stored[draw_alpha], dtype=torch.float64)) ** 2)[mask].mean()
    ce_buffer = F.cross_entropy(logits(digits.to_input(samples[draw_beta])), torch.tensor(labels[draw_beta]))
    for loss in (ce, 0.3 * mse, 0.7 * ce_buffer):  # mammoth: one backward per term
        loss.backward()
    assert terms["classification"] == pytest.approx(ce.item(), rel=1e-5)
    assert terms["logit_replay"] == pytest.approx(0.3 * mse.item(), rel=1e-4)
    assert terms["label_replay"] == pytest.approx(0.7 * ce_buffer.item(), rel=1e-5)
    assert 0.3 * mse.item() > 0.01 and 0.7 * ce_buffer.item() > 0.01  # both terms weigh in
    for node in nodes:
        grad = np.array(node.get_operator().get_output(0).grad)
        expected = p[node.name()].grad.numpy()
        np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max(),
                                   err_msg=node.name())

    # after the update, the batch's own raw samples enter the reservoir with this forward's logits
    seen = method.buffer.seen
    method.after_update()
    assert method.buffer.seen == seen + 16
    np.testing.assert_allclose(forward_logits, logits(batch.inputs).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_the_reservoir_receives_raw_samples_and_their_logits(digits):
    scenario = ClassIncrementalScenario(digits, 2, 2, seed=0)
    config = ExperimentConfig(method="derpp", epochs=1, hidden=HIDDEN, memory=1000, batch_size=1000, lr=1e-9)
    method = build_method(config, digits.input_shape, scenario)
    step = scenario.step(0)
    start = method.model.clone()
    start.grow(10)  # head 'all': every class of the scenario from the first step
    method.learn(step, digits)  # one batch of every sample, an update too small to matter
    order = np.random.default_rng(0).permutation(len(step.x_train))  # the loop's draw with the method's seed
    np.testing.assert_array_equal(method.buffer.samples(), step.x_train[order])
    assert method.buffer.samples().dtype == step.x_train.dtype  # raw, not converted
    np.testing.assert_array_equal(method.buffer.labels(), step.y_train[order])
    values, valid = method.buffer.extra(LOGITS)
    np.testing.assert_allclose(values, start.logits(digits.to_input(step.x_train[order])), rtol=1e-5, atol=1e-5)
    assert valid.tolist() == [10] * len(order)


def test_alpha_and_beta_zero_is_finetune_exactly(digits):
    runs = {name: run_experiment(ExperimentConfig(method=name, epochs=3, seed=4, hidden=[32], **kw), digits)
            for name, kw in (("finetune", {}), ("derpp", {"der_alpha": 0.0, "der_beta": 0.0, "head": "grow"}))}
    assert runs["derpp"].metrics() == runs["finetune"].metrics()
    a, b = (runs[n].trained_method.model.state_dict() for n in ("finetune", "derpp"))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert len(runs["derpp"].trained_method.buffer) == 200, "the reservoir was filled all the same"


# -- each term helps ---------------------------------------------------------------------------
# Measured first (benchmarks/bench_ewc_derpp.py, digits, 5 steps of 2, 10 epochs, seeds 0-2), last
# accuracy: DER++ 91.3 %, α = 0 (ER) 80.3 %, β = 0 (DER) 51.8 %, Finetune 19.3 %.
@pytest.fixture(scope="module")
def last_accuracy(digits):
    variants = {"full": {}, "alpha 0": {"der_alpha": 0.0}, "beta 0": {"der_beta": 0.0}}
    return {name: np.array([run_experiment(ExperimentConfig(method="derpp", epochs=10, seed=s, **kw), digits)
                            .metrics()["head"]["last_accuracy"] for s in (0, 1, 2)])
            for name, kw in variants.items()}


def test_each_term_helps(last_accuracy):
    full, er, der = last_accuracy["full"], last_accuracy["alpha 0"], last_accuracy["beta 0"]
    assert full.mean() >= er.mean() + 0.05, (full, er)     # the stored logits (α)
    assert full.mean() >= der.mean() + 0.15, (full, der)   # the stored labels (β)
    assert min(er.mean(), der.mean()) >= 0.4, (er, der)    # each alone far above Finetune's 0.19


# -- options and checkpoints ----------------------------------------------------------------

@pytest.mark.parametrize("option, value", [("der_alpha", -0.1), ("der_beta", float("nan")),
                                           ("replay_batch_size", 0), ("memory", 0), ("head", "grows")])
def test_bad_options_are_refused_naming_them(option, value):
    with pytest.raises(ConfigError, match=option):
        ExperimentConfig(method="derpp", **{option: value})


def test_buffer_state_round_trips_and_bad_states_are_refused(in_second_step, digits):
    method, scenario = in_second_step
    method.finish_step(scenario.step(1), digits)  # checkpoints are written after a step
    state = method.state_dict()
    config = ExperimentConfig(method="derpp", hidden=HIDDEN, memory=60, head="grow")
    twin = build_method(config, digits.input_shape, scenario)
    twin.model.load_state_dict(method.model.state_dict())  # as a resumed run: the model first
    twin.load_state_dict(state)
    assert twin.buffer.to_bytes() == method.buffer.to_bytes()
    other = build_method(config.replace(memory=61), digits.input_shape, scenario)
    other.model.load_state_dict(method.model.state_dict())
    with pytest.raises(ValueError, match="holds 60 samples, the configuration's memory is 61"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="logits of width 4, the model has 2 outputs"):
        small = build_method(config, digits.input_shape, scenario)
        small.model.grow(2)
        small.load_state_dict(state)
    blob = bytearray(state["derpp_buffer"])
    blob[-5] ^= 0xFF
    with pytest.raises(CorruptFileError, match="checkpoint"):
        twin.load_state_dict({**state, "derpp_buffer": bytes(blob)})
    with pytest.raises(ValueError, match="labels outside the 3 classes learnt"):
        twin.load_state_dict({**state, "n_known": 3})
    with pytest.raises(ValueError, match="no DER\\+\\+ buffer"):
        twin.load_state_dict({k: v for k, v in state.items() if k != "derpp_buffer"})
    assert twin.buffer.to_bytes() == method.buffer.to_bytes()  # unchanged by the refusals
