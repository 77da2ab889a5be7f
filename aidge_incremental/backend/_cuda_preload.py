"""Make the CUDA 12 libraries of the ``nvidia-*`` wheels loadable.

Imported with ``aidge_incremental`` (``backend/__init__.py``) BEFORE ``aidge_core``: when
aidge-backend-cuda is installed, ``import aidge_core`` imports it too
(``aidge_core.export_utils``), and its extension needs ``libcudart.so.12``,
``libcublas(Lt).so.12`` and ``libcudnn.so.9``. pip puts those in
``site-packages/nvidia/*/lib``, a folder the dynamic loader never searches;
loading them here by full path with ``RTLD_GLOBAL`` lets the loader resolve
them by their SONAME later -- no ``LD_LIBRARY_PATH`` for users to set (the
approach PyTorch takes with the same wheels).

Nothing happens when aidge-backend-cuda is not installed (the CPU-only
install). This module must not import aidge_core.
"""
import ctypes
import importlib.util
import os
import warnings

# (wheel, import name of its package, library), in dependency order.
# nvidia-cuda-nvrtc-cu12 (a dependency of nvidia-cublas-cu12) is optional:
# cuBLAS opens libnvrtc lazily, by SONAME, for a few kernels it JIT-compiles.
REQUIRED = (
    ("nvidia-cuda-runtime-cu12", "nvidia.cuda_runtime", "libcudart.so.12"),
    ("nvidia-cublas-cu12", "nvidia.cublas", "libcublasLt.so.12"),
    ("nvidia-cublas-cu12", "nvidia.cublas", "libcublas.so.12"),
    ("nvidia-cudnn-cu12", "nvidia.cudnn", "libcudnn.so.9"),
)
OPTIONAL = (
    ("nvidia-cuda-nvrtc-cu12", "nvidia.cuda_nvrtc", "libnvrtc.so.12"),
)

#: library -> path it was loaded from ("system" when found on the loader's path)
loaded = {}
#: human-readable problems, one per required library that could not be loaded
problems = []


def _wheel_library(package, library):
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "lib", library)
        if os.path.isfile(path):
            return path
    return None


def _load(wheel, package, library):
    path = _wheel_library(package, library)
    try:
        if path is not None:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            loaded[library] = path
        else:
            # A system CUDA 12 install on the loader's path serves as well.
            ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL)
            loaded[library] = "system"
        return None
    except OSError as exc:
        return f"{library} ({wheel}): {exc}"


def preload():
    """Load the CUDA 12 libraries if aidge-backend-cuda is installed."""
    if loaded or problems:
        return
    try:
        if importlib.util.find_spec("aidge_backend_cuda") is None:
            return
    except (ImportError, ValueError):
        return
    for wheel, package, library in REQUIRED:
        problem = _load(wheel, package, library)
        if problem is not None:
            problems.append(problem)
    for wheel, package, library in OPTIONAL:
        _load(wheel, package, library)
    if problems:
        warnings.warn(
            "aidge-backend-cuda is installed but these CUDA 12 libraries cannot be loaded: "
            + "; ".join(problems)
            + ". `import aidge_core` will fail: pip install \"aidge_incremental[cuda]\" "
            "(brings the nvidia-* wheels) or pip uninstall aidge-backend-cuda.",
            RuntimeWarning, stacklevel=2)


preload()
