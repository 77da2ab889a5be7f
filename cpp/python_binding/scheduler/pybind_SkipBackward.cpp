#include <pybind11/pybind11.h>

#include "aidge/incremental/scheduler/SkipBackward.hpp"
#include "../utils/pybind_Arguments.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

void init_SkipBackward(py::module &m)
{
    m.def(
        "set_skip_backward",
        [](const py::object &node, const py::object &skip) {
            setSkipBackward(nodeArg(node, "set_skip_backward", "node"), boolArg(skip, "set_skip_backward", "skip"));
        },
        py::arg("node"), py::arg("skip") = true,
          "Mark a node so that SequentialScheduler.backward() skips it (or not).");
}

} // namespace incremental
} // namespace Aidge
