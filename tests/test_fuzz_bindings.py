"""Bounded fuzzing of the replay-memory bindings (a few seconds).

Each call with generated arguments -- well-formed or not: negative, huge and
non-integer counts, wrong dtypes (complex, strings, objects), wrong ranks, NaN,
values beyond float32 -- either returns what an independent NumPy reference
says, or raises ValueError/TypeError whose message names the argument at
fault. Never a crash, never another exception type, and a memory whose call
raised is left exactly as it was.
"""
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from aidge_incremental.memory import (ExemplarMemory, ReservoirMemory, class_means,
                                      closest_to_mean_selection, herding_selection, nme_classify,
                                      random_selection)

FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))

def mostly(good, bad, tenths=7):
    """good in about tenths/10 of the draws, bad otherwise (one_of would weigh
    every branch of a nested one_of equally)."""
    return st.integers(0, 9).flatmap(lambda i: good if i < tenths else bad)


JUNK = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=3),
                 st.integers(-2 ** 70, 2 ** 70), st.lists(st.integers(-3, 3), max_size=3))
COUNTS = st.one_of(st.integers(-3, 8), st.integers(-2 ** 70, 2 ** 70), JUNK)
DTYPES = st.sampled_from([np.float32, np.float64, np.int32, np.uint8, np.int64, np.uint64,
                          np.complex64, np.bool_, "U2", object])
VALUES = st.one_of(st.floats(-3, 3), st.sampled_from([0.0, np.nan, np.inf, 1e300, -1e39, 1e-30]))


