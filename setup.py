"""Build of aidge_incremental: setuptools drives CMake for the C++ core.

The CMake build tree lives in ``build/cmake-<key>/`` (key = interpreter and
Aidge location), so rebuilding after a change recompiles only what changed:
``pip install --no-build-isolation -e .`` or ``python setup.py build_ext --inplace``.

``AIDGE_INCREMENTAL_CUDA=1`` also builds ``aidge_incremental._core_cuda``, the
CUDA kernels of our operators (needs nvcc and the ``[cuda]`` extra installed
first, hence ``--no-build-isolation``); ``AIDGE_INCREMENTAL_CUDA_ARCHITECTURES``
overrides the GPU architectures (CMake syntax, default "80-real;90").
Without it nothing CUDA is compiled or needed.

``AIDGE_INCREMENTAL_CMAKE_ARGS`` adds CMake arguments, e.g.
``-DAIDGE_INCREMENTAL_UNITY=OFF`` (one object per source: the quickest rebuild
after editing one file) or ``-DAIDGE_INCREMENTAL_PCH=OFF``.
"""
import hashlib
import importlib.util
import os
import pathlib
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent


CUDA = os.environ.get("AIDGE_INCREMENTAL_CUDA", "0").strip().lower() in ("1", "on", "true", "yes")


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


def _aidge_site_packages():
    spec = importlib.util.find_spec("aidge_core")
    if spec is None or spec.origin is None:
        sys.exit("aidge-core==0.10.1 must be installed to build aidge_incremental "
                 "(it provides the C++ headers and CMake packages)")
    return pathlib.Path(spec.origin).resolve().parent.parent


def _cmake_executable():
    try:
        import cmake  # the PyPI 'cmake' build requirement
        return str(pathlib.Path(cmake.CMAKE_BIN_DIR) / "cmake")
    except ImportError:
        exe = shutil.which("cmake")
        if exe is None:
            sys.exit("CMake >= 3.18 is needed: pip install cmake")
        return exe


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        site = _aidge_site_packages()
        key = hashlib.sha1(f"{sys.executable}|{site}".encode()).hexdigest()[:10]
        build_dir = ROOT / "build" / f"cmake-{key}"
        build_dir.mkdir(parents=True, exist_ok=True)
        out_dir = pathlib.Path(self.get_ext_fullpath(ext.name)).resolve().parent
        out_dir.mkdir(parents=True, exist_ok=True)
        cmake = _cmake_executable()
        config = os.environ.get("AIDGE_INCREMENTAL_BUILD_TYPE", "Release")
        subprocess.run([
            cmake, "-S", str(ROOT), "-B", str(build_dir),
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DAIDGE_SITE_PACKAGES={site}",
            f"-DCMAKE_BUILD_TYPE={config}",
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            # Always explicit, so that a build tree once configured with CUDA
            # goes back to CPU-only when the variable is unset.
            f"-DAIDGE_INCREMENTAL_CUDA={'ON' if CUDA else 'OFF'}",
        ] + ([f"-DCMAKE_CUDA_ARCHITECTURES={os.environ['AIDGE_INCREMENTAL_CUDA_ARCHITECTURES']}"]
             if CUDA and os.environ.get("AIDGE_INCREMENTAL_CUDA_ARCHITECTURES") else [])
            + shlex.split(os.environ.get("AIDGE_INCREMENTAL_CMAKE_ARGS", "")),
            check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run([cmake, "--build", str(build_dir), "--parallel", jobs], check=True)


setup(
    # One CMake build produces both modules; the second build_extension call
    # finds nothing left to do.
    ext_modules=[CMakeExtension("aidge_incremental._core")]
    + ([CMakeExtension("aidge_incremental._core_cuda")] if CUDA else []),
    cmdclass={"build_ext": CMakeBuild},
)
