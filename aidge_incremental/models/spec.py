"""Architectures as data: a network is a list of :class:`Layer` in topological
order, each naming the layers that feed it. :class:`NetBuilder` writes such a
list while tracking the tensor shape, so an architecture is a short function
and a shape the architecture cannot take fails with a clear error before any
Aidge graph exists.

Layer kinds and the Aidge node each becomes (see ``graph.py``):

- ``conv``     Conv2D, or PaddedConv2D when ``pad`` > 0 (producers NAME_w, NAME_b)
- ``bn``       BatchNorm2D (parameters NAME_scale, NAME_shift; state NAME_batch_mean,
               NAME_batch_variance)
- ``fc``       FC (NAME_w, NAME_b); ``relu``, ``add`` (two inputs), ``flatten``
- ``maxpool``  MaxPooling2D; ``pad_channels`` Pad on the channel axis
- ``gap``      GlobalAveragePooling
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

from ..registry import Registry

__all__ = ["ARCHITECTURES", "Architecture", "INPUT", "Layer", "NetBuilder", "register_architecture", "takes_hidden"]

INPUT = "input"  #: the name inputs refer to for the graph's own input


@dataclass
class Layer:
    kind: str
    name: str
    args: dict
    inputs: Tuple[str, ...]


@dataclass
class Architecture:
    layers: List[Layer]
    feature_dim: int                       #: width of the "features" layer (the head's input)
    last_conv_layer: Optional[str] = None  #: output of the last convolutional stage (Grad-CAM)
    uses_batchnorm: bool = False
    #: layer -> init options (e.g. {"scale": 0.0} for a zero-initialised conv)
    init: Dict[str, dict] = field(default_factory=dict)
    #: starting values that replace the layer kinds' initialisation, by producer name
    #: (a pretrained backbone's weights)
    values: Dict[str, object] = field(default_factory=dict)
    #: producers that are never trained (a frozen backbone); their BatchNorm layers stay in eval mode
    frozen: FrozenSet[str] = frozenset()


#: every architecture, by name: ``build(input_shape, **options) -> Architecture``
#: (one file each: ``mlp.py``, ``lenet.py``, ``resnet_cifar.py``, ``resnet18.py``)
ARCHITECTURES: Registry[Callable[..., Architecture]] = Registry(
    "architecture", entry_points="aidge_incremental.architectures")


def register_architecture(name: str, build: Callable[..., Architecture], replace: bool = False):
    """Make ``build(input_shape, **options) -> Architecture`` a model by name
    (``IncrementalModel(name, ...)``, ``--model NAME``)."""
    return ARCHITECTURES.register(name, build, replace=replace)


def takes_hidden(architecture: str) -> bool:
    """Whether the architecture has fully connected layers sized by ``hidden``."""
    return "hidden" in inspect.signature(ARCHITECTURES[architecture]).parameters


class NetBuilder:
    """Appends layers and tracks each one's output shape (C, H, W) or (D,)."""

    def __init__(self, input_shape: Sequence[int], architecture: str):
        self.architecture = architecture
        self.layers: List[Layer] = []
        self.shapes: Dict[str, Tuple[int, ...]] = {INPUT: tuple(input_shape)}

    def _add(self, kind, name, inputs, shape, **args) -> str:
        if name in self.shapes:
            raise ValueError(f"layer name {name!r} used twice")
        self.layers.append(Layer(kind, name, args, tuple(inputs)))
        self.shapes[name] = tuple(int(d) for d in shape)
        return name

    def _chw(self, x: str) -> Tuple[int, int, int]:
        shape = self.shapes[x]
        if len(shape) != 3:
            raise ValueError(f"{self.architecture}: layer {x} has shape {shape}, a convolution needs C x H x W")
        return shape

    def conv(self, name, x, out, kernel, stride=1, pad=0, bias=True) -> str:
        c, h, w = self._chw(x)
        oh, ow = (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"input of {self.architecture} is too small: layer {name} gets {c}x{h}x{w}, "
                             f"its {kernel}x{kernel} kernel needs at least {kernel - 2 * pad} pixels; use larger "
                             "images or a model for small inputs (mlp)")
        return self._add("conv", name, [x], (out, oh, ow), **{"in": c, "out": out, "kernel": kernel,
                                                              "stride": stride, "pad": pad, "bias": bias})

    def bn(self, name, x) -> str:
        return self._add("bn", name, [x], self.shapes[x], features=self._chw(x)[0])

    def relu(self, name, x) -> str:
        return self._add("relu", name, [x], self.shapes[x])

    def add(self, name, a, b) -> str:
        if self.shapes[a] != self.shapes[b]:
            raise ValueError(f"{self.architecture}: cannot add {a} {self.shapes[a]} and {b} {self.shapes[b]}")
        return self._add("add", name, [a, b], self.shapes[a])

    def maxpool(self, name, x, kernel, stride) -> str:
        c, h, w = self._chw(x)
        oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"input of {self.architecture} is too small: layer {name} gets {c}x{h}x{w}; use "
                             "larger images or a model for small inputs (mlp)")
        return self._add("maxpool", name, [x], (c, oh, ow), kernel=kernel, stride=stride)

    def pad_channels(self, name, x, before, after) -> str:
        c, h, w = self._chw(x)
        return self._add("pad_channels", name, [x], (c + before + after, h, w), before=before, after=after)

    def gap(self, name, x) -> str:
        c, h, w = self._chw(x)
        return self._add("gap", name, [x], (c, 1, 1), channels=c, height=h, width=w)

    def flatten(self, name, x) -> str:
        size = 1
        for d in self.shapes[x]:
            size *= d
        return self._add("flatten", name, [x], (size,))

    def fc(self, name, x, out) -> str:
        width = self.shapes[x]
        if len(width) != 1:
            raise ValueError(f"{self.architecture}: layer {name} needs a flat input, {x} is {width}")
        return self._add("fc", name, [x], (out,), **{"in": width[0], "out": out})
