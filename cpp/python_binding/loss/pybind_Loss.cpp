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
        [](std::shared_ptr<Tensor> &student, const std::shared_ptr<Tensor> &teacher,
           float temperature, long long nbOld, const py::object &form, float scaling,
           bool accumulate) {
            return distillation(student, teacher, temperature, nbOldFromPy(nbOld),
                                      formFromPy(form), scaling, accumulate);
        },
        py::arg("student"), py::arg("teacher"), py::arg("temperature") = 2.0f,
        py::arg("n_old") = 0, py::arg("form") = "kl", py::arg("scaling") = 1.0f,
        py::arg("accumulate") = false,
        R"doc(Distillation loss; returns scaling * loss and sets student.grad.

Runs the Distillation operator on the tensors' backend. With ``accumulate=True`` the
gradient is added to student.grad instead of replacing it.)doc");

    m.def("cross_entropy", &crossEntropy, py::arg("prediction"), py::arg("target"),
          py::arg("scaling") = 1.0f, py::arg("accumulate") = false,
          R"doc(Softmax cross-entropy (log-sum-exp: finite for any finite logits).

Runs the CrossEntropy operator on the tensors' backend. Returns
scaling * mean_b -sum_j y_bj log softmax(s_b)_j and sets prediction.grad.)doc");

    m.def("attention_distillation", &attentionDistillation, py::arg("features"),
          py::arg("weights"), py::arg("teacher_map"), py::arg("scaling") = 1.0f,
          py::arg("accumulate") = false, py::arg("epsilon") = 1e-12f,
          R"doc(Attention-distillation loss (LwM); returns scaling * L_AD and sets features.grad and weights.grad.

Same definition as the AttentionDistillation operator, which it runs on the tensors'
backend; each gradient is the partial derivative at the other input fixed.)doc");
}

} // namespace incremental
} // namespace Aidge
