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
step's forward and backward. A clone gets Aidge's own kernels back, so the clone of
a model on our fast kernels is accelerated too (Aidge's CPU backend has no
GlobalAveragePooling backward: a ResNet's Grad-CAM needs ours).

Two more functions serve Learning without Memorizing's exact gradient:

- :func:`linear_head_weights`: when the layers above the tap are global average
  pooling, flatten and the head (the ResNets' last stage), ``y_b = W_b · mean_hw(A)
  + c_b``, so ``α_bc = W[class_b, c] / (H·W)`` exactly, for any input: no pass at all.
- :func:`grad_cam_weights_vjp`: ``Σ_bc g_bc ∂α_bc/∂θ`` for the parameters θ above
  the tap — α is a product of the backward pass of those layers, so it depends on
  their weights at first order. With ``v = g/(H·W)`` broadcast over the pixels,
  ``Σ_c g_c α_c = ⟨v, ∂y_b/∂A⟩ = (J·v)_b``, the forward-mode derivative of the
  logits in the direction v: the layers above the tap run on the tangent v with the
  primal's ReLU masks and max-pooling switches (linear layers without their bias,
  BatchNorm in inference mode as a per-channel scale). That tangent output is
  multilinear in v and the weights, and depends on the input otherwise only through
  the masks and switches, which are piecewise constant; so one reverse pass through
  the tangent network, seeded with a one-hot row at each sample's class, gives
  ``∂/∂W = δ ⊗ t_in`` for each weight (biases, BatchNorm shifts and the layers below
  the tap get nothing: ∂α/∂A is zero almost everywhere). Computed in float64 NumPy
  from the live graph's activations (the layers above a tap are small: an FC head
  for LeNet, GAP and the head for a ResNet).
