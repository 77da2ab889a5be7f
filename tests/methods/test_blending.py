"""Blending replay: the blend against a plain reference, reproducible pairs and
weights, and the scorer's gradient by central finite differences."""
import numpy as np
import pytest

from aidge_incremental.methods.attentive import AttentiveReplay, Scorer, drift_target
from aidge_incremental.methods.components import Blending, Teacher, blend
from aidge_incremental.methods.mixup import MixupICaRL
from aidge_incremental.models import IncrementalModel
from aidge_incremental.training import Batch


def test_blend_matches_a_plain_loop_in_float64():
    rng = np.random.default_rng(3)
    x_i, x_j = rng.random((4, 1, 3, 2), np.float32), rng.random((4, 1, 3, 2), np.float32)
    t_i, t_j = np.eye(5, dtype=np.float32)[[0, 1, 2, 3]], np.eye(5, dtype=np.float32)[[4, 4, 0, 1]]
    w = np.array([0.0, 0.25, 0.7, 1.0], np.float32)
    x, t = blend(x_i, x_j, t_i, t_j, w)
    for p in range(4):
        for idx in np.ndindex(x_i.shape[1:]):
            ref = float(w[p]) * float(x_i[p][idx]) + (1 - float(w[p])) * float(x_j[p][idx])
            assert abs(x[p][idx] - ref) < 1e-6
        for c in range(5):
            assert abs(t[p, c] - (float(w[p]) * t_i[p, c] + (1 - float(w[p])) * t_j[p, c])) < 1e-7
    assert np.allclose(t.sum(1), 1)


@pytest.mark.parametrize("bad", [np.array([0.5, 0.5]), np.array([0.1, 0.2, 1.5, 0.3]),
                                 np.array([0.1, np.nan, 0.2, 0.3])])
def test_blend_refuses_bad_weights(bad):
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match="blend"):
        blend(x, x, x, x, bad)


def _method(cls, seed, **kwargs):
    """A method in the middle of step 2 (4 classes seen, 2 known), with 6 exemplars."""
    model = IncrementalModel("mlp", (1, 2, 3), hidden=(5,), n_classes=4, seed=1)
    method = cls(model, seed=seed, memory=6, **kwargs)
    method.n_known, method.n_seen = 2, 4
    next(p for p in method.parts if isinstance(p, Teacher)).model = model.clone()
    data = np.random.default_rng(0)
    blending = next(p for p in method.parts if isinstance(p, Blending))
    blending._exemplars = (data.random((6, 1, 2, 3)).astype(np.float32), np.array([0, 1, 0, 1, 0, 1]))
    blending._n_new = 10
    return method, blending


def _batch(epoch=1):
    data = np.random.default_rng(1)
    # rows 0..9 of the training data are new samples (classes 2, 3), 10.. exemplars
    indices = np.array([3, 11, 7, 0, 12, 9])
    labels = np.array([2, 0, 3, 2, 1, 3])
    return Batch(data.random((6, 1, 2, 3)).astype(np.float32), labels, indices=indices, epoch=epoch)


def test_mixup_batch_against_a_plain_reference():
    method, blending = _method(MixupICaRL, seed=5)
    batch = _batch()
    out = method.make_batch(_batch())
    partners, w = out.extra["partners"], out.extra["blend_weights"]
    new = [0, 2, 3, 5]
    assert len(partners) == len(w) == 4 and np.all((w > 0) & (w < 1))
    ex_x, ex_y = blending._exemplars
    for k, row in enumerate(new):
        lam = float(w[k])
        ref = lam * batch.inputs[row].astype(np.float64) + (1 - lam) * ex_x[partners[k]]
        assert np.allclose(out.inputs[row], ref, atol=1e-6)
        target = np.zeros(4)
        target[batch.labels[row]] += lam
        target[ex_y[partners[k]]] += 1 - lam
        assert np.allclose(out.targets[row], target, atol=1e-6)
        assert out.labels[row] == -1 and out.indices[row] == -1
    for row in (1, 4):  # exemplars in the batch are untouched, one-hot targets
        assert np.array_equal(out.inputs[row], batch.inputs[row])
        assert np.array_equal(out.targets[row], np.eye(4)[batch.labels[row]])
    out.validate((1, 2, 3), 4)


def test_same_seed_same_pairs_and_weights():
    for cls, options in ((MixupICaRL, {}), (AttentiveReplay, {"scorer_input": "pixels"})):
        a, b, c = (_method(cls, seed=s, **options)[0].make_batch(_batch()) for s in (7, 7, 8))
        assert np.array_equal(a.extra["partners"], b.extra["partners"])
        assert np.array_equal(a.extra["blend_weights"], b.extra["blend_weights"])
        assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.targets, b.targets)
        assert not np.array_equal(a.inputs, c.inputs)


def test_mixup_beta_weights_follow_the_seeded_generator():
    method, _ = _method(MixupICaRL, seed=9, mixup_alpha=0.4)
    out = method.make_batch(_batch())
    rng = np.random.default_rng(9)
    partners = rng.integers(0, 6, size=4)
    lam = rng.beta(0.4, 0.4, size=4).astype(np.float32)
    assert np.array_equal(out.extra["partners"], partners)
    assert np.array_equal(out.extra["blend_weights"], lam)


