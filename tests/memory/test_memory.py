"""Replay memory: selection against independent NumPy implementations,
invariants over random budgets, persistence and bad input."""

import re

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


# --- hostile memory files: a recomputed checksum does not make a field valid ------------

def fnv1a64(data: bytes) -> int:
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) % 2 ** 64
    return h


def encode_memory(payload: bytes, kind: int = 1) -> bytes:
    """The file format, written independently of the core: header + payload, checksum recomputed."""
    import struct
    return b"AIDGEMEM" + struct.pack("<IIQQ", 1, kind, len(payload), fnv1a64(payload)) + payload


def exemplar_payload(shape=(2,), dtype=b"|u1", itemsize=1, policy=0, budget=10,
                     classes=((0, 2), (1, 2)), data=None, n_classes=None) -> bytes:
    import struct
    out = struct.pack("<Q", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
    out += struct.pack("<Q", len(dtype)) + dtype + struct.pack("<Q", itemsize)
    out += struct.pack("<IQQ", policy, budget, len(classes) if n_classes is None else n_classes)
    for label, count in classes:
        out += struct.pack("<qQ", label, count)
    if data is None:
        data = bytes(itemsize * int(np.prod(shape)) * min(sum(c for _, c in classes), 10 ** 6))
    return out + struct.pack("<Q", len(data)) + data


HOSTILE_EXEMPLAR_FILES = {
    # name: (payload, field the error must name)
    "counts summing past 2^64": (exemplar_payload(policy=1, budget=2 ** 62,
                                                  classes=((0, 2 ** 63), (1, 2 ** 63)), data=b""),
                                 "class counts"),
    "dtype object": (exemplar_payload(dtype=b"|O", itemsize=8), "dtype '|O'"),
    "dtype string": (exemplar_payload(dtype=b"<U4", itemsize=16), "dtype '<U4'"),
    "item size not the dtype's": (exemplar_payload(dtype=b"|u1", itemsize=8), "item size 8"),
    "shape overflowing": (exemplar_payload(shape=(2 ** 40, 2 ** 40)), "sample layout"),
    "count beyond its quota": (exemplar_payload(budget=10, classes=((0, 6), (1, 5))), "class counts"),
    "more classes than the budget": (exemplar_payload(budget=1, classes=((0, 1), (1, 1))), "class count"),
    "class count beyond the file": (exemplar_payload(classes=(), n_classes=2 ** 60, data=b""), "class count"),
    "duplicate labels": (exemplar_payload(classes=((3, 2), (3, 2))), "appears twice"),
    "empty class": (exemplar_payload(classes=((0, 0), (1, 2))), "class counts"),
    "samples of the wrong size": (exemplar_payload(data=bytes(5)), "field 'samples'"),
    "budget 0": (exemplar_payload(budget=0), "budget"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_EXEMPLAR_FILES))
def test_hostile_memory_fields_are_refused_naming_the_field(tmp_path, case):
    payload, field = HOSTILE_EXEMPLAR_FILES[case]
    path = tmp_path / "hostile.aim"
    path.write_bytes(encode_memory(payload))
    with pytest.raises(CorruptFileError, match=re.escape(field)) as info:
        ExemplarMemory.load(path)
    assert "hostile.aim" in str(info.value)
    # the same bytes embedded in a checkpoint go through from_bytes
    with pytest.raises(CorruptFileError, match=re.escape(field)):
        ExemplarMemory.from_bytes(encode_memory(payload), source="step-004.ckpt")


def test_valid_handmade_file_loads():
    """The hand encoder above writes the real format: its valid file loads (so the
    refusals above come from the fields, not from a wrong encoder)."""
    data = bytes(range(8))
    memory = ExemplarMemory.from_bytes(encode_memory(exemplar_payload(data=data)))
    assert memory.class_sets == [(0, 2), (1, 2)] and memory.samples().dtype == np.uint8
    np.testing.assert_array_equal(memory.samples().ravel(), np.arange(8))


def test_hostile_reservoir_files_are_refused(tmp_path, rng):
    import struct
    reservoir = ReservoirMemory(4, seed=1)
    reservoir.add(rng.integers(0, 255, (10, 3), dtype=np.uint8), np.arange(10))
    reservoir.save(tmp_path / "r.aim")
    good = (tmp_path / "r.aim").read_bytes()[32:]

    def make_layout(dtype, itemsize):  # rank 1, dim 3, dtype, item size
        return struct.pack("<QQQ", 1, 3, len(dtype)) + dtype + struct.pack("<Q", itemsize)
    layout = make_layout(b"|u1", 1)
    assert good.startswith(layout)

    def payload(capacity, seen, labels, data, lay=layout):
        return (lay + struct.pack("<QQQ", capacity, seen, 7) + struct.pack("<Q", 8 * len(labels))
                + np.asarray(labels, "<i8").tobytes() + struct.pack("<Q", len(data)) + data)
    cases = {
        "capacity": payload(2 ** 63, 10, [0] * 4, bytes(12)),
        "labels": payload(4, 10, [0] * 3, bytes(9)),       # 3 held, a full reservoir holds 4
        "field 'samples'": payload(4, 10, [0] * 4, bytes(11)),
        "dtype '|O'": payload(4, 10, [0] * 4, bytes(12),
                              lay=make_layout(b"|O", 8)),
    }
    for field, content in cases.items():
        path = tmp_path / "bad.aim"
        path.write_bytes(encode_memory(content, kind=2))
        with pytest.raises(CorruptFileError, match=re.escape(field)):
            ReservoirMemory.load(path)
    path.write_bytes(encode_memory(payload(4, 10, [1, 2, 3, 4], bytes(range(12))), kind=2))
    assert ReservoirMemory.load(path).labels().tolist() == [1, 2, 3, 4]


def test_load_reads_only_bounded_regular_files(tmp_path):
    """A device or a FIFO is refused at once instead of being read without end."""
    import os
    import threading
    for device in ("/dev/zero", "/dev/urandom"):
        if os.path.exists(device):
            with pytest.raises(CorruptFileError, match="not a regular file"):
                ExemplarMemory.load(device)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = []
    thread = threading.Thread(target=lambda: result.append(pytest.raises(
        CorruptFileError, ReservoirMemory.load, fifo)), daemon=True)
    thread.start()
    thread.join(10)
    assert result, "loading a FIFO blocked"
    with pytest.raises(CorruptFileError, match="not a regular file"):
        ExemplarMemory.load(tmp_path)


# --- every call that raises leaves the memory unchanged ---------------------------------

def test_failed_update_leaves_the_memory_unchanged(rng):
    x, y, f = make_step(rng, [0, 1, 2], 10)
    memory = ExemplarMemory(budget=12)
    memory.update(x, y, f)
    sets, samples = memory.class_sets, memory.samples().copy()
    # a label beyond int64 (uint64 >= 2^63) in a step that would reduce the old classes
    x2, _, f2 = make_step(rng, [0, 1], 10)
    y2 = np.repeat(np.array([5, 2 ** 63], np.uint64), 10)
    with pytest.raises(ValueError, match="int64"):
        memory.update(x2, y2, f2)
    assert memory.class_sets == sets
    np.testing.assert_array_equal(memory.samples(), samples)
    # features that fail for a later class of the step
    bad = f2.copy()
    bad[-1, 0] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        memory.update(x2, np.repeat([5, 6], 10), bad)
    assert memory.class_sets == sets
    # a first update that fails leaves the memory empty, and a later good one works
    empty = ExemplarMemory(budget=4)
    with pytest.raises(ValueError, match="int64"):
        empty.update(x2, y2, f2)
    assert len(empty) == 0 and empty.class_sets == []
    empty.update(x2, np.repeat([5, 6], 10), f2)
    assert empty.class_sets == [(5, 2), (6, 2)]


def test_failed_reservoir_add_leaves_it_unchanged(rng):
    reservoir = ReservoirMemory(5, seed=0)
    reservoir.add(np.arange(8, dtype=np.int32).reshape(-1, 1), np.arange(8))
    labels, samples, seen = reservoir.labels(), reservoir.samples().copy(), reservoir.seen
    with pytest.raises(ValueError, match="int64"):
        reservoir.add(np.zeros((3, 1), np.int32), np.array([1, 2, 2 ** 63], np.uint64))
    with pytest.raises(ValueError, match="dtype"):
        reservoir.add(np.zeros((3, 1), np.float32), np.arange(3))
    assert reservoir.seen == seen and reservoir.labels().tolist() == labels.tolist()
    np.testing.assert_array_equal(reservoir.samples(), samples)


def test_reservoir_samples_and_labels_never_disagree():
    """samples() is a snapshot like labels(): a pair taken together stays consistent."""
    reservoir = ReservoirMemory(10, seed=0)
    data = np.arange(100, dtype=np.int64).reshape(-1, 1)
    reservoir.add(data[:20], np.arange(20))
    samples, labels = reservoir.samples(), reservoir.labels()
    reservoir.add(data[20:], np.arange(20, 100))
    np.testing.assert_array_equal(samples[:, 0], labels)
    np.testing.assert_array_equal(reservoir.samples()[:, 0], reservoir.labels())
    assert not np.array_equal(reservoir.labels(), labels), "the reservoir did change"


# --- NME on a feature row with no direction -----------------------------------------------

def test_nme_on_an_all_zero_row_answers_no_class(rng):
    means = class_means(rng.normal(size=(30, 4)).astype(np.float32), np.arange(30) % 3, 3)
    queries = rng.normal(size=(5, 4)).astype(np.float32)
    queries[2] = 0
    pred = nme_classify(queries, means)
    assert pred[2] == -1
    keep = [0, 1, 3, 4]
    np.testing.assert_array_equal(pred[keep], nme_reference(queries[keep], means))
    clf = NearestMeanClassifier().fit(rng.normal(size=(30, 4)), np.arange(30) % 3 + 7)
    out = clf.predict(queries)
    assert out[2] == -1 and set(out[keep]) <= {7, 8, 9}
    with pytest.raises(ValueError, match="sum to zero"):
        class_means(np.zeros((4, 3), np.float32), [0, 0, 1, 1], 2)


# --- arguments are checked at the boundary, naming them -----------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: random_selection(-1, 2), "'n' must be an integer in"),
    (lambda: random_selection(5, 2 ** 70), "'m' must be an integer in"),
    (lambda: random_selection(5, 2, seed=-3), "'seed' must be an integer in"),
    (lambda: random_selection(5, "2"), "'m' must be an integer"),
    (lambda: random_selection(5.0, 2), "'n' must be an integer"),
    (lambda: herding_selection(np.ones((3, 2)), -1), "'m' must be an integer in"),
    (lambda: herding_selection(np.full((3, 2), 1e300), 1), "out of float32 range"),
    (lambda: herding_selection(np.ones((3, 2), complex), 1), "'features' is complex"),
    (lambda: herding_selection(np.array([["a", "b"]]), 1), "'features' must hold real numbers"),
    (lambda: class_means(np.ones((3, 2)), [0.5, 1, 0], 2), "'labels' must hold integers"),
    (lambda: class_means(np.ones((3, 2)), [0, 1, 0], 2 ** 40), "'n_classes' must be an integer in"),
    (lambda: nme_classify(np.ones((3, 2)), np.full((2, 2), -1e39)), "'means' holds"),
    (lambda: ExemplarMemory(budget=2.5), "budget must be an integer"),
    (lambda: ExemplarMemory(per_class="3"), "per_class must be an integer"),
    (lambda: ReservoirMemory(10, seed=-1), "seed must be an integer"),
    (lambda: ReservoirMemory(10).add(np.zeros((2, 1), object), [0, 1]), "dtype 'O'|dtype '\\|O'"),
])
def test_binding_arguments_are_named(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


@pytest.mark.parametrize("labels", [np.array(["cat", "dog", "emu"] * 10), np.array([b"a", b"b", b"c"] * 10)])
def test_nearest_mean_classifier_takes_any_labels(rng, labels):
    """Before: predict mixed the labels with -1 in np.where and failed on strings,
    against its docstring (arbitrary labels)."""
    centres = np.eye(3, 4) * 5
    features = centres[np.arange(30) % 3] + rng.normal(0, 0.1, (30, 4))
    clf = NearestMeanClassifier().fit(features, labels)
    queries = np.vstack([features[:6], np.zeros((1, 4))])  # the last row: no direction, no class
    out = clf.predict(queries)
    assert out[:6].tolist() == labels[:6].tolist()
    assert out[6] is None and out.dtype == object
    numeric = NearestMeanClassifier().fit(features, np.arange(30) % 3 + 7).predict(queries)
    assert numeric.dtype.kind == "i" and numeric[6] == -1