@st.composite
def arrays(draw, ndim=st.sampled_from([2, 2, 2, 2, 1, 3, 0]), rows=st.integers(0, 7),
           cols=st.integers(0, 4)):
    rank = draw(ndim)
    shape = tuple([draw(rows)] + [draw(cols)] * (rank - 1)) if rank else ()
    values = np.array(draw(st.lists(VALUES, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
                      dtype=np.float64).reshape(shape)
    dtype = draw(DTYPES)
    with np.errstate(all="ignore"):
        try:
            return values.astype(dtype)
        except (ValueError, OverflowError):
            return values


@st.composite
def good_features(draw, min_rows=1):
    rows, cols = draw(st.integers(min_rows, 8)), draw(st.integers(1, 4))
    values = draw(st.lists(st.one_of(st.floats(-3, 3), st.just(0.0)), min_size=rows * cols,
                           max_size=rows * cols))
    return np.array(values).reshape(rows, cols).astype(draw(st.sampled_from([np.float32, np.float64,
                                                                             np.int32])))


@st.composite
def selection_args(draw):
    """Mostly well-formed (features, m), sometimes anything."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.one_of(arrays(), JUNK)), draw(COUNTS)
    features = draw(good_features())
    return features, draw(st.integers(0, len(features)))


@st.composite
def means_args(draw):
    """Mostly well-formed (features, labels, n_classes): every class present."""
    if draw(st.integers(0, 3)) == 0:
        return (draw(st.one_of(arrays(), JUNK)), draw(st.one_of(arrays(ndim=st.just(1)), JUNK)),
                draw(COUNTS))
    features = draw(good_features(min_rows=2))
    k = draw(st.integers(1, len(features)))
    labels = np.concatenate([np.arange(k), draw(st.lists(st.integers(0, k - 1),
                                                         min_size=len(features) - k,
                                                         max_size=len(features) - k))])
    labels = np.asarray(draw(st.permutations(labels.tolist())))
    return features, labels.astype(draw(st.sampled_from([np.int64, np.uint8, np.int32]))), k


def names_argument(error, pattern):
    assert isinstance(error, (ValueError, TypeError)), f"{type(error).__name__}: {error}"
    assert re.search(pattern, str(error)), f"message does not name the argument: {error}"


def normalise(f):
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    return np.divide(f, norms, out=np.zeros_like(f), where=norms > 0)


def as_float32_rows(features):
    return np.asarray(features).astype(np.float32).astype(np.float64)


def check_herding(features, m, picks):
    """Every pick minimises Algorithm 4's distance given the earlier picks (up to rounding)."""
    phi = normalise(as_float32_rows(features))
    mu = phi.mean(axis=0)
    assert len(picks) == m and len(set(picks.tolist())) == m
    running = np.zeros_like(mu)
    for k, p in enumerate(picks, start=1):
        dist = np.linalg.norm(mu - (phi + running) / k, axis=1)
        dist[picks[: k - 1]] = np.inf
        assert dist[p] <= dist.min() + 1e-9
        running += phi[p]


@FUZZ
@given(args=selection_args())
def test_herding_and_closest(args):
    features, m = args
    for fn in (herding_selection, closest_to_mean_selection):
        try:
            picks = fn(features, m)
        except Exception as e:
            names_argument(e, r"features|'m'|m = ")
            continue
        if fn is herding_selection:
            check_herding(features, m, picks)
        else:
            phi = normalise(as_float32_rows(features))
            dist = ((phi - phi.mean(0)) ** 2).sum(1)
            assert len(set(picks.tolist())) == m
            assert dist[picks].max(initial=-np.inf) <= np.sort(dist)[m - 1] + 1e-9 if m else True


@FUZZ
@given(n=mostly(st.integers(0, 50), COUNTS), m=mostly(st.integers(0, 50), COUNTS),
       seed=mostly(st.integers(0, 2 ** 64 - 1), COUNTS))
def test_random_selection(n, m, seed):
    try:
        picks = random_selection(n, m, seed)
    except Exception as e:
        names_argument(e, r"'n'|'m'|'seed'|m = ")
        return
    assert len(picks) == m and len(set(picks.tolist())) == m and all(0 <= p < n for p in picks)
    np.testing.assert_array_equal(picks, random_selection(n, m, seed))


@FUZZ
@given(args=means_args())
def test_class_means_and_nme(args):
    features, labels, n_classes = args
    try:
        means = class_means(features, labels, n_classes)
    except Exception as e:
        names_argument(e, r"features|labels|n_classes")
        return
    phi = normalise(as_float32_rows(features))
    y = np.asarray(labels).astype(np.int64)
    ref = np.stack([phi[y == c].mean(0) for c in range(n_classes)])
    assert np.linalg.norm(ref, axis=1).min() > 1e-9, "a mean with no direction was not refused"
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(means, ref, atol=1e-6)
    pred = nme_classify(features, means)
    zero = np.linalg.norm(phi, axis=1) == 0
    assert np.all(pred[zero] == -1)
    d = ((phi[:, None, :] - means[None].astype(np.float64)) ** 2).sum(-1)
    rows = np.flatnonzero(~zero)
    assert np.all(d[rows, pred[rows]] <= d[rows].min(1) + 1e-6)


@FUZZ
@given(features=mostly(good_features(), st.one_of(arrays(), JUNK)),
       means=mostly(good_features(), st.one_of(arrays(), JUNK)))
def test_nme_on_arbitrary_means(features, means):
    try:
        pred = nme_classify(features, means)
    except Exception as e:
        names_argument(e, r"features|means")
        return
    phi = normalise(as_float32_rows(features))
    mu = as_float32_rows(means)
    d = (mu ** 2).sum(1)[None, :] - 2 * phi @ mu.T
    nonzero = np.linalg.norm(phi, axis=1) > 0
    assert np.all(pred[~nonzero] == -1)
    rows = np.flatnonzero(nonzero)
    assert np.all(d[rows, pred[rows]] <= d[rows].min(1) + 1e-6)


def snapshot(memory):
    if not len(memory):
        return (0,)
    return (len(memory), memory.samples().tobytes(), memory.labels().tolist(),
            getattr(memory, "class_sets", None), getattr(memory, "seen", None))


STEP = st.fixed_dictionaries({
    "labels": mostly(st.lists(st.integers(0, 9), min_size=1, max_size=8),
                     st.one_of(st.lists(st.integers(-2, 6), min_size=1, max_size=8),
                               st.sampled_from([[2 ** 63, 1], [2 ** 64 - 1], [-2 ** 63]]), JUNK)),
    "label_dtype": mostly(st.sampled_from([np.int64, None]), st.sampled_from([np.uint64, np.int8, np.float32])),
    "x_dtype": mostly(st.just(np.uint8), st.sampled_from([np.float32, np.complex64, object, "U1"]), 8),
    "x_width": st.sampled_from([2, 2, 2, 3]),
    "features": mostly(st.just("good"), st.sampled_from(["nan", "huge", "short", "none", "zero"])),
})


def make_step(step, rng):
    labels = step["labels"]
    if isinstance(labels, list) and step["label_dtype"] is not None:
        try:
            labels = np.array(labels, dtype=step["label_dtype"])
        except OverflowError:
            labels = np.array(labels, dtype=object)
    n = len(labels) if isinstance(labels, (list, np.ndarray)) else 3
    x = rng.integers(0, 255, (n, step["x_width"])).astype(step["x_dtype"])
    f = rng.normal(size=(n, 3))
    kind = step["features"]
    f = {"good": f, "nan": np.where(f > 1, np.nan, f), "huge": f * 1e300, "short": f[:-1],
         "none": None, "zero": np.zeros_like(f)}[kind]
    return x, labels, f


@FUZZ
@given(budget=mostly(st.integers(1, 12), COUNTS), per_class=st.booleans(),
       selection=st.sampled_from(["herding", "random", "closest"]),
       steps=st.lists(STEP, min_size=1, max_size=4))
def test_exemplar_memory_updates(budget, per_class, selection, steps):
    try:
        memory = ExemplarMemory(**{"per_class" if per_class else "budget": budget},
                                selection=selection)
    except Exception as e:
        names_argument(e, r"budget|per_class")
        return
    rng = np.random.default_rng(0)
    for step in steps:
        x, y, f = make_step(step, rng)
        before = snapshot(memory)
        try:
            memory.update(x, y, f)
        except Exception as e:
            names_argument(e, r"label|sample|feature|budget|class|dtype|shape|x |'x'|entries|rows")
            assert snapshot(memory) == before, "a failed update changed the memory"
            continue
        # success: the invariants an independent count gives
        sets = memory.class_sets
        quotas = memory.quotas(len(sets))
        assert [c for _, c in sets] <= quotas or all(c <= q for (_, c), q in zip(sets, quotas))
        assert all(0 < c <= q for (_, c), q in zip(sets, quotas))
        assert len(memory) == sum(c for _, c in sets) == len(memory.labels())
        assert len({label for label, _ in sets}) == len(sets)
        if not per_class:
            assert len(memory) <= memory.budget


@FUZZ
@given(capacity=mostly(st.integers(1, 6), COUNTS), seed=mostly(st.integers(0, 9), COUNTS),
       steps=st.lists(STEP, min_size=1, max_size=4))
def test_reservoir_adds(capacity, seed, steps):
    try:
        reservoir = ReservoirMemory(capacity, seed=seed)
    except Exception as e:
        names_argument(e, r"capacity|seed")
        return
    rng = np.random.default_rng(0)
    offered = 0
    for step in steps:
        x, y, _ = make_step(step, rng)
        before = snapshot(reservoir)
        try:
            reservoir.add(x, y)
        except Exception as e:
            names_argument(e, r"label|sample|dtype|shape|x |'x'|entries")
            assert snapshot(reservoir) == before, "a failed add changed the reservoir"
            continue
        offered += len(x)
        assert reservoir.seen == offered and len(reservoir) == min(capacity, offered)
        assert set(reservoir.labels().tolist()) <= set(np.asarray(y).astype(np.int64).tolist()) | \
            set(before[2] if len(before) > 1 else [])
