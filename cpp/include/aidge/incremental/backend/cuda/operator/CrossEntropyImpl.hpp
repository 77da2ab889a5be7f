/**
 * CUDA implementation entry point of CrossEntropy_Op, same signatures as the
 * CPU one (CrossEntropyImpl_cpu). Kernels (float32, float64) are registered in
 * cpp/src/backend/cuda/operator/CrossEntropyImpl.cpp (module _core_cuda).
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_CROSSENTROPYIMPL_H_
#define AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_CROSSENTROPYIMPL_H_

#include "aidge/backend/cuda/operator/OperatorImpl.hpp"
#include "aidge/incremental/operator/CrossEntropy.hpp"

namespace Aidge {
namespace incremental {

using CrossEntropyImpl_cuda = OperatorImpl_cuda<
    CrossEntropy_Op,
    CrossEntropyDataCheck(const CrossEntropyShape &, const void *, const void *, void *),
    void(const CrossEntropyShape &, const void *, const void *, const void *, void *)>;

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_CROSSENTROPYIMPL_H_
