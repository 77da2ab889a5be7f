"""Fuzzing every entry point of the compiled core (aidge_incremental._core and
_core.loss): each call replaces one argument of a valid call by something else
(another type, a value out of range, NaN, huge integers...), drops an argument,
adds one, or passes an unknown keyword. The oracle accepts a result, or a
TypeError/ValueError whose message names the argument at fault -- and, for a
scalar, the value given -- and never pybind11's "incompatible function arguments"
or a conversion message that names nothing.

The table below must cover every public callable of the module: a new binding
without an entry fails ``test_every_entry_point_is_fuzzed``.
"""
import math

import aidge_core
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import aidge_incremental  # noqa: F401  (loads _core after aidge_core)
from aidge_incremental import _core

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

VAGUE = ("incompatible function arguments", "Unable to cast", "unable to convert", "TypeError: ",
         "The following argument types are supported")


def tensor(shape=(4, 3), value=None, dtype=np.float32):
    data = np.random.default_rng(0).normal(size=shape) if value is None else np.full(shape, value)
    t = aidge_core.Tensor(np.ascontiguousarray(data, dtype))
    return t


def graph():
    fc = aidge_core.FC(3, 2, name="fc")
    g = aidge_core.sequential([fc])
    g.compile("cpu", aidge_core.dtype.float32, dims=[[4, 3]])
    return g


def node():
    return graph().get_node("fc")


def memory_core():
    core = _core.ExemplarMemoryCore("total", 8, [2], np.uint8)
    core.add_classes([0, 1], [np.zeros((2, 2), np.uint8), np.ones((3, 2), np.uint8)])
    return core


def reservoir_core():
    core = _core.ReservoirMemoryCore(4, [2], np.uint8, 0)
    core.add_batch(np.zeros((3, 2), np.uint8), np.array([0, 1, 2]))
    return core


def extras_memory_core():
    core = _core.ExemplarMemoryCore("total", 8, [2], np.uint8, {"z": 2})
    core.add_class(0, np.zeros((2, 2), np.uint8), {"z": np.ones((2, 2), np.float32)})
    return core


def extras_reservoir_core():
    core = _core.ReservoirMemoryCore(4, [2], np.uint8, 0, {"z": 2})
    core.add_batch(np.zeros((3, 2), np.uint8), np.array([0, 1, 2]), {"z": np.ones((3, 2), np.float32)})
    return core


def image(shape):
    return np.random.default_rng(1).normal(size=shape).astype(np.float32)


def sgd():
    return _core.FastSGD([tensor()], 0.9, 0.0)


def refuse(*_args, **_kwargs):
    raise RuntimeError("a registered implementation is never called by this test")


