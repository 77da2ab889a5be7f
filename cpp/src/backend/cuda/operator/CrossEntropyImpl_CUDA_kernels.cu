#include "aidge/incremental/backend/cuda/operator/CrossEntropyImpl_CUDA_kernels.hpp"

#include <cstddef>
#include <stdexcept>

#include <cuda_runtime.h>

#include "aidge/incremental/backend/cuda/utils/DeviceUtils.cuh"

namespace Aidge {
namespace incremental {
namespace {

constexpr int kRowBlock = 256; // 8 warps, one row per warp
constexpr int kRowsPerBlock = kRowBlock / kWarp;

unsigned gridFor(std::size_t rows)
{
    return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
}

/// lse(s) of one row held by a warp (every lane gets it).
template <class T>
__device__ double warpLogSumExp(const T *s, std::size_t n, unsigned lane)
{
    double m = -INFINITY;
    for (std::size_t j = lane; j < n; j += kWarp) {
        m = fmax(m, static_cast<double>(s[j]));
    }
    m = warpMax(m);
    double sum = 0.0;
    for (std::size_t j = lane; j < n; j += kWarp) {
        sum += exp(static_cast<double>(s[j]) - m);
    }
    return m + log(warpSum(sum));
}

/// counters[0]: non-finite elements, counters[1]: negative targets.
template <class T>
__global__ void rowLossKernel(std::size_t batch, std::size_t n,
                              const T *__restrict__ prediction,
                              const T *__restrict__ target,
                              double *__restrict__ rowLoss,
                              unsigned long long *__restrict__ counters)
{
    const std::size_t b = static_cast<std::size_t>(blockIdx.x) * kRowsPerBlock +
                          threadIdx.x / kWarp;
    const unsigned lane = threadIdx.x % kWarp;
    if (b >= batch) {
        return;
    }
    const T *s = prediction + b * n;
    const T *y = target + b * n;
    unsigned bad = 0, negative = 0;
    for (std::size_t j = lane; j < n; j += kWarp) {
        bad += (isfinite(static_cast<double>(s[j])) && isfinite(static_cast<double>(y[j]))) ? 0u : 1u;
        negative += (y[j] < T(0)) ? 1u : 0u;
    }
    bad = warpSumU(bad);
    negative = warpSumU(negative);
    if (lane == 0 && (bad != 0 || negative != 0)) {
        atomicAdd(&counters[0], static_cast<unsigned long long>(bad));
        atomicAdd(&counters[1], static_cast<unsigned long long>(negative));
    }
    if (bad != 0) {
        if (lane == 0) {
            rowLoss[b] = 0.0;
        }
        return;
    }
    const double lse = warpLogSumExp(s, n, lane);
    double row = 0.0;
    for (std::size_t j = lane; j < n; j += kWarp) {
        row += static_cast<double>(y[j]) * (lse - static_cast<double>(s[j]));
    }
    row = warpSum(row);
    if (lane == 0) {
        rowLoss[b] = row;
    }
}

template <class T>
__global__ void gradKernel(std::size_t batch, std::size_t n,
                           const T *__restrict__ prediction,
                           const T *__restrict__ target,
                           const T *__restrict__ gradLoss,
                           T *__restrict__ gradPrediction)
{
    const std::size_t b = static_cast<std::size_t>(blockIdx.x) * kRowsPerBlock +
                          threadIdx.x / kWarp;
    const unsigned lane = threadIdx.x % kWarp;
    if (b >= batch) {
        return;
    }
    const T *s = prediction + b * n;
    const T *y = target + b * n;
    T *g = gradPrediction + b * n;
    const double coef = static_cast<double>(gradLoss[0]) / static_cast<double>(batch);
    const double lse = warpLogSumExp(s, n, lane);
    double ySum = 0.0;
    for (std::size_t j = lane; j < n; j += kWarp) {
        ySum += static_cast<double>(y[j]);
    }
    ySum = warpSum(ySum);
    for (std::size_t j = lane; j < n; j += kWarp) {
        const double p = exp(static_cast<double>(s[j]) - lse);
        g[j] += static_cast<T>(coef * (p * ySum - static_cast<double>(y[j])));
    }
}

} // namespace

template <class T>
CrossEntropyCudaDataCheck launchCrossEntropyForward(std::size_t batch, std::size_t classes, const T *prediction,
                  const T *target, T *loss)
{
    if (batch == 0 || classes == 0) {
        throw std::invalid_argument("cross-entropy (cuda): empty problem");
    }
    DeviceBuffer scratch(batch * sizeof(double) + 2 * sizeof(unsigned long long));
    double *rowLoss = static_cast<double *>(scratch.get());
    auto *counters = reinterpret_cast<unsigned long long *>(rowLoss + batch);
    checkCuda(cudaMemsetAsync(counters, 0, 2 * sizeof(unsigned long long), 0), "cross-entropy forward");
    rowLossKernel<T><<<gridFor(batch), kRowBlock>>>(batch, classes, prediction, target,
                                                   rowLoss, counters);
    checkCudaLaunch("cross-entropy forward (rows)");
    sumRowsKernel<T><<<1, kSumBlock>>>(batch, 1.0 / static_cast<double>(batch), rowLoss,
                                       counters, 2, loss);
    checkCudaLaunch("cross-entropy forward (sum)");
    unsigned long long host[2] = {0, 0};
    checkCuda(cudaMemcpy(host, counters, sizeof(host), cudaMemcpyDeviceToHost),
          "cross-entropy forward");
    return {static_cast<std::size_t>(host[0]), static_cast<std::size_t>(host[1])};
}

template <class T>
void launchCrossEntropyBackward(std::size_t batch, std::size_t classes, const T *prediction,
              const T *target, const T *gradLoss, T *gradPrediction)
{
    if (batch == 0 || classes == 0) {
        throw std::invalid_argument("cross-entropy (cuda): empty problem");
    }
    gradKernel<T><<<gridFor(batch), kRowBlock>>>(batch, classes, prediction, target,
                                                gradLoss, gradPrediction);
    checkCudaLaunch("cross-entropy backward");
}

template CrossEntropyCudaDataCheck launchCrossEntropyForward<float>(std::size_t, std::size_t, const float *, const float *, float *);
template CrossEntropyCudaDataCheck launchCrossEntropyForward<double>(std::size_t, std::size_t, const double *, const double *, double *);
template void launchCrossEntropyBackward<float>(std::size_t, std::size_t, const float *, const float *, const float *, float *);
template void launchCrossEntropyBackward<double>(std::size_t, std::size_t, const double *, const double *, const double *, double *);

} // namespace incremental
} // namespace Aidge
