/**
 * CPU kernels of the distillation loss (forward value, backward gradient).
 *
 * Arithmetic is done in double whatever the storage type: the loss is a sum of
 * B * n_old terms that can cancel (KL of near-identical distributions), and
 * the exp/log work is small next to the layers that produce the logits.
 * Log-sum-exp keeps logits of any magnitude finite.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_DISTILLATIONIMPL_KERNELS_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_DISTILLATIONIMPL_KERNELS_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "aidge/incremental/operator/Distillation.hpp"

namespace Aidge {
namespace incremental {
/// Rows this small are not worth waking the OpenMP team for.
constexpr std::size_t kDistillationParallelMinElements = 4096;

template <class T>
inline std::size_t countNonFinite(const T *x, std::size_t n)
{
    std::size_t bad = 0;
    for (std::size_t j = 0; j < n; ++j) {
        bad += std::isfinite(x[j]) ? 0 : 1;
    }
    return bad;
}

template <class T>
inline double scaledMax(const T *x, std::size_t n, double invT)
{
    double m = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < n; ++j) {
        m = std::max(m, static_cast<double>(x[j]) * invT);
    }
    return m;
}

inline double sigmoid(double x)
{
    if (x >= 0.0) {
        return 1.0 / (1.0 + std::exp(-x));
    }
    const double e = std::exp(x);
    return e / (1.0 + e);
}

/// KL(softmax(t/T) || softmax(s/T)) for one row, with one exp per logit:
/// KL = sum_j p_t,j (z_t,j - z_s,j) - lse(z_t) + lse(z_s), since sum_j p_t,j = 1.
template <class T>
inline double klRow(const T *s, const T *t, std::size_t n, double invT)
{
    const double ms = scaledMax(s, n, invT);
    const double mt = scaledMax(t, n, invT);
    double sumS = 0.0, sumT = 0.0, weighted = 0.0;
    for (std::size_t j = 0; j < n; ++j) {
        const double zs = static_cast<double>(s[j]) * invT;
        const double zt = static_cast<double>(t[j]) * invT;
        const double et = std::exp(zt - mt);
        sumS += std::exp(zs - ms);
        sumT += et;
        weighted += et * (zt - zs);
    }
    return weighted / sumT - (mt + std::log(sumT)) + (ms + std::log(sumS));
}

/// sum_j BCE(sigmoid(s_j/T), target sigmoid(t_j/T)) for one row, computed
/// from logits: max(x,0) - x q + log(1 + exp(-|x|)).
template <class T>
inline double bceRow(const T *s, const T *t, std::size_t n, double invT)
{
    double acc = 0.0;
    for (std::size_t j = 0; j < n; ++j) {
        const double x = static_cast<double>(s[j]) * invT;
        const double q = sigmoid(static_cast<double>(t[j]) * invT);
        acc += std::max(x, 0.0) - x * q + std::log1p(std::exp(-std::abs(x)));
    }
    return acc;
}

/**
 * Forward: writes the loss to loss_[0]. Returns the number of non-finite
 * logits met in the distilled columns; when it is not 0 nothing is written
 * and the caller raises (no exception may leave an OpenMP region).
 */
