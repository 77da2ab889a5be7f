"""Replay memory: selection against independent NumPy implementations,
invariants over random budgets, persistence and bad input."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from aidge_incremental.memory import (
    CorruptFileError, ExemplarMemory, NearestMeanClassifier, ReservoirMemory, class_means,
    closest_to_mean_selection, herding_selection, nme_classify, random_selection)


# --- independent references (plain NumPy, written from the iCaRL paper) ---------

def normalise(f):
    f = np.asarray(f, np.float64)
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    return np.divide(f, norms, out=np.zeros_like(f), where=norms > 0)


def herding_reference(features, m):
    """iCaRL Algorithm 4, literally: p_k = argmin || mu - (phi(x) + sum_j<k phi(p_j)) / k ||,
    over samples not yet chosen."""
    phi = normalise(features)
    mu = phi.mean(axis=0)
    chosen, running = [], np.zeros_like(mu)
    for k in range(1, m + 1):
        dist = np.linalg.norm(mu - (phi + running) / k, axis=1)
        dist[chosen] = np.inf
        p = int(np.argmin(dist))
        chosen.append(p)
        running += phi[p]
    return np.array(chosen)


def nme_reference(features, means):
    phi = normalise(features)
    return np.argmin(((phi[:, None, :] - means[None, :, :]) ** 2).sum(-1), axis=1)


# --- selection ---------------------------------------------------------------------

@pytest.mark.parametrize("n, d, m", [(1, 3, 1), (10, 2, 10), (50, 8, 20), (300, 64, 40), (500, 16, 100)])
def test_herding_matches_numpy_algorithm_4(rng, n, d, m):
    features = rng.normal(size=(n, d)).astype(np.float32)
    np.testing.assert_array_equal(herding_selection(features, m), herding_reference(features, m))


def test_herding_prefix_is_a_herding_selection(rng):
    features = rng.normal(size=(120, 10)).astype(np.float32)
    full = herding_selection(features, 40)
    for m in (1, 7, 20):
        np.testing.assert_array_equal(herding_selection(features, m), full[:m])


def test_closest_to_mean_matches_numpy(rng):
    features = rng.normal(size=(200, 12)).astype(np.float32)
    phi = normalise(features)
    expected = np.argsort(np.linalg.norm(phi - phi.mean(0), axis=1), kind="stable")[:30]
    np.testing.assert_array_equal(closest_to_mean_selection(features, 30), expected)


def test_random_selection_is_reproducible_and_distinct():
    a = random_selection(1000, 50, seed=7)
    np.testing.assert_array_equal(a, random_selection(1000, 50, seed=7))
    assert not np.array_equal(a, random_selection(1000, 50, seed=8))
    assert len(set(a.tolist())) == 50 and a.min() >= 0 and a.max() < 1000
    np.testing.assert_array_equal(np.sort(random_selection(20, 20, seed=1)), np.arange(20))


def test_random_selection_is_uniform():
    counts = np.zeros(10)
    for seed in range(4000):
        counts[random_selection(10, 3, seed)] += 1
    expected = 4000 * 3 / 10
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


def test_class_means_and_nme_match_numpy(rng):
    n_classes, d = 6, 20
    centers = rng.normal(0, 3, (n_classes, d))
    labels = rng.integers(0, n_classes, 400)
    labels[:n_classes] = np.arange(n_classes)
    features = (centers[labels] + rng.normal(size=(400, d))).astype(np.float32)
    means = class_means(features, labels, n_classes)
    phi = normalise(features)
    expected = np.stack([phi[labels == c].mean(0) for c in range(n_classes)])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(means, expected, rtol=1e-5, atol=1e-6)
    queries = (centers[rng.integers(0, n_classes, 300)] + rng.normal(size=(300, d))).astype(np.float32)
    np.testing.assert_array_equal(nme_classify(queries, means), nme_reference(queries, expected))


def test_nearest_mean_classifier_uses_arbitrary_labels(rng):
    features = np.concatenate([rng.normal(5, 1, (30, 4)), rng.normal(-5, 1, (30, 4))]).astype(np.float32)
    labels = np.array([17] * 30 + [3] * 30)
    clf = NearestMeanClassifier().fit(features, labels)
    np.testing.assert_array_equal(clf.predict(features), labels)


# --- memory invariants (property-based) ------------------------------------------------

def make_step(rng, classes, per_class, shape=(3, 2), dtype=np.uint8):
    y = np.repeat(np.array(classes), per_class)
    x = rng.integers(0, 255, (len(y),) + shape).astype(dtype)
    f = rng.normal(size=(len(y), 5)).astype(np.float32)
    return x, y, f


@settings(max_examples=60, deadline=None)
@given(budget=st.integers(1, 120), steps=st.lists(st.integers(1, 6), min_size=1, max_size=5),
       per_class=st.integers(1, 30), policy=st.sampled_from(["total", "per_class"]),
       selection=st.sampled_from(["herding", "random", "closest"]), seed=st.integers(0, 2 ** 31))
def test_memory_invariants(tmp_path_factory, budget, steps, per_class, policy, selection, seed):
    rng = np.random.default_rng(seed)
    kwargs = {"budget": budget} if policy == "total" else {"per_class": budget}
    memory = ExemplarMemory(selection=selection, seed=seed, **kwargs)
    next_class, previous = 0, {}
    for n_new in steps:
        classes = list(range(next_class, next_class + n_new))
        x, y, f = make_step(rng, classes, per_class)
        if policy == "total" and next_class + n_new > budget:
            with pytest.raises(ValueError, match="smaller than the number of classes"):
                memory.update(x, y, f)
            assert dict(memory.class_sets) == {c: len(v) for c, v in previous.items()}
            break
        memory.update(x, y, f)
        next_class += n_new
        counts = dict(memory.class_sets)
        samples, labels = memory.samples(), memory.labels()
        assert len(samples) == len(labels) == sum(counts.values()) == len(memory)
        if policy == "total":
            assert len(memory) <= budget
            # K // n each, the first K % n classes one more, capped by what a class has
            quota = [budget // next_class + (c < budget % next_class) for c in range(next_class)]
            assert [n for _, n in memory.class_sets] == [min(q, per_class) for q in quota]
            if per_class >= budget // next_class + 1:
                assert max(counts.values()) - min(counts.values()) <= 1
        else:
            assert all(v == min(budget, per_class) for v in counts.values())
        # reduce keeps prefixes: an old class's exemplars are the start of what it had
        current = {c: samples[labels == c] for c in counts}
        for c, old in previous.items():
            np.testing.assert_array_equal(current[c], old[:len(current[c])])
        previous = {c: v.copy() for c, v in current.items()}
        assert memory.nbytes == samples.nbytes + 16 * len(counts)
    if len(memory):
        path = tmp_path_factory.mktemp("mem") / "memory.aim"
        memory.save(path)
        loaded = ExemplarMemory.load(path)
        assert loaded.class_sets == memory.class_sets and loaded.budget == memory.budget
        np.testing.assert_array_equal(loaded.samples(), memory.samples())
        assert loaded.samples().dtype == memory.samples().dtype


def test_memory_stores_raw_samples_without_copy(rng):
    x, y, f = make_step(rng, [0, 1, 2], 50, shape=(8, 8))
    memory = ExemplarMemory(budget=60)
    memory.update(x, y, f)
    a, b = memory.samples(), memory.samples()
    assert a.dtype == np.uint8 and a.shape == (60, 8, 8)
    assert np.shares_memory(a, b), "samples() hands out views of one buffer"
    assert not a.flags.writeable
    assert memory.nbytes == 60 * 64 + 3 * 16
    # exemplars are real rows of x, chosen by herding on their features
    idx = np.flatnonzero(y == 1)
    np.testing.assert_array_equal(memory.samples()[memory.labels() == 1],
                                  x[idx[herding_reference(f[idx], 20)]])
    # a view taken before a change stays valid and keeps its contents
    before = a.copy()
    memory.update(*make_step(rng, [3], 50, shape=(8, 8)))
    np.testing.assert_array_equal(a, before)
    assert len(memory) == 60 and memory.class_sets[-1] == (3, 15)


def test_budget_remainder_goes_to_the_first_classes():
    memory = ExemplarMemory(budget=23)
    assert memory.quotas(5) == [5, 5, 5, 4, 4]
    assert ExemplarMemory(per_class=7).quotas(3) == [7, 7, 7]


# --- bad input ----------------------------------------------------------------------

def test_bad_input_raises_clear_errors(rng):
    x, y, f = make_step(rng, [0, 1, 2], 10)
    with pytest.raises(ValueError, match="smaller than the number of classes"):
        ExemplarMemory(budget=2).update(x, y, f)
    with pytest.raises(ValueError, match="one entry per sample"):
        ExemplarMemory(budget=20).update(x, y[:-1], f)
    with pytest.raises(ValueError, match="rows for"):
        ExemplarMemory(budget=20).update(x, y, f[:-1])
    bad = f.copy()
    bad[3, 1] = np.nan
    memory = ExemplarMemory(budget=20)
    with pytest.raises(ValueError, match="non-finite"):
        memory.update(x, y, bad)
    assert len(memory) == 0, "a failed update changes nothing"
    with pytest.raises(ValueError, match="empty class"):
        herding_selection(np.zeros((0, 4), np.float32), 0)
    with pytest.raises(ValueError, match="cannot select"):
        herding_selection(np.ones((3, 4), np.float32), 4)
    with pytest.raises(ValueError, match="empty class"):
        class_means(np.ones((3, 2), np.float32), [0, 0, 2], 3)
    with pytest.raises(ValueError, match="outside"):
        class_means(np.ones((3, 2), np.float32), [0, 5, 1], 3)
    with pytest.raises(ValueError, match="needs features"):
        ExemplarMemory(budget=20).update(x, y)
    with pytest.raises(ValueError, match="exactly one"):
        ExemplarMemory(budget=10, per_class=2)
    with pytest.raises(ValueError, match="> 0"):
        ExemplarMemory(budget=0)
    memory = ExemplarMemory(budget=20)
    memory.update(x, y, f)
    with pytest.raises(ValueError, match="already in the memory"):
        memory.update(x, y, f)
    with pytest.raises(ValueError, match="do not match"):
        memory.update(x[:, :1].astype(np.float32), y + 10, f)


def saved_memory(tmp_path, rng):
    x, y, f = make_step(rng, [0, 1], 10)
    memory = ExemplarMemory(budget=10)
    memory.update(x, y, f)
    path = tmp_path / "memory.aim"
    memory.save(path)
    return memory, path


def test_corrupt_files_are_refused_naming_the_file(tmp_path, rng):
    memory, path = saved_memory(tmp_path, rng)
    data = path.read_bytes()
    cases = {
        "truncated": data[: len(data) - 7],
        "header only": data[:20],
        "bad magic": b"X" + data[1:],
        "flipped byte": data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:],
        "empty": b"",
    }
    for name, content in cases.items():
        bad = tmp_path / f"{name.replace(' ', '_')}.aim"
        bad.write_bytes(content)
        with pytest.raises(CorruptFileError, match=str(bad.name)):
            ExemplarMemory.load(bad)
    with pytest.raises(CorruptFileError, match="cannot open"):
        ExemplarMemory.load(tmp_path / "missing.aim")
    with pytest.raises(CorruptFileError, match="expected a reservoir"):
        ReservoirMemory.load(path)
    assert issubclass(CorruptFileError, ValueError)
    # the good file is untouched and still loads
    np.testing.assert_array_equal(ExemplarMemory.load(path).samples(), memory.samples())


def test_failed_save_leaves_previous_file_intact(tmp_path, rng):
    """A write that fails half-way (file size limit hit) must not touch the old file."""
    x = rng.integers(0, 255, (40, 32, 32), dtype=np.uint8)
    y = np.repeat([0, 1], 20)
    memory = ExemplarMemory(budget=40, selection="random")
    memory.update(x[:20], y[:20])
    path = tmp_path / "memory.aim"
    memory.save(path)
    before = path.read_bytes()
    memory.update(x[20:], y[20:])
    bigger = tmp_path / "bigger.aim"
    memory.save(bigger)
    assert bigger.stat().st_size > len(before)
    script = f"""
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) + 100}, {len(before) + 100}))
from aidge_incremental.memory import ExemplarMemory
memory = ExemplarMemory.load({str(bigger)!r})
try:
    memory.save({str(path)!r})
