"""A pretrained feature extractor from an ONNX file (``--backbone FILE.onnx``).

The file is read with ``aidge_onnx.load_onnx`` into an Aidge graph, and each
of its nodes becomes one of our layer kinds with the file's weights as its
starting values: the model then trains (or keeps frozen), checkpoints,
resumes and exports as any other architecture, on our fast kernels. The
head is ours, grown step by step on the ``features`` layer, which flattens
the backbone's output (or the output of the node named ``output``: a file
that ends with its own classifier is cut before it).

Nodes it takes (Aidge's names, from the ONNX operators): Conv2D and
PaddedConv2D (square kernel, one stride, symmetric zero padding, no
dilation), ReLU, MaxPooling2D (square, no padding), BatchNorm2D (epsilon
1e-5, ours), Add, GlobalAveragePooling, Flatten, FC (Gemm); Identity and
Dropout pass through (inference). A scalar Mul or Div on the graph's input
(an input scaling, as in our own exports) is left out: the backbone reads
what ``dataset.to_input`` gives every model (scaled to [0, 1], normalised per
channel where the dataset says so). Anything else is refused, naming the
node and its operator, before any training.

``freeze=True`` keeps the backbone's parameters as loaded (they are not
trained, and its BatchNorm layers stay in inference mode); only layers we
add (the head) train. The checkpoint holds every weight, so a resumed run
needs the file only for its structure.
"""
from __future__ import annotations

import pathlib
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..files import MAX_FILE_BYTES
from .layers import BN_EPSILON
from .spec import INPUT, Architecture, NetBuilder, register_architecture

__all__ = ["backbone", "BackboneError"]

PREFIX = "bb_"  #: our layers' names: the file's node names, prefixed and made C identifiers
_PASS_THROUGH = ("Identity", "Dropout")


class BackboneError(ValueError):
    """An ONNX file that cannot be used as a backbone; the message says why."""


def _name(raw: str, taken: set) -> str:
    name = PREFIX + (re.sub(r"[^0-9A-Za-z_]", "_", raw).strip("_") or "node")
    unique, i = name, 1
    while unique in taken:
        unique, i = f"{name}_{i}", i + 1
    taken.add(unique)
    return unique


def _value(node, index: int) -> Optional[np.ndarray]:
    parent = node.get_parent(index)
    if parent is None:
        return None
    if parent.type() != "Producer":
        raise BackboneError(f"node {node.name()!r} ({node.type()}): input {index} is computed, not a stored "
                            "weight")
    return np.array(parent.get_operator().get_output(0), np.float32)


def _data_parents(node) -> list:
    """The nodes computing the node's data inputs (None: the graph's input); a
    stored tensor on a data input (Mul's factor) is a weight, not a parent."""
    import aidge_core
    op = node.get_operator()
    data = (aidge_core.InputCategory.Data, aidge_core.InputCategory.OptionalData)
    parents = [node.get_parent(i) for i in range(op.nb_inputs()) if op.input_category(i) in data]
    return [p for p in parents if p is None or p.type() != "Producer"]


def _topological(nodes) -> list:
    order, done = [], set()
    pending = sorted(nodes, key=lambda n: n.name())
    while pending:
        ready = [n for n in pending if all(p is None or p in done for p in _data_parents(n))]
        if not ready:
            raise BackboneError("the graph has a cycle")
        for node in ready:
            order.append(node)
            done.add(node)
        pending = [n for n in pending if n not in done]
    return order


def _ancestors(node) -> set:
    seen, stack = set(), [node]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(p for p in _data_parents(current) if p is not None)
    return seen


def _square(values, what: str, node) -> int:
    values = list(values)
    if len(set(values)) != 1:
        raise BackboneError(f"node {node.name()!r} ({node.type()}): {what} {values} is not square; only square "
                            f"{what}s are supported")
    return int(values[0])