def _mlp_reference(params, x):
    """The scorer in plain float64 NumPy: flatten, FC, ReLU, FC."""
    h = np.maximum(x.reshape(len(x), -1) @ params["fc1_w"].T + params["fc1_b"], 0)
    return (h @ params["head_w"].T + params["head_b"])[:, 0]


def _pair_loss(params, x_i, x_j, t_i):
    s_i, s_j = _mlp_reference(params, x_i), _mlp_reference(params, x_j)
    a_i = 1 / (1 + np.exp(-(s_i - s_j)))
    return np.mean(-(t_i * np.log(a_i) + (1 - t_i) * np.log(1 - a_i)))


def test_attentive_weights_are_the_softmax_of_the_scores_of_the_pair():
    method, blending = _method(AttentiveReplay, seed=4, scorer_input="pixels")
    params = {k: v.astype(np.float64) for k, v in method.scorer.net.state_dict().items()}
    batch = _batch()
    out = method.make_batch(_batch())
    ex_x = blending._exemplars[0]
    new = [0, 2, 3, 5]
    s_i = _mlp_reference(params, batch.inputs[new].astype(np.float64))
    s_j = _mlp_reference(params, ex_x[out.extra["partners"]].astype(np.float64))
    softmax = np.exp(s_i) / (np.exp(s_i) + np.exp(s_j))
    assert np.allclose(out.extra["blend_weights"], softmax, atol=1e-5)
    # and the scorer took one step: its weights moved
    assert any(not np.allclose(v, params[k]) for k, v in method.scorer.net.state_dict().items())


def test_scorer_gradient_through_the_pair_normalisation_by_central_differences():
    rng = np.random.default_rng(0)
    scorer = Scorer((1, 2, 2), hidden=3, seed=2)
    x_i, x_j = (rng.standard_normal((3, 1, 2, 2)).astype(np.float32) for _ in range(2))
    t_i = np.array([0.2, 0.9, 0.5])
    loss, a_i, grads = scorer.pair_loss_and_gradient(x_i, x_j, t_i)
    params = {k: v.astype(np.float64) for k, v in scorer.net.state_dict().items()}
    x64_i, x64_j = x_i.astype(np.float64), x_j.astype(np.float64)
    assert abs(loss - _pair_loss(params, x64_i, x64_j, t_i)) < 1e-5
    h = 1e-6
    for name, value in params.items():
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            plus, minus = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in params.items()}
            plus[name][idx] += h
            minus[name][idx] -= h
            numeric[idx] = (_pair_loss(plus, x64_i, x64_j, t_i) - _pair_loss(minus, x64_i, x64_j, t_i)) / (2 * h)
        assert np.allclose(grads[name], numeric, atol=1e-5, rtol=1e-3), name
        if name == "head_b":  # a shared bias cancels in s_i - s_j: no gradient, as in the reference
            assert np.abs(grads[name]).max() < 1e-6
        else:
            assert np.abs(numeric).max() > 1e-4  # the check is not vacuous


def test_scorer_sgd_step_is_sgd_with_momentum():
    rng = np.random.default_rng(0)
    scorer = Scorer((1, 2, 2), hidden=3, seed=2)
    start = scorer.net.state_dict()
    g1 = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in start.items()}
    g2 = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in start.items()}
    scorer.sgd_step(g1, 0.1)
    scorer.sgd_step(g2, 0.1)
    end = scorer.net.state_dict()
    for k in start:  # buf1 = g1; buf2 = 0.9 buf1 + g2
        assert np.allclose(end[k], start[k] - 0.1 * g1[k] - 0.1 * (0.9 * g1[k] + g2[k]), atol=1e-6)


# -- what the scorer learns ----------------------------------------------------------

def test_the_target_rises_with_the_new_samples_drift_and_spreads():
    """t_i = σ(κ·z/sd(z)), z = log d_i − log d_j: up with d_i, down with d_j, 1 − t when the
    pair is swapped, and spread over [0, 1] where d_i/(d_i + d_j) (κ = 0) stays near 0.5."""
    rng = np.random.default_rng(0)
    d_i, d_j = np.exp(rng.normal(0, 0.2, 200)), np.exp(rng.normal(0, 0.2, 200))  # as on digits (module docstring)
    t = drift_target(d_i, d_j, 2.0)
    for k in (0, 17, 150):
        up = d_i.copy()
        up[k] *= 1.5
        assert drift_target(up, d_j, 2.0)[k] > t[k]
        up = d_j.copy()
        up[k] *= 1.5
        assert drift_target(d_i, up, 2.0)[k] < t[k]
    np.testing.assert_allclose(drift_target(d_j, d_i, 2.0), 1 - t, atol=1e-12)
    assert np.all(np.diff(t[np.argsort(np.log(d_i) - np.log(d_j))]) >= 0)  # monotone in the log ratio
    np.testing.assert_allclose(drift_target(d_i, d_j, 0.0), d_i / (d_i + d_j))
    q05, q95 = np.quantile(t, [0.05, 0.95])
    assert q95 - q05 > 0.7
    q05, q95 = np.quantile(drift_target(d_i, d_j, 0.0), [0.05, 0.95])
    assert q95 - q05 < 0.3
    np.testing.assert_array_equal(drift_target(np.ones(4), np.ones(4), 2.0), 0.5)  # no spread: no preference


