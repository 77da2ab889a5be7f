"""One OpenMP runtime for Aidge's CPU kernels (aidge_incremental/backend/_openmp_preload.py).

Checked with the dynamic loader's own record of its symbol bindings
(LD_DEBUG=bindings) in fresh interpreters: after ``import aidge_incremental``,
the OpenMP calls of Aidge's CPU backend, of aidge_learning and of our core bind
to one and the same libgomp. The control imports aidge_core first: with
aidge-quantization installed (the ``test`` extra), the backend's calls then bind
to aidge_quantization's own libgomp, which is the defect the preload avoids.
"""
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's LD_DEBUG")

BINDING = re.compile(r"binding file (\S+) \[\d+\] to (\S+) \[\d+\]: normal symbol `GOMP_parallel'")


def gomp_bindings(tmp_path, code, stderr=None):
    """{library basename: basename of the libgomp its GOMP_parallel binds to};
    the interpreter's stderr is appended to the list ``stderr`` when given."""
    out = tmp_path / "ld"
    env = dict(os.environ, LD_DEBUG="bindings", LD_DEBUG_OUTPUT=str(out))
    done = subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path,
                          capture_output=True, text=True)
    if stderr is not None:
        stderr.append(done.stderr)
    bindings = {}
    for log in tmp_path.glob("ld.*"):
        for match in BINDING.finditer(log.read_text(errors="replace")):
            bindings[pathlib.Path(match.group(1)).name] = pathlib.Path(match.group(2)).name
    return bindings


def test_import_aidge_incremental_first_gives_one_openmp_runtime(tmp_path):
    stderr = []
    bindings = gomp_bindings(tmp_path, "import aidge_incremental, aidge_incremental.backend.cpu, aidge_learning",
                             stderr)
    assert "OpenMP" not in stderr[0]
    ours = [lib for lib in bindings if lib.startswith("_core.")]
    assert ours and "lib_aidge_backend_cpu.so" in bindings and "lib_aidge_learning.so" in bindings, bindings
    runtimes = {bindings[lib] for lib in ours + ["lib_aidge_backend_cpu.so", "lib_aidge_learning.so"]}
    assert len(runtimes) == 1, bindings


def test_without_the_preload_aidge_quantization_takes_the_backend(tmp_path):
    if importlib.util.find_spec("aidge_quantization") is None:
        pytest.skip("aidge-quantization is not installed: a single libgomp either way")
    stderr = []
    bindings = gomp_bindings(tmp_path, "import aidge_core, aidge_incremental.backend.cpu", stderr)
    assert bindings["lib_aidge_backend_cpu.so"] == bindings["lib_aidge_quantization.so"], bindings
    assert "RuntimeWarning: several OpenMP runtimes" in stderr[0]  # and the user is told
    assert bindings["lib_aidge_backend_cpu.so"] != bindings[next(b for b in bindings if b.startswith("_core."))]


def test_openmp_runtimes_lists_the_loaded_libgomp():
    from aidge_incremental.backend.cpu import openmp_runtimes
    import aidge_core  # noqa: F401
    runtimes = openmp_runtimes()
    assert runtimes and all("gomp" in pathlib.Path(r).name for r in runtimes)


@pytest.mark.parametrize("user", [{}, {"OMP_WAIT_POLICY": "active"}, {"GOMP_SPINCOUNT": "5"}])
def test_wait_policy_is_a_short_spin_unless_the_user_chose(user):
    """libgomp reads its waiting policy when it loads: importing the package sets
    GOMP_SPINCOUNT before any OpenMP runtime loads, unless the user set a policy."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(user)
    code = ("import os, aidge_incremental\n"
            "from aidge_incremental.backend import _openmp_preload as p\n"
            "print(os.environ.get('GOMP_SPINCOUNT'), p.wait_policy)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    spin, policy = out.stdout.split()
    if user:
        assert policy == "user" and spin == user.get("GOMP_SPINCOUNT", "None")
    else:
        assert spin == "1000" and policy == "GOMP_SPINCOUNT=1000"
