#include "aidge/incremental/backend/cuda/operator/DistillationImpl_CUDA_kernels.hpp"

#include <algorithm>
#include <cstddef>
#include <stdexcept>

#include <cuda_runtime.h>

#include "aidge/incremental/backend/cuda/utils/DeviceUtils.cuh"

namespace Aidge {
namespace incremental {
namespace {

constexpr int kRowBlock = 256;                  // 8 warps, one row per warp
constexpr int kRowsPerBlock = kRowBlock / kWarp;

unsigned gridFor(std::size_t rows)
{
    return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
}

/// One warp per row: the row's loss (double) into rowLoss[b]; rows holding a
/// non-finite distilled logit add their count to *bad and contribute 0.
template <class T>
__global__ void rowLossKernel(DistillationCudaProblem p, const T *__restrict__ student,
                              const T *__restrict__ teacher,
                              double *__restrict__ rowLoss,
                              unsigned long long *__restrict__ bad)
{
    const std::size_t b = static_cast<std::size_t>(blockIdx.x) * kRowsPerBlock +
                          threadIdx.x / kWarp;
    const unsigned lane = threadIdx.x % kWarp;
    if (b >= p.batch) {
        return; // whole warp leaves together
    }
    const T *s = student + b * p.studentCols;
    const T *t = teacher + b * p.teacherCols;
    const std::size_t n = p.nbOld;
    const double invT = 1.0 / p.temperature;

    unsigned nonFinite = 0;
    for (std::size_t j = lane; j < n; j += kWarp) {
        nonFinite += isfinite(static_cast<double>(s[j])) ? 0u : 1u;
        nonFinite += isfinite(static_cast<double>(t[j])) ? 0u : 1u;
    }
    nonFinite = warpSumU(nonFinite);
    if (nonFinite != 0) {
        if (lane == 0) {
            atomicAdd(bad, static_cast<unsigned long long>(nonFinite));
            rowLoss[b] = 0.0;
        }
        return;
    }

    double value;
    if (p.kl) {
        // KL = sum_j p_t,j (z_t,j - z_s,j) - lse(z_t) + lse(z_s)
        double ms = -INFINITY, mt = -INFINITY;
        for (std::size_t j = lane; j < n; j += kWarp) {
            ms = fmax(ms, static_cast<double>(s[j]) * invT);
            mt = fmax(mt, static_cast<double>(t[j]) * invT);
        }
        ms = warpMax(ms);
        mt = warpMax(mt);
        double sumS = 0.0, sumT = 0.0, weighted = 0.0;
        for (std::size_t j = lane; j < n; j += kWarp) {
            const double zs = static_cast<double>(s[j]) * invT;
            const double zt = static_cast<double>(t[j]) * invT;
            const double et = exp(zt - mt);
            sumS += exp(zs - ms);
            sumT += et;
            weighted += et * (zt - zs);
        }
        sumS = warpSum(sumS);
        sumT = warpSum(sumT);
        weighted = warpSum(weighted);
        value = weighted / sumT - (mt + log(sumT)) + (ms + log(sumS));
    } else {
        // BCE from logits: max(x,0) - x q + log(1 + exp(-|x|)), q = sigmoid(t/T)
        double acc = 0.0;
        for (std::size_t j = lane; j < n; j += kWarp) {
            const double x = static_cast<double>(s[j]) * invT;
            const double q = sigmoidD(static_cast<double>(t[j]) * invT);
            acc += fmax(x, 0.0) - x * q + log1p(exp(-fabs(x)));
        }
        value = warpSum(acc);
    }
    if (lane == 0) {
        rowLoss[b] = value;
    }
}

/// KL backward, one warp per row: g += coef * (softmax(s/T) - softmax(t/T)).
template <class T>
__global__ void klGradKernel(DistillationCudaProblem p, double coefNoGrad,
                             const T *__restrict__ student,
                             const T *__restrict__ teacher,
                             const T *__restrict__ gradLoss,
                             T *__restrict__ gradStudent)
{
    const std::size_t b = static_cast<std::size_t>(blockIdx.x) * kRowsPerBlock +
                          threadIdx.x / kWarp;
    const unsigned lane = threadIdx.x % kWarp;
    if (b >= p.batch) {
        return;
    }
    const T *s = student + b * p.studentCols;
    const T *t = teacher + b * p.teacherCols;
    T *g = gradStudent + b * p.studentCols;
    const std::size_t n = p.nbOld;
    const double invT = 1.0 / p.temperature;
    const double coef = static_cast<double>(gradLoss[0]) * coefNoGrad;

    double ms = -INFINITY, mt = -INFINITY;
    for (std::size_t j = lane; j < n; j += kWarp) {
        ms = fmax(ms, static_cast<double>(s[j]) * invT);
        mt = fmax(mt, static_cast<double>(t[j]) * invT);
    }
    ms = warpMax(ms);
    mt = warpMax(mt);
    double sumS = 0.0, sumT = 0.0;
    for (std::size_t j = lane; j < n; j += kWarp) {
        sumS += exp(static_cast<double>(s[j]) * invT - ms);
        sumT += exp(static_cast<double>(t[j]) * invT - mt);
    }
    const double cs = coef / warpSum(sumS);
    const double ct = coef / warpSum(sumT);
    for (std::size_t j = lane; j < n; j += kWarp) {
        const double es = exp(static_cast<double>(s[j]) * invT - ms);
        const double et = exp(static_cast<double>(t[j]) * invT - mt);
        g[j] += static_cast<T>(cs * es - ct * et);
    }
}

/// BCE backward, element-wise: g += coef * (sigmoid(s/T) - sigmoid(t/T)).
template <class T>
__global__ void bceGradKernel(DistillationCudaProblem p, double coefNoGrad,
                              const T *__restrict__ student,
                              const T *__restrict__ teacher,
                              const T *__restrict__ gradLoss,
                              T *__restrict__ gradStudent)
{
    const std::size_t total = p.batch * p.nbOld;
    const double invT = 1.0 / p.temperature;
    const double coef = static_cast<double>(gradLoss[0]) * coefNoGrad;
    for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         i < total; i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        const std::size_t b = i / p.nbOld, j = i % p.nbOld;
        const double d = sigmoidD(static_cast<double>(student[b * p.studentCols + j]) * invT) -
                         sigmoidD(static_cast<double>(teacher[b * p.teacherCols + j]) * invT);
        gradStudent[b * p.studentCols + j] += static_cast<T>(coef * d);
    }
}

} // namespace

template <class T>
std::size_t launchDistillationForward(const DistillationCudaProblem &p, const T *student, const T *teacher, T *loss)
{
    if (p.batch == 0 || p.nbOld == 0) {
        throw std::invalid_argument("distillation (cuda): empty problem");
    }
    // rowLoss[batch] then the non-finite counter, in one allocation.
    DeviceBuffer scratch(p.batch * sizeof(double) + sizeof(unsigned long long));
    double *rowLoss = static_cast<double *>(scratch.get());
    auto *bad = reinterpret_cast<unsigned long long *>(rowLoss + p.batch);
    checkCuda(cudaMemsetAsync(bad, 0, sizeof(unsigned long long), 0), "distillation forward");
    rowLossKernel<T><<<gridFor(p.batch), kRowBlock>>>(p, student, teacher, rowLoss, bad);
    checkCudaLaunch("distillation forward (rows)");
    const double scale = (p.kl ? p.temperature * p.temperature : 1.0) /
                         static_cast<double>(p.batch);
    sumRowsKernel<T><<<1, kSumBlock>>>(p.batch, scale, rowLoss, bad, 1, loss);
    checkCudaLaunch("distillation forward (sum)");
    unsigned long long nonFinite = 0;
    checkCuda(cudaMemcpy(&nonFinite, bad, sizeof(nonFinite), cudaMemcpyDeviceToHost),
          "distillation forward");
    return static_cast<std::size_t>(nonFinite);
}

template <class T>
void launchDistillationBackward(const DistillationCudaProblem &p, const T *student, const T *teacher,
              const T *gradLoss, T *gradStudent)
{
    if (p.batch == 0 || p.nbOld == 0) {
        throw std::invalid_argument("distillation (cuda): empty problem");
    }
    const double B = static_cast<double>(p.batch);
    if (p.kl) {
        // d/ds = T / B * (softmax(s/T) - softmax(t/T))
        klGradKernel<T><<<gridFor(p.batch), kRowBlock>>>(
            p, p.temperature / B, student, teacher, gradLoss, gradStudent);
    } else {
        // d/ds = 1 / (T B) * (sigmoid(s/T) - sigmoid(t/T))
        const std::size_t total = p.batch * p.nbOld;
        const unsigned blocks = static_cast<unsigned>(
            std::min<std::size_t>((total + kRowBlock - 1) / kRowBlock, 65535));
        bceGradKernel<T><<<blocks, kRowBlock>>>(
            p, 1.0 / (p.temperature * B), student, teacher, gradLoss, gradStudent);
    }
    checkCudaLaunch("distillation backward");
}

template std::size_t launchDistillationForward<float>(const DistillationCudaProblem &, const float *, const float *, float *);
template std::size_t launchDistillationForward<double>(const DistillationCudaProblem &, const double *, const double *, double *);
template void launchDistillationBackward<float>(const DistillationCudaProblem &, const float *, const float *, const float *, float *);
template void launchDistillationBackward<double>(const DistillationCudaProblem &, const double *, const double *, const double *, double *);

} // namespace incremental
} // namespace Aidge
