/**
 * Float32 fully-connected layer y = x w^T + b (x [N, I], w [O, I]) through
 * OpenBLAS sgemm, forward and backward (gradients ACCUMULATE, as Aidge's).
 * Parallelism: OpenMP splits the rows of each product between the threads,
 * each slice is one single-threaded BLAS call.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTFCIMPL_KERNELS_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTFCIMPL_KERNELS_H_

#include <algorithm>
#include <cstddef>

#include <omp.h>

#include "aidge/incremental/backend/cpu/Blas.hpp"

#include "aidge/incremental/backend/cpu/Threads.hpp"

namespace Aidge {
namespace incremental {

/// [begin, end) of `rows` for thread t of nt, in blocks of 8 rows.
inline void rowSlice(int rows, int t, int nt, int &begin, int &end)
{
    const int blocks = (rows + 7) / 8;
    begin = std::min(rows, (blocks * t / nt) * 8);
    end = std::min(rows, (blocks * (t + 1) / nt) * 8);
}

inline void fastFCForward(int N, int I, int O, const float *x, const float *w,
                          const float *b, float *y)
{
#pragma omp parallel if (static_cast<long>(N) * I * O >= kParallelMinMacs)
    {
        int r0, r1;
        rowSlice(N, omp_get_thread_num(), omp_get_num_threads(), r0, r1);
        if (r1 > r0) {
            if (b != nullptr) {
                for (int n = r0; n < r1; ++n) {
                    std::copy(b, b + O, y + static_cast<std::size_t>(n) * O);
                }
            }
            sgemm(false, true, r1 - r0, O, I, 1.0f, x + static_cast<std::size_t>(r0) * I, I,
                  w, I, b != nullptr ? 1.0f : 0.0f, y + static_cast<std::size_t>(r0) * O, O);
        }
    }
}

/// dx += dy w; dw += dy^T x; db += sum_n dy. Any output may be null.
inline void fastFCBackward(int N, int I, int O, const float *x, const float *w,
                           const float *dy, float *dx, float *dw, float *db)
{
#pragma omp parallel if (2L * N * I * O >= kParallelMinMacs)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int r0, r1;
        if (dx != nullptr) {
            rowSlice(N, t, nt, r0, r1);
            if (r1 > r0) {
                sgemm(false, false, r1 - r0, I, O, 1.0f, dy + static_cast<std::size_t>(r0) * O, O,
                      w, I, 1.0f, dx + static_cast<std::size_t>(r0) * I, I);
            }
        }
        rowSlice(O, t, nt, r0, r1);
        if (r1 > r0) {
            if (dw != nullptr) {
                sgemm(true, false, r1 - r0, I, N, 1.0f, dy + r0, O, x, I, 1.0f,
                      dw + static_cast<std::size_t>(r0) * I, I);
            }
            if (db != nullptr) {
                for (int n = 0; n < N; ++n) {
                    const float *r = dy + static_cast<std::size_t>(n) * O;
                    for (int o = r0; o < r1; ++o) {
                        db[o] += r[o];
                    }
                }
            }
        }
    }
}

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTFCIMPL_KERNELS_H_
