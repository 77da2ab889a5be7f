#include <limits>
#include <memory>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aidge/data/Tensor.hpp"
#include "aidge/incremental/backend/cpu/FastSGD.hpp"
#include "../../utils/pybind_Arguments.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

void init_FastSGD(py::module &m)
{
    py::class_<FastSGD>(m, "FastSGD",
                        "SGD with momentum and L2 weight decay, PyTorch's rule, in one pass per "
                        "float32 cpu parameter tensor (see FastSGD.hpp).")
        .def(py::init([](const py::object &parameters, const py::object &momentum, const py::object &weightDecay) {
                 const char *fn = "FastSGD";
                 const double maxFloat = std::numeric_limits<float>::max();
                 auto tensors = tensorListArg(parameters, fn, "parameters");
                 const float m = static_cast<float>(floatArg(momentum, fn, "momentum", {0.0, 1.0, false, true}));
                 const float wd = static_cast<float>(floatArg(weightDecay, fn, "weight_decay", {0.0, maxFloat}));
                 return coreCall(fn, {{"parameters", parameters}},
                                 [&] { return std::make_unique<FastSGD>(std::move(tensors), m, wd); });
             }),
             py::arg("parameters"), py::arg("momentum"), py::arg("weight_decay"))
        .def("reset_grad", &FastSGD::resetGrad)
        .def("update", [](FastSGD &sgd, const py::object &lr) {
                 sgd.update(static_cast<float>(
                     floatArg(lr, "update", "lr", {0.0, static_cast<double>(std::numeric_limits<float>::max())})));
             }, py::arg("lr"))
        .def_property_readonly("step", &FastSGD::step);
}

} // namespace incremental
} // namespace Aidge
