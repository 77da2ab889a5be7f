/**
 * Device pointer of a tensor that must live on the "cuda" backend, with a
 * clear error otherwise (a kernel reading a host pointer would crash or read
 * garbage). Host-compiler code only.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CUDA_UTILS_TENSORPTR_H_
#define AIDGE_INCREMENTAL_BACKEND_CUDA_UTILS_TENSORPTR_H_

#include <stdexcept>

#include <fmt/format.h>

#include "aidge/data/Tensor.hpp"

namespace Aidge {
namespace incremental {

inline void *cudaDataPtr(const Tensor &t, const char *op, const char *which)
{
    if (!t.impl()) {
        throw std::invalid_argument(
            fmt::format("{} (cuda): {} have no data", op, which));
    }
    if (t.impl()->backend() != "cuda") {
        throw std::invalid_argument(fmt::format(
            "{} (cuda): {} are on backend '{}', expected 'cuda' (compile the "
            "whole graph for cuda)",
            op, which, t.impl()->backend()));
    }
    return const_cast<void *>(t.impl()->rawPtr(t.implOffset()));
}

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CUDA_UTILS_TENSORPTR_H_
