"""The package's MLP (flatten, FC + ReLU layers, head) written in PyTorch
(float64) from a model's ``state_dict``: the independent reference of the
methods' one-batch gradient tests."""
import numpy as np
import pytest


def torch_mlp(params):
    """``(parameters, logits)``: leaf tensors by name (``requires_grad``) and
    ``logits(x)`` of the MLP with those weights (any number of hidden layers)."""
    torch = pytest.importorskip("torch")
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    hidden = sorted(int(k[2:-2]) for k in p if k.startswith("fc") and k.endswith("_w"))

    def logits(x):
        h = torch.tensor(np.asarray(x).reshape(len(x), -1), dtype=torch.float64)
        for i in hidden:
            h = torch.relu(h @ p[f"fc{i}_w"].T + p[f"fc{i}_b"])
        return h @ p["head_w"].T + p["head_b"]
    return p, logits
