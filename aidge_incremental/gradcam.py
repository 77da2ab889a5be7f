"""Grad-CAM (Selvaraju et al., ICCV 2017) computed with Aidge's own backward.

For a batch ``x`` and one class per sample, the Grad-CAM weights of a tapped
feature map ``A [B, C, H, W]`` are ``α_bc = mean_hw ∂y_b,class_b / ∂A_bchw`` and the
map is ``ReLU(Σ_c α_bc A_bc)`` — the attention maps that Learning without
Memorizing (Dhar et al. 2019) distils with :func:`aidge_incremental.loss.attention_distillation`.

The gradient comes from one Aidge backward pass seeded with a one-hot gradient on
the logits (one row per sample: the samples of a batch are independent, so one
pass gives every sample's own ∂y_b/∂A_b), stopped at the tapped layer. It runs on a clone of the model's graph
(``GraphView.clone()`` deep-copies the parameters), so the live graph — its
parameter gradients, its activations, the optimiser's references to its
parameters and its state — is never touched: Grad-CAM can run between a training
step's forward and backward.
"""
from __future__ import annotations

import os
import tempfile
from typing import NamedTuple, Optional, Sequence

import aidge_core
import numpy as np

from . import _core

__all__ = ["GradCAM", "grad_cam", "last_conv_layer", "plot_grad_cam"]

_CONV_TYPES = ("Conv2D", "PaddedConv2D", "Conv")


class GradCAM(NamedTuple):
    """What :func:`grad_cam` returns (all float32 NumPy arrays)."""
    maps: np.ndarray      #: [B, H, W]   ReLU(Σ_c α_c A_c)
    weights: np.ndarray   #: [B, C]      α_c = spatial mean of ∂y_b/∂A_c
    features: np.ndarray  #: [B, C, H, W] the tapped feature map A


def _graph_of(model) -> aidge_core.GraphView:
    if isinstance(model, aidge_core.GraphView):
        return model
    graph = getattr(model, "graph", None)
    if not isinstance(graph, aidge_core.GraphView):
        raise TypeError(f"grad_cam needs an IncrementalModel (or a model with a .graph) or an "
                        f"aidge_core.GraphView, got {type(model).__name__}")
    return graph


def last_conv_layer(model) -> str:
    """Name of the layer Grad-CAM taps by default: the model's ``last_conv_layer``
    when it declares one (the ResNets do), else the last convolution of the graph —
    or the ReLU right after it, when there is one (Grad-CAM's rectified feature maps of
    the last convolutional layer, before any pooling)."""
    declared = getattr(model, "last_conv_layer", None)
    if declared is not None and not isinstance(model, aidge_core.GraphView):
        name = declared() if callable(declared) else declared
        if isinstance(name, aidge_core.Node):
            name = name.name()
        if not isinstance(name, str):
            raise TypeError(f"model.last_conv_layer must be a layer name, got {type(name).__name__}")
        return name
    graph = _graph_of(model)
    convs = [n for n in graph.get_ordered_nodes() if n.type() in _CONV_TYPES]
    if not convs:
        raise ValueError("the model has no convolutional layer: Grad-CAM needs a spatial feature "
                         "map (pass layer= the name of a layer with a [B, C, H, W] output)")
    last = convs[-1]
    children = [c for c in last.get_children() if graph.in_view(c)]
    if len(children) == 1 and children[0].type() == "ReLU":
        return children[0].name()
    return last.name()


def _logits_port(graph: aidge_core.GraphView, model):
    from .models import HEAD  # the classifier of an IncrementalModel
    if not isinstance(model, aidge_core.GraphView) and graph.get_node(HEAD) is not None:
        return HEAD, 0
    outputs = graph.get_ordered_outputs()
    if not outputs:
        raise ValueError("the graph has no ordered output to take the class scores from")
    return outputs[0].node.name(), outputs[0].index


def _skip_backward_below(tap) -> None:
    """Grad-CAM needs ∂y/∂A only: the backward stops at the tapped layer (the tap and
    everything that feeds it are skipped: their backward would compute gradients nobody
    reads — for a ResNet's last stage, almost the whole backward pass)."""
    stack, seen, alive = [tap], set(), []  # alive: wrappers kept so that ids stay unique
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        alive.append(node)
        _core.set_skip_backward(node, True)
        stack.extend(node.get_parents())


