"""A run evaluates each classifier once per step: ``evaluate`` gives what
``predict`` and ``scores`` give, from one pass of the model where it can."""
import numpy as np
import pytest

from aidge_incremental import ExperimentConfig, run_experiment


@pytest.mark.parametrize("method,options", [("icarl", {}), ("finetune", {}), ("derpp", {"memory": 50})])
def test_evaluate_equals_predict_and_scores(digits, method, options):
    trained = run_experiment(ExperimentConfig(method=method, epochs=1, initial=4, increment=3, **options),
                             digits).trained_method
    x = digits.to_input(digits.x_test[:64])
    for classifier in trained.classifiers:
        predicted, scores = trained.evaluate(x, classifier)
        np.testing.assert_array_equal(predicted, trained.predict(x, classifier))
        expected = trained.scores(x, classifier)
        np.testing.assert_array_equal(scores, expected)
        assert scores.shape == (len(x), trained.n_known)


def test_a_run_passes_the_model_once_per_classifier_and_step(digits, monkeypatch):
    """Before: predict, then scores, two passes of the model per classifier."""
    from aidge_incremental.models import IncrementalModel
    passes = []
    for name in ("logits", "features"):
        original = getattr(IncrementalModel, name)
        monkeypatch.setattr(IncrementalModel, name,
                            lambda self, x, *a, _f=original, _n=name, **k: passes.append((_n, len(x))) or _f(self, x, *a, **k))
    run_experiment(ExperimentConfig(method="finetune", epochs=1, initial=4, increment=3), digits)
    test_sizes = [n for name, n in passes if name == "logits"]
    assert len(test_sizes) == 3  # one pass over each step's test samples (3 steps)


@pytest.mark.parametrize("method", ["icarl", "mixup", "finetune"])
def test_evaluate_all_equals_each_classifiers_evaluate(digits, method):
    trained = run_experiment(ExperimentConfig(method=method, epochs=1, initial=4, increment=3), digits).trained_method
    x = digits.to_input(digits.x_test[:64])
    together = trained.evaluate_all(x)
    assert list(together) == list(trained.classifiers)
    for classifier in trained.classifiers:
        predicted, scores = trained.evaluate(x, classifier)
        np.testing.assert_array_equal(together[classifier][0], predicted)
        np.testing.assert_array_equal(together[classifier][1], scores)


def test_icarl_evaluates_both_classifiers_from_one_pass(digits, monkeypatch):
    """Before: one pass for the NME classifier's features, another for the head's logits."""
    from aidge_incremental.models import IncrementalModel
    passes = []
    original = IncrementalModel._run_layers
    monkeypatch.setattr(IncrementalModel, "_run_layers",
                        lambda self, x, layers, *a, **k: passes.append((tuple(layers), len(x)))
                        or original(self, x, layers, *a, **k))
    run_experiment(ExperimentConfig(method="icarl", epochs=1, initial=4, increment=3), digits)
    evaluated = {n for layers, n in passes if layers == ("features", "head")}
    assert len(evaluated) == 3  # one pass over each step's test samples
    assert not [(layers, n) for layers, n in passes if layers != ("features", "head") and n in evaluated]