"""
from __future__ import annotations

import os
import tempfile
from typing import Dict, List, NamedTuple, Optional, Sequence

import aidge_core
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import _core

__all__ = ["GradCAM", "grad_cam", "grad_cam_weights_vjp", "last_conv_layer", "layers_above", "linear_head_weights",
           "plot_grad_cam"]

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


def _runs_our_kernels(graph: aidge_core.GraphView) -> bool:
    if not any(True for _ in graph.get_nodes()):
        return False
    try:
        from .backend.cpu import is_accelerated
    except ImportError:  # pragma: no cover - the core always has its CPU kernels
        return False
    return any(is_accelerated(node) for node in graph.get_nodes() if node.type() != "Producer")


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
    if _runs_our_kernels(graph):  # a clone gets Aidge's kernels back (no GAP backward among them)
        from .backend.cpu import accelerate
        accelerate(clone)
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


# -- the Grad-CAM weights as functions of the weights above the tap ----------------------

def layers_above(model, layer: str) -> List:
    """The layers of ``model`` (an IncrementalModel) whose output depends on ``layer``'s,
    in topological order, the head last."""
    from .models import FEATURES, HEAD
    from .models.spec import Layer
    layers = list(model.layers) + [Layer("fc", HEAD, {"in": model.feature_dim, "out": model.n_classes},
                                         (FEATURES,))]
    if layer not in {l.name for l in layers}:
        raise ValueError(f"{model.architecture} has no layer {layer!r}")
    depends, above = {layer}, []
    for l in layers:
        if l.name != layer and any(i in depends for i in l.inputs):
            depends.add(l.name)
            above.append(l)
    return above


def linear_head_weights(model, classes, layer: str) -> Optional[np.ndarray]:
    """``α [B, C]`` in closed form when the layers above ``layer`` are global average
    pooling, flatten and the head (a ResNet's last stage): ``W_head[class_b] / (H·W)``,
    the same for every input. None for any other head (then run :func:`grad_cam`)."""
    from .models import FEATURES, HEAD
    above = layers_above(model, layer)
    if [l.kind for l in above] != ["gap", "flatten", "fc"] or above[1].name != FEATURES \
            or above[0].inputs != (layer,) or above[1].inputs != (above[0].name,):
        return None
    pixels = above[0].args["height"] * above[0].args["width"]
    weight = np.array(model.graph.get_node(f"{HEAD}_w").get_operator().get_output(0), np.float32)
    classes = np.asarray(classes)
    if classes.ndim != 1 or classes.dtype.kind not in "iu" or len(classes) == 0 or \
            classes.min() < 0 or classes.max() >= len(weight):
        raise ValueError(f"classes must be a vector of class indices in [0, {len(weight)})")
    return weight[classes] / np.float32(pixels)


def _parameter(model, name: str) -> np.ndarray:
    return np.array(model.graph.get_node(name).get_operator().get_output(0), np.float64)


def _conv_windows(x, kernel, stride):
    """[B, C, H, W] (padded) -> [B, C, OH, OW, k, k]"""
    return sliding_window_view(x, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride]


def _pad(x, p):
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x


def _maxpool_switches(x, kernel, stride):
    """For each output of a max-pooling of ``x``, the flat index of its window's first maximum."""
    windows = _conv_windows(x, kernel, stride)
    return windows.reshape(windows.shape[:4] + (-1,)).argmax(axis=-1)


def grad_cam_weights_vjp(model, layer: str, classes, grad_weights) -> Dict[str, np.ndarray]:
    """``Σ_bc grad_weights[b, c] · ∂α_bc/∂θ`` for every parameter θ above ``layer``, α
    being the Grad-CAM weights of ``classes`` at ``layer`` (module docstring).

    Reads the activations of the model's live graph, so call it after the forward pass
    of the very inputs α was computed on (its ReLU masks and max-pooling switches).
    Returns ``{producer name: gradient}`` for the weights above the tap (conv and FC
    weights, BatchNorm scales in inference mode). Raises a ValueError when a BatchNorm
    above the tap runs in training mode (its batch statistics couple the samples and
    make α depend on A smoothly: that needs a true double backward)."""
    from .models import HEAD
    from .models.layers import BN_EPSILON
    above = layers_above(model, layer)
    for l in above:
        if l.kind == "bn" and model.training:
            raise ValueError(f"the Grad-CAM weights' gradient is exact only with the layers above {layer!r} "
                             f"free of BatchNorm in training mode; {l.name!r} is one (tap a later layer)")
    a = np.array(model.tap(layer), np.float64)
    grad_weights = np.asarray(grad_weights, np.float64)
    if grad_weights.shape != a.shape[:2]:
        raise ValueError(f"grad_weights must be [batch, channels] = {list(a.shape[:2])}, got {list(grad_weights.shape)}")
    classes = np.asarray(classes)
    rows = np.arange(len(classes))
    tangent = {layer: np.broadcast_to((grad_weights / (a.shape[2] * a.shape[3]))[:, :, None, None], a.shape)}
    saved = {}  # what each layer's reverse pass needs
    for l in above:
        args, ins = l.args, [tangent.get(i) for i in l.inputs]
        t = ins[0]
        if l.kind == "conv":
            w = _parameter(model, f"{l.name}_w")
            k, st, p = args["kernel"], args["stride"], args["pad"]
            saved[l.name] = (w, t.shape)
            out = np.einsum("bcyxij,ocij->boyx", _conv_windows(_pad(t, p), k, st), w, optimize=True)
        elif l.kind == "bn":
            var = _parameter(model, f"{l.name}_batch_variance")
            factor = 1.0 / np.sqrt(var + BN_EPSILON)
            scale = _parameter(model, f"{l.name}_scale") * factor
            saved[l.name] = (scale, factor, t)
            out = t * scale[None, :, None, None]
        elif l.kind == "relu":
            mask = np.array(model.tap(l.name)) > 0  # ReLU(x) > 0 exactly where x > 0
            saved[l.name] = mask
            out = t * mask
        elif l.kind == "maxpool":
            k, st = args["kernel"], args["stride"]
            switches = _maxpool_switches(np.array(model.tap(l.inputs[0]), np.float64), k, st)
            saved[l.name] = (switches, t.shape)
            windows = _conv_windows(t, k, st)
            out = np.take_along_axis(windows.reshape(windows.shape[:4] + (-1,)), switches[..., None], -1)[..., 0]
        elif l.kind == "add":
            present = [x for x in ins if x is not None]
            out = present[0] + present[1] if len(present) == 2 else present[0]
        elif l.kind == "pad_channels":
            out = np.pad(t, ((0, 0), (args["before"], args["after"]), (0, 0), (0, 0)))
        elif l.kind == "gap":
            saved[l.name] = t.shape
            out = t.mean(axis=(2, 3), keepdims=True)
        elif l.kind == "flatten":
            saved[l.name] = t.shape
            out = t.reshape(len(t), -1)
        elif l.kind == "fc":
            w = _parameter(model, f"{l.name}_w")
            saved[l.name] = (w, t)
            out = t @ w.T
        else:
            raise ValueError(f"no tangent rule for a {l.kind!r} layer ({l.name}) above {layer!r}")
        tangent[l.name] = out
    logits = tangent[HEAD]
    if classes.shape != (len(a),) or classes.dtype.kind not in "iu" or classes.min() < 0 \
            or classes.max() >= logits.shape[1]:
        raise ValueError(f"classes must hold one class index in [0, {logits.shape[1]}) per sample")
    delta = {HEAD: np.zeros_like(logits)}
    delta[HEAD][rows, classes] = 1.0
    grads: Dict[str, np.ndarray] = {}

    def send(name, value):
        if name in tangent and name != layer:
            delta[name] = delta[name] + value if name in delta else value

    for l in reversed(above):
        d = delta.pop(l.name, None)
        if d is None:
            continue
        args, src = l.args, l.inputs[0]
        if l.kind == "fc":
            w, t = saved[l.name]
            grads[f"{l.name}_w"] = d.T @ t
            send(src, d @ w)
        elif l.kind == "conv":
            w, shape = saved[l.name]
            k, st, p = args["kernel"], args["stride"], args["pad"]
            t = tangent[src]
            grads[f"{l.name}_w"] = np.einsum("boyx,bcyxij->ocij", d, _conv_windows(_pad(t, p), k, st), optimize=True)
            back = np.zeros((shape[0], shape[1], shape[2] + 2 * p, shape[3] + 2 * p))
            oh, ow = d.shape[2:]
            for i in range(k):
                for j in range(k):
                    back[:, :, i:i + st * (oh - 1) + 1:st, j:j + st * (ow - 1) + 1:st] += \
                        np.einsum("boyx,oc->bcyx", d, w[:, :, i, j], optimize=True)
            send(src, back[:, :, p:p + shape[2], p:p + shape[3]])
        elif l.kind == "bn":
            scale, factor, t = saved[l.name]
            grads[f"{l.name}_scale"] = (d * t).sum(axis=(0, 2, 3)) * factor
            send(src, d * scale[None, :, None, None])
        elif l.kind == "relu":
            send(src, d * saved[l.name])
        elif l.kind == "maxpool":
            switches, shape = saved[l.name]
            k, st = args["kernel"], args["stride"]
            back = np.zeros(shape)
            b, c, oy, ox = np.indices(switches.shape)
            np.add.at(back, (b, c, oy * st + switches // k, ox * st + switches % k), d)
            send(src, back)
        elif l.kind == "add":
            for i in l.inputs:
                send(i, d)
        elif l.kind == "pad_channels":
            send(src, d[:, args["before"]:d.shape[1] - args["after"]])
        elif l.kind == "gap":
            shape = saved[l.name]
            send(src, np.broadcast_to(d / (shape[2] * shape[3]), shape))
        elif l.kind == "flatten":
            send(src, d.reshape(saved[l.name]))
    return grads


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
