"""Fast float32 CPU training kernels for Aidge graphs.

``accelerate(graph)`` gives aidge_incremental's own implementation (C++ on
OpenBLAS from the scipy-openblas32 wheel, OpenMP) to every node it supports,
forward and backward:

* Conv2D (any kernel and stride, dilation 1, with or without bias): stride 1
  as KH*KW matrix products on shifted views of a zero-padded copy of the input
  (no im2col matrix) or, for 3x3 kernels, by Winograd's F(2x2, 3x3) or
  F(4x4, 3x3) (2.25x / 4x fewer multiplications); other strides through
  im2col. Which one runs each shape is measured at first use and kept in a
  cache file (``conv_autotune_table()``; ``AIDGE_INCREMENTAL_AUTOTUNE=off``
  for a fixed choice by shape, ``rebuild`` to measure again; see
  cpp/include/aidge/incremental/backend/cpu/ConvAlgorithms.hpp);
* PaddedConv2D (Aidge's meta-operator: a Pad, then a Conv2D, run as a
  micro-graph) as ONE kernel when its Pad is a zero padding of the spatial
  axes: its two inner nodes get a pair of implementations by which the
  Conv2D pads as it reads the Pad's input and back-propagates straight into
  the Pad's input gradient, so the padded tensor is never materialised
  (otherwise the inner Pad and Conv2D are accelerated one by one);
* FC;
* BatchNorm2D, fused with the ReLU it feeds when its output goes to that ReLU
  alone (one pass each way instead of two, and neither the BatchNorm's output
  nor its gradient in memory: ``is_fused_away(node)``): train mode (batch mean
  and biased variance to normalise;
  running mean/variance updated as ``running = running*momentum +
  batch*(1-momentum)`` with the unbiased batch variance, as PyTorch and
  Aidge's own unused CPU training branch do) and eval mode (running
  statistics). The mode is the node's ``training_mode`` attribute, read at
  every forward: ``op.attr.training_mode = True`` or
  ``aidge_learning.set_batchnorm_training_mode`` switch it without
  re-attaching anything. Backward differentiates the mode the last forward ran;
* GlobalAveragePooling; Pad (constant mode, any axes, non-negative pads);
  ReLU; Add of two same-shape inputs.

Every other node stays on Aidge's kernel. Backward kernels accumulate into the
input gradients, as Aidge's do.

How it attaches: node by node (``Operator::setImpl``); Aidge's registry is
never modified, so importing aidge_incremental changes nothing by itself.
Consequences (tests/test_kernels.py):

* ``graph.clone()`` gives the clone Aidge's implementations (each operator's
  copy asks the registry): call ``accelerate`` on the clone.
* ``graph.compile("cpu", ...)`` again keeps ours (Aidge's ``set_backend`` keeps
  an implementation whose backend name is unchanged); compiling for another
  backend replaces them with that backend's: call ``accelerate`` again after
  coming back to "cpu". Should a node's tensors stop being float32 on the cpu
  backend, our implementation hands the call to Aidge's registry kernel.
* A node on another backend or data type, or with an attribute we do not
  support (dilation != 1, padding mode other than constant, broadcasting
  Add...), keeps Aidge's kernel: ``unsupported_reason(node)`` says why.

Threads: OpenBLAS runs single-threaded; each kernel splits its work over the
OpenMP threads (chunks of samples, rows, or channels) and each thread calls the
BLAS on its own slice, so BLAS and OpenMP threads never compete. The module
links the libgomp bundled in the Aidge wheels, the one Aidge's own libraries
use. aidge-quantization (the ``export`` and ``test`` extras) bundles another,
and Aidge's CPU backend binds to it when aidge_core is imported first: import
aidge_incremental before aidge_core (``backend/_openmp_preload.py``; ``openmp_runtimes()``
lists what a process has). On a machine shared with other busy processes, run
with ``OMP_WAIT_POLICY=passive``: with libgomp's default spin-waiting, threads
that wait at a barrier for a descheduled sibling burn their time slice
(measured on 2 loaded cores: a 784-256-256-10 MLP step 150 ms instead of 4 ms,
for Aidge's own kernels as for ours).

OpenBLAS picks its kernels for the CPU it runs on (AVX-512 "SkylakeX" ones on
this project's AMD EPYC) unless the environment variable ``OPENBLAS_CORETYPE``
forces others; this project's machines set it to Haswell (AVX2), which makes
a ResNet-32 step 1.5x slower (435 ms instead of 285 ms, README;
benchmarks/bench_kernels.py prints the kernels in use). We leave that choice to the user: a library that overrode it
would defeat a setting made, for instance, to get the same floating-point
results on every machine.
"""
from __future__ import annotations

