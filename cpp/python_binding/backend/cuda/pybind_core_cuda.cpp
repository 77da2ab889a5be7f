// Module entry point: aidge_incremental._core_cuda, the CUDA kernels of our
// operators. Importing it registers them for the "cuda" backend (the
// REGISTRAR statics in cpp/src/backend/cuda run at load time). It is a
// separate extension so that _core, and with it the CPU path, never depends
// on the CUDA libraries; aidge_incremental.cuda.ensure_cuda_backend() imports
// it after checking the driver, the GPU and aidge_backend_cuda.
#include <pybind11/pybind11.h>

#include <cuda_runtime_api.h>

namespace py = pybind11;

PYBIND11_MODULE(_core_cuda, m)
{
    // Registries live in pybind11 shared data created by aidge_core; Tensor
    // storage on "cuda" comes from aidge_backend_cuda; the operator types
    // from our _core.
    py::module_::import("aidge_core");
    py::module_::import("aidge_backend_cuda");
    py::module_::import("aidge_incremental._core");
    m.doc() = "CUDA kernels of aidge_incremental's operators (registered on import).";
    m.def("runtime_version", []() {
        int v = 0;
        return cudaRuntimeGetVersion(&v) == cudaSuccess ? v : -1;
    }, "CUDA runtime version this module runs on (e.g. 12090), -1 on error.");
    // Toolkit that compiled our kernels: the driver must support at least
    // this CUDA version to load them (checked by ensure_cuda_backend()).
    m.attr("built_with_cuda") = CUDART_VERSION;
    m.attr("kernels") = py::make_tuple("Distillation", "CrossEntropy", "AttentionDistillation");
}
