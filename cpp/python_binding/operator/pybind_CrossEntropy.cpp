#include <string>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aidge/incremental/operator/CrossEntropy.hpp"
#include "aidge/operator/OperatorTensor.hpp"
#include "aidge/utils/Registrar.hpp"
#include "../utils/pybind_Arguments.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

void init_CrossEntropy(py::module &m)
{
    py::class_<CrossEntropy_Op, std::shared_ptr<CrossEntropy_Op>, OperatorTensor>(
        m, "CrossEntropyOp", py::multiple_inheritance(),
        R"doc(Softmax cross-entropy loss operator (log-sum-exp, finite for any finite logits).

Inputs: logits [B, C], target probabilities [B, C] (one-hot or soft, >= 0), same float type.
Output: the scalar loss {1} = mean_b -sum_j y_bj log softmax(s_b)_j.
Backward adds (softmax(s) * sum_j y_j - y) / B (times the output gradient) to the logits'
gradient. A terminal loss node: forward seeds its output gradient with 1; write another
value into it after forward to weight the loss.)doc")
        .def(py::init<>())
        .def_static("get_inputs_name",
                    []() {
                        return std::vector<std::string>(std::begin(CrossEntropy_Op::InputsName),
                                                        std::end(CrossEntropy_Op::InputsName));
                    })
        .def_static("get_outputs_name", []() {
            return std::vector<std::string>(std::begin(CrossEntropy_Op::OutputsName),
                                            std::end(CrossEntropy_Op::OutputsName));
        });

    declareRegistrable<CrossEntropy_Op>(m, "CrossEntropyOp");

    m.def("CrossEntropy", [](const py::object &name) { return CrossEntropy(strArg(name, "CrossEntropy", "name")); },
          py::arg("name") = "",
          "Create a CrossEntropy loss node (inputs: logits, target probabilities).");
}

} // namespace incremental
} // namespace Aidge