# name -> (callable factory, [(argument name, valid value factory)], required count)
# Factories make fresh objects per call: a call that changes its arguments changes
# no other call's.
ENTRY_POINTS = {
    "Distillation": (lambda: _core.Distillation,
                     [("temperature", lambda: 2.0), ("n_old", lambda: 1), ("form", lambda: "kl"),
                      ("name", lambda: "kd")], 0),
    "DistillationOp": (lambda: _core.DistillationOp,
                       [("temperature", lambda: 2.0), ("n_old", lambda: 1), ("form", lambda: "bce")], 0),
    "CrossEntropy": (lambda: _core.CrossEntropy, [("name", lambda: "ce")], 0),
    "CrossEntropyOp": (lambda: _core.CrossEntropyOp, [], 0),
    "AttentionDistillation": (lambda: _core.AttentionDistillation,
                              [("epsilon", lambda: 1e-12), ("name", lambda: "ad")], 0),
    "AttentionDistillationOp": (lambda: _core.AttentionDistillationOp, [("epsilon", lambda: 1e-12)], 0),
    "DistillationForm": (lambda: _core.DistillationForm, [("value", lambda: 0)], 1),
    "loss.distillation": (lambda: _core.loss.distillation,
                          [("student", tensor), ("teacher", tensor), ("temperature", lambda: 2.0),
                           ("n_old", lambda: 2), ("form", lambda: "kl"), ("scaling", lambda: 1.0),
                           ("accumulate", lambda: False)], 2),
    "loss.cross_entropy": (lambda: _core.loss.cross_entropy,
                           [("prediction", tensor), ("target", lambda: tensor(value=1 / 3)),
                            ("scaling", lambda: 1.0), ("accumulate", lambda: False)], 2),
    "loss.attention_distillation": (lambda: _core.loss.attention_distillation,
                                    [("features", lambda: tensor((2, 3, 4, 4))), ("weights", lambda: tensor((2, 3))),
                                     ("teacher_map", lambda: tensor((2, 4, 4))), ("scaling", lambda: 1.0),
                                     ("accumulate", lambda: False), ("epsilon", lambda: 1e-12)], 3),
    "class_means": (lambda: _core.class_means,
                    [("features", lambda: np.eye(4, 3)), ("labels", lambda: np.array([0, 0, 1, 1])),
                     ("n_classes", lambda: 2)], 3),
    "nme_classify": (lambda: _core.nme_classify,
                     [("features", lambda: np.eye(4, 3)), ("means", lambda: np.eye(2, 3))], 2),
    "herding_selection": (lambda: _core.herding_selection,
                          [("features", lambda: np.eye(4, 3) + 0.1), ("m", lambda: 2)], 2),
    "closest_to_mean_selection": (lambda: _core.closest_to_mean_selection,
                                  [("features", lambda: np.eye(4, 3) + 0.1), ("m", lambda: 2)], 2),
    "random_selection": (lambda: _core.random_selection, [("n", lambda: 5), ("m", lambda: 2), ("seed", lambda: 1)], 3),
    "accelerate": (lambda: _core.accelerate, [("graph", graph)], 1),
    "is_accelerated": (lambda: _core.is_accelerated, [("node", node)], 1),
    "unsupported_reason": (lambda: _core.unsupported_reason, [("node", node)], 1),
    "set_skip_backward": (lambda: _core.set_skip_backward, [("node", node), ("skip", lambda: True)], 1),
    "fast_kernels": (lambda: _core.fast_kernels, [], 0),
    "blas_config": (lambda: _core.blas_config, [], 0),
    "ExemplarMemoryCore": (lambda: _core.ExemplarMemoryCore,
                           [("policy", lambda: "total"), ("budget", lambda: 8), ("sample_shape", lambda: [2]),
                            ("dtype", lambda: np.uint8), ("extras", lambda: {"z": 2})], 4),
    "ExemplarMemoryCore.quotas": (lambda: memory_core().quotas, [("n_classes", lambda: 3)], 1),
    "ExemplarMemoryCore.reduce": (lambda: memory_core().reduce, [("n_classes_after", lambda: 3)], 1),
    "ExemplarMemoryCore.add_class": (lambda: memory_core().add_class,
                                     [("label", lambda: 5), ("samples", lambda: np.zeros((1, 2), np.uint8)),
                                      ("extras", lambda: None)], 2),
    "ExemplarMemoryCore.add_classes": (lambda: memory_core().add_classes,
                                       [("labels", lambda: [5]), ("samples", lambda: [np.zeros((1, 2), np.uint8)]),
                                        ("extras", lambda: None)], 2),
    "ExemplarMemoryCore.extra": (lambda: extras_memory_core().extra, [("name", lambda: "z")], 1),
    "ExemplarMemoryCore.samples": (lambda: memory_core().samples, [], 0),
    "ExemplarMemoryCore.to_bytes": (lambda: memory_core().to_bytes, [], 0),
    "ExemplarMemoryCore.save": (lambda: memory_core().save, [("path", lambda: "memory.bin")], 1),
    "ExemplarMemoryCore.load": (lambda: _core.ExemplarMemoryCore.load, [("path", lambda: "missing.bin")], 1),
    "ExemplarMemoryCore.from_bytes": (lambda: _core.ExemplarMemoryCore.from_bytes,
                                      [("data", lambda: memory_core().to_bytes()), ("source", lambda: "x")], 1),
    "ReservoirMemoryCore": (lambda: _core.ReservoirMemoryCore,
                            [("capacity", lambda: 4), ("sample_shape", lambda: [2]), ("dtype", lambda: np.uint8),
                             ("seed", lambda: 0), ("extras", lambda: {"z": 2})], 3),
    "ReservoirMemoryCore.add_batch": (lambda: reservoir_core().add_batch,
                                      [("samples", lambda: np.zeros((2, 2), np.uint8)),
                                       ("labels", lambda: np.array([3, 4])), ("extras", lambda: None)], 2),
    "ReservoirMemoryCore.extra": (lambda: extras_reservoir_core().extra, [("name", lambda: "z")], 1),
    "ReservoirMemoryCore.to_bytes": (lambda: reservoir_core().to_bytes, [], 0),
    "ReservoirMemoryCore.from_bytes": (lambda: _core.ReservoirMemoryCore.from_bytes,
                                       [("data", lambda: reservoir_core().to_bytes()), ("source", lambda: "x")], 1),
    "ReservoirMemoryCore.samples": (lambda: reservoir_core().samples, [], 0),
    "ReservoirMemoryCore.labels": (lambda: reservoir_core().labels, [], 0),
    "ReservoirMemoryCore.save": (lambda: reservoir_core().save, [("path", lambda: "reservoir.bin")], 1),
    "ReservoirMemoryCore.load": (lambda: _core.ReservoirMemoryCore.load, [("path", lambda: "missing.bin")], 1),
    "blas_core_name": (lambda: _core.blas_core_name, [], 0),
    "is_fused_away": (lambda: _core.is_fused_away, [("node", node)], 1),
    "conv2d_forward": (lambda: _core.conv2d_forward,
                       [("x", lambda: image((2, 3, 6, 6))), ("w", lambda: image((4, 3, 3, 3))), ("bias", lambda: None),
                        ("stride", lambda: [1, 1]), ("padding", lambda: [1, 1, 1, 1]), ("algorithm", lambda: "auto")],
                       2),
    "conv2d_backward": (lambda: _core.conv2d_backward,
                        [("x", lambda: image((2, 3, 6, 6))), ("w", lambda: image((4, 3, 3, 3))),
                         ("dy", lambda: image((2, 4, 6, 6))), ("stride", lambda: [1, 1]),
                         ("padding", lambda: [1, 1, 1, 1]), ("algorithm", lambda: "auto"), ("bias", lambda: False)], 3),
    "conv_algorithms": (lambda: _core.conv_algorithms, [], 0),
    "conv_autotune_mode": (lambda: _core.conv_autotune_mode, [], 0),
    "conv_autotune_file": (lambda: _core.conv_autotune_file, [], 0),
    "conv_autotune_table": (lambda: _core.conv_autotune_table, [], 0),
    "set_conv_autotune_mode": (lambda: _core.set_conv_autotune_mode, [("mode", lambda: "off")], 1),
    "FastSGD": (lambda: _core.FastSGD, [("parameters", lambda: [tensor()]), ("momentum", lambda: 0.9),
                                        ("weight_decay", lambda: 1e-4)], 3),
    "FastSGD.update": (lambda: sgd().update, [("lr", lambda: 0.1)], 1),
    "FastSGD.reset_grad": (lambda: sgd().reset_grad, [], 0),
}
for _op in ("DistillationOp", "CrossEntropyOp", "AttentionDistillationOp"):
    ENTRY_POINTS[f"{_op}.get_inputs_name"] = (lambda op=_op: getattr(_core, op).get_inputs_name, [], 0)
    ENTRY_POINTS[f"{_op}.get_outputs_name"] = (lambda op=_op: getattr(_core, op).get_outputs_name, [], 0)
    ENTRY_POINTS[f"register_{_op}"] = (lambda op=_op: getattr(_core, f"register_{op}"),
                                       [("key", lambda: "fuzz-backend"), ("function", lambda: refuse)], 2)
    ENTRY_POINTS[f"get_keys_{_op}"] = (lambda op=_op: getattr(_core, f"get_keys_{op}"), [], 0)
    ENTRY_POINTS[f"get_key_value_{_op}"] = (lambda op=_op: getattr(_core, f"get_key_value_{op}"),
                                            [("key", lambda: "cpu")], 1)


