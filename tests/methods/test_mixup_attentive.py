"""Mixup replay and attentive knowledge replay as methods: options, the
distinctive part switched off, checkpoint state."""
import numpy as np
import pytest

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
