#include <cstdint>
#include <memory>

#include <pybind11/pybind11.h>

#include "aidge/data/Tensor.hpp"
#include "aidge/incremental/loss/AttentionDistillation.hpp"
#include "aidge/incremental/loss/CrossEntropy.hpp"
#include "aidge/incremental/loss/Distillation.hpp"
#include "../utils/pybind_Arguments.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

void init_Loss(py::module &m)
{
    m.def(
        "distillation",
        [](const py::object &student, const py::object &teacher, const py::object &temperature,
           const py::object &nbOld, const py::object &form, const py::object &scaling,
           const py::object &accumulate) {
            const char *fn = "distillation";
            std::shared_ptr<Tensor> s = tensorArg(student, fn, "student");
            const std::shared_ptr<Tensor> t = tensorArg(teacher, fn, "teacher");
            const float T = static_cast<float>(floatArg(temperature, fn, "temperature", positiveFloat32()));
            const auto n = static_cast<std::uint32_t>(intArg(nbOld, fn, "n_old", 0, UINT32_MAX));
            const DistillationForm f = formArg(form, fn, "form");
            const float scale = static_cast<float>(floatArg(scaling, fn, "scaling", anyFloat32()));
            const bool add = boolArg(accumulate, fn, "accumulate");
            return coreCall(fn, {{"student", student}, {"teacher", teacher}, {"temperature", temperature},
                                 {"n_old", nbOld}, {"scaling", scaling}},
                            [&] { return distillation(s, t, T, n, f, scale, add); });
        },
        py::arg("student"), py::arg("teacher"), py::arg("temperature") = 2.0f,
        py::arg("n_old") = 0, py::arg("form") = "kl", py::arg("scaling") = 1.0f,
        py::arg("accumulate") = false,
        R"doc(Distillation loss; returns scaling * loss and sets student.grad.

Runs the Distillation operator on the tensors' backend. With ``accumulate=True`` the
gradient is added to student.grad instead of replacing it.)doc");

    m.def(
        "cross_entropy",
        [](const py::object &prediction, const py::object &target, const py::object &scaling,
           const py::object &accumulate) {
            const char *fn = "cross_entropy";
            std::shared_ptr<Tensor> p = tensorArg(prediction, fn, "prediction");
            const std::shared_ptr<Tensor> t = tensorArg(target, fn, "target");
            const float scale = static_cast<float>(floatArg(scaling, fn, "scaling", anyFloat32()));
            const bool add = boolArg(accumulate, fn, "accumulate");
            return coreCall(fn, {{"prediction", prediction}, {"target", target}, {"scaling", scaling}},
                            [&] { return crossEntropy(p, t, scale, add); });
        },
        py::arg("prediction"), py::arg("target"),
          py::arg("scaling") = 1.0f, py::arg("accumulate") = false,
          R"doc(Softmax cross-entropy (log-sum-exp: finite for any finite logits).

Runs the CrossEntropy operator on the tensors' backend. Returns
scaling * mean_b -sum_j y_bj log softmax(s_b)_j and sets prediction.grad.)doc");

    m.def(
        "attention_distillation",
        [](const py::object &features, const py::object &weights, const py::object &teacherMap,
           const py::object &scaling, const py::object &accumulate, const py::object &epsilon) {
            const char *fn = "attention_distillation";
            std::shared_ptr<Tensor> f = tensorArg(features, fn, "features");
            const std::shared_ptr<Tensor> w = tensorArg(weights, fn, "weights");
            const std::shared_ptr<Tensor> q = tensorArg(teacherMap, fn, "teacher_map");
            const float scale = static_cast<float>(floatArg(scaling, fn, "scaling", anyFloat32()));
            const bool add = boolArg(accumulate, fn, "accumulate");
            const float eps = static_cast<float>(floatArg(epsilon, fn, "epsilon", positiveFloat32()));
            return coreCall(fn, {{"features", features}, {"weights", weights}, {"teacher_map", teacherMap},
                                 {"scaling", scaling}, {"epsilon", epsilon}},
                            [&] { return attentionDistillation(f, w, q, scale, add, eps); });
        },
        py::arg("features"),
          py::arg("weights"), py::arg("teacher_map"), py::arg("scaling") = 1.0f,
          py::arg("accumulate") = false, py::arg("epsilon") = 1e-12f,
          R"doc(Attention-distillation loss (LwM); returns scaling * L_AD and sets features.grad and weights.grad.

Same definition as the AttentionDistillation operator, which it runs on the tensors'
backend; each gradient is the partial derivative at the other input fixed.)doc");
}

} // namespace incremental
} // namespace Aidge