def public_callables():
    """Every public function of _core and _core.loss, and every public method
    (and constructor) of _core's classes."""
    names = set()
    for prefix, module in (("", _core), ("loss.", _core.loss)):
        for name in dir(module):
            value = getattr(module, name)
            if name.startswith("_") or not callable(value) or isinstance(value, type) and \
                    issubclass(value, BaseException):
                continue
            names.add(prefix + name)
            if isinstance(value, type):
                for member, attribute in vars(value).items():
                    if not member.startswith("_") and callable(getattr(value, member)) \
                            and not isinstance(attribute, property):
                        names.add(f"{name}.{member}")
    return names


def test_every_entry_point_is_fuzzed():
    missing = public_callables() - set(ENTRY_POINTS)
    assert not missing, f"entry points without a fuzzing entry: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_the_valid_call_of_each_entry_point_works(name, tmp_path, monkeypatch):
    """The baseline each fuzzed call departs from is itself accepted."""
    monkeypatch.chdir(tmp_path)
    if name.startswith("register_"):
        return  # registering would replace a backend for the rest of the session
    factory, params, _ = ENTRY_POINTS[name]
    try:
        factory()(*[make() for _, make in params])
    except ValueError as e:  # loading a missing file: a clear refusal is the expected answer
        assert name.endswith(".load") and "missing.bin" in str(e), e


