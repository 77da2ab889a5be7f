/**
 * CUDA implementation entry point of Distillation_Op, the same signatures as
 * the CPU one (DistillationImpl_cpu) so both backends share the validation in
 * checkDistillationInputs. Kernels (float32, float64) are registered in
 * cpp/src/backend/cuda/operator/DistillationImpl.cpp; they live in the
 * separate extension aidge_incremental._core_cuda (see CMakeLists.txt).
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_DISTILLATIONIMPL_H_
#define AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_DISTILLATIONIMPL_H_

#include <cstddef>

#include "aidge/backend/cuda/operator/OperatorImpl.hpp"
#include "aidge/incremental/operator/Distillation.hpp"

namespace Aidge {
namespace incremental {

using DistillationImpl_cuda = OperatorImpl_cuda<
    Distillation_Op,
    std::size_t(float, DistillationForm, const DistillationShape &,
                const void *, const void *, void *),
    void(float, DistillationForm, const DistillationShape &,
         const void *, const void *, const void *, void *)>;

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_DISTILLATIONIMPL_H_
