#include <string>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aidge/incremental/operator/AttentionDistillation.hpp"
#include "aidge/operator/OperatorTensor.hpp"
#include "aidge/utils/Registrar.hpp"
#include "../utils/pybind_Arguments.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

void init_AttentionDistillation(py::module &m)
{
    py::class_<AttentionDistillation_Op, std::shared_ptr<AttentionDistillation_Op>, OperatorTensor>(
        m, "AttentionDistillationOp", py::multiple_inheritance(),
        R"doc(Attention-distillation loss of Learning without Memorizing (Dhar et al. 2019).

Inputs: student feature map A [B, C, H, W], its Grad-CAM weights alpha [B, C], the teacher's
Grad-CAM map Q_t [B, H, W]. Output: the scalar loss {1} =
mean_b || q_b/max(||q_b||, eps) - Q_t,b/max(||Q_t,b||, eps) ||_1, q_b = ReLU(sum_c alpha_bc A_bc).
Backward adds the first-order gradient (alpha held constant) to A's gradient only.
A terminal loss node: forward seeds its output gradient with 1.)doc")
        .def(py::init([](const py::object &epsilon) {
                 return std::make_shared<AttentionDistillation_Op>(static_cast<float>(
                     floatArg(epsilon, "AttentionDistillationOp", "epsilon", positiveFloat32())));
             }),
             py::arg("epsilon") = 1e-12f)
        .def_static("get_inputs_name",
                    []() {
                        return std::vector<std::string>(
                            std::begin(AttentionDistillation_Op::InputsName),
                            std::end(AttentionDistillation_Op::InputsName));
                    })
        .def_static("get_outputs_name",
                    []() {
                        return std::vector<std::string>(
                            std::begin(AttentionDistillation_Op::OutputsName),
                            std::end(AttentionDistillation_Op::OutputsName));
                    })
        .def_property_readonly("epsilon",
                               [](const AttentionDistillation_Op &op) { return op.epsilon(); });

    declareRegistrable<AttentionDistillation_Op>(m, "AttentionDistillationOp");

    m.def(
        "AttentionDistillation",
        [](const py::object &epsilon, const py::object &name) {
            const char *fn = "AttentionDistillation";
            return AttentionDistillation(static_cast<float>(floatArg(epsilon, fn, "epsilon", positiveFloat32())),
                                         strArg(name, fn, "name"));
        },
        py::arg("epsilon") = 1e-12f,
          py::arg("name") = "",
          "Create an AttentionDistillation loss node (inputs: student feature map, its "
          "Grad-CAM weights, teacher map).");
}

} // namespace incremental
} // namespace Aidge
