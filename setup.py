"""Build of aidge_incremental: setuptools drives CMake for the C++ core.

The CMake build tree lives in ``build/cmake-<key>/`` (key = interpreter and
Aidge location), so rebuilding after a change recompiles only what changed:
``pip install --no-build-isolation -e .`` or ``python setup.py build_ext --inplace``.
"""
import hashlib
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent


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
        ], check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run([cmake, "--build", str(build_dir), "--parallel", jobs], check=True)


setup(
    ext_modules=[CMakeExtension("aidge_incremental._core")],
    cmdclass={"build_ext": CMakeBuild},
)
