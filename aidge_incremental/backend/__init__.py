"""Where a model runs: the backend names, the checks that load a backend before
any training, and the process-wide preloads that must happen before
``aidge_core`` is imported.

The ground floor of the package: it imports nothing of ours but the preloads
and, lazily, the C++ core.

- :mod:`._openmp_preload` loads Aidge's CPU backend library before aidge_core,
  so that one OpenMP runtime serves every Aidge kernel;
- :mod:`._cuda_preload` makes the CUDA 12 libraries of the ``nvidia-*`` wheels
  loadable when aidge-backend-cuda is installed;
- :mod:`.cpu`: our fast CPU training kernels (``accelerate``), OpenBLAS and
  OpenMP facts;
- :mod:`.cuda`: the checks behind ``backend="cuda"``.
"""
from . import _openmp_preload  # noqa: F401  (first: before anything imports aidge_core)
from . import _cuda_preload  # noqa: F401  (CUDA 12 libraries, if any, before aidge_core)

import importlib

import numpy as np

__all__ = ["BACKENDS", "DEFAULT_KERNELS", "KERNELS", "require_backend", "to_tensor"]

#: the Aidge backends a model can be compiled for
BACKENDS = ("cpu", "cuda")
#: on the cpu backend: "fast" = our C++ training kernels (:func:`.cpu.accelerate`),
#: "aidge" = Aidge's own CPU kernels (which cannot train BatchNorm)
KERNELS = ("fast", "aidge")
DEFAULT_KERNELS = "fast"


def require_backend(name: str) -> str:
    """Check that ``name`` is a backend we can run on, loading it if needed.

    ``"cpu"`` is always there (aidge_backend_cpu is a dependency). ``"cuda"``
    goes through :func:`aidge_incremental.backend.cuda.ensure_cuda_backend`,
    which loads the CUDA libraries and raises a RuntimeError naming what is
    missing (no GPU, no driver, kernels not built). Raises before any work.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: one of {list(BACKENDS)}")
    if name == "cpu":
        import aidge_backend_cpu  # noqa: F401  (registers the CPU kernels)
        return name
    try:
        cuda = importlib.import_module("aidge_incremental.backend.cuda")
    except ModuleNotFoundError as e:
        if e.name != "aidge_incremental.backend.cuda":
            raise
        raise RuntimeError("backend 'cuda' was asked for, but CUDA support is not installed "
                           "(aidge_incremental.backend.cuda is missing); install the package's cuda "
                           "extra or use backend='cpu'") from e
    cuda.ensure_cuda_backend()
    return name


def to_tensor(array: np.ndarray, backend: str = "cpu"):
    """A contiguous float32 NumPy array as an ``aidge_core.Tensor`` on ``backend``."""
    import aidge_core
    tensor = aidge_core.Tensor(np.ascontiguousarray(array, dtype=np.float32))
    if backend != "cpu":
        tensor.set_backend(backend)
    return tensor
