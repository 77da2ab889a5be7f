"""An IncrementalModel rebuilt in PyTorch (float64) from its layer list and its
``state_dict()``, independent of Aidge and of our kernels: the reference for
Grad-CAM, LwM's gradient and the teacher's inference mode.

Producer names map one to one: ``NAME_w``/``NAME_b`` -> conv/FC weight and bias,
``NAME_scale``/``NAME_shift`` -> BatchNorm weight and bias,
``NAME_batch_mean``/``NAME_batch_variance`` -> its running statistics.
"""
import numpy as np
import pytest

from aidge_incremental.models import HEAD
from aidge_incremental.models.layers import BN_EPSILON
from aidge_incremental.models.spec import INPUT


def torch_parameters(model, requires_grad=True):
    """The model's state as float64 torch tensors (trainable ones requiring grad)."""
    torch = pytest.importorskip("torch")
    state = model.state_dict()
    return {k: torch.tensor(np.asarray(v, np.float64), requires_grad=requires_grad and k not in model.state_names)
            for k, v in state.items()}


def torch_forward(model, params, x, training=False):
    """Every layer's output (by name, HEAD included) for inputs ``x`` (a torch tensor);
    BatchNorm on batch statistics when ``training`` (its running statistics untouched)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    out = {INPUT: x}
    for layer in list(model.layers) + [_head(model)]:
        a, n = layer.args, layer.name
        xs = [out[i] for i in layer.inputs]
        if layer.kind == "conv":
            y = F.conv2d(xs[0], params[f"{n}_w"], params.get(f"{n}_b"), stride=a["stride"], padding=a["pad"])
        elif layer.kind == "bn":
            y = F.batch_norm(xs[0], params[f"{n}_batch_mean"].detach().clone(),
                             params[f"{n}_batch_variance"].detach().clone(), params[f"{n}_scale"],
                             params[f"{n}_shift"], training=training, eps=BN_EPSILON)
        elif layer.kind == "relu":
            y = F.relu(xs[0])
        elif layer.kind == "add":
            y = xs[0] + xs[1]
        elif layer.kind == "maxpool":
            y = F.max_pool2d(xs[0], a["kernel"], a["stride"])
        elif layer.kind == "pad_channels":
            y = F.pad(xs[0], (0, 0, 0, 0, a["before"], a["after"]))
        elif layer.kind == "gap":
            y = xs[0].mean(dim=(2, 3), keepdim=True)
        elif layer.kind == "flatten":
            y = xs[0].flatten(1)
        elif layer.kind == "fc":
            y = F.linear(xs[0], params[f"{n}_w"], params[f"{n}_b"])
        else:
            raise ValueError(f"no reference for layer kind {layer.kind}")
        out[n] = y
    return out


def _head(model):
    from aidge_incremental.models import FEATURES
    from aidge_incremental.models.spec import Layer
    return Layer("fc", HEAD, {"in": model.feature_dim, "out": model.n_classes}, (FEATURES,))


def randomise(model, seed, scale=0.3):
    """Non-trivial weights, biases and BatchNorm statistics (a trained model's look:
    zero biases, unit BatchNorm or zero-initialised branches would hide terms)."""
    rng = np.random.default_rng(seed)
    params = model.state_dict()
    for k, v in params.items():
        if k.endswith("_batch_mean") or k.endswith("_shift") or k.endswith("_b"):
            params[k] = (0.1 * rng.standard_normal(v.shape)).astype(np.float32)
        elif k.endswith("_batch_variance"):
            params[k] = rng.uniform(0.5, 2.0, v.shape).astype(np.float32)
        elif k.endswith("_scale"):
            params[k] = (1 + scale * rng.standard_normal(v.shape)).astype(np.float32)
        else:
            std = max(float(np.std(v)), 0.05)
            params[k] = (v + scale * std * rng.standard_normal(v.shape)).astype(np.float32)
    model.load_state_dict(params)
    return model
