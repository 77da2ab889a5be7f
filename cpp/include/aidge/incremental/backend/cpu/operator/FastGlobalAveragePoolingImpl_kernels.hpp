/**
 * Float32 global average pooling (NCHW -> N, C, 1, 1), forward and backward
 * (backward ACCUMULATES into dx). OpenMP over the N*C planes.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTGLOBALAVERAGEPOOLINGIMPL_KERNELS_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTGLOBALAVERAGEPOOLINGIMPL_KERNELS_H_

#include <cstddef>

#include "aidge/incremental/backend/cpu/Threads.hpp"

namespace Aidge {
namespace incremental {

/// Global average pooling y[N, C] = mean over HW of x[N, C, HW].
inline void fastGlobalAvgPoolForward(int NC, int HW, const float *x, float *y)
{
#pragma omp parallel for schedule(static) if (static_cast<long>(NC) * HW >= kParallelMinFloats)
    for (int i = 0; i < NC; ++i) {
        const float *xi = x + static_cast<std::size_t>(i) * HW;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < HW; ++j) {
            s += xi[j];
        }
        y[i] = s / static_cast<float>(HW);
    }
}

/// dx += dy / HW broadcast over HW.
inline void fastGlobalAvgPoolBackward(int NC, int HW, const float *dy, float *dx)
{
    const float inv = 1.0f / static_cast<float>(HW);
#pragma omp parallel for schedule(static) if (static_cast<long>(NC) * HW >= kParallelMinFloats)
    for (int i = 0; i < NC; ++i) {
        float *dxi = dx + static_cast<std::size_t>(i) * HW;
        const float g = dy[i] * inv;
        for (int j = 0; j < HW; ++j) {
            dxi[j] += g;
        }
    }
}

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTGLOBALAVERAGEPOOLINGIMPL_KERNELS_H_