JUNK = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 1, 2 ** 31, 2 ** 63, 2 ** 64, -2 ** 70, 2 ** 70, 0.0, -0.0, 1.5,
                     -2.5, 1e-45, 1e-300, 1e300, -1e39, 3.4e38, math.nan, math.inf, -math.inf, "", "x", "kl ",
                     "BCE", "cpu", b"kl", bytearray(b"AIDGEMEM"), [], [1, 2], ["a"], (2,), {}, {"a": 1}, 1j,
                     np.int64(3), np.float32(2.0), np.float64(math.nan), np.bool_(True), np.uint64(2 ** 64 - 1),
                     np.array([1.0, 2.0]), np.zeros((2, 2), np.complex64), np.array(["a"]),
                     np.zeros((0, 3)), object()]),
    st.integers(-2 ** 80, 2 ** 80), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4))

NO_VALUE = object()


def check_message(error, name, value=NO_VALUE):
    message = str(error)
    assert isinstance(error, (TypeError, ValueError)), f"{type(error).__name__}: {message}"
    assert not any(v in message for v in VAGUE), f"vague message: {message}"
    # an element of a list argument is named with its index: 'samples[0]'
    assert f"'{name}'" in message or f"'{name}[" in message, f"message does not name '{name}': {message}"
    if value is not NO_VALUE and not isinstance(value, (np.ndarray, list, tuple, dict, bytes, bytearray)):
        shown = repr(value)[:20]
        assert shown in message or type(value).__name__ in message, f"message does not show {shown}: {message}"


def call(name, args, kwargs):
    factory, _, _ = ENTRY_POINTS[name]
    return factory()(*args, **kwargs)


FUZZED = sorted(name for name, (_, params, _) in ENTRY_POINTS.items() if params)


@FUZZ
@given(name=st.sampled_from(FUZZED), data=st.data())
def test_one_bad_argument_is_named_with_its_value(name, data, tmp_path_factory):
    import os
    _, params, _ = ENTRY_POINTS[name]
    index = data.draw(st.integers(0, len(params) - 1))
    bad = data.draw(JUNK)
    if name.startswith("register_") and isinstance(bad, str) and bad in ("cpu", "cuda"):
        return  # would replace a real backend's implementation for the rest of the session
    args = [make() for _, make in params]
    args[index] = bad
    by_keyword = data.draw(st.booleans())
    here = os.getcwd()
    os.chdir(tmp_path_factory.getbasetemp())  # save(path) writes where it is told
    try:
        if by_keyword:
            call(name, [], {p: a for (p, _), a in zip(params, args)})
        else:
            call(name, args, {})
    except _core.CorruptFileError as e:  # a file or bytes were read: the message names their source
        source = f"'{bad}'" if params[index][0] == "path" else "'x'"
        assert params[index][0] in ("data", "path") and source in str(e), e
    except (TypeError, ValueError) as e:
        if params[index][0] == "path" and isinstance(bad, str) and f"'{bad}'" in str(e):
            return  # a file that cannot be opened or written, named
        check_message(e, params[index][0], bad)
    except RuntimeError as e:  # only the refusing registered function may raise this
        assert "never called" in str(e), f"RuntimeError: {e}"
    finally:
        os.chdir(here)


@pytest.mark.parametrize("name", FUZZED)
def test_a_missing_an_extra_and_an_unknown_argument_are_named(name):
    _, params, required = ENTRY_POINTS[name]
    args = [make() for _, make in params]
    if required:
        with pytest.raises(TypeError) as info:
            call(name, args[:required - 1], {})
        check_message(info.value, params[required - 1][0])
        assert "missing" in str(info.value)
    with pytest.raises(TypeError) as info:
        call(name, args + [1], {})
    assert f"at most {len(params)}" in str(info.value) and not any(v in str(info.value) for v in VAGUE)
    with pytest.raises(TypeError) as info:
        call(name, args, {"no_such_argument": 1})
    check_message(info.value, "no_such_argument")
    if params:
        with pytest.raises(TypeError) as info:
            call(name, args, {params[0][0]: args[0]})
        check_message(info.value, params[0][0])
        assert "twice" in str(info.value) or "multiple" in str(info.value)


INSTANCE_METHODS = sorted(n for n, (_, p, _) in ENTRY_POINTS.items() if not p and "." in n
                          and not n.startswith("loss.") and not n.split(".")[1].startswith("get_"))


@pytest.mark.parametrize("name", INSTANCE_METHODS)
def test_a_method_called_on_the_wrong_object_names_self(name):
    cls, method = name.split(".")
    with pytest.raises(TypeError) as info:
        getattr(getattr(_core, cls), method)(42)
    message = str(info.value)
    assert not any(v in message for v in VAGUE), message
    assert cls in message and "'self'" in message and "int" in message, message
