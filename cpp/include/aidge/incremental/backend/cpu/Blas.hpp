/**
 * Single-precision matrix product through OpenBLAS (the scipy-openblas32
 * wheel, whose symbols carry the `scipy_` prefix). Row-major throughout.
 *
 * Threading: OpenBLAS is pinned to one thread (blasSingleThreaded(), called
 * when the module loads). All parallelism of the Fast* kernels comes from
 * OpenMP regions that each call the BLAS on their own slice, so BLAS threads
 * and OpenMP threads never run at the same time (no oversubscription).
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_BLAS_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_BLAS_H_

#include <cblas.h> // scipy_openblas32/include/cblas.h

namespace Aidge {
namespace incremental {

/// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, row-major.
inline void sgemm(bool transA, bool transB, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc)
{
    if (M <= 0 || N <= 0) {
        return;
    }
    if (K <= 0) { // BLAS would only scale C
        for (int i = 0; i < M; ++i) {
            for (int j = 0; j < N; ++j) {
                C[i * ldc + j] = (beta == 0.0f) ? 0.0f : beta * C[i * ldc + j];
            }
        }
        return;
    }
    scipy_cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                      transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                      lda, B, ldb, beta, C, ldc);
}

/// Pin OpenBLAS to one thread (its own pool); see the file comment.
inline void blasSingleThreaded() { scipy_openblas_set_num_threads(1); }

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_BLAS_H_
