"""ONNX export of every step's model: checker, parity with Aidge, round trip, the NME
graph against a NumPy reference, digests, and the export/predict commands' outputs."""
import re

import aidge_core
import aidge_onnx
import numpy as np
import onnx
import pytest

import aidge_incremental as ai
from aidge_incremental.checkpoint import checkpoint_path
from aidge_incremental.cli import _method_from_checkpoint, main
from aidge_incremental.datasets import load_digits
from aidge_incremental.experiment import ExperimentConfig, run_experiment
from aidge_incremental.export import ABSTAIN, INPUT_NAME, IntegrityError, export_nme, load_metadata
from aidge_incremental.scenario import ClassIncrementalScenario


def run_onnx(path, x):
    try:
        import onnxruntime
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {INPUT_NAME: x})
    except ImportError:  # onnxruntime has no wheel for this platform
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(str(path)).run(None, {INPUT_NAME: x})


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = ExperimentConfig(method="icarl", epochs=3, output_dir=str(out), export_dir=str(out / "onnx"))
    return out, run_experiment(config)


def test_every_step_exports_match_the_aidge_model(exported_run):
    out, result = exported_run
    digits = load_digits()
    scenario = ClassIncrementalScenario(digits, 2, 2, seed=0)
    for t in range(scenario.n_steps):
        method, ckpt, _, _ = _method_from_checkpoint(checkpoint_path(out, t))
        step = scenario.step(t)
        x = digits.to_input(step.x_test)
        raw = np.asarray(step.x_test, np.float32)  # the scaling is the graph's first node
        head_file, nme_file = out / "onnx" / f"step-{t:03d}.onnx", out / "onnx" / f"step-{t:03d}-nme.onnx"
        for path in (head_file, nme_file):
            onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        logits = run_onnx(head_file, raw)[0]
        np.testing.assert_allclose(logits, method.model.logits(x), rtol=1e-5, atol=1e-5)
        meta = load_metadata(head_file)
        assert meta["classes"] == scenario.class_order[:step.n_seen].tolist()
        assert "input_divisor" not in meta
        scores, classes = run_onnx(nme_file, raw)
        expected = scenario.original_labels(method.predict(x, "nme"))
        np.testing.assert_array_equal(classes, expected)
        # the export reproduces the run's own NME accuracy
        assert np.mean(classes == scenario.original_labels(step.y_test)) == pytest.approx(
            result.classifiers["nme"].acc_seen[t])


def test_exported_model_loads_back_into_aidge(exported_run):
    out, _ = exported_run
    method, _, _, _ = _method_from_checkpoint(checkpoint_path(out, 4))
    raw = np.asarray(load_digits().x_test[:16], np.float32)
    x = load_digits().to_input(raw)
    graph = aidge_onnx.load_onnx(str(out / "onnx" / "step-004.onnx"))
    graph.compile("cpu", aidge_core.dtype.float32, dims=[[16, 1, 8, 8]])
    scheduler = aidge_core.SequentialScheduler(graph)
    scheduler.forward(data=[aidge_core.Tensor(raw)])
    output = np.asarray(graph.get_ordered_outputs()[0][0].get_operator().get_output(0))
    np.testing.assert_allclose(output, method.model.logits(x), rtol=1e-5, atol=1e-5)


def test_graph_with_distillation_node_exports_and_imports(tmp_path):
    fc = aidge_core.FC(4, 3, name="fc")
    kd = ai.Distillation(3.0, 2, "bce", name="kd")
    teacher = aidge_core.Producer(aidge_core.Tensor(np.ones((2, 3), np.float32)), "teacher")
    fc.add_child(kd, 0, 0)
    teacher.add_child(kd, 0, 1)
    graph = aidge_core.GraphView()
    for node in (fc, kd, teacher):
        graph.add(node)
    graph.compile("cpu", aidge_core.dtype.float32, dims=[[2, 4]])
    path = tmp_path / "kd.onnx"
    aidge_onnx.export_onnx(graph, str(path), enable_custom_op=True)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    node = next(n for n in model.graph.node if n.op_type == "Distillation")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs == {"temperature": 3.0, "n_old": 2, "form": b"bce"}
    loaded = aidge_onnx.load_onnx(str(path))
    ops = [n.get_operator() for n in loaded.get_nodes() if n.type() == "Distillation"]
    assert len(ops) == 1 and isinstance(ops[0], ai.DistillationOp)
    assert (ops[0].temperature, ops[0].n_old, ops[0].form) == (3.0, 2, "bce")


