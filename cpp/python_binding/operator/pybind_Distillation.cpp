#include <cstdint>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aidge/incremental/operator/Distillation.hpp"
#include "aidge/operator/OperatorTensor.hpp"
#include "aidge/utils/Registrar.hpp"
#include "../utils/pybind_Arguments.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

void init_Distillation(py::module &m)
{
    py::enum_<DistillationForm>(m, "DistillationForm",
                                "Distillation objective: KL (Hinton 2015) or BCE (iCaRL).")
        .value("KL", DistillationForm::KL)
        .value("BCE", DistillationForm::BCE);

    py::class_<Distillation_Op, std::shared_ptr<Distillation_Op>, OperatorTensor>(
        m, "DistillationOp", py::multiple_inheritance(),
        R"doc(Knowledge-distillation loss operator.

Inputs: student logits [B, Cs], teacher logits [B, Ct]. Output: the scalar loss {1}.
The first ``n_old`` columns are distilled (0: every teacher column).
``form="kl"``: T^2 * mean_b KL(softmax(t/T) || softmax(s/T)) (Hinton et al. 2015).
``form="bce"``: mean_b sum_j BCE(sigmoid(s/T), sigmoid(t/T)) (iCaRL, T=1).
Backward sets the student's gradient only.)doc")
        .def(py::init([](const py::object &temperature, const py::object &nbOld, const py::object &form) {
                 const char *fn = "DistillationOp";
                 return std::make_shared<Distillation_Op>(
                     static_cast<float>(floatArg(temperature, fn, "temperature", positiveFloat32())),
                     static_cast<std::uint32_t>(intArg(nbOld, fn, "n_old", 0, UINT32_MAX)),
                     formArg(form, fn, "form"));
             }),
             py::arg("temperature") = 2.0f, py::arg("n_old") = 0,
             py::arg("form") = "kl")
        .def_static("get_inputs_name",
                    []() {
                        return std::vector<std::string>(
                            std::begin(Distillation_Op::InputsName),
                            std::end(Distillation_Op::InputsName));
                    })
        .def_static("get_outputs_name",
                    []() {
                        return std::vector<std::string>(
                            std::begin(Distillation_Op::OutputsName),
                            std::end(Distillation_Op::OutputsName));
                    })
        .def_property_readonly("temperature", [](const Distillation_Op &op) { return op.temperature(); })
        .def_property_readonly("n_old", [](const Distillation_Op &op) { return op.nbOld(); })
        .def_property_readonly("form", [](const Distillation_Op &op) {
            return std::string(distillationFormName(op.form()));
        });

    declareRegistrable<Distillation_Op>(m, "DistillationOp");

    m.def(
        "Distillation",
        [](const py::object &temperature, const py::object &nbOld, const py::object &form,
           const py::object &name) {
            const char *fn = "Distillation";
            return Distillation(static_cast<float>(floatArg(temperature, fn, "temperature", positiveFloat32())),
                                static_cast<std::uint32_t>(intArg(nbOld, fn, "n_old", 0, UINT32_MAX)),
                                formArg(form, fn, "form"), strArg(name, fn, "name"));
        },
        py::arg("temperature") = 2.0f, py::arg("n_old") = 0, py::arg("form") = "kl",
        py::arg("name") = "",
        "Create a Distillation loss node (inputs: student logits, teacher logits).");
}

} // namespace incremental
} // namespace Aidge
