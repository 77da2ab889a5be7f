"""The class-incremental engine: protocol figures on digits, head growth, the
frozen teacher, determinism, metrics and outputs."""
import json

import aidge_core

import numpy as np
import pytest

from aidge_incremental.evaluation import (RunResult, average_forgetting, average_incremental_accuracy,
                                          backward_transfer)
from aidge_incremental.experiment import ExperimentConfig, build_method, run_experiment
from aidge_incremental.models import IncrementalModel
from aidge_incremental.scenario import ClassIncrementalScenario

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def protocol(digits):
    """Digits, 5 steps of 2 classes, default MLP, 3 seeds: the issue's protocol."""
    return {m: [run_experiment(ExperimentConfig(method=m, seed=s), digits) for s in SEEDS]
            for m in ("finetune", "joint", "icarl")}


def mean_metric(results, classifier, name):
    return float(np.mean([r.metrics()[classifier][name] for r in results]))


def test_finetune_forgets(protocol):
    assert mean_metric(protocol["finetune"], "head", "last_accuracy") <= 0.25


def test_joint_is_the_upper_bound(protocol):
    assert mean_metric(protocol["joint"], "head", "last_accuracy") >= 0.95


def test_icarl_with_200_exemplars(protocol):
    assert mean_metric(protocol["icarl"], "nme", "last_accuracy") >= 0.90
    assert mean_metric(protocol["icarl"], "nme", "average_incremental_accuracy") >= 0.93
    # its trained head is reported separately
    assert set(protocol["icarl"][0].classifiers) == {"nme", "head"}


def test_runs_are_deterministic(digits):
    config = ExperimentConfig(method="icarl", epochs=3, seed=5)
    a, b = run_experiment(config, digits), run_experiment(config, digits)
    assert a.to_dict()["classifiers"] == b.to_dict()["classifiers"]


def test_head_growth_keeps_old_outputs(rng):
    for architecture, shape in (("mlp", (1, 8, 8)), ("lenet", (1, 12, 12))):
        model = IncrementalModel(architecture, shape, hidden=(16,), n_classes=3, seed=1)
        x = rng.random((10,) + shape).astype(np.float32)
        before = model.logits(x)
        model.grow(4)
        after = model.logits(x)
        assert after.shape == (10, 7)
        np.testing.assert_array_equal(after[:, :3], before)


def test_teacher_never_moves_during_a_step(digits):
    for name in ("lwf", "icarl"):
        config = ExperimentConfig(method=name, epochs=3)
        method = build_method(config, digits.input_shape)
        scenario = ClassIncrementalScenario(digits, 2, 2, seed=0)
        method.learn(scenario.step(0), digits)
        previous = method.model.state_dict()
        seen = {}
        original_before_step = method.before_step

        def before_step(step, dataset):  # after the components': the teacher is made
            seen["start"] = method.teacher.state_dict()
            original_before_step(step, dataset)
        method.before_step = before_step
        method.learn(scenario.step(1), digits)
        end = method.teacher.state_dict()
        trained = method.model.state_dict()
        for key in previous:
            np.testing.assert_array_equal(seen["start"][key], previous[key])
            np.testing.assert_array_equal(end[key], previous[key])
        assert not np.array_equal(trained["fc1_w"], previous["fc1_w"]), "the student did train"


def test_metrics_on_a_known_matrix():
    A = np.array([[0.9, np.nan, np.nan], [0.6, 0.8, np.nan], [0.5, 0.7, 0.9]])
    assert average_forgetting(A) == pytest.approx(((0.9 - 0.5) + (0.8 - 0.7)) / 2)
    assert backward_transfer(A) == pytest.approx(((0.5 - 0.9) + (0.7 - 0.8)) / 2)
    assert average_incremental_accuracy([0.9, 0.7, 0.7]) == pytest.approx(0.7666666)
    assert average_forgetting(A[:1, :1]) == 0.0