template <class T>
std::size_t DistillationImpl_cpu_forward_kernel(float temperature,
                                                DistillationForm form,
                                                const DistillationShape &shape,
                                                const void *student_,
                                                const void *teacher_,
                                                void *loss_)
{
    const T *student = static_cast<const T *>(student_);
    const T *teacher = static_cast<const T *>(teacher_);
    T *loss = static_cast<T *>(loss_);
    const double invT = 1.0 / static_cast<double>(temperature);
    const std::size_t n = shape.nbOld;
    const long long batch = static_cast<long long>(shape.batch);

    double total = 0.0;
    std::size_t nonFinite = 0;
#ifdef _OPENMP
#pragma omp parallel for reduction(+ : total, nonFinite) \
    if (shape.batch * n >= kDistillationParallelMinElements)
#endif
    for (long long b = 0; b < batch; ++b) {
        const T *s = student + static_cast<std::size_t>(b) * shape.studentCols;
        const T *t = teacher + static_cast<std::size_t>(b) * shape.teacherCols;
        const std::size_t bad = countNonFinite(s, n) + countNonFinite(t, n);
        nonFinite += bad;
        if (bad == 0) {
            total += (form == DistillationForm::KL) ? klRow(s, t, n, invT)
                                                    : bceRow(s, t, n, invT);
        }
    }
    if (nonFinite != 0) {
        return nonFinite;
    }
    const double T2 = static_cast<double>(temperature) * temperature;
    const double scale =
        ((form == DistillationForm::KL) ? T2 : 1.0) / static_cast<double>(batch);
    loss[0] = static_cast<T>(total * scale);
    return 0;
}

/**
 * Backward: grad_student[b, j] += gradLoss * d loss / d s[b, j] for j < n_old
 * (accumulates, as Aidge's kernels do). The teacher gets no gradient.
 *   KL : d/ds = T / B * (softmax(s/T) - softmax(t/T))
 *   BCE: d/ds = 1 / (T B) * (sigmoid(s/T) - sigmoid(t/T))
 */
template <class T>
void DistillationImpl_cpu_backward_kernel(float temperature,
                                          DistillationForm form,
                                          const DistillationShape &shape,
                                          const void *student_,
                                          const void *teacher_,
                                          const void *gradLoss_,
                                          void *gradStudent_)
{
    const T *student = static_cast<const T *>(student_);
    const T *teacher = static_cast<const T *>(teacher_);
    const double gradLoss = static_cast<double>(static_cast<const T *>(gradLoss_)[0]);
    T *gradStudent = static_cast<T *>(gradStudent_);
    const double temp = static_cast<double>(temperature);
    const double invT = 1.0 / temp;
    const std::size_t n = shape.nbOld;
    const long long batch = static_cast<long long>(shape.batch);
    const double coef = (form == DistillationForm::KL)
                            ? gradLoss * temp / static_cast<double>(batch)
                            : gradLoss / (temp * static_cast<double>(batch));
#ifdef _OPENMP
#pragma omp parallel if (shape.batch * n >= kDistillationParallelMinElements)
#endif
    {
        std::vector<double> es, et; // this thread's row buffers (KL only)
        if (form == DistillationForm::KL) {
            es.resize(n);
            et.resize(n);
        }
#ifdef _OPENMP
#pragma omp for
#endif
        for (long long b = 0; b < batch; ++b) {
            const std::size_t row = static_cast<std::size_t>(b);
            const T *s = student + row * shape.studentCols;
            const T *t = teacher + row * shape.teacherCols;
            T *g = gradStudent + row * shape.studentCols;
            if (form == DistillationForm::KL) {
                const double ms = scaledMax(s, n, invT);
                const double mt = scaledMax(t, n, invT);
                double sumS = 0.0, sumT = 0.0;
                for (std::size_t j = 0; j < n; ++j) {
                    es[j] = std::exp(static_cast<double>(s[j]) * invT - ms);
                    et[j] = std::exp(static_cast<double>(t[j]) * invT - mt);
                    sumS += es[j];
                    sumT += et[j];
                }
                const double cs = coef / sumS, ct = coef / sumT;
                for (std::size_t j = 0; j < n; ++j) {
                    g[j] += static_cast<T>(cs * es[j] - ct * et[j]);
                }
            } else {
                for (std::size_t j = 0; j < n; ++j) {
                    const double d = sigmoid(static_cast<double>(s[j]) * invT) -
                                     sigmoid(static_cast<double>(t[j]) * invT);
                    g[j] += static_cast<T>(coef * d);
                }
            }
        }
    }
}

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_DISTILLATIONIMPL_KERNELS_H_
