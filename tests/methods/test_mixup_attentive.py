"""Mixup replay and attentive knowledge replay as methods: options, the
distinctive part switched off, what the trained scorer gives on a run, checkpoint
state restored exactly."""
import numpy as np
import pytest

from aidge_incremental.checkpoint import checkpoint_path, load_checkpoint
from aidge_incremental.cli import main
from aidge_incremental.experiment import ExperimentConfig, run_experiment
from aidge_incremental.methods import METHODS
from aidge_incremental.methods.attentive import AttentiveReplay
from aidge_incremental.models import IncrementalModel
from aidge_incremental.options import ConfigError

SMALL = dict(epochs=2, hidden=[32], memory=40)


def _accuracies(**kwargs):
    result = run_experiment(ExperimentConfig(**{**SMALL, **kwargs}))
    return {clf: list(h.accuracies) if hasattr(h, "accuracies") else h for clf, h in result.metrics().items()}


def test_registered_with_cited_defaults():
    for name in ("mixup", "attentive"):
        options = {o.name: o for o in METHODS[name].declared_options()}
        assert "memory" in options and options["memory"].default == 200
        for option in options.values():
            assert option.source, f"{name}.{option.name} has no source"
    assert {o.name: o.default for o in METHODS["mixup"].declared_options()}["mixup_alpha"] == 1.0


def test_mixup_with_alpha_zero_is_icarl_and_blending_changes_the_result():
    icarl = _accuracies(method="icarl")
    assert _accuracies(method="mixup", mixup_alpha=0.0) == icarl
    assert _accuracies(method="mixup") != icarl


def test_attentive_warm_up_forever_changes_the_result():
    blended = _accuracies(method="attentive")
    never = _accuracies(method="attentive", blend_warmup=1000)
    assert blended != never


def test_options_are_validated_naming_the_problem(capsys):
    with pytest.raises(ConfigError, match="mixup_alpha"):
        ExperimentConfig(method="icarl", mixup_alpha=1.0)
    with pytest.raises(ConfigError, match="feature_change"):
        ExperimentConfig(method="attentive", scorer_objective="feature_chnage")
    with pytest.raises(ConfigError, match="mixup_alpha"):
        ExperimentConfig(method="mixup", mixup_alpha=-1.0)
    assert main(["run", "--method", "lwf", "--scorer-lr", "0.1", "--no-progress"]) == 2
    assert "scorer_lr" in capsys.readouterr().err.replace("-", "_")


def test_attentive_refuses_a_checkpoint_without_the_scorer_and_stays_unchanged():
    model = IncrementalModel("mlp", (1, 8, 8), hidden=(8,), n_classes=2)
    method = AttentiveReplay(model, memory=10)
    state = method.state_dict()
    before = method.scorer.state_dict()
    broken = {k: v for k, v in state.items() if k != "scorer_momentum.fc1_w"}
    broken["n_known"] = 7
    with pytest.raises(ValueError, match="scorer"):
        method.load_state_dict(broken)
    assert method.n_known == 0
    bad = dict(state, **{"scorer_momentum.fc1_w": np.full((3, 3), np.nan, np.float32)})
    with pytest.raises(ValueError, match="scorer momentum"):
        method.load_state_dict(bad)
    after = method.scorer.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def _spearman(a, b):
    ranks = [np.argsort(np.argsort(v)) for v in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


@pytest.fixture(scope="module")
def attentive_runs(digits):
    """Attentive replay on split digits, its scorer trained and untrained (frozen)."""
    common = dict(method="attentive", epochs=10, hidden=[32], memory=40)
    return {name: run_experiment(ExperimentConfig(**common, **kw), digits)
            for name, kw in (("trained", {}), ("untrained", {"scorer_objective": "frozen"}))}


def test_the_trained_scorer_follows_the_drift_on_held_out_images(attentive_runs, digits):
    """On the test images, the trained scorer ranks images by their feature drift (final
    student vs the last teacher), far better than the untrained one. Both blend over most of
    [0, 1] (the first target confined the trained weights to 0.4-0.6)."""
    rho = {}
    for name, result in attentive_runs.items():
        method = result.trained_method
        blending = method.parts[-1]
        x = digits.to_input(digits.x_test)
        drift, inputs = blending.drift_and_inputs(x)
        rho[name] = _spearman(method.scorer.scores(inputs), drift)
        quantiles = np.array(blending.blend_weight_quantiles)
        assert quantiles.shape == (4, 5)  # steps 1-4 blend
        assert np.all(quantiles[:, 4] - quantiles[:, 0] > 0.5), (name, quantiles)
    # measured: 0.78 trained, 0.48 untrained (a random scorer of the teacher's features
    # correlates with drift by chance: drift grows with the features' norm)
    assert rho["trained"] > 0.65 and rho["trained"] - rho["untrained"] > 0.2, rho


def test_attentive_resumes_with_the_scorer_state_restored(tmp_path, digits):
    """Its weights, momentum, input statistics and recorded quantiles after --resume equal the
    uninterrupted run's, at the checkpoint and at the end (pixels input: 𝕊 carries over the steps)."""
    for scorer_input in ("pixels", "teacher_features"):
        options = dict(method="attentive", epochs=2, hidden=[32], memory=20, scorer_input=scorer_input)
        full = run_experiment(ExperimentConfig(**options, output_dir=str(tmp_path / scorer_input)), digits)
        saved = load_checkpoint(checkpoint_path(tmp_path / scorer_input, 2)).method_state
        resumed = run_experiment({"output_dir": str(tmp_path / f"{scorer_input}-resumed")}, digits,
                                 resume=checkpoint_path(tmp_path / scorer_input, 2))
        end_full, end_resumed = full.trained_method.parts[-1].state_dict(), resumed.trained_method.parts[-1].state_dict()
        assert set(end_full) == set(end_resumed)
        for key, value in end_full.items():
            assert np.array_equal(np.asarray(value), np.asarray(end_resumed[key])), key
        assert any(np.abs(np.asarray(saved[k])).max() > 0 for k in saved if k.startswith("scorer_momentum."))
        assert resumed.to_dict()["classifiers"] == full.to_dict()["classifiers"]
