/**
 * CPU implementation entry point of CrossEntropy_Op. The kernels (float32,
 * float64) are registered in CrossEntropyImpl.cpp.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_CROSSENTROPYIMPL_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_CROSSENTROPYIMPL_H_

#include "aidge/backend/cpu/operator/OperatorImpl.hpp"
#include "aidge/incremental/operator/CrossEntropy.hpp"

namespace Aidge {
namespace incremental {

using CrossEntropyImpl_cpu = OperatorImpl_cpu<
    CrossEntropy_Op,
    CrossEntropyDataCheck(const CrossEntropyShape &, const void *, const void *, void *),
    void(const CrossEntropyShape &, const void *, const void *, const void *, void *)>;

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_CROSSENTROPYIMPL_H_
