"""Models: growing-head Aidge graphs (``graph.py``) and their architectures, one
file each (``mlp``, ``lenet``, ``resnet_cifar``: ResNet-20/32/44/56, ``resnet18``)."""
from .graph import (ARCHITECTURES, BACKENDS, DEFAULT_KERNELS, FEATURES, HEAD, KERNELS,
                    IncrementalModel)
from .spec import Architecture, Layer, NetBuilder

__all__ = ["ARCHITECTURES", "Architecture", "BACKENDS", "DEFAULT_KERNELS", "FEATURES", "HEAD", "IncrementalModel",
           "KERNELS", "Layer", "NetBuilder"]
