"""Incremental models as Aidge graphs: a feature extractor and a classifier
head that grows when a step brings new classes.

The parameters live in the Aidge graph while it trains; :meth:`state_dict`
reads them as NumPy arrays and :meth:`load_state_dict` writes them back, so
a model can be cloned (a frozen teacher), checkpointed or rebuilt with a
bigger head without losing a weight.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Sequence, Tuple

import aidge_core
import aidge_backend_cpu  # noqa: F401  (registers the CPU kernels)
import numpy as np

__all__ = ["ARCHITECTURES", "IncrementalModel", "FEATURES", "HEAD"]

FEATURES = "features"  #: name of the layer whose output is the feature vector
HEAD = "head"          #: name of the classifier layer

# A layer: (kind, name, arguments). Parameters of layer NAME are the Aidge
# producers NAME_w and NAME_b.
Layer = Tuple[str, str, dict]


def _mlp(input_shape, hidden: Sequence[int]) -> Tuple[List[Layer], int]:
    layers: List[Layer] = [("flatten", "flatten", {})]
    width = int(np.prod(input_shape))
    for i, h in enumerate(hidden):
        last = i == len(hidden) - 1
        layers += [("fc", f"fc{i + 1}", {"in": width, "out": h}),
                   ("relu", FEATURES if last else f"relu{i + 1}", {})]
        width = h
    return layers, width


def _lenet(input_shape, hidden: Sequence[int]) -> Tuple[List[Layer], int]:
    """LeNet-style: two (3x3 conv, ReLU, 2x2 max-pool) blocks, then fully connected layers."""
    channels, height, width = input_shape
    layers: List[Layer] = []
    for i, out in enumerate((16, 32)):
        if min(height, width) < 4:
            raise ValueError(f"input {input_shape} is too small for the LeNet model")
        layers += [("conv", f"conv{i + 1}", {"in": channels, "out": out, "kernel": 3}),
                   ("relu", f"crelu{i + 1}", {}),
                   ("maxpool", f"pool{i + 1}", {"kernel": 2})]
        channels, height, width = out, (height - 2) // 2, (width - 2) // 2
    mlp, features = _mlp((channels, height, width), hidden)
    return layers + mlp, features


ARCHITECTURES = {"mlp": _mlp, "lenet": _lenet}


def _node(kind: str, name: str, args: dict):
    if kind == "flatten":
        return aidge_core.Flatten(1, name=name)
    if kind == "fc":
        return aidge_core.FC(args["in"], args["out"], name=name)
    if kind == "relu":
        return aidge_core.ReLU(name=name)
    if kind == "conv":
        k = args["kernel"]
        return aidge_core.Conv2D(args["in"], args["out"], [k, k], name=name)
    if kind == "maxpool":
        k = args["kernel"]
        return aidge_core.MaxPooling2D([k, k], name=name, stride_dims=[k, k])
    raise ValueError(f"unknown layer kind {kind}")


class IncrementalModel:
    """An Aidge model for class-incremental learning.

    ``architecture`` is ``"mlp"`` or ``"lenet"``; ``hidden`` the widths of the
    fully connected layers before the head. The head starts with
    ``n_classes`` outputs (0: none yet) and grows with :meth:`grow`.
    """

    def __init__(self, architecture: str, input_shape: Sequence[int], hidden: Sequence[int] = (128, 128),
                 n_classes: int = 0, seed: int = 0, backend: str = "cpu"):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}, got {architecture!r}")
        if not hidden:
            raise ValueError("hidden must name at least one layer width")
        self.architecture = architecture
        self.backend = backend  #: where the graph is compiled ("cpu" or "cuda")
        self.input_shape = tuple(int(d) for d in input_shape)
        self.hidden = tuple(int(h) for h in hidden)
        self.layers, self.feature_dim = ARCHITECTURES[architecture](self.input_shape, self.hidden)
        self.n_classes = 0
        self._rng = np.random.default_rng(seed)
        self._params: Dict[str, np.ndarray] = {}
        for kind, name, args in self.layers:
            if kind == "fc":
                self._params[f"{name}_w"] = self._init((args["out"], args["in"]), args["in"])
                self._params[f"{name}_b"] = np.zeros(args["out"], np.float32)
            elif kind == "conv":
                k = args["kernel"]
                fan_in = args["in"] * k * k
                self._params[f"{name}_w"] = self._init((args["out"], args["in"], k, k), fan_in)
                self._params[f"{name}_b"] = np.zeros(args["out"], np.float32)
        self._params[f"{HEAD}_w"] = np.zeros((0, self.feature_dim), np.float32)
        self._params[f"{HEAD}_b"] = np.zeros(0, np.float32)
        self._graph = None
        if n_classes:
            self.grow(n_classes)

    def _init(self, shape, fan_in) -> np.ndarray:
        """He-normal initialisation (He et al. 2015), for ReLU networks."""
        return (self._rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    # -- structure -----------------------------------------------------------
    def grow(self, n_new: int) -> None:
        """Add ``n_new`` outputs to the head; old rows are kept as they are."""
        if n_new <= 0:
            raise ValueError(f"grow() needs a positive number of new classes, got {n_new}")
        params = self.state_dict()
        new_w = self._init((n_new, self.feature_dim), self.feature_dim)
        params[f"{HEAD}_w"] = np.concatenate([params[f"{HEAD}_w"], new_w])
        params[f"{HEAD}_b"] = np.concatenate([params[f"{HEAD}_b"], np.zeros(n_new, np.float32)])
        self.n_classes += n_new
        self._params = params
        self._graph = None

    def build_graph(self, with_head: bool = True) -> aidge_core.GraphView:
        """A fresh Aidge graph of the model (input NCHW float32, output logits, or
        the features when ``with_head`` is false)."""
        if self.n_classes == 0:
            raise ValueError("the model has no class yet: grow() it first")
        params = self.state_dict()  # the live graph's current weights, if it is trained
        nodes = [_node(kind, name, args) for kind, name, args in self.layers]
        if with_head:
            nodes.append(aidge_core.FC(self.feature_dim, self.n_classes, name=HEAD))
        # Chain output 0 -> input 0 explicitly: aidge_core.sequential would also try to
        # connect MaxPooling's second output (its indices).
        graph = aidge_core.GraphView()
        for previous, node in zip(nodes, nodes[1:]):
            previous.add_child(node, 0, 0)
        for node in nodes:
            graph.add(node)
        graph.set_ordered_inputs([(nodes[0], 0)])
        graph.set_ordered_outputs([(nodes[-1], 0)])
        graph.compile(self.backend, aidge_core.dtype.float32, dims=[[1, *self.input_shape]])
        for node in aidge_core.producers(graph):
            tensor = node.get_operator().get_output(0)
            if node.name() not in params:
                raise ValueError(f"no parameter named {node.name()} in the model")
            tensor.copy_from(aidge_core.Tensor(np.ascontiguousarray(params[node.name()])))
        return graph

    @property
    def graph(self) -> aidge_core.GraphView:
        """The live graph (parameters are trained in place in it)."""
        if self._graph is None:
            self._graph = self.build_graph()
            self._scheduler = aidge_core.SequentialScheduler(self._graph)
        return self._graph

    @property
    def scheduler(self) -> aidge_core.SequentialScheduler:
        self.graph
        return self._scheduler

    @property
    def output(self) -> aidge_core.Tensor:
        return self.graph.get_node(HEAD).get_operator().get_output(0)

    def set_training(self, training: bool) -> None:
        """Train or evaluation mode. No layer here behaves differently (no
        BatchNorm, no dropout), so this does nothing; the training loop calls it."""

    def parameter_nodes(self) -> list:
        return aidge_core.producers(self.graph)

    # -- parameters ----------------------------------------------------------
    def state_dict(self) -> Dict[str, np.ndarray]:
        """Copies of all parameters, by producer name."""
        if self._graph is not None:
            for node in aidge_core.producers(self._graph):
                self._params[node.name()] = np.array(node.get_operator().get_output(0), np.float32)
        return {k: v.copy() for k, v in self._params.items()}

    def load_state_dict(self, params: Dict[str, np.ndarray]) -> None:
        expected = set(self.state_dict())
        if set(params) != expected:
            raise ValueError(f"parameters {sorted(set(params) ^ expected)} do not match the model")
        n_classes = len(params[f"{HEAD}_b"])
        for name, value in params.items():
            value = np.asarray(value, np.float32)
            if name.startswith(HEAD):
                ok = value.shape == ((n_classes, self.feature_dim) if name.endswith("_w") else (n_classes,))
            else:
                ok = value.shape == self._params[name].shape
            if not ok:
                raise ValueError(f"parameter {name} has shape {value.shape}, the model expects "
                                 f"{self._params[name].shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"parameter {name} contains NaN or inf")
        self._params = {k: np.array(v, np.float32) for k, v in params.items()}
        self.n_classes = n_classes
        self._graph = None

    @property
    def rng_state(self) -> dict:
        """State of the generator that initialises new head rows (for checkpoints)."""
        return self._rng.bit_generator.state

    @rng_state.setter
    def rng_state(self, state: dict) -> None:
        self._rng.bit_generator.state = state

    def clone(self) -> "IncrementalModel":
        """An independent copy (same weights): the frozen teacher of the next step."""
        twin = copy.copy(self)
        twin._params = self.state_dict()
        twin._graph = None
        twin._rng = copy.deepcopy(self._rng)
        return twin

    # -- inference -----------------------------------------------------------
    def _run(self, x: np.ndarray, layer: str, batch_size: int) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if x.shape[1:] != self.input_shape:
            raise ValueError(f"inputs of shape {x.shape[1:]}, the model expects {self.input_shape}")
        if len(x) == 0:
            raise ValueError("no input to run the model on")
        graph, scheduler = self.graph, self.scheduler
        tensor = graph.get_node(layer).get_operator().get_output(0)
        out = []
        for start in range(0, len(x), batch_size):
            scheduler.forward(data=[aidge_core.Tensor(np.ascontiguousarray(x[start:start + batch_size]))])
            out.append(np.array(tensor, np.float32))
        return np.concatenate(out)

    def logits(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return self._run(x, HEAD, batch_size)

    def features(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Output of the layer named ``features`` (the input of the head)."""
        return self._run(x, FEATURES, batch_size)

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return self.logits(x, batch_size).argmax(axis=1)
