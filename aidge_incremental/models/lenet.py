"""LeNet-style network: two (3x3 convolution, ReLU, 2x2 max-pooling) blocks,
then fully connected layers (as :mod:`.mlp`)."""
from __future__ import annotations

from typing import Sequence

from .mlp import DEFAULT_HIDDEN, mlp_layers
from .spec import INPUT, Architecture, NetBuilder, register_architecture

__all__ = ["lenet"]


def lenet(input_shape, hidden: Sequence[int] = DEFAULT_HIDDEN) -> Architecture:
    net = NetBuilder(input_shape, "lenet")
    x = INPUT
    for i, width in enumerate((16, 32)):
        x = net.conv(f"conv{i + 1}", x, width, 3)
        x = net.relu(f"crelu{i + 1}", x)
        x = net.maxpool(f"pool{i + 1}", x, 2, 2)
    features = mlp_layers(net, x, hidden)
    return Architecture(net.layers, net.shapes[features][0], last_conv_layer="crelu2")


register_architecture("lenet", lenet)
