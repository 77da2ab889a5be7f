"""Per-sample extra arrays of the replay memories (DER++'s stored logits):
kept consistent with the samples through reservoir replacement (against a
Python Algorithm R driven by the same SplitMix64 stream), reduction, growth
and files; hostile files refused naming the field; failed calls leave the
memory unchanged."""
import re
import struct

import numpy as np
import pytest

from aidge_incremental.memory import CorruptFileError, ExemplarMemory, ReservoirMemory

MASK = 2 ** 64 - 1


class SplitMix64:
    """cpp/src/memory/SplitMix64.cpp, written again: next() and unbiased below()."""

    def __init__(self, seed):
        self.state = seed

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, bound):
        limit = MASK - MASK % bound
        while True:
            x = self.next()
            if x < limit:
                return x % bound


def reference_reservoir(capacity, seed, batches):
    """Vitter's Algorithm R over the batches' samples: sample t (0-based) fills a
    free slot, else replaces slot j = below(t + 1) when j < capacity. Returns the
    held (sample, label, logits row) triples, slot by slot."""
    rng, slots, t = SplitMix64(seed), [], 0
    for x, y, z in batches:
        for i in range(len(x)):
            if len(slots) < capacity:
                slots.append((x[i], y[i], z[i]))
            else:
                j = rng.below(t + 1)
                if j < capacity:
                    slots[j] = (x[i], y[i], z[i])
            t += 1
    return slots


def stream(rng, sizes, widths):
    """Batches of uint8 samples, labels and logits whose width grows (a growing head)."""
    out = []
    for n, w in zip(sizes, widths):
        out.append((rng.integers(0, 256, (n, 3, 2), dtype=np.uint8), rng.integers(0, w, n),
                    rng.normal(size=(n, w)).astype(np.float32)))
    return out


def assert_matches(memory, slots):
    values, valid = memory.extra("logits")
    assert len(memory) == len(slots) == len(values) == len(valid)
    width = max(len(z) for _, _, z in slots)
    assert values.shape == (len(slots), width)
    for k, (x, y, z) in enumerate(slots):
        np.testing.assert_array_equal(memory.samples()[k], x)
        assert memory.labels()[k] == y
        assert valid[k] == len(z)
        np.testing.assert_array_equal(values[k, :len(z)], z)
        assert not values[k, len(z):].any(), "padding is zero"


def test_reservoir_extras_follow_their_samples_against_algorithm_r(rng, tmp_path):
    batches = stream(rng, [7, 30, 1, 25, 40, 9], [2, 2, 4, 4, 6, 6])
    memory = ReservoirMemory(20, seed=12345, extras={"logits": 2})
    views = []
    for k, (x, y, z) in enumerate(batches):
        memory.add(x, y, extras={"logits": z})
        views.append(memory.samples())  # a view held across the next add (copy-on-write path)
        assert_matches(memory, reference_reservoir(20, 12345, batches[:k + 1]))
    assert memory.seen == sum(len(b[0]) for b in batches)
    assert memory.extra_widths == {"logits": 6}
    assert memory.nbytes == 20 * 6 + 20 * 8 + 20 * 6 * 4 + 20 * 8  # samples, labels, values, valid counts

    # round trips: file and bytes; the continuation equals the uninterrupted stream
    memory.save(tmp_path / "r.aim")
    loaded, unpacked = ReservoirMemory.load(tmp_path / "r.aim"), ReservoirMemory.from_bytes(memory.to_bytes())
    more = stream(rng, [33], [8])
    for twin in (loaded, unpacked):
        assert_matches(twin, reference_reservoir(20, 12345, batches))
        twin.add(*more[0][:2], extras={"logits": more[0][2]})
        assert_matches(twin, reference_reservoir(20, 12345, batches + more))


def test_reservoir_without_extras_is_unchanged_by_them(rng):
    x, y = rng.integers(0, 255, (50, 4), dtype=np.uint8), rng.integers(0, 5, 50)
    plain, rich = ReservoirMemory(10, seed=3), ReservoirMemory(10, seed=3, extras={"logits": 5})
    plain.add(x, y)
    rich.add(x, y, extras={"logits": np.ones((50, 5))})
    np.testing.assert_array_equal(plain.samples(), rich.samples())
    np.testing.assert_array_equal(plain.labels(), rich.labels())
    assert plain.extra_widths == {} and ReservoirMemory.from_bytes(plain.to_bytes()).extra_widths == {}


