"""Models: growing-head Aidge graphs (``graph.py``), the layer kinds they are
built from (``layers.py``) and their architectures, one file each (``mlp``,
``lenet``, ``resnet_cifar``: ResNet-20/32/44/56, ``resnet18``, ``backbone``: a
pretrained feature extractor from an ONNX file), each registered
in :data:`ARCHITECTURES`."""
from .graph import FEATURES, HEAD, IncrementalModel
from .layers import LAYER_KINDS, LayerInit, LayerKind
from .spec import ARCHITECTURES, Architecture, Layer, NetBuilder, register_architecture
# one module per architecture; each registers itself
from . import backbone, lenet, mlp, resnet18, resnet_cifar  # noqa: F401,E402

__all__ = ["ARCHITECTURES", "Architecture", "FEATURES", "HEAD", "IncrementalModel", "LAYER_KINDS", "Layer",
           "LayerInit", "LayerKind", "NetBuilder", "register_architecture"]
