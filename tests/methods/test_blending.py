"""Blending replay: the blend against a plain reference, reproducible pairs and
weights, and the scorer's gradient by central finite differences."""
import numpy as np
import pytest

from aidge_incremental.methods.attentive import AttentiveReplay, Scorer
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
    for cls in (MixupICaRL, AttentiveReplay):
        a, b, c = (_method(cls, seed=s)[0].make_batch(_batch()) for s in (7, 7, 8))
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
    method, blending = _method(AttentiveReplay, seed=4)
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