def test_outputs_are_written_and_read_back(tmp_path, digits):
    config = ExperimentConfig(method="lwf", epochs=2, output_dir=str(tmp_path))
    result = run_experiment(config, digits)
    data = json.loads((tmp_path / "results.json").read_text())
    assert RunResult.from_dict(data).to_dict() == result.to_dict()
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert rows[0].startswith("method,classifier,step") and len(rows) == 1 + 5
    assert (tmp_path / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert result.classes_seen == [2, 4, 6, 8, 10]
    # the CSV holds the same numbers as the JSON
    for row, t in zip(rows[1:], range(5)):
        method, classifier, step, seen, acc_seen, acc_old, acc_new = row.split(",")[:7]
        assert (method, classifier, int(step), int(seen)) == ("lwf", "head", t, 2 * t + 2)
        assert float(acc_seen) == result.main.acc_seen[t] and float(acc_new) == result.main.acc_new[t]
    # the accuracy on all seen classes is the sample-weighted mean of the groups, with
    # the group sizes counted here from the test labels and the stored class order
    order = np.asarray(result.class_order)
    sizes = [int(np.isin(digits.y_test, order[2 * j: 2 * j + 2]).sum()) for j in range(5)]
    assert len(set(sizes)) > 1, "groups of equal size could not tell a weighted mean"
    unweighted_differs = False
    for t, row in enumerate(result.main.matrix):
        assert len(row) == t + 1
        weighted = np.dot(sizes[: t + 1], row) / sum(sizes[: t + 1])
        assert result.main.acc_seen[t] == pytest.approx(weighted, abs=1e-12)
        unweighted_differs |= abs(np.mean(row) - weighted) > 1e-6
        if t > 0:  # accuracy on the old groups: their weighted mean too
            old = np.dot(sizes[:t], row[:t]) / sum(sizes[:t])
            assert result.main.acc_old[t] == pytest.approx(old, abs=1e-12)
    assert unweighted_differs, "the check must be able to tell weighted from unweighted means"


def test_bad_configuration_is_refused(digits):
    with pytest.raises(ValueError, match="method must be one of attentive, derpp, ewc, finetune, icarl, joint, lwf, lwm, "
                                         "mixup; got 'gem'"):
        ExperimentConfig(method="gem")
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        ExperimentConfig(epochs=0)
    with pytest.raises(ValueError, match="smaller than the number of classes"):
        run_experiment(ExperimentConfig(method="icarl", memory=5, epochs=1), digits)
    with pytest.raises(ValueError, match="unknown option 'budget'"):
        ExperimentConfig.from_dict({"method": "icarl", "budget": 3})
    with pytest.raises(AttributeError, match="is immutable"):
        ExperimentConfig().epochs = 3


def test_a_resumed_joint_trains_on_every_class_seen(tmp_path, digits):
    """Issue 11: a resumed Joint run trained on the new classes only (96.1 % vs 56.0 %)."""
    config = ExperimentConfig(method="joint", epochs=5, hidden=[32], output_dir=str(tmp_path / "a"))
    full = run_experiment(config, digits)
    from aidge_incremental.checkpoint import checkpoint_path
    resumed = run_experiment({"output_dir": str(tmp_path / "b")}, digits, resume=checkpoint_path(tmp_path / "a", 2))
    assert resumed.to_dict()["classifiers"] == full.to_dict()["classifiers"]
    assert full.main.acc_seen[-1] > 0.85


def test_a_graph_built_after_training_has_the_trained_weights(rng):
    model = IncrementalModel("mlp", (1, 8, 8), hidden=(16,), n_classes=2, seed=0)
    x = rng.random((6, 1, 8, 8)).astype(np.float32)
    node = model.parameter_nodes()[0]  # train in place: change a weight in the live graph
    tensor = node.get_operator().get_output(0)
    tensor.copy_from(aidge_core.Tensor(np.array(tensor, np.float32) + 0.5))
    live = model.logits(x)
    rebuilt = model.build_graph()
    scheduler = aidge_core.SequentialScheduler(rebuilt)
    scheduler.forward(data=[aidge_core.Tensor(x)])
    np.testing.assert_array_equal(np.asarray(rebuilt.get_node("head").get_operator().get_output(0)), live)
