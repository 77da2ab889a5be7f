"""Layer kinds: how each kind of :class:`~.spec.Layer` becomes an Aidge node and
what parameters and state it starts with. One entry per kind in
:data:`LAYER_KINDS`; adding a kind is one :class:`LayerKind` here (and a
:class:`~.spec.NetBuilder` method so architectures can use it).

Initialisation: He-normal weights (He et al., ICCV 2015, Sec. 2.2: std
sqrt(2 / fan_in)) for ReLU networks — iCaRL's reference code uses the same
(Lasagne ``HeNormal('relu')``) —, zero biases, BatchNorm gamma 1 and beta 0
(Ioffe & Szegedy 2015; PyTorch's default).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Set

import aidge_core
import numpy as np

from ..registry import Registry
from .spec import Layer

__all__ = ["BN_EPSILON", "BN_MOMENTUM", "LAYER_KINDS", "LayerInit", "LayerKind", "he_normal"]

# BatchNorm hyper-parameters: PyTorch's and Aidge's defaults (epsilon 1e-5; Aidge's
# momentum 0.9 = running <- 0.9 running + 0.1 batch, i.e. PyTorch's momentum 0.1).
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def he_normal(rng: np.random.Generator, shape, fan_in: int, scale: float = 1.0) -> np.ndarray:
    """He-normal initialisation: N(0, scale² · 2 / fan_in), float32."""
    return (rng.standard_normal(shape) * (scale * np.sqrt(2.0 / fan_in))).astype(np.float32)


@dataclass
class LayerInit:
    """What a layer brings to the model: its producers' starting values by name,
    which of them are state (not trained), and constants (neither trained nor saved)."""
    params: Dict[str, np.ndarray] = field(default_factory=dict)
    state: Set[str] = field(default_factory=set)
    constants: Dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerKind:
    """``node(layer, aidge_cpu)`` builds the Aidge node (``aidge_cpu``: the model
    runs on Aidge's own CPU kernels); ``init(layer, rng, init_options, aidge_cpu)``
    gives its starting values."""
    name: str
    node: Callable[[Layer, bool], aidge_core.Node]
    init: Callable[[Layer, np.random.Generator, dict, bool], LayerInit] = \
        lambda layer, rng, options, aidge_cpu: LayerInit()


#: every layer kind an architecture may use, by name
LAYER_KINDS: Registry[LayerKind] = Registry("layer kind")


def _register(kind: LayerKind) -> None:
    LAYER_KINDS.register(kind.name, kind)


def _conv_node(layer, aidge_cpu):
    a = layer.args
    k, s, p = a["kernel"], a["stride"], a["pad"]
    if p:
        return aidge_core.PaddedConv2D(a["in"], a["out"], [k, k], name=layer.name, stride_dims=[s, s],
                                       padding_dims=[p, p, p, p], no_bias=not a["bias"])
    return aidge_core.Conv2D(a["in"], a["out"], [k, k], name=layer.name, stride_dims=[s, s], no_bias=not a["bias"])


def _conv_init(layer, rng, options, aidge_cpu):
    a, k = layer.args, layer.args["kernel"]
    params = {f"{layer.name}_w": he_normal(rng, (a["out"], a["in"], k, k), a["in"] * k * k,
                                           options.get("scale", 1.0))}
    if a["bias"]:
        params[f"{layer.name}_b"] = np.zeros(a["out"], np.float32)
    return LayerInit(params)


def _fc_init(layer, rng, options, aidge_cpu):
    a = layer.args
    return LayerInit({f"{layer.name}_w": he_normal(rng, (a["out"], a["in"]), a["in"]),
                      f"{layer.name}_b": np.zeros(a["out"], np.float32)})


def _bn_init(layer, rng, options, aidge_cpu):
    c, name = layer.args["features"], layer.name
    return LayerInit({f"{name}_scale": np.ones(c, np.float32), f"{name}_shift": np.zeros(c, np.float32),
                      f"{name}_batch_mean": np.zeros(c, np.float32),
                      f"{name}_batch_variance": np.ones(c, np.float32)},
                     state={f"{name}_batch_mean", f"{name}_batch_variance"})


def _gap_node(layer, aidge_cpu):
    a = layer.args
    if aidge_cpu:  # exact, and trainable through Aidge's conv backward (Aidge has no GAP backward)
        return aidge_core.Conv2D(a["channels"], a["channels"], [a["height"], a["width"]], name=layer.name,
                                 no_bias=True)
    return aidge_core.GlobalAveragePooling(name=layer.name)


def _gap_init(layer, rng, options, aidge_cpu):
    if not aidge_cpu:
        return LayerInit()
    c, h, w = layer.args["channels"], layer.args["height"], layer.args["width"]
    weight = np.zeros((c, c, h, w), np.float32)
    weight[np.arange(c), np.arange(c)] = 1.0 / (h * w)
    return LayerInit(constants={f"{layer.name}_w": weight})


_register(LayerKind("conv", _conv_node, _conv_init))
_register(LayerKind("fc", lambda layer, cpu: aidge_core.FC(layer.args["in"], layer.args["out"], name=layer.name),
                    _fc_init))
_register(LayerKind("bn", lambda layer, cpu: aidge_core.BatchNorm2D(
    layer.args["features"], epsilon=BN_EPSILON, momentum=BN_MOMENTUM, training_mode=False, name=layer.name),
    _bn_init))
_register(LayerKind("relu", lambda layer, cpu: aidge_core.ReLU(name=layer.name)))
_register(LayerKind("add", lambda layer, cpu: aidge_core.Add(name=layer.name)))
_register(LayerKind("maxpool", lambda layer, cpu: aidge_core.MaxPooling2D(
    [layer.args["kernel"]] * 2, name=layer.name, stride_dims=[layer.args["stride"]] * 2)))
_register(LayerKind("pad_channels", lambda layer, cpu: aidge_core.Pad(
    [layer.args["before"], layer.args["after"]], name=layer.name, axes=[1])))
_register(LayerKind("gap", _gap_node, _gap_init))
_register(LayerKind("flatten", lambda layer, cpu: aidge_core.Flatten(1, name=layer.name)))
