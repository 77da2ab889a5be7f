/**
 * CPU kernels of the attention-distillation loss (LwM, Dhar et al. 2019);
 * the definition and its first-order gradient are documented in
 * aidge/incremental/operator/AttentionDistillation.hpp.
 *
 * Per sample b (P = H*W pixels, C channels), in double whatever the storage:
 *   z_j = sum_c alpha_c A_cj,  q_j = max(z_j, 0),  nq = ||q||_2,  u = q / max(nq, eps)
 *   v   = Q_t / max(||Q_t||_2, eps)
 *   L_b = sum_j |u_j - v_j|,   value = mean_b L_b
 * Backward, s_j = sign(u_j - v_j):
 *   g_j   = (s_j - u_j * (s . u)) / nq   if nq > eps,  s_j / eps otherwise
 *   gz_j  = gradLoss / B * [z_j > 0] * g_j            (dL/dz_j)
 *   dA_cj     += alpha_c * gz_j                       (at fixed alpha)
 *   dalpha_c  += sum_j A_cj * gz_j                    (at fixed A)
 * Samples are independent: one OpenMP iteration (a CUDA block) per sample.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_ATTENTIONDISTILLATIONIMPL_KERNELS_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_ATTENTIONDISTILLATIONIMPL_KERNELS_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "aidge/incremental/operator/AttentionDistillation.hpp"

namespace Aidge {
namespace incremental {
constexpr std::size_t kAttentionDistillationParallelMinElements = 4096;

/// z = sum_c alpha_c A_c for one sample; returns the number of non-finite
/// values met in A, alpha and the teacher map of that sample.
template <class T>
inline std::size_t studentMap(const AttentionDistillationShape &shape, const T *a,
                              const T *alpha, const T *qt, double *z)
{
    std::size_t bad = 0;
    std::fill(z, z + shape.pixels, 0.0);
    for (std::size_t c = 0; c < shape.channels; ++c) {
        const double w = static_cast<double>(alpha[c]);
        bad += std::isfinite(alpha[c]) ? 0 : 1;
        const T *ac = a + c * shape.pixels;
        for (std::size_t j = 0; j < shape.pixels; ++j) {
            bad += std::isfinite(ac[j]) ? 0 : 1;
            z[j] += w * static_cast<double>(ac[j]);
        }
    }
    for (std::size_t j = 0; j < shape.pixels; ++j) {
        bad += std::isfinite(qt[j]) ? 0 : 1;
    }
    return bad;
}

/// ||ReLU(z)||_2
inline double reluNorm(const double *z, std::size_t n)
{
    double sq = 0.0;
    for (std::size_t j = 0; j < n; ++j) {
        const double q = std::max(z[j], 0.0);
        sq += q * q;
    }
    return std::sqrt(sq);
}

template <class T>
inline double mapNorm(const T *q, std::size_t n)
{
    double sq = 0.0;
    for (std::size_t j = 0; j < n; ++j) {
        sq += static_cast<double>(q[j]) * static_cast<double>(q[j]);
    }
    return std::sqrt(sq);
}

inline double sign(double x) { return (x > 0.0) ? 1.0 : ((x < 0.0) ? -1.0 : 0.0); }

/**
 * Forward: writes the loss to loss_[0]; returns the number of non-finite
 * values met (then nothing is written and the caller raises).
 */