def test_exemplar_memory_keeps_extras_with_its_exemplars(rng, tmp_path):
    x = rng.integers(0, 255, (40, 3), dtype=np.uint8)
    y = np.repeat([0, 1], 20)
    z = rng.normal(size=(40, 2)).astype(np.float32)
    memory = ExemplarMemory(budget=12, selection="random", seed=5, extras={"logits": 2})
    memory.update(x, y, extras={"logits": z})
    rows = [int(np.flatnonzero((x == s).all(1))[0]) for s in memory.samples()]  # samples are distinct
    values, valid = memory.extra("logits")
    np.testing.assert_array_equal(values, z[rows])
    assert valid.tolist() == [2] * 12
    # a step with wider logits: the old sets shrink to their prefix, their rows padded
    x2 = rng.integers(0, 255, (30, 3), dtype=np.uint8)
    y2 = np.repeat([2, 3, 4], 10)
    z2 = rng.normal(size=(30, 5)).astype(np.float32)
    before = values.copy()
    memory.update(x2, y2, extras={"logits": z2})
    assert memory.class_sets == [(0, 3), (1, 3), (2, 2), (3, 2), (4, 2)]
    values, valid = memory.extra("logits")
    assert values.shape == (12, 5) and valid.tolist() == [2] * 6 + [5] * 6
    np.testing.assert_array_equal(values[:3, :2], before[:3])    # class 0's prefix
    np.testing.assert_array_equal(values[3:6, :2], before[6:9])  # class 1's prefix
    assert not values[:6, 2:].any()
    new_rows = [int(np.flatnonzero((x2 == s).all(1))[0]) for s in memory.samples()[6:]]
    np.testing.assert_array_equal(values[6:], z2[new_rows])
    for twin in (ExemplarMemory.from_bytes(memory.to_bytes()), _saved_and_loaded(memory, tmp_path)):
        assert twin.extra_widths == {"logits": 5}
        np.testing.assert_array_equal(twin.extra("logits")[0], values)
        np.testing.assert_array_equal(twin.extra("logits")[1], valid)
        np.testing.assert_array_equal(twin.samples(), memory.samples())


def _saved_and_loaded(memory, tmp_path):
    memory.save(tmp_path / "m.aim")
    return ExemplarMemory.load(tmp_path / "m.aim", selection="random", seed=5)


# -- failed calls change nothing ----------------------------------------------------

def _state(memory):
    return (memory.samples().copy(), memory.labels().copy(), *memory.extra("logits"), memory.to_bytes())


@pytest.mark.parametrize("bad, message", [
    ({"logits": np.full((6, 3), np.nan)}, "holds nan"),
    ({"logits": np.ones((6, 3)), "features": np.ones((6, 1))}, "extra arrays"),
    ({}, "extra arrays"),
    ({"logits": np.ones((5, 3))}, r"\[6, columns\]"),
    ({"logits": np.ones((6, 0))}, "1 to"),
    ({"logits": np.full((6, 2), 1e300)}, "out of float32 range"),
])
def test_a_refused_reservoir_add_leaves_it_unchanged(rng, bad, message):
    memory = ReservoirMemory(8, seed=1, extras={"logits": 2})
    memory.add(rng.integers(0, 9, (10, 2)), rng.integers(0, 3, 10), extras={"logits": np.ones((10, 2))})
    before = _state(memory)
    with pytest.raises((ValueError, TypeError), match=message):
        memory.add(rng.integers(0, 9, (6, 2)), rng.integers(0, 3, 6), extras=bad)
    after = _state(memory)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    # and the stream goes on as if the call never happened
    twin = ReservoirMemory.from_bytes(before[-1])
    x, y = rng.integers(0, 9, (20, 2)), rng.integers(0, 3, 20)
    for m in (memory, twin):
        m.add(x, y, extras={"logits": np.arange(60.0).reshape(20, 3)})
    assert memory.to_bytes() == twin.to_bytes()