except RuntimeError as e:
    print("refused:", e)
"""
    import subprocess, sys
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=tmp_path)  # import the installed package, not the source tree
    assert "refused: cannot write" in out.stdout, out.stdout + out.stderr
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bigger.aim", "memory.aim"]


# --- reservoir -------------------------------------------------------------------------

def test_reservoir_keeps_a_uniform_sample():
    hits = np.zeros(100)
    for seed in range(600):
        reservoir = ReservoirMemory(10, seed=seed)
        for start in range(0, 100, 7):  # batches of 7
            idx = np.arange(start, min(start + 7, 100))
            reservoir.add(idx.astype(np.int32).reshape(-1, 1), idx)
        assert len(reservoir) == 10 and reservoir.seen == 100
        np.testing.assert_array_equal(reservoir.samples()[:, 0], reservoir.labels())
        hits[reservoir.labels()] += 1
    expected = 600 * 10 / 100
    assert abs(hits[:50].mean() - hits[50:].mean()) < 3 * np.sqrt(expected / 50) * 2
    assert np.all(np.abs(hits - expected) < 6 * np.sqrt(expected))


def test_reservoir_save_load_and_reproducibility(tmp_path, rng):
    x = rng.integers(0, 255, (300, 4), dtype=np.uint8)
    y = rng.integers(0, 10, 300)
    a, b = ReservoirMemory(25, seed=3), ReservoirMemory(25, seed=3)
    a.add(x[:150], y[:150])
    b.add(x[:150], y[:150])
    a.save(tmp_path / "r.aim")
    c = ReservoirMemory.load(tmp_path / "r.aim")
    np.testing.assert_array_equal(c.samples(), a.samples())
    assert c.seen == 150 and c.nbytes == a.nbytes == 25 * 4 + 25 * 8
    a.add(x[150:], y[150:])
    c.add(x[150:], y[150:])  # the generator state was saved too
    np.testing.assert_array_equal(c.samples(), a.samples())
    np.testing.assert_array_equal(c.labels(), a.labels())
    with pytest.raises(ValueError, match="one entry per sample"):
        a.add(x[:5], y[:4])
