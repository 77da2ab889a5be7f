// Module entry point: aidge_incremental._core.
#include <pybind11/pybind11.h>

#include "utils/pybind_Arguments.hpp"

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
void init_SkipBackward(py::module &m);
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
    Aidge::incremental::init_SkipBackward(m);
    // last: wraps every function and method defined above
    Aidge::incremental::nameArgumentErrors(m);
}