def test_a_refused_exemplar_update_leaves_it_unchanged(rng):
    memory = ExemplarMemory(budget=6, selection="random", extras={"logits": 2})
    memory.update(rng.integers(0, 9, (10, 2)), np.repeat([0, 1], 5), extras={"logits": np.ones((10, 2))})
    before = memory.to_bytes()
    z = np.ones((10, 4))
    z[7, 1] = np.inf
    with pytest.raises(ValueError, match="inf"):
        memory.update(rng.integers(0, 9, (10, 2)), np.repeat([2, 3], 5), extras={"logits": z})
    with pytest.raises(ValueError, match="extra arrays"):
        memory.update(rng.integers(0, 9, (10, 2)), np.repeat([2, 3], 5))
    assert memory.to_bytes() == before


@pytest.mark.parametrize("extras, message", [
    ({"": 2}, "1 to 64 characters"), ({"lo gits": 2}, "letters, digits"), ({"logits": 0}, r"extras\['logits'\]"),
    ({f"e{i}": 1 for i in range(17)}, "at most 16"), ([("logits", 2)], "mapping"),
])
def test_bad_declarations_are_refused_naming_them(rng, extras, message):
    with pytest.raises((ValueError, TypeError), match=message):
        memory = ReservoirMemory(4, extras=extras)
        memory.add(np.zeros((1, 1)), [0], extras={k: np.ones((1, 1)) for k in dict(extras)})


# -- the file format: version 2, version 1 still read, hostile fields refused ---------

def fnv1a64(data: bytes) -> int:
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) % 2 ** 64
    return h


def encode(payload: bytes, version: int = 2, kind: int = 2) -> bytes:
    """Header + payload, written independently of the core."""
    return b"AIDGEMEM" + struct.pack("<IIQQ", version, kind, len(payload), fnv1a64(payload)) + payload


def reservoir_payload(labels=(1, 2), data=bytes(range(4)), extras=None) -> bytes:
    """A reservoir of capacity 2 holding two uint8 samples of shape (2,), then (version 2) its extras:
    ``[(name, width, valid counts, values bytes)]``."""
    out = struct.pack("<QQQ", 1, 2, 3) + b"|u1" + struct.pack("<Q", 1)   # layout: rank 1, dim 2, '|u1', 1
    out += struct.pack("<QQQ", 2, 2, 99)                                  # capacity, seen, rng state
    out += struct.pack("<Q", 8 * len(labels)) + np.asarray(labels, "<i8").tobytes()
    out += struct.pack("<Q", len(data)) + data
    if extras is not None:
        out += struct.pack("<Q", len(extras))
        for name, width, valid, values in extras:
            out += struct.pack("<Q", len(name)) + name + struct.pack("<Q", width)
            out += struct.pack("<Q", 8 * len(valid)) + np.asarray(valid, "<u8").tobytes()
            out += struct.pack("<Q", len(values)) + values
    return out


GOOD = (b"logits", 3, [2, 3], np.array([0.5, -1, 0, 2, 3, 4], "<f4").tobytes())


def test_handmade_files_load_version_1_and_2():
    v1 = ReservoirMemory.from_bytes(encode(reservoir_payload(), version=1))
    assert v1.labels().tolist() == [1, 2] and v1.extra_widths == {}
    v2 = ReservoirMemory.from_bytes(encode(reservoir_payload(extras=[GOOD])))
    values, valid = v2.extra("logits")
    assert valid.tolist() == [2, 3]
    np.testing.assert_array_equal(values, [[0.5, -1, 0], [2, 3, 4]])
    assert v2.to_bytes() == encode(reservoir_payload(extras=[GOOD]))  # written byte for byte alike
    with pytest.raises(CorruptFileError, match="format version 3 .*versions 1 to 2"):
        ReservoirMemory.from_bytes(encode(reservoir_payload(extras=[GOOD]), version=3))


def _values(*v):
    return np.array(v, "<f4").tobytes()


