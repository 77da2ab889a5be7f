"""Aidge's CUDA backend: preloading of the CUDA 12 wheels, the clear failure of
ensure_cuda_backend() without a driver/GPU, the CUDA kernels' build, and --
on a machine with a GPU only -- our CUDA kernels against the CPU ones and an
independent NumPy float64 reference.

Tests needing the CUDA wheels run them in a separate interpreter that has
them (AIDGE_INCREMENTAL_CUDA_PYTHON, default <repo>/.venv-cuda/bin/python):
installing aidge-backend-cuda where the CUDA 12 libraries are missing breaks
`import aidge_core`, so it never shares the main test environment.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import aidge_core
import aidge_incremental as ai
from aidge_incremental.backend import _cuda_preload, cuda
from distillation_reference import REFERENCE

ROOT = pathlib.Path(__file__).resolve().parents[2]


def cuda_python():
    """An interpreter with aidge-backend-cuda and the nvidia wheels, or None."""
    candidate = os.environ.get("AIDGE_INCREMENTAL_CUDA_PYTHON") or str(ROOT / ".venv-cuda" / "bin" / "python")
    if not os.path.exists(candidate):
        return None
    probe = subprocess.run(
        [candidate, "-c", "import importlib.util as u, sys; "
                          "sys.exit(u.find_spec('aidge_backend_cuda') is None or u.find_spec('nvidia.cuda_runtime') is None)"],
        capture_output=True)
    return candidate if probe.returncode == 0 else None


def run_in(python, code, cwd, extra_path=()):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *map(str, extra_path)]))
    env.pop("LD_LIBRARY_PATH", None)  # the point: no library path set by hand
    return subprocess.run([python, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


needs_cuda_python = pytest.mark.skipif(cuda_python() is None,
                                       reason="no interpreter with aidge-backend-cuda + nvidia wheels")


def gpu_ready():
    try:
        cuda.ensure_cuda_backend()
        return True
    except RuntimeError:
        return False


# --------------------------------------------------------------- no GPU needed

def test_preload_does_nothing_on_a_cpu_only_install():
    if cuda.cuda_status().backend_wheel:
        pytest.skip("aidge-backend-cuda is installed here")
    assert _cuda_preload.loaded == {} and _cuda_preload.problems == []


def test_ensure_cuda_backend_raises_a_clear_error_here():
    status = cuda.cuda_status()
    if status.problem is None:
        pytest.skip("CUDA is usable on this machine")
    with pytest.raises(RuntimeError, match="CUDA backend unavailable: ") as info:
        cuda.ensure_cuda_backend()
    assert status.problem in str(info.value)
    # the CPU path is untouched: a CPU graph still runs after the failed check
    s = np.array([[1.0, 2.0, 0.5]], np.float32)
    value = ai.loss.tensor_value(ai.loss.distillation(aidge_core.Tensor(s), aidge_core.Tensor(-s), 2.0, 0, "kl"))
    assert np.isclose(value, REFERENCE["kl"](s, -s, 2.0, 3), rtol=1e-5)


@needs_cuda_python
def test_import_works_in_a_cuda_environment_thanks_to_preloading(tmp_path):
    python = cuda_python()
    # Without the preload, the CUDA wheel makes aidge_core itself unimportable...
    bare = run_in(python, "import aidge_core", tmp_path)
    assert bare.returncode != 0 and ".so.12" in bare.stderr
    # ... with it, our package (hence aidge_core and the CUDA backend) imports.
    result = run_in(python, """
        import json, aidge_incremental, aidge_backend_cuda
        from aidge_incremental.backend import cuda, _cuda_preload
        status = cuda.cuda_status()
        try:
            cuda.ensure_cuda_backend()
            error = None
        except RuntimeError as exc:
            error = str(exc)
        print(json.dumps({"loaded": _cuda_preload.loaded, "problem": status.problem,
                          "driver": status.driver_version, "error": error}))
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for library in ("libcudart.so.12", "libcublas.so.12", "libcublasLt.so.12", "libcudnn.so.9"):
        assert "nvidia" in report["loaded"][library], report
    if report["driver"] is None:  # this machine: no driver
        assert report["error"].startswith("CUDA backend unavailable: no NVIDIA driver"), report


