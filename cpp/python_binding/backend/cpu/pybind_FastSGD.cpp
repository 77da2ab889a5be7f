#include <memory>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aidge/data/Tensor.hpp"
#include "aidge/incremental/backend/cpu/FastSGD.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

void init_FastSGD(py::module &m)
{
    py::class_<FastSGD>(m, "FastSGD",
                        "SGD with momentum and L2 weight decay, PyTorch's rule, in one pass per "
                        "float32 cpu parameter tensor (see FastSGD.hpp).")
        .def(py::init<std::vector<std::shared_ptr<Tensor>>, float, float>(), py::arg("parameters"),
             py::arg("momentum"), py::arg("weight_decay"))
        .def("reset_grad", &FastSGD::resetGrad)
        .def("update", &FastSGD::update, py::arg("lr"))
        .def_property_readonly("step", &FastSGD::step);
}

} // namespace incremental
} // namespace Aidge
