"""The backend a model trains on ("cpu" or "cuda"), checked before any training.

Every tensor the loop makes goes through :func:`to_tensor` with the model's
backend, so nothing here assumes the CPU.
"""
from __future__ import annotations

import importlib

import aidge_core
import numpy as np

__all__ = ["BACKENDS", "require_backend", "to_tensor"]

BACKENDS = ("cpu", "cuda")


def require_backend(name: str) -> str:
    """Check that ``name`` is a backend we can run on, loading it if needed.

    ``"cpu"`` is always there (aidge_backend_cpu is a dependency). ``"cuda"``
    goes through ``aidge_incremental.cuda.ensure_cuda_backend()``, which loads
    the CUDA libraries and raises a RuntimeError naming what is missing (no
    GPU, no driver); without that module, CUDA support is not installed.
    Raises before any training starts.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: one of {list(BACKENDS)}")
    if name == "cpu":
        import aidge_backend_cpu  # noqa: F401  (registers the CPU kernels)
        return name
    try:
        cuda = importlib.import_module("aidge_incremental.cuda")
    except ModuleNotFoundError as e:
        if e.name not in ("aidge_incremental.cuda",):
            raise
        raise RuntimeError("backend 'cuda' was asked for, but CUDA support is not installed "
                           "(aidge_incremental.cuda is missing); install the package's cuda extra "
                           "or use backend='cpu'") from e
    cuda.ensure_cuda_backend()
    return name


def to_tensor(array: np.ndarray, backend: str = "cpu") -> aidge_core.Tensor:
    """A contiguous float32 NumPy array as an Aidge tensor on ``backend``."""
    tensor = aidge_core.Tensor(np.ascontiguousarray(array, dtype=np.float32))
    if backend != "cpu":
        tensor.set_backend(backend)
    return tensor