def load_graph(path):
    """The Aidge graph of an ONNX file, after size and ``onnx.checker`` checks."""
    import aidge_core
    import aidge_onnx
    import onnx
    path = pathlib.Path(path)
    if not path.is_file():
        raise BackboneError(f"backbone {path} does not exist (or is not a file): give an .onnx file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise BackboneError(f"backbone {path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        onnx.checker.check_model(onnx.load(str(path), load_external_data=False), full_check=False)
    except Exception as e:  # noqa: BLE001  (protobuf's DecodeError, onnx's ValidationError)
        raise BackboneError(f"backbone {path} is not a valid ONNX file: "
                            f"{(str(e).strip().splitlines() or [type(e).__name__])[0]}") from None
    level = aidge_core.Log.get_console_level()
    aidge_core.Log.set_console_level(aidge_core.Level.Error)
    try:
        return aidge_onnx.load_onnx(str(path))
    except Exception as e:  # noqa: BLE001  (an operator aidge_onnx cannot import)
        raise BackboneError(f"aidge_onnx cannot load backbone {path}: {e}") from None
    finally:
        aidge_core.Log.set_console_level(level)


def backbone(input_shape, path: str, output: Optional[str] = None, freeze: bool = False) -> Architecture:
    """The architecture of the ONNX file ``path`` up to the node ``output`` (default:
    the graph's output), flattened into ``features``; see the module docstring."""
    graph = load_graph(path)
    nodes = {n for n in graph.get_nodes() if n.type() != "Producer"}
    if output is None:
        outs = {n for n, _ in graph.get_ordered_outputs()}
        if len(outs) != 1:
            raise BackboneError(f"backbone {path} has {len(outs)} outputs: name the features with backbone_output")
        last = outs.pop()
    else:
        last = next((n for n in nodes if n.name() == output), None)
        if last is None:
            raise BackboneError(f"backbone {path} has no node {output!r}; its nodes: "
                                f"{', '.join(sorted(n.name() for n in nodes))}")
    keep = _ancestors(last)
    net = NetBuilder(input_shape, "backbone")
    values: Dict[str, np.ndarray] = {}
    taken = {"features", "head"}
    ours: Dict[object, str] = {}
    for node in _topological(nodes & keep):
        parents = _data_parents(node)
        inputs = [INPUT if p is None else ours[p] for p in parents]
        kind = node.type()
        if kind in _PASS_THROUGH or (kind in ("Mul", "Div") and parents[0] is None):
            if kind in ("Mul", "Div"):
                factor = _value(node, 1)
                if factor is None or factor.size != 1:
                    raise BackboneError(f"node {node.name()!r} ({kind}) on the input is not a scalar scaling")
            ours[node] = inputs[0]
            continue
        name = _name(node.name(), taken)
        x = inputs[0]
        if kind in ("Conv2D", "PaddedConv2D"):
            op = node.get_operator()
            pad = 0
            conv_attr = op.attr
            if kind == "PaddedConv2D":
                inner = {n.type(): n.get_operator().attr for n in op.get_micro_graph().get_nodes()}
                pads = list(inner["Pad"].pads)
                if len(set(pads)) != 1 or str(inner["Pad"].mode).split(".")[-1] != "CONSTANT" or \
                        np.any(np.array(inner["Pad"].constant_value)):
                    raise BackboneError(f"node {node.name()!r}: padding {pads} is not the same zero padding on "
                                        "every side")
                pad, conv_attr = int(pads[0]), inner["Conv2D"]
            if any(int(d) != 1 for d in conv_attr.dilation_dims):
                raise BackboneError(f"node {node.name()!r}: dilated convolutions are not supported")
            weight, bias = _value(node, 1), _value(node, 2)
            k = _square(conv_attr.kernel_dims, "kernel", node)
            stride = _square(conv_attr.stride_dims, "stride", node)
            if weight.ndim != 4 or weight.shape[1] != net.shapes[x][0]:
                raise BackboneError(f"node {node.name()!r}: weights {weight.shape} do not take "
                                    f"{net.shapes[x][0]} channels (grouped convolutions are not supported)")
            net.conv(name, x, weight.shape[0], k, stride=stride, pad=pad, bias=bias is not None)
            values[f"{name}_w"] = weight
            if bias is not None:
                values[f"{name}_b"] = bias
        elif kind == "ReLU":
            net.relu(name, x)
        elif kind == "MaxPooling2D":
            attr = node.get_operator().attr
            if any(int(d) != 1 for d in attr.dilations) or attr.ceil_mode:
                raise BackboneError(f"node {node.name()!r}: max pooling with dilation or ceil_mode is not supported")
            net.maxpool(name, x, _square(attr.kernel_dims, "kernel", node), _square(attr.stride_dims, "stride", node))
        elif kind == "BatchNorm2D":
            epsilon = float(node.get_operator().attr.epsilon)
            if abs(epsilon - BN_EPSILON) > 1e-9:
                raise BackboneError(f"node {node.name()!r}: BatchNorm epsilon {epsilon:g}, ours is {BN_EPSILON:g}")
            net.bn(name, x)
            for i, part in enumerate(("scale", "shift", "batch_mean", "batch_variance"), start=1):
                values[f"{name}_{part}"] = _value(node, i)
        elif kind == "Add":
            if len(inputs) != 2:
                raise BackboneError(f"node {node.name()!r}: Add of {len(inputs)} computed inputs (two supported)")
            net.add(name, inputs[0], inputs[1])
        elif kind == "GlobalAveragePooling":
            net.gap(name, x)
        elif kind == "Flatten":
            if int(node.get_operator().attr.axis) != 1:
                raise BackboneError(f"node {node.name()!r}: Flatten on axis {node.get_operator().attr.axis} "
                                    "(axis 1 supported)")
            net.flatten(name, x)
        elif kind == "FC":
            weight, bias = _value(node, 1), _value(node, 2)
            if len(net.shapes[x]) != 1:
                x = net.flatten(_name(node.name() + "_flatten", taken), x)
            if weight.ndim != 2 or weight.shape[1] != net.shapes[x][0]:
                raise BackboneError(f"node {node.name()!r}: weights {weight.shape} do not take {net.shapes[x][0]} "
                                    "inputs")
            net.fc(name, x, weight.shape[0])
            values[f"{name}_w"] = weight
            values[f"{name}_b"] = np.zeros(weight.shape[0], np.float32) if bias is None else bias
        else:
            raise BackboneError(f"backbone {path}: node {node.name()!r} is a {kind}, which the backbone does not "
                                "take (Conv2D, PaddedConv2D, ReLU, MaxPooling2D, BatchNorm2D, Add, "
                                "GlobalAveragePooling, Flatten, FC; Identity, Dropout)")
        ours[node] = name
    if ours.get(last, INPUT) == INPUT:
        raise BackboneError(f"backbone {path}: no layer before {last.name()!r}")
    features = net.flatten("features", ours[last])
    frozen = frozenset(values) if freeze else frozenset()
    return Architecture(net.layers, net.shapes[features][0], uses_batchnorm=any(l.kind == "bn" for l in net.layers),
                        values=values, frozen=frozen)


register_architecture("backbone", backbone)