@pytest.mark.slow
@needs_cuda_python
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc")
def test_cuda_kernels_compile_and_register(tmp_path):
    """Configure the CUDA option into a fresh build tree, build _core_cuda only
    (sm_90 SASS), load it beside the backend and find our "cuda" registrations."""
    cmake = pytest.importorskip("cmake")
    python = cuda_python()
    site = subprocess.run([python, "-c", "import importlib.util as u, os; "
                                         "print(os.path.dirname(os.path.dirname(u.find_spec('aidge_core').origin)))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    exe = str(pathlib.Path(cmake.CMAKE_BIN_DIR) / "cmake")
    build, out = tmp_path / "build", tmp_path / "out"
    configure = subprocess.run([exe, "-S", str(ROOT), "-B", str(build), f"-DPython_EXECUTABLE={python}",
                                f"-DAIDGE_SITE_PACKAGES={site}", "-DAIDGE_INCREMENTAL_CUDA=ON",
                                "-DCMAKE_CUDA_ARCHITECTURES=90-real", f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out}"],
                               capture_output=True, text=True)
    assert configure.returncode == 0, configure.stdout[-3000:] + configure.stderr[-3000:]
    compiled = subprocess.run([exe, "--build", str(build), "--target", "_core_cuda", "--parallel", "2"],
                              capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stdout[-5000:] + compiled.stderr[-3000:]
    (module,) = out.glob("_core_cuda*.so")
    result = run_in(python, f"""
        import importlib.util, json, sys
        import aidge_incremental
        spec = importlib.util.spec_from_file_location("aidge_incremental._core_cuda", {str(module)!r})
        core_cuda = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(core_cuda)
        core = aidge_incremental._core
        print(json.dumps({{"keys": {{op: sorted(getattr(core, "get_keys_" + op)())
                                   for op in ("DistillationOp", "CrossEntropyOp", "AttentionDistillationOp")}},
                          "built_with": core_cuda.built_with_cuda,
                          "runtime": core_cuda.runtime_version(), "kernels": list(core_cuda.kernels)}}))
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for op, keys in report["keys"].items():
        assert "cuda" in keys and "cpu" in keys, (op, report)
    assert report["kernels"] == ["Distillation", "CrossEntropy", "AttentionDistillation"]
    assert report["built_with"] >= 12000 and 12000 <= report["runtime"] < 13000, report


# ----------------------------------------------------------- GPU machine only

def to_numpy(tensor):
    copy = tensor.clone()
    copy.to_backend("cpu")
    return np.array(copy)


def loss_node_on(backend, dtype, node, inputs, gamma, grad_of=(0,)):
    """Value and d(gamma * loss)/d input 0 of a loss ``node`` fed by Producers
    of ``inputs``, compiled and scheduled on ``backend`` (``grad_of``: the inputs
    whose gradients are returned, one array each after the value)."""
    graph = aidge_core.GraphView()
    graph.add(node)
    for index, array in enumerate(inputs):
        producer = aidge_core.Producer(aidge_core.Tensor(array), f"in{index}")
        producer.add_child(node, 0, index)
        graph.add(producer)
    graph.compile(backend, dtype)
    scheduler = aidge_core.SequentialScheduler(graph)
    scheduler.forward()
    op = node.get_operator()
    seed = aidge_core.Tensor(np.array([gamma], inputs[0].dtype))
    seed.to_backend(backend)
    op.get_output(0).grad.copy_from(seed)
    scheduler.backward()
    return (to_numpy(op.get_output(0))[0], *(to_numpy(op.get_input(i).grad) for i in grad_of))


def distillation_on(backend, dtype, s, t, temperature, n_old, form, gamma):
    return loss_node_on(backend, dtype, ai.Distillation(temperature, n_old, form), [s, t], gamma)


def cross_entropy_reference(s, y):
    """mean_b sum_j y_bj (lse(s_b) - s_bj), float64."""
    s, y = np.asarray(s, np.float64), np.asarray(y, np.float64)
    m = s.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(s - m).sum(axis=1, keepdims=True))
    return float(np.mean(np.sum(y * (lse - s), axis=1)))


def attention_reference(a, alpha, qt, eps):
    """LwM: mean_b || relu(sum_c alpha_c A_c)/||.|| - Q_t/||Q_t|| ||_1, float64."""
    a, alpha, qt = (np.asarray(x, np.float64) for x in (a, alpha, qt))
    batch = a.shape[0]
    q = np.maximum(np.einsum("bc,bchw->bhw", alpha, a), 0.0).reshape(batch, -1)
    t = qt.reshape(batch, -1)
    u = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), eps)
    v = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), eps)
    return float(np.mean(np.abs(u - v).sum(axis=1)))


needs_gpu = pytest.mark.skipif(not gpu_ready(), reason="needs an NVIDIA GPU, its driver and the CUDA kernels")
DTYPES = pytest.mark.parametrize("np_dtype, aidge_dtype", [(np.float32, aidge_core.dtype.float32),
                                                           (np.float64, aidge_core.dtype.float64)])


@needs_gpu
@pytest.mark.parametrize("form", ["kl", "bce"])
@DTYPES
def test_distillation_cuda_matches_cpu(rng, form, np_dtype, aidge_dtype):
    for batch, cols_s, cols_t, n_old, temperature, scale in [
            (1, 1, 1, 0, 2.0, 1.0), (7, 12, 10, 4, 0.5, 3.0), (128, 100, 90, 90, 2.0, 10.0),
            (300, 1000, 1000, 0, 10.0, 80.0), (33, 65, 65, 64, 1.0, 40.0)]:
        s = np.clip(rng.normal(0, scale, (batch, cols_s)), -80, 80).astype(np_dtype)
        t = np.clip(rng.normal(0, scale, (batch, cols_t)), -80, 80).astype(np_dtype)
        gamma = 0.7
        cpu_value, cpu_grad = distillation_on("cpu", aidge_dtype, s, t, temperature, n_old, form, gamma)
        gpu_value, gpu_grad = distillation_on("cuda", aidge_dtype, s, t, temperature, n_old, form, gamma)
        case = f"B={batch} Cs={cols_s} Ct={cols_t} n_old={n_old} T={temperature}"
        np.testing.assert_allclose(gpu_value, cpu_value, rtol=1e-5, atol=1e-6, err_msg=case)
        np.testing.assert_allclose(gpu_grad, cpu_grad, rtol=1e-5, atol=1e-7, err_msg=case)
        used = n_old or min(cols_s, cols_t)
        np.testing.assert_allclose(gpu_value, REFERENCE[form](s, t, temperature, used),
                                   rtol=1e-5, atol=1e-6, err_msg=case)
        assert np.all(gpu_grad[:, used:] == 0), case


@needs_gpu
def test_distillation_cuda_refuses_non_finite_logits():
    s = np.array([[1.0, np.nan, 0.0]], np.float32)
    with pytest.raises(Exception, match="non-finite"):
        distillation_on("cuda", aidge_core.dtype.float32, s, np.zeros_like(s), 2.0, 0, "kl", 1.0)


@needs_gpu
@DTYPES
def test_cross_entropy_cuda_matches_cpu(rng, np_dtype, aidge_dtype):
    for batch, classes, scale in [(1, 1, 1.0), (7, 10, 3.0), (128, 100, 10.0), (300, 1000, 80.0)]:
        s = np.clip(rng.normal(0, scale, (batch, classes)), -80, 80).astype(np_dtype)
        y = rng.dirichlet(np.ones(classes), batch).astype(np_dtype)  # soft targets, rows sum to 1
        y[::3] = np.eye(classes, dtype=np_dtype)[rng.integers(0, classes, len(y[::3]))]  # and one-hot rows
        results = {b: loss_node_on(b, aidge_dtype, ai._core.CrossEntropy(), [s, y], 0.7)
                   for b in ("cpu", "cuda")}
        (cpu_value, cpu_grad), (gpu_value, gpu_grad) = results["cpu"], results["cuda"]
        case = f"B={batch} C={classes}"
        np.testing.assert_allclose(gpu_value, cpu_value, rtol=1e-5, atol=1e-6, err_msg=case)
        np.testing.assert_allclose(gpu_grad, cpu_grad, rtol=1e-5, atol=1e-7, err_msg=case)
        np.testing.assert_allclose(gpu_value, cross_entropy_reference(s, y), rtol=1e-5, atol=1e-6,
                                   err_msg=case)


@needs_gpu
@DTYPES
def test_attention_distillation_cuda_matches_cpu(rng, np_dtype, aidge_dtype):
    eps = 1e-12
    for batch, channels, height, width in [(1, 1, 1, 1), (4, 3, 5, 7), (32, 64, 8, 8), (8, 16, 32, 32)]:
        a = rng.normal(0, 1, (batch, channels, height, width)).astype(np_dtype)
        alpha = rng.normal(0, 1, (batch, channels)).astype(np_dtype)
        qt = np.maximum(rng.normal(0, 1, (batch, height, width)), 0).astype(np_dtype)
        results = {b: loss_node_on(b, aidge_dtype, ai._core.AttentionDistillation(eps), [a, alpha, qt], 0.7,
                                   grad_of=(0, 1)) for b in ("cpu", "cuda")}
        (cpu_value, cpu_grad, cpu_dalpha), (gpu_value, gpu_grad, gpu_dalpha) = results["cpu"], results["cuda"]
        case = f"B={batch} C={channels} H={height} W={width}"
        np.testing.assert_allclose(gpu_value, cpu_value, rtol=1e-5, atol=1e-6, err_msg=case)
        np.testing.assert_allclose(gpu_grad, cpu_grad, rtol=1e-5, atol=1e-7, err_msg=case)
        np.testing.assert_allclose(gpu_dalpha, cpu_dalpha, rtol=1e-5, atol=1e-7 * max(1, np.abs(cpu_dalpha).max()),
                                   err_msg=case)  # the Grad-CAM weights' gradient (LwM's exact gradient)
        np.testing.assert_allclose(gpu_value, attention_reference(a, alpha, qt, eps), rtol=1e-5,
                                   atol=1e-6, err_msg=case)
