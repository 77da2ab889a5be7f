"""Fast float32 CPU training kernels for Aidge graphs (issue 10).

``accelerate(graph)`` gives aidge_incremental's own implementation (C++,
im2col + OpenBLAS from the scipy-openblas32 wheel, OpenMP) to every node it
supports — Conv2D (any stride, dilation 1, with or without bias; the Conv2D
inside a PaddedConv2D meta-operator too), FC, BatchNorm2D (train mode with
batch statistics and running-stat update, eval mode with running statistics,
read from the node's ``training_mode`` attribute at every forward) and
GlobalAveragePooling — and leaves every other node on Aidge's kernel.

How it attaches: node by node (``Operator::setImpl``); Aidge's registry is
never modified, so importing aidge_incremental changes nothing by itself.
Consequences, tested in tests/test_kernels.py:

* ``graph.compile(...)`` / ``set_backend`` / ``set_datatype`` re-create every
  implementation from Aidge's registry: call ``accelerate`` again after them.
* ``graph.clone()`` gives the clone Aidge's implementations (the copy
  constructor of each operator asks the registry): accelerate the clone too.
* A node on another backend or data type, or with an attribute we do not
  support (dilation != 1, ...), keeps Aidge's kernel: ``unsupported_reason``
  says why.

Threads: OpenBLAS runs single-threaded; each kernel splits its work over the
OpenMP threads (batch samples, rows, or channels) and every thread calls the
BLAS on its own slice, so BLAS and OpenMP threads never compete.
"""
from __future__ import annotations

import aidge_core

from . import _core

__all__ = ["accelerate", "blas_config", "is_accelerated", "unsupported_reason"]


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


def unsupported_reason(node: aidge_core.Node) -> str:
    """Why ``accelerate`` would leave ``node`` on Aidge's kernel ('' if it would not)."""
    if not isinstance(node, aidge_core.Node):
        raise TypeError(f"unsupported_reason() takes an aidge_core.Node, not {type(node).__name__}")
    return str(_core.unsupported_reason(node))


def blas_config() -> str:
    """Configuration string of the OpenBLAS library the kernels call."""
    return str(_core.blas_config())
