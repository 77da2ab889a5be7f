"""Fixtures of the export tests: a small trained ONNX export, and a C++ export folder
laid out as export_cpp writes one whose ``run_export`` is a script (no compiler needed)
that leaves a marker when it runs."""
import json
import pathlib
import sys

import pytest

from aidge_incremental.export.manifest import write_manifest

# A "binary" that answers like an export of a 10-class model on 8x8 digits: logit j is
# the sum of the sample's pixels if j == label else 0, the label being (sum of the
# pixels) % 10; it also records that it ran.
SCRIPT = """#!{python}
import pathlib, sys
import numpy as np
pathlib.Path({marker!r}).write_text("ran")
x = np.fromfile(sys.argv[1], np.{dtype}).reshape(-1, {size}).astype(np.float64)
logits = np.zeros((len(x), {outputs}), np.float32)
logits[np.arange(len(x)), x.sum(1).astype(np.int64) % {outputs}] = 1.0
logits.tofile(sys.argv[2])
"""


def write_fake_cpp_export(folder: pathlib.Path, marker: pathlib.Path, *, export_dtype="float32",
                          binary_ctype="float", outputs=10, classes=None, manifest_skip=()) -> pathlib.Path:
    """A C++ export folder (export.json, budget.json, model/aidge_incremental.json,
    model/run_export, MANIFEST.json) whose binary is a script writing ``marker``."""
    classes = list(range(outputs)) if classes is None else classes
    model = folder / "model"
    model.mkdir(parents=True)
    (folder / "export.json").write_text(json.dumps({
        "kind": "aidge_incremental C++ export", "classes": classes, "dtype": export_dtype,
        "input_shape": [1, 8, 8], "input_divisor": 16.0, "step": 4, "method": "finetune"}))
    (folder / "budget.json").write_text(json.dumps({"dtype": export_dtype, "exemplar_bytes": 0}))
    (model / "aidge_incremental.json").write_text(json.dumps({
        "inputs": [{"name": "input", "ctype": binary_ctype, "size": 64, "dims": [1, 1, 8, 8]}],
        "outputs": [{"name": "logits", "ctype": "float", "size": outputs, "dims": [1, outputs]}],
        "activation_bytes": 0, "dtype": "int8" if binary_ctype == "int8_t" else "float32"}))
    (model / "main.cpp").write_text("// sources\n")
    binary = model / "run_export"
    binary.write_text(SCRIPT.format(python=sys.executable, marker=str(marker), size=64, outputs=outputs,
                                    dtype="int8" if binary_ctype == "int8_t" else "float32"))
    binary.chmod(0o755)
    files = [p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() not in manifest_skip]
    write_manifest(folder, files)
    return folder


@pytest.fixture
def fake_cpp_export(tmp_path):
    """``make(**options) -> (folder, marker)``."""
    counter = iter(range(1000))

    def make(**options):
        k = next(counter)
        marker = tmp_path / f"ran-{k}"
        return write_fake_cpp_export(tmp_path / f"export-{k}", marker, **options), marker
    return make


@pytest.fixture(scope="module")
def onnx_run(tmp_path_factory):
    """A 2-step finetune MLP run on digits exported to ONNX."""
    from aidge_incremental.experiment import ExperimentConfig, run_experiment
    out = tmp_path_factory.mktemp("onnx_run")
    result = run_experiment(ExperimentConfig(method="icarl", memory=40, epochs=2, initial=5, increment=5,
                                             hidden=[16], export_dir=str(out / "onnx")))
    return out / "onnx", result
