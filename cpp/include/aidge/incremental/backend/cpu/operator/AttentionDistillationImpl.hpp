/**
 * CPU implementation entry point of AttentionDistillation_Op. The kernels
 * (float32, float64) are registered in AttentionDistillationImpl.cpp.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_ATTENTIONDISTILLATIONIMPL_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_ATTENTIONDISTILLATIONIMPL_H_

#include <cstddef>

#include "aidge/backend/cpu/operator/OperatorImpl.hpp"
#include "aidge/incremental/operator/AttentionDistillation.hpp"

namespace Aidge {
namespace incremental {

using AttentionDistillationImpl_cpu = OperatorImpl_cpu<
    AttentionDistillation_Op,
    std::size_t(float, const AttentionDistillationShape &, const void *, const void *,
                const void *, void *),
    void(float, const AttentionDistillationShape &, const void *, const void *, const void *,
         const void *, void *, void *)>;

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_ATTENTIONDISTILLATIONIMPL_H_
