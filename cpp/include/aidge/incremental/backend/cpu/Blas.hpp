/**
 * Matrix products through OpenBLAS (the scipy-openblas32
 * wheel, whose symbols carry the `scipy_` prefix). Row-major throughout.
 *
 * Threading: OpenBLAS is pinned to one thread (blasSingleThreaded()). All parallelism of the Fast* kernels comes from
 * OpenMP regions that each call the BLAS on their own slice, so BLAS threads
 * and OpenMP threads never run at the same time (no oversubscription).
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_BLAS_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_BLAS_H_

#include <cblas.h> // scipy_openblas32/include/cblas.h

namespace Aidge {
namespace incremental {

/// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, row-major, float.
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

/// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C in double, row-major.
inline void dgemm(bool transA, bool transB, int M, int N, int K, double alpha,
                  const double *A, int lda, const double *B, int ldb, double beta,
                  double *C, int ldc)
{
    if (M <= 0 || N <= 0 || K <= 0) {
        for (int i = 0; i < M; ++i) {
            for (int j = 0; j < N; ++j) {
                C[i * ldc + j] = (beta == 0.0) ? 0.0 : beta * C[i * ldc + j];
            }
        }
        return;
    }
    scipy_cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                      transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                      lda, B, ldb, beta, C, ldc);
}

/// y[M] = alpha * A[M,N] * x + beta * y (or A^T when transA: y[N]), row-major, double.
inline void dgemv(bool transA, int M, int N, double alpha, const double *A, int lda,
                  const double *x, double beta, double *y)
{
    if (M <= 0 || N <= 0) {
        const int len = transA ? N : M;
        for (int i = 0; i < len; ++i) {
            y[i] = (beta == 0.0) ? 0.0 : beta * y[i];
        }
        return;
    }
    scipy_cblas_dgemv(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, M, N, alpha, A, lda,
                      x, 1, beta, y, 1);
}

/// Pin OpenBLAS to one thread (its own pool); see the file comment. Called
/// by every entry point that runs the BLAS inside OpenMP regions (a
/// multi-threaded OpenBLAS called there warns "Detect OpenMP Loop").
inline void blasSingleThreaded()
{
    if (scipy_openblas_get_num_threads() != 1) {
        scipy_openblas_set_num_threads(1);
    }
}

/// The kernels OpenBLAS runs ("Haswell", "SkylakeX", ...: its choice for this
/// CPU unless OPENBLAS_CORETYPE forces one).
inline const char *blasCoreName() { return scipy_openblas_get_corename(); }

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_BLAS_H_