def test_nme_graph_is_the_nearest_mean_with_ties_and_zero_features(tmp_path):
    """The exported NME (bias-free FC + ArgMax) against a float64 NumPy nearest-mean reference:
    the same labels, exact ties to the first class, all-zero features abstain."""
    from aidge_incremental.models import IncrementalModel
    digits = load_digits()
    model = IncrementalModel("mlp", digits.input_shape, (16,), n_classes=3, seed=1)
    raw = np.asarray(digits.x_test, np.float32)
    features = model.features(digits.to_input(raw)).astype(np.float64)
    rng = np.random.default_rng(0)
    means = np.abs(rng.standard_normal((4, 16)))
    means[2] = means[1]  # an exact tie between classes 1 and 2: the first one wins
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    labels = np.array([7, 3, 5, 1])
    path = export_nme(model, tmp_path / "nme.onnx", means, [0, 1, 2, 3], labels, 16.0)
    zero = np.zeros((1, *digits.input_shape), np.float32)
    scores, classes = run_onnx(path, np.concatenate([raw, zero]))
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    distances = ((unit[:, None, :] - means[None]) ** 2).sum(-1)
    assert np.all(np.linalg.norm(features, axis=1) > 0), "the reference needs non-zero features"
    np.testing.assert_array_equal(classes[:-1], labels[distances.argmin(1)])
    assert 5 not in classes  # the tied duplicate of class 3 never wins
    np.testing.assert_allclose(scores[:-1, 1:], features @ means.T, rtol=1e-5, atol=1e-5)
    zero_features = model.features(zero)
    if not np.any(zero_features > 0):  # (biases are 0: an all-zero input gives all-zero features)
        assert classes[-1] == ABSTAIN
    with pytest.raises(ValueError, match="unit-norm"):
        export_nme(model, tmp_path / "x.onnx", 2 * means, [0, 1, 2, 3], labels, 16.0)


def _predicted(text):
    line = next(l for l in text.splitlines() if l.startswith("predicted:"))
    return np.array([int(v) for v in line.split()[1:]])


def test_export_and_predict_commands_print_the_models_predictions(exported_run, tmp_path, capsys):
    out, _ = exported_run
    ckpt = checkpoint_path(out, 4)
    method, checkpoint, _, _ = _method_from_checkpoint(ckpt)
    digits = load_digits()
    order = np.asarray(checkpoint.result["class_order"])
    keep = np.isin(digits.y_test, [0, 1])
    raw = digits.x_test[keep][:6]
    truth = digits.y_test[keep][:6]
    head = order[method.predict(digits.to_input(raw), "head")]
    nme = order[method.predict(digits.to_input(raw), "nme")]
    for extra, name, expected in (([], "head.onnx", head), (["--nme"], "nme.onnx", nme)):
        capsys.readouterr()
        assert main(["export", str(ckpt), str(tmp_path / name), *extra]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"wrote {tmp_path / name}") and "(step 4, 10 classes)" in out
        assert main(["predict", str(tmp_path / name), "--classes", "0", "1", "--count", "6"]) == 0
        text = capsys.readouterr().out
        np.testing.assert_array_equal(_predicted(text), expected)
        assert f"accuracy: {100 * np.mean(expected == truth):.1f}% on 6 samples" in text
    assert main(["predict", str(ckpt), "--count", "4", "--nme"]) == 0
    x4 = digits.to_input(digits.x_test[:4])
    np.testing.assert_array_equal(_predicted(capsys.readouterr().out), order[method.predict(x4, "nme")])


