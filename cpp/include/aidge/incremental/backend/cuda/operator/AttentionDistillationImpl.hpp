/**
 * CUDA implementation entry point of AttentionDistillation_Op, same
 * signatures as the CPU one (AttentionDistillationImpl_cpu). Kernels
 * (float32, float64) are registered in
 * cpp/src/backend/cuda/operator/AttentionDistillationImpl.cpp (module _core_cuda).
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_ATTENTIONDISTILLATIONIMPL_H_
#define AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_ATTENTIONDISTILLATIONIMPL_H_

#include <cstddef>

#include "aidge/backend/cuda/operator/OperatorImpl.hpp"
#include "aidge/incremental/operator/AttentionDistillation.hpp"

namespace Aidge {
namespace incremental {

using AttentionDistillationImpl_cuda = OperatorImpl_cuda<
    AttentionDistillation_Op,
    std::size_t(float, const AttentionDistillationShape &, const void *, const void *,
                const void *, void *),
    void(float, const AttentionDistillationShape &, const void *, const void *, const void *,
         const void *, void *, void *)>;

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_ATTENTIONDISTILLATIONIMPL_H_