def _known_drift(x):
    """A drift that is a known function of the image: its brightness."""
    return np.exp(3.0 * x.reshape(len(x), -1).mean(axis=1))


def _images(rng, n):
    return (rng.random((n, 1, 4, 4)) * rng.random((n, 1, 1, 1))).astype(np.float32)


def _trained_on_known_drift(objective="feature_change", updates=300):
    """𝕊 trained by the component on pairs whose drift is the images' brightness."""
    model = IncrementalModel("mlp", (1, 4, 4), hidden=(5,), n_classes=4, seed=1)
    method = AttentiveReplay(model, seed=3, memory=6, scorer_input="pixels", scorer_objective=objective,
                             scorer_lr=0.05)
    blending = next(p for p in method.parts if isinstance(p, Blending))
    blending.drift_and_inputs = lambda x: (_known_drift(x), x)
    rng = np.random.default_rng(5)
    for _ in range(updates):
        blending._attend(_images(rng, 16), _images(rng, 16))
    return method


def spearman(a, b):
    ranks = [np.argsort(np.argsort(v)) for v in (a, b)]  # no ties in continuous values
    return float(np.corrcoef(*ranks)[0, 1])


def _held_out_rank_correlation(method):
    x = _images(np.random.default_rng(99), 200)
    scores = method.scorer.scores(x)
    x_i, x_j = x[:100], x[100:]
    a = method.scorer.pair_weights(x_i, x_j)
    agree = np.mean((a > 0.5) == (_known_drift(x_i) > _known_drift(x_j)))
    return spearman(scores, _known_drift(x)), agree


def test_the_trained_scorer_ranks_images_and_pairs_by_their_drift():
    """The scorer's objective switched off (frozen) or its target reversed fails this:
    trained, 𝕊 ranks held-out images by drift and gives the larger share of each pair to
    its member that drifted more."""
    rho, agree = _held_out_rank_correlation(_trained_on_known_drift())
    assert rho > 0.8 and agree > 0.85, (rho, agree)
    rho, agree = _held_out_rank_correlation(_trained_on_known_drift("frozen"))
    assert abs(rho) < 0.6 and agree < 0.8, (rho, agree)


def test_blend_sources_drift_and_permuted():
    """'drift' blends with the target; 'permuted' with the scorer's weights shuffled across
    the pairs (same values, no link to the drift), drawn from a generator of its own so
    that the pairs are those of the 'scorer' run."""
    out = {}
    for source in ("scorer", "permuted", "drift"):
        method, blending = _method(AttentiveReplay, seed=3, scorer_input="pixels", scorer_objective="frozen",
                                   blend_source=source)
        blending.drift_and_inputs = lambda x: (np.exp(x.reshape(len(x), -1).mean(1)), x)
        out[source] = method.make_batch(_batch())
    weights = {k: v.extra["blend_weights"] for k, v in out.items()}
    np.testing.assert_array_equal(out["permuted"].extra["partners"], out["scorer"].extra["partners"])
    np.testing.assert_allclose(np.sort(weights["permuted"]), np.sort(weights["scorer"]), rtol=1e-6)
    assert not np.allclose(weights["permuted"], weights["scorer"])
    x_i = _batch().inputs[[0, 2, 3, 5]]
    x_j = blending._exemplars[0][out["drift"].extra["partners"]]
    drift = lambda x: np.exp(x.reshape(len(x), -1).mean(1))  # noqa: E731
    np.testing.assert_allclose(weights["drift"], drift_target(drift(x_i), drift(x_j), 2.0), rtol=1e-6)


def test_a_feature_constant_over_the_step_gets_no_weight_in_the_scorers_input():
    """Standardising the teacher's features with a dead unit's std (0) would turn any
    sample that wakes it (an augmented one) into an input of 1e6: its scale is 0 instead."""
    from aidge_incremental.methods.attentive import feature_statistics
    rng = np.random.default_rng(0)
    features = np.maximum(rng.normal(size=(50, 4)), 0)
    features[:, 2] = 0.0  # dead on the step's data
    mean, std = feature_statistics(features)
    np.testing.assert_allclose(mean[[0, 1, 3]], features[:, [0, 1, 3]].mean(0))
    np.testing.assert_allclose(std[[0, 1, 3]], features[:, [0, 1, 3]].std(0))
    assert np.isinf(std[2])
    woken = np.array([[0.5, 0.5, 3.0, 0.5]])
    assert np.all(np.abs((woken - mean) / std) < 10) and ((woken - mean) / std)[0, 2] == 0
