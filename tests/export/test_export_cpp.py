"""C++ export (aidge_export_cpp 0.10.1) of trained steps: each folder builds with its own
CMake and its binary runs; outputs are compared with Aidge (float logits, int8 graph, NME)."""
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("aidge_export_cpp")
if shutil.which("cmake") is None or shutil.which("c++") is None and shutil.which("g++") is None:
    pytest.skip("the C++ export tests need cmake and a C++ compiler", allow_module_level=True)

from aidge_incremental.checkpoint import checkpoint_path  # noqa: E402
from aidge_incremental.cli import _method_from_checkpoint, main  # noqa: E402
from aidge_incremental.datasets import from_arrays, load_digits  # noqa: E402
from aidge_incremental.experiment import ExperimentConfig, build_method, run_experiment  # noqa: E402
from aidge_incremental.export import ExportError, check_manifest, cpp  # noqa: E402
from aidge_incremental.export.graphs import logits_graph  # noqa: E402
from aidge_incremental.export.quantize import quantize_graph, quantize_inputs, run_quantized  # noqa: E402
from aidge_incremental.export.step import FLOAT_TOLERANCE, export_cpp  # noqa: E402
from aidge_incremental.scenario import ClassIncrementalScenario  # noqa: E402

pytestmark = pytest.mark.slow  # builds C++ projects

CONFIG = dict(method="icarl", initial=6, increment=4, epochs=8, hidden=[32], memory=120, seed=0)


@pytest.fixture(scope="module")
def cpp_run(tmp_path_factory):
    """A 2-step iCaRL MLP run on digits, exporting every step to C++ (float32)."""
    out = tmp_path_factory.mktemp("cpp_run")
    config = ExperimentConfig(**CONFIG, output_dir=str(out), export_dir=str(out / "cpp"), export_target="cpp")
    run_experiment(config)
    return out


@pytest.fixture(scope="module")
def int8_export(cpp_run, tmp_path_factory):
    """The last step exported in int8 through the CLI."""
    folder = tmp_path_factory.mktemp("int8") / "step1-int8"
    assert main(["export", "--target", "cpp-int8", str(checkpoint_path(cpp_run, 1)), str(folder)]) == 0
    return folder


def _step_inputs(t):
    digits = load_digits()
    scenario = ClassIncrementalScenario(digits, CONFIG["initial"], CONFIG["increment"], seed=CONFIG["seed"])
    step = scenario.step(t)
    return digits, scenario, np.asarray(step.x_test, np.float32)


def test_every_step_builds_and_matches_aidge(cpp_run):
    for t in range(2):
        folder = cpp_run / "cpp" / f"step-{t:03d}"
        check_manifest(folder)
        method, _, _, _ = _method_from_checkpoint(checkpoint_path(cpp_run, t))
        digits, scenario, raw = _step_inputs(t)
        x = digits.to_input(raw)
        logits = cpp.run(folder / "model", raw)[0]
        reference = method.model.logits(x)
        assert np.abs(logits - reference).max() <= FLOAT_TOLERANCE
        np.testing.assert_array_equal(logits.argmax(1), reference.argmax(1))
        # the NME classifier in C++ answers the Python classifier's labels
        labels = cpp.run(folder / "nme", raw)[1][:, 0]
        np.testing.assert_array_equal(labels, scenario.original_labels(method.predict(x, "nme")))
        budget = json.loads((folder / "budget.json").read_text())
        assert budget["exemplar_bytes"] == method.replay_memory.nbytes > 0
        n_seen = len(scenario.class_order[:method.model.n_classes])
        float_params = 4 * (64 * 32 + 32 + 32 * n_seen + n_seen)
        assert float_params <= budget["model"]["weights_bytes"] <= float_params + 256
        assert budget["model"]["code_bytes"] > 0 and budget["model"]["activation_bytes"] >= 4 * 64


