/**
 * CPU implementation entry point of Distillation_Op. The kernels (float32,
 * float64) are registered in DistillationImpl.cpp.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_DISTILLATIONIMPL_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_DISTILLATIONIMPL_H_

#include <cstddef>

#include "aidge/backend/cpu/operator/OperatorImpl.hpp"
#include "aidge/incremental/operator/Distillation.hpp"

namespace Aidge {
namespace incremental {

using DistillationImpl_cpu = OperatorImpl_cpu<
    Distillation_Op,
    std::size_t(float, DistillationForm, const DistillationShape &,
                const void *, const void *, void *),
    void(float, DistillationForm, const DistillationShape &,
         const void *, const void *, const void *, void *)>;

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_DISTILLATIONIMPL_H_
