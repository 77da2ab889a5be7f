"""Multi-layer perceptron: flatten, then (fully connected, ReLU) layers; the
last ReLU's output is the feature vector."""
from __future__ import annotations

from typing import Sequence

from .spec import INPUT, Architecture, NetBuilder, register_architecture

__all__ = ["mlp"]

DEFAULT_HIDDEN = (128, 128)


def mlp_layers(net: NetBuilder, x: str, hidden: Sequence[int]) -> str:
    """Append flatten + FC/ReLU layers after ``x``; the last ReLU is ``features``."""
    if not hidden:
        raise ValueError("hidden must name at least one layer width")
    x = net.flatten("flatten", x)
    for i, width in enumerate(hidden):
        if int(width) <= 0:
            raise ValueError(f"hidden layer widths must be > 0, got {list(hidden)}")
        x = net.fc(f"fc{i + 1}", x, int(width))
        x = net.relu("features" if i == len(hidden) - 1 else f"relu{i + 1}", x)
    return x


def mlp(input_shape, hidden: Sequence[int] = DEFAULT_HIDDEN) -> Architecture:
    net = NetBuilder(input_shape, "mlp")
    features = mlp_layers(net, INPUT, hidden)
    return Architecture(net.layers, net.shapes[features][0])


register_architecture("mlp", mlp)
