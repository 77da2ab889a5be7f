"""What a run's figures depend on besides its configuration: package versions,
the BLAS library and the kernels it picked, threads, the machine, the command.

Results move in their last digits with the BLAS kernel (OpenBLAS picks SkylakeX
or Haswell kernels by CPU unless ``OPENBLAS_CORETYPE`` says otherwise) and with
the thread count; :func:`environment` records them, and every ``results.json``
holds its dict under ``"environment"``. Ground floor: the standard library,
NumPy and threadpoolctl; Aidge and the C++ core are only consulted if already
imported (nothing is imported for the sake of recording).
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from typing import Optional

__all__ = ["ENVIRONMENT_VARIABLES", "PACKAGES", "environment"]

#: distributions whose versions are recorded (None when not installed)
PACKAGES = ("aidge_incremental", "aidge-core", "aidge-backend-cpu", "aidge-learning", "aidge-onnx",
            "aidge-backend-cuda", "numpy", "scipy-openblas32", "threadpoolctl", "torch")
#: environment variables that change kernels or threads (None when unset)
ENVIRONMENT_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                         "OMP_WAIT_POLICY", "OMP_PROC_BIND", "CUDA_VISIBLE_DEVICES")


def _version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _source() -> dict:
    """Where this package was imported from, and its git commit when it is a checkout
    (an editable install's metadata version does not say which tree ran)."""
    folder = os.path.dirname(os.path.abspath(__file__))
    out = {"path": folder, "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5)
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            status = subprocess.run(["git", "-C", folder, "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=5)
            out["git_dirty"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _thread_pools() -> dict:
    """The BLAS and OpenMP libraries loaded in this process (threadpoolctl): for
    BLAS, its version, the kernel family it runs (``architecture``: the core type)
    and its threads. The C++ kernels call scipy-openblas32's library
    (``kernels_blas``); NumPy's own OpenBLAS is listed too."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - a dependency of the package
        return {"kernels_blas": None, "blas": [], "openmp": [], "error": "threadpoolctl is not installed"}
    blas, openmp, kernels = [], [], None
    for info in threadpool_info():
        entry = {"library": info.get("internal_api"), "version": info.get("version"),
                 "core_type": info.get("architecture"), "threads": info.get("num_threads"),
                 "threading_layer": info.get("threading_layer"), "file": info.get("filepath")}
        if info.get("user_api") == "blas":
            blas.append(entry)
            if "scipy_openblas32" in (info.get("filepath") or ""):
                kernels = entry
        elif info.get("user_api") == "openmp":
            openmp.append({"library": info.get("prefix"), "threads": info.get("num_threads"),
                           "file": info.get("filepath")})
    return {"kernels_blas": kernels, "blas": blas, "openmp": openmp}


def _kernels_blas_config() -> Optional[str]:
    """OpenBLAS's configuration string as the C++ core sees it, if the core is loaded."""
    core = sys.modules.get("aidge_incremental._core")
    if core is None or not hasattr(core, "blas_config"):
        return None
    try:
        return str(core.blas_config())
    except Exception:  # pragma: no cover - recording must never fail a run
        return None


def _cpu_model() -> Optional[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def environment(argv=None) -> dict:
    """The run's environment as a JSON-able dict (its keys are stable: tables read them).

    - ``packages``: versions of :data:`PACKAGES`; ``source``: the imported tree and its git commit;
    - ``kernels_blas`` (the OpenBLAS the C++ kernels call: version, ``core_type``,
      threads), ``blas_config`` (its own configuration string), ``blas``, ``openmp``;
    - ``variables``: :data:`ENVIRONMENT_VARIABLES`; ``cpu``: count, usable, model;
    - ``python``, ``platform``, ``command`` (``argv``, default ``sys.argv``).
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "packages": {name: _version(name) for name in PACKAGES},
        "source": _source(),
        **_thread_pools(),
        "blas_config": _kernels_blas_config(),
        "variables": {name: os.environ.get(name) for name in ENVIRONMENT_VARIABLES},
        "cpu": {"count": os.cpu_count(), "usable": usable, "model": _cpu_model()},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": list(sys.argv if argv is None else argv),
    }
