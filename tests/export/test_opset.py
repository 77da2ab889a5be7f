"""The ONNX opset: by default the lowest that holds every operator, else the one
asked for (refused, naming the lowest, when too low); each file run with
onnxruntime against the Aidge model."""
import json

import numpy as np
import onnx
import pytest
from onnx import helper

from aidge_incremental.cli import main
from aidge_incremental.export.onnx import MIN_OPSET, export_model, export_nme
from aidge_incremental.models import IncrementalModel

ort = pytest.importorskip("onnxruntime")


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})


def opset_of(path):
    model = onnx.load(str(path))
    return {o.domain: o.version for o in model.opset_import}[""], model.ir_version


# the lowest opset of each graph, and the operator that sets it
LOWEST = [("mlp", (1, 8, 8), MIN_OPSET),  # Gemm, Relu, Mul, Flatten: opset 7 holds them
          ("lenet", (1, 12, 12), 8),      # MaxPool with its indices output: MaxPool-8
          ("resnet20", (3, 8, 8), 11)]    # Pad with its pads as an input: Pad-11


@pytest.mark.parametrize("arch,shape,lowest", LOWEST, ids=[a for a, _, _ in LOWEST])
def test_default_is_the_lowest_opset_and_runs_in_onnxruntime(tmp_path, rng, arch, shape, lowest):
    model = IncrementalModel(arch, shape, n_classes=4, seed=1)
    path = export_model(model, tmp_path / "m.onnx", [3, 1, 0, 2], 255.0)
    assert opset_of(path) == (lowest, helper.find_min_ir_version_for([helper.make_opsetid("", lowest)]))
    raw = (rng.random((5,) + shape) * 255).astype(np.float32)
    logits = run_onnx(path, raw)[0]
    np.testing.assert_allclose(logits, model.logits(raw / np.float32(255)), rtol=1e-5, atol=1e-5)
    if lowest > MIN_OPSET:  # one below is refused, naming the lowest
        with pytest.raises(ValueError, match=f"opset {lowest - 1} cannot hold this model .*the lowest that can "
                                             f"is {lowest}"):
            export_model(model, tmp_path / "low.onnx", [3, 1, 0, 2], 255.0, opset=lowest - 1)
        assert not (tmp_path / "low.onnx").exists()


@pytest.mark.parametrize("opset", [13, 17, onnx.defs.onnx_opset_version()])
def test_an_asked_opset_is_written_and_runs(tmp_path, rng, opset):
    model = IncrementalModel("lenet", (1, 12, 12), n_classes=3, seed=2)
    raw = (rng.random((6, 1, 12, 12)) * 16).astype(np.float32)
    path = export_model(model, tmp_path / "m.onnx", [0, 1, 2], 16.0, opset=opset)
    assert opset_of(path)[0] == opset
    np.testing.assert_allclose(run_onnx(path, raw)[0], model.logits(raw / 16), rtol=1e-5, atol=1e-5)
    # the NME graph (ArgMax, Gather) too, against the nearest mean computed here
    means = np.abs(rng.standard_normal((3, model.feature_dim))).astype(np.float32)  # means of ReLU features
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    nme = export_nme(model, tmp_path / "n.onnx", means, [0, 1, 2], [7, 8, 9], 16.0, opset=opset)
    assert opset_of(nme)[0] == opset
    features = model.features(raw / 16).astype(np.float64)
    expected = np.array([7, 8, 9])[(features @ means.T.astype(np.float64)).argmax(axis=1)]
    np.testing.assert_array_equal(run_onnx(nme, raw)[1], expected)


def test_out_of_range_opsets_are_refused(tmp_path):
    model = IncrementalModel("mlp", (4,), n_classes=2)
    for opset in (MIN_OPSET - 1, onnx.defs.onnx_opset_version() + 1):
        with pytest.raises(ValueError, match=f"opset {opset} is out of range"):
            export_model(model, tmp_path / "m.onnx", [0, 1], opset=opset)


def test_cli_export_and_run_take_opset(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--method", "finetune", "--epochs", "1", "--initial", "5", "--increment", "5",
                 "--output-dir", str(out), "--export-dir", str(out / "onnx"), "--opset", "12",
                 "--no-progress"]) == 0
    assert opset_of(out / "onnx" / "step-001.onnx")[0] == 12
    ckpt = out / "checkpoints" / "step-001.ckpt"
    assert main(["export", str(ckpt), str(tmp_path / "low.onnx")]) == 0
    assert opset_of(tmp_path / "low.onnx")[0] == MIN_OPSET  # the MLP's lowest
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "low.onnx"), "--count", "40"]) == 0
    from_onnx = capsys.readouterr().out.splitlines()[0]
    assert main(["predict", str(ckpt), "--count", "40"]) == 0  # the checkpoint's own model: the same answers
    assert capsys.readouterr().out.splitlines()[0] == from_onnx
    assert main(["export", str(ckpt), str(tmp_path / "x.onnx"), "--opset", "3"]) == 2
    assert "opset 3 is out of range" in capsys.readouterr().err
    assert main(["run", "--epochs", "1", "--opset", "12", "--export-dir", str(tmp_path / "c"),
                 "--export-target", "cpp", "--output-dir", str(tmp_path / "r")]) == 2
    assert "opset applies to export_target onnx" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["opset"] == 12
