"""Aidge's CUDA backend for aidge_incremental: checks, then kernels.

``ensure_cuda_backend()`` is what ``--backend cuda`` calls before any work:
it either returns a :class:`CudaStatus` with everything in place, or raises
``RuntimeError`` naming the first missing piece -- the wheels, the CUDA 12
libraries, the NVIDIA driver, a GPU, or our own CUDA kernels
(``aidge_incremental._core_cuda``, built with ``AIDGE_INCREMENTAL_CUDA=1``).
Nothing here touches the CPU path, and nothing is imported from the CUDA
backend until every check has passed.

The driver is queried through ``libcuda.so.1`` directly (``cuInit``,
``cuDriverGetVersion``, ``cuDeviceGetCount``) so that a machine without a
driver or a GPU gets a one-line explanation instead of Aidge's
"CUDA driver version is insufficient" at the first allocation.
"""
import ctypes
import dataclasses
import importlib
import importlib.util
from typing import Optional, Tuple

from . import _cuda_preload

__all__ = ["BUILD_HINT", "CudaStatus", "INSTALL_HINT", "cuda_status", "ensure_cuda_backend"]

INSTALL_HINT = 'pip install "aidge_incremental[cuda]"'
BUILD_HINT = ("rebuild aidge_incremental with its CUDA kernels: "
              "AIDGE_INCREMENTAL_CUDA=1 pip install --no-build-isolation . "
              "(needs nvcc and the [cuda] extra installed first)")


@dataclasses.dataclass(frozen=True)
class CudaStatus:
    """What :func:`cuda_status` found; ``problem`` is None when CUDA is usable."""
    backend_wheel: bool
    libraries: Tuple[str, ...]
    driver_version: Optional[int] = None   # e.g. 13000 for CUDA 13.0
    device_count: Optional[int] = None
    kernels_built_with: Optional[int] = None
    problem: Optional[str] = None


def _version(v):
    return f"{v // 1000}.{(v % 1000) // 10}"


def _driver():
    """(driver version, device count) or a problem string."""
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        return None, None, (f"no NVIDIA driver on this machine: libcuda.so.1 cannot be "
                            f"loaded ({exc}); --backend cuda needs an NVIDIA GPU and its driver")
    rc = libcuda.cuInit(0)
    if rc != 0:
        # 100 CUDA_ERROR_NO_DEVICE, 35 CUDA_ERROR_INSUFFICIENT_DRIVER, 999 unknown
        return None, None, (f"the NVIDIA driver could not initialise CUDA (cuInit error {rc}"
                            f"{', no CUDA-capable device' if rc == 100 else ''})")
    version = ctypes.c_int(0)
    if libcuda.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return None, None, "cuDriverGetVersion failed"
    count = ctypes.c_int(0)
    if libcuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return version.value, 0, "no CUDA GPU found (cuDeviceGetCount = 0)"
    return version.value, count.value, None


def cuda_status() -> CudaStatus:
    """Check, without raising and without importing the CUDA backend."""
    try:
        wheel = importlib.util.find_spec("aidge_backend_cuda") is not None
    except (ImportError, ValueError):
        wheel = False
    libraries = tuple(sorted(_cuda_preload.loaded))
    if not wheel:
        return CudaStatus(False, libraries,
                          problem=f"aidge-backend-cuda==0.10.1 is not installed: {INSTALL_HINT}")
    if _cuda_preload.problems:
        return CudaStatus(True, libraries, problem=(
            "CUDA 12 libraries missing: " + "; ".join(_cuda_preload.problems)
            + f" -- {INSTALL_HINT}"))
    driver, count, problem = _driver()
    if problem is not None:
        return CudaStatus(True, libraries, driver, count, problem=problem)
    if driver < 12000:
        return CudaStatus(True, libraries, driver, count, problem=(
            f"the NVIDIA driver supports CUDA {_version(driver)}; Aidge's CUDA backend "
            "needs CUDA >= 12.0: update the driver"))
    if importlib.util.find_spec("aidge_incremental._core_cuda") is None:
        return CudaStatus(True, libraries, driver, count,
                          problem=f"aidge_incremental has no CUDA kernels: {BUILD_HINT}")
    return CudaStatus(True, libraries, driver, count)


_READY: Optional[CudaStatus] = None


def ensure_cuda_backend() -> CudaStatus:
    """Make Aidge's "cuda" backend and our CUDA kernels usable, or raise.

    Raises ``RuntimeError`` with the reason (no wheel, no CUDA 12 libraries,
    no driver, driver too old, no GPU, kernels not built, first allocation
    failed). Idempotent: later calls return the first successful status.
    """
    global _READY
    if _READY is not None:
        return _READY
    status = cuda_status()
    if status.problem is not None:
        raise RuntimeError(f"CUDA backend unavailable: {status.problem}")
    import aidge_core
    import numpy as np
    try:
        importlib.import_module("aidge_backend_cuda")
        core_cuda = importlib.import_module("aidge_incremental._core_cuda")
    except ImportError as exc:
        raise RuntimeError(f"CUDA backend unavailable: {exc}") from exc
    built = int(core_cuda.built_with_cuda)
    if status.driver_version < built:
        raise RuntimeError(
            f"CUDA backend unavailable: our CUDA kernels were compiled with CUDA "
            f"{_version(built)} but the driver supports CUDA {_version(status.driver_version)}: "
            f"update the driver, or {BUILD_HINT} with an older toolkit")
    probe = aidge_core.Tensor(np.zeros(1, dtype=np.float32))
    try:
        probe.set_backend("cuda")
    except RuntimeError as exc:
        raise RuntimeError(f"CUDA backend unavailable: the first allocation failed: {exc}") from exc
    _READY = dataclasses.replace(status, kernels_built_with=built)
    return _READY