def test_the_folder_builds_with_its_own_cmake_and_runs(cpp_run, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(cpp_run / "cpp" / "step-001" / "model", copy)
    (copy / cpp.BINARY).unlink()
    binary = cpp.build(copy)
    import subprocess
    done = subprocess.run([str(binary)], capture_output=True, text=True, check=True)
    assert done.stdout.count(":") == 1 and len(done.stdout.split()) == 1 + 10  # the baked sample's 10 logits


def test_int8_mlp_is_bit_exact_with_aidges_quantized_graph(cpp_run, int8_export):
    method, _, _, _ = _method_from_checkpoint(checkpoint_path(cpp_run, 1))
    digits = load_digits()
    raw = np.asarray(digits.x_test, np.float32)  # the whole test set
    x = digits.to_input(raw)
    # Aidge's own int8 graph, quantized again from the same exemplars (PTQ is deterministic)
    graph = quantize_graph(logits_graph(method.model, digits.max_value, scale=False, cpp=True),
                           digits.to_input(method.replay_memory.samples()))
    x_int8 = quantize_inputs(x)
    aidge_int8 = run_quantized(graph, x_int8)
    exported = cpp.run(int8_export / "model", x_int8)[0]
    np.testing.assert_array_equal(exported, aidge_int8)
    assert np.mean(exported.argmax(1) == method.model.logits(x).argmax(1)) >= 0.99
    budget = json.loads((int8_export / "budget.json").read_text())
    float_budget = json.loads((cpp_run / "cpp" / "step-001" / "budget.json").read_text())
    assert budget["model"]["weights_bytes"] < float_budget["model"]["weights_bytes"] / 3
    assert budget["model"]["calibration_samples"] == len(method.replay_memory) == CONFIG["memory"]


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """A LeNet step on digits upsampled to 16x16 (8x8 is too small for two conv blocks)."""
    digits = load_digits()
    up = lambda a: np.kron(np.asarray(a).reshape(-1, 8, 8), np.ones((2, 2), np.float32))[:, None]  # noqa: E731
    data = from_arrays(up(digits.x_train), digits.y_train, up(digits.x_test), digits.y_test, max_value=16)
    scenario = ClassIncrementalScenario(data, 4, 6, seed=0)
    method = build_method(ExperimentConfig(method="icarl", model="lenet", hidden=[32], epochs=3, memory=40),
                          data.input_shape)
    method.learn(scenario.step(0), data)
    return method, scenario, data


def test_lenet_float_export_matches_aidge(lenet, tmp_path, monkeypatch):
    method, scenario, data = lenet
    raw = np.asarray(scenario.step(0).x_test, np.float32)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    export_cpp(method.model, tmp_path / "lenet", scenario.class_order, data.max_value, raw)  # NME: MLP tests
    logits = cpp.run(tmp_path / "lenet" / "model", raw)[0]
    reference = method.model.logits(data.to_input(raw))
    assert np.abs(logits - reference).max() <= FLOAT_TOLERANCE
    np.testing.assert_array_equal(logits.argmax(1), reference.argmax(1))
    info = cpp.project_info(tmp_path / "lenet" / "model")
    assert len(info["outputs"]) == 1, "MaxPooling's index outputs are not model outputs"
    assert list((tmp_path / "cwd").iterdir()) == [], "nothing written to the working directory"


def test_int8_lenet_is_refused_naming_the_upstream_defect(lenet, tmp_path):
    method, scenario, data = lenet
    raw = np.asarray(scenario.step(0).x_test[:8], np.float32)
    with pytest.raises(ExportError, match="aidge_export_cpp 0.10.1 computes wrong int8 convolutions"):
        export_cpp(method.model, tmp_path / "lenet8", scenario.class_order, data.max_value, raw, dtype="int8",
                   calibration=method.replay_memory.samples())
    assert not (tmp_path / "lenet8").exists()
    assert [p.name for p in tmp_path.iterdir()] == [], "nothing is left behind"


def test_predict_serves_a_cpp_export_and_refuses_a_tampered_one(cpp_run, int8_export, tmp_path, capsys):
    method, checkpoint, _, _ = _method_from_checkpoint(checkpoint_path(cpp_run, 1))
    digits = load_digits()
    order = np.asarray(checkpoint.result["class_order"])
    x = digits.to_input(digits.x_test[:5])
    for folder, extra, expected in ((cpp_run / "cpp" / "step-001", [], order[method.predict(x, "head")]),
                                    (cpp_run / "cpp" / "step-001", ["--nme"], order[method.predict(x, "nme")]),
                                    (int8_export, ["--nme"], order[method.predict(x, "nme")])):
        capsys.readouterr()
        assert main(["predict", str(folder), "--count", "5", *extra]) == 0
        line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("predicted:"))
        np.testing.assert_array_equal([int(v) for v in line.split()[1:]], expected)
    # int8 head: its own labels, which agree with the float model's on most samples
    assert main(["predict", str(int8_export), "--count", "50"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("predicted:"))
    assert np.mean(np.array([int(v) for v in line.split()[1:]])
                   == order[method.predict(digits.to_input(digits.x_test[:50]), "head")]) >= 0.9
    for name, damage in (("weights", "flip"), ("binary", "truncate"), ("main", "flip")):
        copy = tmp_path / name
        shutil.copytree(cpp_run / "cpp" / "step-001", copy)
        target = {"weights": next((copy / "model" / "dnn" / "src" / "parameters").glob("*.cpp")),
                  "binary": copy / "model" / cpp.BINARY, "main": copy / "nme" / "main.cpp"}[name]
        data = target.read_bytes()
        target.write_bytes(data[:len(data) // 2] if damage == "truncate"
                           else data[:100] + bytes([data[100] ^ 0x01]) + data[101:])
        assert main(["predict", str(copy), "--count", "3"]) == 2
        err = capsys.readouterr().err
        assert str(target) in err and ("SHA-256" in err or "truncated" in err)
    (tmp_path / "weights" / "MANIFEST.json").unlink()
    assert main(["predict", str(tmp_path / "weights")]) == 2
    assert "MANIFEST.json is missing" in capsys.readouterr().err


def test_cpp_export_refuses_what_it_cannot_do(cpp_run, tmp_path, capsys):
    ckpt = str(checkpoint_path(cpp_run, 1))
    assert main(["export", ckpt, str(tmp_path / "x"), "--target", "cpp", "--nme"]) == 2
    assert "--nme applies to --target onnx" in capsys.readouterr().err
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    assert main(["export", "--target", "cpp", ckpt, str(occupied)]) == 2
    assert "is not an aidge_incremental C++ export" in capsys.readouterr().err
    assert (occupied / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="needs an export_dir"):
        ExperimentConfig(export_target="cpp")
    with pytest.raises(ValueError, match="calibrated on the replay memory"):
        ExperimentConfig(method="lwf", export_dir=str(tmp_path), export_target="cpp-int8")
    assert main(["run", "--method", "lwf", "--export-dir", str(tmp_path / "e"), "--export-target", "cpp-int8",
                 "--output-dir", str(tmp_path / "r")]) == 2
    assert "calibrated on the replay memory" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    finetune = build_method(ExperimentConfig(method="finetune", hidden=[32], epochs=1), (1, 8, 8))
    finetune.model.grow(2)
    with pytest.raises(ExportError, match="keeps no exemplars"):
        export_cpp(finetune.model, tmp_path / "ft", [0, 1], 16.0, np.zeros((2, 1, 8, 8)), dtype="int8")


def test_a_received_binary_is_refused_until_rebuilt_here(cpp_run, tmp_path, capsys):
    """A folder whose binary was swapped (MANIFEST rewritten to match, as anyone handing
    us a folder can do) is not run; export --rebuild compiles its sources with our own
    CMake project, records the new binary, and predict then serves the same labels."""
    from aidge_incremental.export.manifest import write_manifest
    original = cpp_run / "cpp" / "step-001"
    capsys.readouterr()
    assert main(["predict", str(original), "--count", "8"]) == 0
    expected = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("predicted:"))
    received = tmp_path / "received"
    shutil.copytree(original, received)
    marker = tmp_path / "ran"
    (received / "model" / cpp.BINARY).write_text(f"#!/bin/sh\ntouch {marker}\n")
    (received / "model" / "CMakeLists.txt").write_text(f'execute_process(COMMAND touch {marker})\n')
    (received / "MANIFEST.json").unlink()
    write_manifest(received, [p for p in received.rglob("*") if p.is_file()])
    assert main(["predict", str(received), "--count", "8"]) == 2
    assert f"export --rebuild {received}" in capsys.readouterr().err and not marker.exists()
    assert main(["export", "--rebuild", str(received)]) == 0
    assert not marker.exists(), "the folder's own CMake files ran"
    check_manifest(received)
    assert main(["predict", str(received), "--count", "8"]) == 0
    assert next(l for l in capsys.readouterr().out.splitlines() if l.startswith("predicted:")) == expected
    assert not marker.exists()
    # a main.cpp that is not the one we generate is not compiled
    (received / "model" / "main.cpp").write_text('#include <cstdlib>\nint main() { return std::system("true"); }\n')
    (received / "MANIFEST.json").unlink()
    write_manifest(received, [p for p in received.rglob("*") if p.is_file()])
    assert main(["export", "--rebuild", str(received)]) == 2
    assert "is not the main.cpp aidge_incremental writes" in capsys.readouterr().err

def test_normalised_exports_fold_the_statistics_and_int8_refuses_them(lenet, tmp_path, monkeypatch):
    """Fashion-MNIST and CIFAR are normalised by default: the float32 C++ projects take raw
    samples and match Aidge on normalised inputs; int8 (inputs round(127·raw/divisor)) says
    it cannot carry the statistics."""
    from aidge_incremental.datasets import Normalization
    method, scenario, data = lenet
    stats = Normalization((0.3,), (0.4,))
    normalised = data.replace(normalization=stats)
    raw = np.asarray(scenario.step(0).x_test, np.float32)
    monkeypatch.chdir(tmp_path)
    export_cpp(method.model, tmp_path / "lenet", scenario.class_order, data.max_value, raw, normalization=stats)
    logits = cpp.run(tmp_path / "lenet" / "model", raw)[0]
    reference = method.model.logits(normalised.to_input(raw))
    assert np.abs(logits - reference).max() <= FLOAT_TOLERANCE
    info = json.loads((tmp_path / "lenet" / "export.json").read_text())
    assert info["input_normalization"] == {"mean": [0.3], "std": [0.4]}
    with pytest.raises(ExportError, match="cannot carry a per-channel normalisation"):
        export_cpp(method.model, tmp_path / "lenet8", scenario.class_order, data.max_value, raw[:4], dtype="int8",
                   calibration=method.replay_memory.samples(), normalization=stats)
    assert not (tmp_path / "lenet8").exists()


def test_a_three_channel_normalisation_exports_to_cpp(tmp_path, monkeypatch):
    from aidge_incremental.datasets import Normalization
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(60, 3, 4, 4)).astype(np.uint8)
    y = np.repeat(np.arange(3), 20)
    stats = Normalization((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))  # CIFAR-10's
    data = from_arrays(x, y, x, y, name="rgb").replace(normalization=stats)
    method = build_method(ExperimentConfig(method="icarl", hidden=[8], epochs=1, memory=9, initial=3),
                          data.input_shape)
    method.learn(ClassIncrementalScenario(data, 3, 3, seed=0).step(0), data)
    monkeypatch.chdir(tmp_path)
    raw = x[:16].astype(np.float32)
    export_cpp(method.model, tmp_path / "rgb", [0, 1, 2], data.max_value, raw, normalization=stats,
               nme=(method.nme.means, method.nme.classes))
    logits = cpp.run(tmp_path / "rgb" / "model", raw)[0]
    assert np.abs(logits - method.model.logits(data.to_input(raw))).max() <= FLOAT_TOLERANCE
