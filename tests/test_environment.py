"""The reproducibility record: what it holds, that it reflects the process, and
that every results.json carries it."""
import importlib.metadata
import json

import numpy as np

from aidge_incremental import environment as env_module
from aidge_incremental.environment import ENVIRONMENT_VARIABLES, PACKAGES, environment
from aidge_incremental.experiment import ExperimentConfig, run_experiment


def test_the_record_names_versions_blas_threads_and_command(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    record = environment(["aidge-incremental", "run", "--method", "lwf"])
    assert set(record["packages"]) == set(PACKAGES)
    assert record["packages"]["numpy"] == importlib.metadata.version("numpy") == np.__version__
    assert record["packages"]["aidge-core"] == importlib.metadata.version("aidge-core")
    assert record["variables"]["OPENBLAS_CORETYPE"] == "Haswell" and record["variables"]["OMP_WAIT_POLICY"] is None
    assert set(record["variables"]) == set(ENVIRONMENT_VARIABLES)
    assert record["command"] == ["aidge-incremental", "run", "--method", "lwf"]
    assert record["cpu"]["count"] >= 1 and 1 <= record["cpu"]["usable"] <= record["cpu"]["count"]
    # the OpenBLAS the C++ kernels call (scipy-openblas32), with the kernels it picked and its threads
    kernels = record["kernels_blas"]
    assert kernels["library"] == "openblas" and kernels["core_type"] and kernels["threads"] >= 1
    assert kernels["version"].startswith(importlib.metadata.version("scipy-openblas32")[:4])
    assert record["blas_config"].startswith("OpenBLAS") and kernels["core_type"] in record["blas_config"]
    json.dumps(record, allow_nan=False)  # JSON-able as results.json needs


def test_a_failing_git_does_not_fail_the_record(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("no git")
    monkeypatch.setattr(env_module.subprocess, "run", broken)
    assert environment()["source"]["git_commit"] is None


def test_results_json_holds_the_environment(tmp_path, digits):
    run_experiment(ExperimentConfig(method="finetune", epochs=1, output_dir=str(tmp_path)), digits)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["environment"]["kernels_blas"]["core_type"]
    assert saved["environment"]["packages"]["aidge-backend-cpu"] == importlib.metadata.version("aidge-backend-cpu")
