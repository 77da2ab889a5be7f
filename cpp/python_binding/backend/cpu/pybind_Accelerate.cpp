#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aidge/graph/GraphView.hpp"
#include "aidge/graph/Node.hpp"
#include "aidge/incremental/backend/cpu/Accelerate.hpp"
#include "aidge/incremental/backend/cpu/Blas.hpp"
#include "aidge/incremental/backend/cpu/FastKernelRegistry.hpp"
#include "../../utils/pybind_Arguments.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

void init_Accelerate(py::module &m)
{
    m.def("accelerate", [](const py::object &graph) { return accelerate(graphArg(graph, "accelerate", "graph")); },
          py::arg("graph"),
          "Gives our fast float32 CPU implementation to every supported node of "
          "the graph (and of its meta-operators' micro-graphs); returns how many "
          "nodes changed.");
    m.def("is_accelerated", [](const py::object &node) { return isAccelerated(nodeArg(node, "is_accelerated", "node")); },
          py::arg("node"),
          "Whether the node runs one of aidge_incremental's fast implementations.");
    m.def("unsupported_reason",
          [](const py::object &node) { return unsupportedReason(nodeArg(node, "unsupported_reason", "node")); },
          py::arg("node"),
          "Why accelerate() leaves this node on Aidge's kernel ('' when it would not).");
    m.def("fast_kernels", &FastKernelRegistry::types,
          "Operator types that have a fast kernel (the table accelerate() walks), sorted.");
    m.def("blas_config", []() { return std::string(scipy_openblas_get_config()); },
          "Build configuration string of the OpenBLAS the fast kernels call.");
}

} // namespace incremental
} // namespace Aidge
