#include <pybind11/pybind11.h>

#include "aidge/incremental/scheduler/SkipBackward.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

void init_SkipBackward(py::module &m)
{
    m.def("set_skip_backward", &setSkipBackward, py::arg("node"), py::arg("skip") = true,
          "Mark a node so that SequentialScheduler.backward() skips it (or not).");
}

} // namespace incremental
} // namespace Aidge