HOSTILE_EXTRAS = {
    # case: (extras section, what the error must say)
    "17 arrays": ([GOOD] * 17, "field 'extra count'"),
    "bad name": ([(b"lo-gits",) + GOOD[1:]], "field 'extra name'"),
    "duplicate name": ([GOOD, GOOD], "'logits' appears twice"),
    "width 0": ([(b"logits", 0, [1, 1], b"")], "field 'extra width'"),
    "width 2^40": ([(b"logits", 2 ** 40, [1, 1], b"")], "field 'extra width'"),
    "one valid count for two rows": ([(b"logits", 3, [2], GOOD[3])], "field 'extra valid columns'"),
    "no valid column": ([(b"logits", 3, [0, 3], GOOD[3])], "0 valid columns, outside [1, 3]"),
    "more valid columns than the width": ([(b"logits", 3, [4, 3], GOOD[3])], "4 valid columns, outside [1, 3]"),
    "values short": ([(b"logits", 3, [2, 3], GOOD[3][:-4])], "field 'extra values'"),
    "NaN": ([(b"logits", 3, [2, 3], _values(0, np.nan, 0, 1, 2, 3))], "holds nan at [0, 1]"),
    "inf": ([(b"logits", 3, [2, 3], _values(0, 1, 0, 1, np.inf, 3))], "holds inf at [1, 1]"),
    "nonzero padding": ([(b"logits", 3, [2, 3], _values(0, 1, 7, 1, 2, 3))], "padding is zero"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_EXTRAS))
def test_hostile_extra_fields_are_refused_naming_the_field(tmp_path, case):
    extras, message = HOSTILE_EXTRAS[case]
    data = encode(reservoir_payload(extras=extras))
    with pytest.raises(CorruptFileError, match=re.escape(message)):
        ReservoirMemory.from_bytes(data, source="step-002.ckpt")
    path = tmp_path / "hostile.aim"
    path.write_bytes(data)
    with pytest.raises(CorruptFileError, match="hostile.aim"):
        ReservoirMemory.load(path)


def test_truncated_or_trailing_extras_are_refused():
    good = reservoir_payload(extras=[GOOD])
    for payload, message in ((good[:-3], "truncated"), (good + b"\0", "trailing"),
                             (reservoir_payload(), "truncated")):  # version 2 without its extras section
        with pytest.raises(CorruptFileError, match=message):
            ReservoirMemory.from_bytes(encode(payload))


def test_the_core_refuses_before_any_change(rng):
    """The C++ checks themselves (the Python layer checks first): a NaN past the
    samples already written, a class whose extras are wrong after a good one."""
    from aidge_incremental import _core
    core = _core.ReservoirMemoryCore(4, [2], np.uint8, 7, {"logits": 2})
    core.add_batch(np.zeros((6, 2), np.uint8), np.arange(6), {"logits": np.ones((6, 2), np.float32)})
    before = core.to_bytes()
    wider = np.ones((9, 5), np.float32)
    wider[8, 4] = np.nan
    with pytest.raises(ValueError, match=r"'logits' holds nan at \[8, 4\]"):
        core.add_batch(np.ones((9, 2), np.uint8), np.arange(9), {"logits": wider})
    with pytest.raises(ValueError, match="names 'features', not an extra array"):
        core.add_batch(np.ones((1, 2), np.uint8), [0], {"logits": np.ones((1, 2)), "features": np.ones((1, 2))})
    with pytest.raises(ValueError, match="stores no extra array"):
        _core.ReservoirMemoryCore(4, [2], np.uint8).add_batch(np.ones((1, 2), np.uint8), [0], {"x": np.ones((1, 1))})
    assert core.to_bytes() == before

    memory = _core.ExemplarMemoryCore("total", 8, [2], np.uint8, {"logits": 1})
    memory.add_classes([0], [np.zeros((3, 2), np.uint8)], [{"logits": np.ones((3, 1))}])
    before = memory.to_bytes()
    good, bad = {"logits": np.ones((2, 3))}, {"logits": np.full((2, 3), np.inf)}
    for extras in ([good, bad], [good], None, [good, {"logits": np.ones((3, 3))}]):
        with pytest.raises(ValueError):
            memory.add_classes([1, 2], [np.ones((2, 2), np.uint8)] * 2, extras)
    assert memory.to_bytes() == before
    memory.add_classes([1, 2], [np.ones((2, 2), np.uint8)] * 2, [good, good])
    assert memory.extra_widths == {"logits": 3} and memory.extra("logits")[1].tolist() == [1, 1, 1, 3, 3, 3, 3]