template <class T>
std::size_t AttentionDistillationImpl_cpu_forward_kernel(float epsilon,
                                                         const AttentionDistillationShape &shape,
                                                         const void *features_,
                                                         const void *weights_,
                                                         const void *teacherMap_,
                                                         void *loss_)
{
    const T *features = static_cast<const T *>(features_);
    const T *weights = static_cast<const T *>(weights_);
    const T *teacher = static_cast<const T *>(teacherMap_);
    const double eps = static_cast<double>(epsilon);
    const std::size_t P = shape.pixels, C = shape.channels;
    const long long batch = static_cast<long long>(shape.batch);
    double total = 0.0;
    std::size_t nonFinite = 0;
#ifdef _OPENMP
#pragma omp parallel reduction(+ : total, nonFinite) \
    if (shape.batch * C * P >= kAttentionDistillationParallelMinElements)
#endif
    {
        std::vector<double> z(P);
#ifdef _OPENMP
#pragma omp for
#endif
        for (long long b = 0; b < batch; ++b) {
            const std::size_t i = static_cast<std::size_t>(b);
            const T *qt = teacher + i * P;
            const std::size_t bad =
                studentMap(shape, features + i * C * P, weights + i * C, qt, z.data());
            nonFinite += bad;
            if (bad != 0) {
                continue;
            }
            const double ns = std::max(reluNorm(z.data(), P), eps);
            const double nt = std::max(mapNorm(qt, P), eps);
            double row = 0.0;
            for (std::size_t j = 0; j < P; ++j) {
                row += std::abs(std::max(z[j], 0.0) / ns - static_cast<double>(qt[j]) / nt);
            }
            total += row;
        }
    }
    if (nonFinite != 0) {
        return nonFinite;
    }
    static_cast<T *>(loss_)[0] = static_cast<T>(total / static_cast<double>(batch));
    return 0;
}

/**
 * Backward: gradFeatures += gradLoss * dL/dA_s (alpha fixed) and gradWeights +=
 * gradLoss * dL/dalpha (A fixed); accumulates, as Aidge's kernels do.
 */
template <class T>
void AttentionDistillationImpl_cpu_backward_kernel(float epsilon,
                                                   const AttentionDistillationShape &shape,
                                                   const void *features_,
                                                   const void *weights_,
                                                   const void *teacherMap_,
                                                   const void *gradLoss_,
                                                   void *gradFeatures_,
                                                   void *gradWeights_)
{
    const T *features = static_cast<const T *>(features_);
    const T *weights = static_cast<const T *>(weights_);
    const T *teacher = static_cast<const T *>(teacherMap_);
    T *grad = static_cast<T *>(gradFeatures_);
    T *gradAlpha = static_cast<T *>(gradWeights_);
    const double eps = static_cast<double>(epsilon);
    const std::size_t P = shape.pixels, C = shape.channels;
    const long long batch = static_cast<long long>(shape.batch);
    const double coef = static_cast<double>(static_cast<const T *>(gradLoss_)[0]) /
                        static_cast<double>(batch);
#ifdef _OPENMP
#pragma omp parallel if (shape.batch * C * P >= kAttentionDistillationParallelMinElements)
#endif
    {
        std::vector<double> z(P), g(P);
#ifdef _OPENMP
#pragma omp for
#endif
        for (long long b = 0; b < batch; ++b) {
            const std::size_t i = static_cast<std::size_t>(b);
            const T *qt = teacher + i * P;
            const T *alpha = weights + i * C;
            studentMap(shape, features + i * C * P, alpha, qt, z.data());
            const double nq = reluNorm(z.data(), P);
            const double ns = std::max(nq, eps);
            const double nt = std::max(mapNorm(qt, P), eps);
            double su = 0.0; // s . u
            for (std::size_t j = 0; j < P; ++j) {
                const double u = std::max(z[j], 0.0) / ns;
                g[j] = sign(u - static_cast<double>(qt[j]) / nt);
                su += g[j] * u;
            }
            for (std::size_t j = 0; j < P; ++j) {
                if (z[j] > 0.0) {
                    const double u = z[j] / ns;
                    g[j] = (nq > eps) ? (g[j] - u * su) / nq : g[j] / eps;
                } else {
                    g[j] = 0.0; // ReLU closed: no gradient through this pixel
                }
            }
            const T *a = features + i * C * P;
            T *gA = grad + i * C * P;
            T *gAlpha = gradAlpha + i * C;
            for (std::size_t c = 0; c < C; ++c) {
                const double w = coef * static_cast<double>(alpha[c]);
                const T *ac = a + c * P;
                double dalpha = 0.0;
                for (std::size_t j = 0; j < P; ++j) {
                    gA[c * P + j] += static_cast<T>(w * g[j]);
                    dalpha += static_cast<double>(ac[j]) * g[j];
                }
                gAlpha[c] += static_cast<T>(coef * dalpha);
            }
        }
    }
}

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_ATTENTIONDISTILLATIONIMPL_KERNELS_H_
