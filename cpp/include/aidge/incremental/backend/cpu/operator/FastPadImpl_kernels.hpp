/**
 * Float32 constant padding of a contiguous N-D tensor (any axes), forward and
 * backward (backward ACCUMULATES the interior of dy into dx). The tensor is
 * seen as rows of its last axis; OpenMP over rows.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTPADIMPL_KERNELS_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTPADIMPL_KERNELS_H_

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "aidge/incremental/backend/cpu/Threads.hpp"

namespace Aidge {
namespace incremental {

/// Offset in the output of input row `row` (rows of the last axis).
inline std::size_t padRowOffset(std::size_t row, const std::vector<std::size_t> &inDims,
                                const std::vector<std::size_t> &outDims,
                                const std::vector<std::size_t> &begin)
{
    const std::size_t r = inDims.size();
    std::size_t off = begin[r - 1], stride = outDims[r - 1];
    for (std::size_t a = r - 1; a-- > 0;) {
        const std::size_t i = row % inDims[a];
        row /= inDims[a];
        off += (i + begin[a]) * stride;
        stride *= outDims[a];
    }
    return off;
}

inline void fastPadForward(const std::vector<std::size_t> &inDims,
                           const std::vector<std::size_t> &outDims,
                           const std::vector<std::size_t> &begin, float value,
                           const float *x, float *y)
{
    std::size_t outSize = 1, rows = 1;
    for (std::size_t a = 0; a < outDims.size(); ++a) {
        outSize *= outDims[a];
        if (a + 1 < inDims.size()) {
            rows *= inDims[a];
        }
    }
    const std::size_t len = inDims.back();
    std::fill(y, y + outSize, value);
    if (len == 0) {
        return;
    }
#pragma omp parallel for schedule(static) if (static_cast<long>(outSize) >= kParallelMinFloats)
    for (long row = 0; row < static_cast<long>(rows); ++row) {
        std::memcpy(y + padRowOffset(row, inDims, outDims, begin), x + row * len,
                    sizeof(float) * len);
    }
}

inline void fastPadBackward(const std::vector<std::size_t> &inDims,
                            const std::vector<std::size_t> &outDims,
                            const std::vector<std::size_t> &begin, const float *dy,
                            float *dx)
{
    std::size_t rows = 1;
    for (std::size_t a = 0; a + 1 < inDims.size(); ++a) {
        rows *= inDims[a];
    }
    const std::size_t len = inDims.back();
#pragma omp parallel for schedule(static) if (static_cast<long>(rows * len) >= kParallelMinFloats)
    for (long row = 0; row < static_cast<long>(rows); ++row) {
        const float *src = dy + padRowOffset(row, inDims, outDims, begin);
        float *dst = dx + row * len;
        for (std::size_t i = 0; i < len; ++i) {
            dst[i] += src[i];
        }
    }
}

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTPADIMPL_KERNELS_H_
