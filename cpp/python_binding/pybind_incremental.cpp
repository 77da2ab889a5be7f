// Module entry point: aidge_incremental._core.
#include <memory>
#include <stdexcept>

#include <pybind11/pybind11.h>

#include "aidge/graph/Node.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {
void init_Distillation(py::module &m);
void init_CrossEntropy(py::module &m);
void init_AttentionDistillation(py::module &m);
void init_Loss(py::module &m);
void init_MemoryFile(py::module &m);
void init_ExemplarSelection(py::module &m);
void init_NearestMeanOfExemplars(py::module &m);
void init_ExemplarMemory(py::module &m);
void init_ReservoirMemory(py::module &m);
void init_Accelerate(py::module &m);
void init_FastSGD(py::module &m);
} // namespace incremental
} // namespace Aidge

PYBIND11_MODULE(_core, m)
{
    // Our operator derives from types bound by aidge_core, and our Tensor
    // implementations come from aidge_backend_cpu: both must be loaded first.
    py::module_::import("aidge_core");
    py::module_::import("aidge_backend_cpu");

    Aidge::incremental::init_Distillation(m);
    Aidge::incremental::init_CrossEntropy(m);
    Aidge::incremental::init_AttentionDistillation(m);
    py::module_ loss = m.def_submodule("loss", "Loss functions (aidge_learning.loss style).");
    Aidge::incremental::init_Loss(loss);
    Aidge::incremental::init_MemoryFile(m);
    Aidge::incremental::init_ExemplarSelection(m);
    Aidge::incremental::init_NearestMeanOfExemplars(m);
    Aidge::incremental::init_ExemplarMemory(m);
    Aidge::incremental::init_ReservoirMemory(m);
    Aidge::incremental::init_Accelerate(m);
    Aidge::incremental::init_FastSGD(m);

    // SequentialScheduler::backward() skips a node whose "skipBackward"
    // annotation is true; it reads it as a C++ bool, which an attribute set
    // from Python (a py::object) is not. Used by Grad-CAM to stop its backward
    // at the tapped layer.
    m.def(
        "set_skip_backward",
        [](const std::shared_ptr<Aidge::Node> &node, bool skip) {
            if (!node) {
                throw std::invalid_argument("set_skip_backward: node is None");
            }
            const auto attrs = node->attributes();
            if (attrs->hasAttr("skipBackward")) {
                attrs->delAttr("skipBackward");
            }
            attrs->addAttr("skipBackward", skip);
        },
        py::arg("node"), py::arg("skip") = true,
        "Mark a node so that SequentialScheduler.backward() skips it (or not).");
}
