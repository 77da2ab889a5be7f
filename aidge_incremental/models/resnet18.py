"""ResNet-18 in its CIFAR form (He et al. 2016's ImageNet ResNet-18 with a
3x3 stride-1 stem and no max-pooling, as LwM and most CIFAR continual-learning
code use it, e.g. kuangliu/pytorch-cifar): four stages of two basic blocks with
64, 128, 256, 512 filters, stride 2 at the start of stages 2-4, projection
shortcuts (option B: 1x1 convolution + BatchNorm); 11.17 M parameters with 10
classes. Stage outputs are named ``layer1`` ... ``layer4`` (torchvision's names).
"""
from __future__ import annotations

from .resnet_cifar import basic_block
from .spec import INPUT, Architecture, NetBuilder, register_architecture

__all__ = ["resnet18"]

WIDTHS = (64, 128, 256, 512)


def resnet18(input_shape, batchnorm: bool = True) -> Architecture:
    net = NetBuilder(input_shape, "resnet18")
    init: dict = {}
    x = net.conv("conv1", INPUT, WIDTHS[0], 3, 1, 1, bias=not batchnorm)
    if batchnorm:
        x = net.bn("bn1", x)
    x = net.relu("relu1", x)
    branch_scale = (2 * len(WIDTHS)) ** -0.5
    for s, width in enumerate(WIDTHS, start=1):
        for i in (1, 2):
            out = f"layer{s}" if i == 2 else f"layer{s}_block{i}"
            x = basic_block(net, x, f"layer{s}_block{i}", width, 2 if (s > 1 and i == 1) else 1,
                            "B", batchnorm, out, True, init, branch_scale)
    x = net.gap("pool", x)
    x = net.flatten("features", x)
    return Architecture(net.layers, net.shapes[x][0], last_conv_layer="layer4",
                        uses_batchnorm=batchnorm, init=init)


register_architecture("resnet18", resnet18)
