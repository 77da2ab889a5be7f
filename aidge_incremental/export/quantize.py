"""int8 post-training quantization with aidge_quantization 0.10.1, calibrated on the
replay memory.

The exemplars are the data an embedded target keeps, and they cover every class
seen in proportion to the budget: they are the natural calibration set of a
step (no other training data need survive the step). The recipe is the one
``aidge_core.export_utils.export`` applies for ``dtype="int8"``: int8 weights and
activations, int32 biases, max-abs clipping, single-shift rescaling; the input
is quantized as ``round(127 * x)`` with ``x`` the scaled sample in [-1, 1], so
the int8 graph takes ``round(127 * raw / divisor)``.
"""
from __future__ import annotations

import aidge_core
import numpy as np

from .errors import ExportError

__all__ = ["INPUT_LEVELS", "quantize_graph", "quantize_inputs", "run_quantized"]

INPUT_LEVELS = 127  #: int8 input = round(INPUT_LEVELS * x), x in [-1, 1] (aidge_core.export_utils.quantize_inputs)


def quantize_inputs(x: np.ndarray) -> np.ndarray:
    """Scaled samples (in [-1, 1]) -> the int8 inputs of the quantized graph."""
    x = np.asarray(x, np.float32)
    if not np.all(np.isfinite(x)) or np.abs(x).max(initial=0) > 1:
        raise ExportError("int8 inputs must be scaled samples in [-1, 1]")
    return np.round(x * INPUT_LEVELS).astype(np.int8)


def quantize_graph(graph: aidge_core.GraphView, calibration: np.ndarray) -> aidge_core.GraphView:
    """Quantize ``graph`` (scaled float inputs, no input scaling node) in place to int8,
    calibrated on ``calibration`` [N, *input_shape] (scaled samples)."""
    try:
        from aidge_quantization import Clipping, auto_assign_node_precision, quantize_network
    except ImportError as e:
        raise ExportError("int8 export needs aidge-quantization==0.10.1: "
                          "pip install 'aidge_incremental[export]'") from e
    calibration = np.asarray(calibration, np.float32)
    if len(calibration) == 0:
        raise ExportError("int8 quantization needs calibration samples (the replay memory is empty)")
    quantize_inputs(calibration)  # range check
    level = aidge_core.Log.get_console_level()
    aidge_core.Log.set_console_level(aidge_core.Level.Error)
    try:
        aidge_core.expand_metaops(graph, name_format="{0}_{1}_{2}")
        auto_assign_node_precision(graph, act_precision=aidge_core.dtype.int8,
                                   weight_precision=aidge_core.dtype.int8,
                                   bias_precision=aidge_core.dtype.int32)
        tensors = [aidge_core.Tensor(np.ascontiguousarray(s[None])) for s in calibration]
        quantize_network(network=graph, calibration_set=tensors, clipping_mode=Clipping.MAX,
                         single_shift=True)
        for node, index in graph.get_ordered_inputs():
            tensor = node.get_operator().get_input(index)
            if tensor is not None:
                tensor.to_dtype(aidge_core.dtype.int8)
        graph.set_backend("cpu")
    finally:
        aidge_core.Log.set_console_level(level)
    return graph


def run_quantized(graph: aidge_core.GraphView, x_int8: np.ndarray) -> np.ndarray:
    """Aidge's own forward of the quantized graph, one sample at a time (the export's
    batch size): its first output for each sample, stacked."""
    outputs = []
    scheduler = aidge_core.SequentialScheduler(graph)
    node, index = graph.get_ordered_outputs()[0]
    for sample in np.asarray(x_int8, np.int8):
        tensor = aidge_core.Tensor(np.ascontiguousarray(sample[None]))
        tensor.to_dtype(aidge_core.dtype.int8)
        scheduler.forward(data=[tensor])
        outputs.append(np.array(node.get_operator().get_output(index)).reshape(-1))
    return np.stack(outputs)