def grad_cam(model, x, classes, layer: Optional[str] = None) -> GradCAM:
    """Grad-CAM maps of ``model`` for inputs ``x [B, ...]`` and one class per sample.

    ``model`` is an :class:`~aidge_incremental.model.IncrementalModel` (its live graph
    and weights) or a compiled ``aidge_core.GraphView`` whose first ordered output is the
    logits. ``classes`` holds one class index per sample (LwM: the teacher's top-scoring
    old class). ``layer`` names the tapped layer (default :func:`last_conv_layer`).
    Returns ``GradCAM(maps [B, H, W], weights [B, C], features [B, C, H, W])``.
    The model's graph, parameter gradients and optimiser state are left untouched.
    """
    graph = _graph_of(model)
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"x must hold numbers, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, np.float32)
    input_shape = getattr(model, "input_shape", None)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty batch [B, ...], got shape {x.shape}")
    if input_shape is not None and tuple(x.shape[1:]) != tuple(input_shape):
        raise ValueError(f"inputs of shape {x.shape[1:]}, the model expects {tuple(input_shape)}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or inf")
    classes = np.asarray(classes)
    if classes.ndim != 1 or len(classes) != len(x):
        raise ValueError(f"classes must hold one class index per sample ({len(x)}), got shape {classes.shape}")
    if classes.dtype.kind not in "iu":
        raise TypeError(f"classes must be integers, got dtype {classes.dtype}")
    name = last_conv_layer(model) if layer is None else layer
    if not isinstance(name, str) or graph.get_node(name) is None:
        names = [n.name() for n in graph.get_ordered_nodes() if n.type() != "Producer"]
        raise ValueError(f"no layer named {name!r} in the model; layers: {names}")
    head, head_index = _logits_port(graph, model)

    clone = graph.clone()  # deep copy: the live graph and its gradients stay as they are
    _skip_backward_below(clone.get_node(name))
    scheduler = aidge_core.SequentialScheduler(clone)
    scheduler.forward(data=[aidge_core.Tensor(x)])
    logits = clone.get_node(head).get_operator().get_output(head_index)
    n_classes = logits.dims[-1]
    if len(logits.dims) != 2 or logits.dims[0] != len(x):
        raise ValueError(f"the model's output {logits.dims} is not [batch, classes] logits")
    if classes.min() < 0 or classes.max() >= n_classes:
        raise ValueError(f"classes must be in [0, {n_classes}), got values in "
                         f"[{classes.min()}, {classes.max()}]")
    tapped = clone.get_node(name).get_operator().get_output(0)
    if len(tapped.dims) != 4:
        raise ValueError(f"layer {name!r} outputs shape {tapped.dims}; Grad-CAM needs a "
                         "[batch, channels, height, width] feature map")
    seed = np.zeros((len(x), n_classes), np.float32)
    seed[np.arange(len(x)), classes] = 1.0  # ∂y_b,class_b / ∂logits, one row per sample
    logits.grad.copy_from(aidge_core.Tensor(seed))
    scheduler.backward()
    features = np.array(tapped, np.float32)
    weights = np.array(tapped.grad, np.float64).mean(axis=(2, 3))
    maps = np.maximum(np.einsum("bc,bchw->bhw", weights, features.astype(np.float64)), 0.0)
    return GradCAM(maps.astype(np.float32), weights.astype(np.float32), features)


def plot_grad_cam(path, images, teacher_maps, student_maps, titles: Optional[Sequence[str]] = None,
                  dpi: int = 100) -> str:
    """Write a PNG: one column per input, rows = image, teacher map, student map (each map
    upsampled to the image size and laid over it), as the LwM seed repository's
    visualisation does. Written atomically; returns the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = np.asarray(images, np.float32)
    teacher_maps = np.asarray(teacher_maps, np.float32)
    student_maps = np.asarray(student_maps, np.float32)
    if images.ndim == 4:  # [N, C, H, W] -> [N, H, W, C] (gray: [N, H, W])
        images = images.transpose(0, 2, 3, 1)
        if images.shape[-1] == 1:
            images = images[..., 0]
    n = len(images)
    if n == 0 or teacher_maps.shape != student_maps.shape or len(teacher_maps) != n or teacher_maps.ndim != 3:
        raise ValueError(f"need N images and two [N, H, W] map stacks, got {images.shape}, "
                         f"{teacher_maps.shape}, {student_maps.shape}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"{len(titles)} titles for {n} inputs")
    fig, axes = plt.subplots(3, n, figsize=(1.8 * n, 5.6), squeeze=False)
    h, w = images.shape[1:3]
    for i in range(n):
        img = images[i]
        img = (img - img.min()) / max(float(img.max() - img.min()), 1e-12)
        for row, (label, maps) in enumerate((("input", None), ("teacher", teacher_maps),
                                             ("student", student_maps))):
            ax = axes[row, i]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            if maps is not None:
                ax.imshow(maps[i], cmap="jet", alpha=0.5, extent=(-0.5, w - 0.5, h - 0.5, -0.5),
                          interpolation="bilinear")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(label)
            if row == 0 and titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    fig.tight_layout()
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format="png", dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        plt.close(fig)
    return path
