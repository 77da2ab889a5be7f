"""ONNX export of every step's model: checker, parity with Aidge, round trip."""
import aidge_core
import aidge_onnx
import numpy as np
import onnx
import pytest

import aidge_incremental as ai
from aidge_incremental.checkpoint import checkpoint_path
from aidge_incremental.cli import _method_from_checkpoint
from aidge_incremental.datasets import load_digits
from aidge_incremental.experiment import ExperimentConfig, run_experiment
from aidge_incremental.export import INPUT_NAME, load_metadata
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
        method, ckpt, _ = _method_from_checkpoint(checkpoint_path(out, t))
        step = scenario.step(t)
        x = digits.to_input(step.x_test)
        head_file, nme_file = out / "onnx" / f"step-{t:03d}.onnx", out / "onnx" / f"step-{t:03d}-nme.onnx"
        for path in (head_file, nme_file):
            onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        logits = run_onnx(head_file, x)[0]
        np.testing.assert_allclose(logits, method.model.logits(x), rtol=1e-5, atol=1e-5)
        meta = load_metadata(head_file)
        assert meta["classes"] == scenario.class_order[:step.n_seen].tolist()
        assert meta["input_divisor"] == 16.0
        scores, classes = run_onnx(nme_file, x)
        expected = scenario.original_labels(method.predict(x, "nme"))
        np.testing.assert_array_equal(classes, expected)
        # the export reproduces the run's own NME accuracy
        assert np.mean(classes == scenario.original_labels(step.y_test)) == pytest.approx(
            result.classifiers["nme"].acc_seen[t])


def test_exported_model_loads_back_into_aidge(exported_run):
    out, _ = exported_run
    method, _, _ = _method_from_checkpoint(checkpoint_path(out, 4))
    x = load_digits().to_input(load_digits().x_test[:16])
    graph = aidge_onnx.load_onnx(str(out / "onnx" / "step-004.onnx"))
    graph.compile("cpu", aidge_core.dtype.float32, dims=[[16, 1, 8, 8]])
    scheduler = aidge_core.SequentialScheduler(graph)
    scheduler.forward(data=[aidge_core.Tensor(x)])
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