@pytest.mark.parametrize("args, message", [
    (["--count", "0"], "--count must be at least 1"),
    (["--count", "-1"], "--count must be at least 1"),
    (["--classes", "42"], r"no test sample of class\(es\) \[42\]"),
])
def test_predict_refuses_counts_and_classes_that_select_nothing(exported_run, tmp_path, capsys, args, message):
    out, _ = exported_run
    capsys.readouterr()
    assert main(["predict", str(out / "onnx" / "step-004.onnx"), *args]) == 2
    captured = capsys.readouterr()
    assert re.search(message, captured.err) and "nan" not in captured.out


def test_predict_refuses_flipped_truncated_or_undigested_onnx(exported_run, tmp_path, capsys):
    out, _ = exported_run
    source = out / "onnx" / "step-004.onnx"
    data = source.read_bytes()
    rng = np.random.default_rng(0)
    positions = rng.choice(len(data), size=20, replace=False)
    for i, position in enumerate(positions):  # single-byte flips anywhere in the file
        path = tmp_path / f"flip{i}.onnx"
        path.write_bytes(data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1:])
        (tmp_path / f"flip{i}.onnx.sha256").write_text(
            (out / "onnx" / "step-004.onnx.sha256").read_text().replace("step-004.onnx", path.name))
        capsys.readouterr()
        assert main(["predict", str(path), "--count", "3"]) == 2
        assert "does not match its SHA-256 digest" in capsys.readouterr().err
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[:len(data) // 2])
    (tmp_path / "cut.onnx.sha256").write_text(
        (out / "onnx" / "step-004.onnx.sha256").read_text().replace("step-004.onnx", "cut.onnx"))
    assert main(["predict", str(cut)]) == 2
    assert "truncated or modified" in capsys.readouterr().err
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(data)
    assert main(["predict", str(bare)]) == 2
    assert "no digest" in capsys.readouterr().err
    with pytest.raises(IntegrityError):
        load_metadata(bare)


@pytest.mark.parametrize("channels", [1, 3])
def test_a_normalised_dataset_exports_with_its_statistics_folded_in(tmp_path, rng, channels):
    """(x / divisor − mean_c) / std_c is the graph's first nodes: the exported head and NME
    classifier take raw samples and answer as the trained model on normalised inputs."""
    from aidge_incremental.datasets import Normalization, from_arrays
    x = rng.integers(0, 256, size=(120, channels, 6, 6)).astype(np.uint8)
    y = np.repeat(np.arange(4), 30)
    x[np.arange(120), y % channels, y // channels] //= 4  # a darker row per class
    stats = Normalization((0.45, 0.5, 0.55)[:channels], (0.25, 0.3, 0.2)[:channels])
    data = from_arrays(x, y, x[::3], y[::3], name="normalised").replace(normalization=stats)
    out = tmp_path / "run"
    run = run_experiment(ExperimentConfig(method="icarl", epochs=2, hidden=[16], memory=20, output_dir=str(out),
                                          export_dir=str(out / "onnx")), data)
    method = run.trained_method
    raw = np.asarray(data.x_test, np.float32)
    logits = run_onnx(out / "onnx" / "step-001.onnx", raw)[0]
    np.testing.assert_allclose(logits, method.model.logits(data.to_input(raw)), rtol=1e-5, atol=1e-5)
    assert np.abs(logits - method.model.logits(data.replace(normalization=None).to_input(raw))).max() > 1e-2
    classes = run_onnx(out / "onnx" / "step-001-nme.onnx", raw)[1]
    order = np.asarray(run.class_order)
    np.testing.assert_array_equal(classes, order[method.predict(data.to_input(raw), "nme")])
