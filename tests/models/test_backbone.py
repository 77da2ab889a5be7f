"""--backbone: a feature extractor started from an ONNX file through aidge_onnx,
checked against the model it came from and against onnxruntime; frozen or
fine-tuned; trained, checkpointed, resumed and exported by a run."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from aidge_incremental.cli import main
from aidge_incremental.experiment import ExperimentConfig, run_experiment
from aidge_incremental.export.onnx import export_model
from aidge_incremental.models import IncrementalModel
from aidge_incremental.models.backbone import BackboneError
from aidge_incremental.options import ConfigError

SHAPE = (1, 16, 16)


@pytest.fixture(scope="module")
def digits16(tmp_path_factory, digits):
    """The digits, 16x16 (each pixel repeated 2x2), as a .npz a run can read."""
    path = tmp_path_factory.mktemp("data") / "digits16.npz"
    up = lambda x: np.kron(x, np.ones((1, 1, 2, 2), x.dtype))  # noqa: E731
    np.savez(path, x_train=up(digits.x_train), y_train=digits.y_train, x_test=up(digits.x_test),
             y_test=digits.y_test)
    return path


def helper_cnn(path, rng, classifier=False):
    """A CNN written with the onnx helper API: padded conv, ReLU, max-pool, conv,
    BatchNorm, ReLU, a residual Add, global average pooling, flatten (and a Gemm
    classifier when asked)."""
    def tensor(name, shape, low=None):
        value = rng.standard_normal(shape) * 0.3 if low is None else rng.random(shape) + low
        return numpy_helper.from_array(value.astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3], name="stem"),
             helper.make_node("Relu", ["c1"], ["r1"], name="stem/relu"),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c2", "s", "bb", "m", "v"], ["n2"], epsilon=1e-5),
             helper.make_node("Relu", ["n2"], ["r2"]),
             helper.make_node("Add", ["r2", "p1"], ["a2"]),
             helper.make_node("GlobalAveragePool", ["a2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"], axis=1)]
    inits = [tensor("w1", (6, 1, 3, 3)), tensor("b1", (6,)), tensor("w2", (6, 6, 3, 3)), tensor("s", (6,), 0.5),
             tensor("bb", (6,)), tensor("m", (6,)), tensor("v", (6,), 0.5)]
    out = "f"
    if classifier:
        nodes.append(helper.make_node("Gemm", ["f", "wc", "bc"], ["y"], transB=1, name="classifier"))
        inits += [tensor("wc", (7, 6)), tensor("bc", (7,))]
        out = "y"
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *SHAPE])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 7 if classifier else 6])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def test_a_helper_built_cnn_computes_what_onnxruntime_computes(tmp_path, rng):
    ort = pytest.importorskip("onnxruntime")
    path = helper_cnn(tmp_path / "cnn.onnx", rng)
    model = IncrementalModel("backbone", SHAPE, n_classes=3, path=str(path))
    assert [layer.kind for layer in model.layers] == ["conv", "relu", "maxpool", "conv", "bn", "relu", "add", "gap",
                                                      "flatten", "flatten"]
    assert model.feature_dim == 6 and model.layers[0].name == "bb_stem" and model.layers[1].name == "bb_stem_relu"
    x = rng.random((9, *SHAPE)).astype(np.float32)
    reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(model.features(x), reference, rtol=1e-5, atol=1e-5)
    # cut before the file's own classifier
    with_head = helper_cnn(tmp_path / "classifier.onnx", rng, classifier=True)
    assert IncrementalModel("backbone", SHAPE, n_classes=2, path=str(with_head)).feature_dim == 7
    cut = IncrementalModel("backbone", SHAPE, n_classes=2, path=str(with_head), output="f")
    assert cut.feature_dim == 6 and "bb_classifier" not in {layer.name for layer in cut.layers}


def test_the_projects_own_export_starts_the_same_features(tmp_path, rng):
    lenet = IncrementalModel("lenet", SHAPE, n_classes=4, seed=5)
    path = export_model(lenet, tmp_path / "lenet.onnx", [0, 1, 2, 3], 16.0)  # with its Mul(1/16) input scaling
    model = IncrementalModel("backbone", SHAPE, n_classes=2, path=str(path), output="features")
    x = rng.random((6, *SHAPE)).astype(np.float32)
    np.testing.assert_array_equal(model.features(x), lenet.features(x))  # the scaling is the dataset's to_input


def train_run(tmp_path, digits16, backbone, **options):
    config = ExperimentConfig(dataset="npz", data_dir=str(digits16), backbone=str(backbone), method="finetune",
                              epochs=2, initial=5, increment=5, output_dir=str(tmp_path), **options)
    return run_experiment(config)


@pytest.mark.parametrize("freeze", [True, False])
def test_frozen_or_fine_tuned(tmp_path, rng, digits16, freeze):
    path = helper_cnn(tmp_path / "cnn.onnx", rng)
    start = IncrementalModel("backbone", SHAPE, path=str(path)).state_dict()
    result = train_run(tmp_path / "run", digits16, path, freeze_backbone=freeze)
    trained = result.trained_method.model.state_dict()
    backbone = [k for k in start if k.startswith("bb_")]
    changed = [k for k in backbone if not np.array_equal(start[k], trained[k])]
    first_step = [row["loss"] for row in result.epochs if row["step"] == 0]
    assert first_step[1] < first_step[0]  # it learns, frozen or not
    if freeze:  # weights and BatchNorm statistics as loaded
        assert changed == []
    else:
        assert {"bb_stem_w", "bb_c2_w", "bb_n2_scale", "bb_n2_batch_mean"} <= set(changed)


def test_a_backbone_run_resumes_and_exports(tmp_path, digits16, rng, capsys):
    lenet_run = run_experiment(ExperimentConfig(dataset="npz", data_dir=str(digits16), model="lenet",
                                                method="finetune", epochs=1, initial=10, increment=10))
    backbone = export_model(lenet_run.trained_method.model, tmp_path / "pretrained.onnx", list(range(10)), 16.0)
    args = ["run", "--dataset", "npz", "--data-dir", str(digits16), "--backbone", str(backbone),
            "--backbone-output", "features", "--method", "icarl", "--memory", "100", "--epochs", "2",
            "--initial", "5", "--increment", "5", "--no-progress"]
    assert main(args + ["--output-dir", str(tmp_path / "whole")]) == 0
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())
    assert whole["config"]["model"] == "backbone" and whole["config"]["backbone_output"] == "features"
    # the pretrained features separate the digits: the first step beats chance by far
    assert whole["classifiers"]["nme"]["acc_seen"][0] > 0.8
    assert main(["run", "--resume", str(tmp_path / "whole" / "checkpoints" / "step-000.ckpt"), "--output-dir",
                 str(tmp_path / "resumed"), "--no-progress"]) == 0
    resumed = json.loads((tmp_path / "resumed" / "results.json").read_text())
    assert resumed["classifiers"] == whole["classifiers"]
    ckpt = tmp_path / "whole" / "checkpoints" / "step-001.ckpt"
    assert main(["export", str(ckpt), str(tmp_path / "step1.onnx")]) == 0
    capsys.readouterr()
    x = np.load(digits16)["x_test"][:30]
    np.save(tmp_path / "x.npy", x)
    assert main(["predict", str(tmp_path / "step1.onnx"), "--input", str(tmp_path / "x.npy")]) == 0
    from_onnx = capsys.readouterr().out
    assert main(["predict", str(ckpt), "--input", str(tmp_path / "x.npy")]) == 0
    assert capsys.readouterr().out == from_onnx


def test_unsupported_operators_and_options_are_refused_before_the_run(tmp_path, rng, digits16, capsys):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], name="conv"),
             helper.make_node("Sigmoid", ["c"], ["s"], name="squash"),
             helper.make_node("Flatten", ["s"], ["f"], axis=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *SHAPE])],
                              [helper.make_tensor_value_info("f", TensorProto.FLOAT, ["N", 784])],
                              [numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w")])
    path = tmp_path / "sigmoid.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(BackboneError, match="node 'squash' is a Sigmoid, which the backbone does not take"):
        IncrementalModel("backbone", SHAPE, path=str(path))
    out = tmp_path / "run"
    assert main(["run", "--dataset", "npz", "--data-dir", str(digits16), "--backbone", str(path),
                 "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "is a Sigmoid" in err and not out.exists()
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(BackboneError, match="is not a valid ONNX file"):
        IncrementalModel("backbone", SHAPE, path=str(tmp_path / "junk.onnx"))
    with pytest.raises(BackboneError, match="has no node 'nope'"):
        IncrementalModel("backbone", SHAPE, path=str(helper_cnn(tmp_path / "ok.onnx", rng)), output="nope")
    with pytest.raises(ConfigError, match="backbone replaces the model"):
        ExperimentConfig(backbone="x.onnx", model="resnet20")
    with pytest.raises(ConfigError, match="apply with a backbone"):
        ExperimentConfig(freeze_backbone=True)