import aidge_core

from .. import _core
from . import _openmp_preload

__all__ = ["accelerate", "blas_config", "blas_core_name", "conv_autotune_file", "conv_autotune_table",
           "is_accelerated", "is_fused_away", "openmp_runtimes", "unsupported_reason"]


def accelerate(graph: aidge_core.GraphView) -> int:
    """Give our fast CPU implementation to every supported node of ``graph``.

    Returns how many nodes changed (0 when called again: idempotent). Call it
    after ``graph.compile(...)`` (compile re-creates Aidge's implementations)
    and on every clone.
    """
    if not isinstance(graph, aidge_core.GraphView):
        raise TypeError(f"accelerate() takes an aidge_core.GraphView, not {type(graph).__name__}")
    return int(_core.accelerate(graph))


def is_accelerated(node: aidge_core.Node) -> bool:
    """Whether ``node`` currently runs one of our fast implementations."""
    if not isinstance(node, aidge_core.Node):
        raise TypeError(f"is_accelerated() takes an aidge_core.Node, not {type(node).__name__}")
    return bool(_core.is_accelerated(node))


def is_fused_away(node: aidge_core.Node) -> bool:
    """Whether ``node``'s output is not computed because its kernel is fused into
    its child's: a BatchNorm2D whose output goes to one ReLU alone computes that
    ReLU's output directly (read the ReLU's output instead)."""
    if not isinstance(node, aidge_core.Node):
        raise TypeError(f"is_fused_away() takes an aidge_core.Node, not {type(node).__name__}")
    return bool(_core.is_fused_away(node))


def unsupported_reason(node: aidge_core.Node) -> str:
    """Why ``accelerate`` would leave ``node`` on Aidge's kernel ('' if it would not)."""
    if not isinstance(node, aidge_core.Node):
        raise TypeError(f"unsupported_reason() takes an aidge_core.Node, not {type(node).__name__}")
    return str(_core.unsupported_reason(node))


def blas_config() -> str:
    """Configuration string of the OpenBLAS library the kernels call."""
    return str(_core.blas_config())


def blas_core_name() -> str:
    """The OpenBLAS kernels in use ("SkylakeX", "Haswell"...): OpenBLAS's choice
    for this CPU unless ``OPENBLAS_CORETYPE`` forces one."""
    return str(_core.blas_core_name())


def conv_autotune_table() -> dict:
    """The convolution algorithm chosen for each shape this process has run (or
    loaded from the cache file): ``{key: algorithm}``."""
    return dict(_core.conv_autotune_table())


def conv_autotune_file() -> str:
    """The autotune cache file ('' with ``AIDGE_INCREMENTAL_AUTOTUNE=off``)."""
    return str(_core.conv_autotune_file())


def openmp_runtimes() -> list[str]:
    """Paths of the OpenMP runtime libraries loaded in this process (Linux).

    More than one means kernels of different libraries run on different thread
    pools that spin against each other (see ``aidge_incremental/backend/_openmp_preload.py``:
    import aidge_incremental before aidge_core). Empty where ``/proc/self/maps``
    does not exist.
    """
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return []
    found = set()
    for line in lines:
        path = line.split()[-1] if line.split() else ""
        name = path.rsplit("/", 1)[-1]
        if name.startswith(("libgomp", "libiomp", "libomp")) and ".so" in name:
            found.add(path)
    return sorted(found)


def _warn_if_several_runtimes() -> None:
    if _openmp_preload.skipped.startswith("aidge_core was imported") and \
            len([r for r in openmp_runtimes() if "/torch/" not in r]) > 1:
        import warnings
        warnings.warn("several OpenMP runtimes are loaded (aidge-quantization bundles its own libgomp and "
                      "Aidge's CPU backend bound to it because aidge_core was imported first): small "
                      "operations get many times slower. Import aidge_incremental before aidge_core.",
                      RuntimeWarning, stacklevel=3)


_warn_if_several_runtimes()
