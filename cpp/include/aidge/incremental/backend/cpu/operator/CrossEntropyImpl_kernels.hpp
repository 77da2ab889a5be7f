/**
 * CPU kernels of the softmax cross-entropy (forward value, backward gradient).
 *
 * Per row b of logits s and targets y (C columns), with m = max_j s_j:
 *   lse   = m + log sum_j exp(s_j - m)             (log-sum-exp: no overflow)
 *   loss += sum_j y_j (lse - s_j)
 *   grad  = gradLoss / B * (exp(s_j - lse) * sum_k y_k - y_j)
 * and the value is loss / B. Arithmetic is in double whatever the storage
 * type (a CUDA port may keep float accumulators: the reference tolerance in
 * the tests is 1e-5 relative).
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_CROSSENTROPYIMPL_KERNELS_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_CROSSENTROPYIMPL_KERNELS_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "aidge/incremental/operator/CrossEntropy.hpp"

namespace Aidge {
namespace incremental {
/// Rows this small are not worth waking the OpenMP team for.
constexpr std::size_t kCrossEntropyParallelMinElements = 4096;

/// log sum_j exp(s_j) of one row, stably.
template <class T>
inline double logSumExp(const T *s, std::size_t n)
{
    double m = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < n; ++j) {
        m = std::max(m, static_cast<double>(s[j]));
    }
    double sum = 0.0;
    for (std::size_t j = 0; j < n; ++j) {
        sum += std::exp(static_cast<double>(s[j]) - m);
    }
    return m + std::log(sum);
}

/**
 * Forward: writes the loss to loss_[0] when the data are valid; returns what
 * was wrong otherwise (nothing is written, the caller raises).
 */
template <class T>
CrossEntropyDataCheck CrossEntropyImpl_cpu_forward_kernel(const CrossEntropyShape &shape,
                                                          const void *prediction_,
                                                          const void *target_,
                                                          void *loss_)
{
    const T *s = static_cast<const T *>(prediction_);
    const T *y = static_cast<const T *>(target_);
    const std::size_t n = shape.classes;
    const long long batch = static_cast<long long>(shape.batch);
    double total = 0.0;
    std::size_t nonFinite = 0, negative = 0;
#ifdef _OPENMP
#pragma omp parallel for reduction(+ : total, nonFinite, negative) \
    if (shape.batch * n >= kCrossEntropyParallelMinElements)
#endif
    for (long long b = 0; b < batch; ++b) {
        const T *sr = s + static_cast<std::size_t>(b) * n;
        const T *yr = y + static_cast<std::size_t>(b) * n;
        std::size_t bad = 0;
        for (std::size_t j = 0; j < n; ++j) {
            bad += (std::isfinite(sr[j]) && std::isfinite(yr[j])) ? 0 : 1;
            negative += (yr[j] < T(0)) ? 1 : 0;
        }
        nonFinite += bad;
        if (bad == 0) {
            const double lse = logSumExp(sr, n);
            double row = 0.0;
            for (std::size_t j = 0; j < n; ++j) {
                row += static_cast<double>(yr[j]) * (lse - static_cast<double>(sr[j]));
            }
            total += row;
        }
    }
    CrossEntropyDataCheck check;
    check.nonFinite = nonFinite;
    check.negative = negative;
    if (nonFinite == 0 && negative == 0) {
        static_cast<T *>(loss_)[0] = static_cast<T>(total / static_cast<double>(batch));
    }
    return check;
}

/**
 * Backward: gradPrediction[b, j] += gradLoss / B * (softmax(s_b)_j sum_k y_bk - y_bj)
 * (accumulates, as Aidge's kernels do). The target gets no gradient.
 */
template <class T>
void CrossEntropyImpl_cpu_backward_kernel(const CrossEntropyShape &shape,
                                          const void *prediction_,
                                          const void *target_,
                                          const void *gradLoss_,
                                          void *gradPrediction_)
{
    const T *s = static_cast<const T *>(prediction_);
    const T *y = static_cast<const T *>(target_);
    T *g = static_cast<T *>(gradPrediction_);
    const std::size_t n = shape.classes;
    const long long batch = static_cast<long long>(shape.batch);
    const double coef = static_cast<double>(static_cast<const T *>(gradLoss_)[0]) /
                        static_cast<double>(batch);
#ifdef _OPENMP
#pragma omp parallel for if (shape.batch * n >= kCrossEntropyParallelMinElements)
#endif
    for (long long b = 0; b < batch; ++b) {
        const std::size_t row = static_cast<std::size_t>(b) * n;
        const double lse = logSumExp(s + row, n);
        double ySum = 0.0;
        for (std::size_t j = 0; j < n; ++j) {
            ySum += static_cast<double>(y[row + j]);
        }
        for (std::size_t j = 0; j < n; ++j) {
            const double p = std::exp(static_cast<double>(s[row + j]) - lse);
            g[row + j] += static_cast<T>(coef * (p * ySum - static_cast<double>(y[row + j])));
        }
    }
}

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_CROSSENTROPYIMPL_KERNELS_H_
