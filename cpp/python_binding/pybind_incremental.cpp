// Module entry point: aidge_incremental._core.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace Aidge {
void init_Distillation(py::module &m);
void init_CrossEntropy(py::module &m);
void init_AttentionDistillation(py::module &m);
void init_Loss(py::module &m);
namespace incremental {
void init_Memory(py::module &m);
}
} // namespace Aidge

PYBIND11_MODULE(_core, m)
{
    // Our operator derives from types bound by aidge_core, and our Tensor
    // implementations come from aidge_backend_cpu: both must be loaded first.
    py::module_::import("aidge_core");
    py::module_::import("aidge_backend_cpu");

    Aidge::init_Distillation(m);
    Aidge::init_CrossEntropy(m);
    Aidge::init_AttentionDistillation(m);
    py::module_ loss = m.def_submodule("loss", "Loss functions (aidge_learning.loss style).");
    Aidge::init_Loss(loss);
    Aidge::incremental::init_Memory(m);
}
