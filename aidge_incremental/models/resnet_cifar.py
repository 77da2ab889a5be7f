"""The CIFAR ResNets of He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016, Sec. 4.2: a 3x3 convolution with 16 filters, three
stages of n basic blocks (two 3x3 convolutions) with 16, 32 and 64 filters,
the first block of stages 2 and 3 halving the resolution with stride 2; global
average pooling; the classifier. Depth 6n + 2: ResNet-20/32/44/56 (n = 3/5/7/9,
0.27/0.46/0.66/0.85 M parameters with 10 classes, Table 6).

Shortcuts where the shape changes:

- option A (default, the paper's CIFAR choice and iCaRL's reference code,
  ``utils_cifar100.py``/Lasagne recipe): subsample by 2 and zero-pad the
  channels, ``out//4`` on each side; built as ``MaxPooling2D([1, 1], stride 2)``
  (exact subsampling) then ``Pad`` on the channel axis;
- option B: a 1x1 stride-2 convolution + BatchNorm (projection).

As in iCaRL's reference code the last block has no ReLU after its addition
(``last_relu=False``): the features that NME classifies may be negative.
``batchnorm=False`` builds the variant without BatchNorm (convolutions get a
bias), for comparisons with Aidge's own CPU kernels, which cannot train
BatchNorm; its residual branches are initialised as Fixup (Zhang et al., ICLR
2019, Sec. 3): first convolution scaled by L^-1/2 (L residual branches), last
one zero, so that the un-normalised network starts stable.
"""
from __future__ import annotations

import functools

from .spec import INPUT, Architecture, NetBuilder, register_architecture

__all__ = ["resnet_cifar", "DEPTHS"]

DEPTHS = (20, 32, 44, 56)
WIDTHS = (16, 32, 64)


def basic_block(net: NetBuilder, x: str, prefix: str, width: int, stride: int, shortcut: str,
                batchnorm: bool, out_name: str, relu_out: bool, init: dict, branch_scale: float) -> str:
    """conv3x3(stride) - BN - ReLU - conv3x3 - BN, plus the shortcut, then ReLU."""
    in_channels = net.shapes[x][0]
    y = net.conv(f"{prefix}_conv1", x, width, 3, stride, 1, bias=not batchnorm)
    if batchnorm:
        y = net.bn(f"{prefix}_bn1", y)
    y = net.relu(f"{prefix}_relu1", y)
    y = net.conv(f"{prefix}_conv2", y, width, 3, 1, 1, bias=not batchnorm)
    if batchnorm:
        y = net.bn(f"{prefix}_bn2", y)
    else:
        init[f"{prefix}_conv1"] = {"scale": branch_scale}
        init[f"{prefix}_conv2"] = {"scale": 0.0}
    if stride == 1 and in_channels == width:
        short = x
    elif shortcut == "A":
        short = net.maxpool(f"{prefix}_subsample", x, 1, stride) if stride != 1 else x
        extra = width - in_channels
        short = net.pad_channels(f"{prefix}_pad", short, extra // 2, extra - extra // 2)
    else:
        short = net.conv(f"{prefix}_proj", x, width, 1, stride, 0, bias=not batchnorm)
        if batchnorm:
            short = net.bn(f"{prefix}_proj_bn", short)
    if not relu_out:
        return net.add(out_name, y, short)
    return net.relu(out_name, net.add(f"{prefix}_add", y, short))


def resnet_cifar(input_shape, depth: int = 32, shortcut: str = "A", batchnorm: bool = True,
                 last_relu: bool = False) -> Architecture:
    if depth not in DEPTHS and not (depth >= 8 and (depth - 2) % 6 == 0):
        raise ValueError(f"a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, ...), got {depth}")
    if shortcut not in ("A", "B"):
        raise ValueError(f"shortcut must be 'A' (zero padding) or 'B' (projection), got {shortcut!r}")
    n = (depth - 2) // 6
    name = f"resnet{depth}"
    net = NetBuilder(input_shape, name)
    init: dict = {}
    x = net.conv("conv1", INPUT, WIDTHS[0], 3, 1, 1, bias=not batchnorm)
    if batchnorm:
        x = net.bn("bn1", x)
    x = net.relu("relu1", x)
    branch_scale = (3 * n) ** -0.5
    for s, width in enumerate(WIDTHS, start=1):
        for i in range(1, n + 1):
            last_of_stage = i == n
            out = f"stage{s}" if last_of_stage else f"stage{s}_block{i}"
            relu_out = last_relu or not (s == len(WIDTHS) and last_of_stage)
            x = basic_block(net, x, f"stage{s}_block{i}", width, 2 if (s > 1 and i == 1) else 1,
                            shortcut, batchnorm, out, relu_out, init, branch_scale)
    x = net.gap("pool", x)
    x = net.flatten("features", x)
    return Architecture(net.layers, net.shapes[x][0], last_conv_layer=f"stage{len(WIDTHS)}",
                        uses_batchnorm=batchnorm, init=init)


for _depth in DEPTHS:
    register_architecture(f"resnet{_depth}", functools.partial(resnet_cifar, depth=_depth))
