#include "aidge/incremental/backend/cuda/operator/AttentionDistillationImpl_CUDA_kernels.hpp"

#include <cstddef>
#include <stdexcept>

#include <cuda_runtime.h>

#include "aidge/incremental/backend/cuda/utils/DeviceUtils.cuh"

namespace Aidge {
namespace incremental {
namespace {

constexpr int kBlock = 256; // one block per sample

struct Dims
{
    std::size_t batch, channels, pixels;
};

/// z = sum_c alpha_c A_c of sample b into z[0..P); returns (to every thread)
/// the number of non-finite values in A_b, alpha_b and Q_t,b.
template <class T>
__device__ double studentMap(const Dims d, const T *a, const T *alpha, const T *qt,
                             double *z, double *shared)
{
    double bad = 0.0;
    for (std::size_t c = threadIdx.x; c < d.channels; c += blockDim.x) {
        bad += isfinite(static_cast<double>(alpha[c])) ? 0.0 : 1.0;
    }
    for (std::size_t j = threadIdx.x; j < d.pixels; j += blockDim.x) {
        double acc = 0.0;
        for (std::size_t c = 0; c < d.channels; ++c) {
            const double v = static_cast<double>(a[c * d.pixels + j]);
            bad += isfinite(v) ? 0.0 : 1.0;
            acc += static_cast<double>(alpha[c]) * v;
        }
        z[j] = acc;
        bad += isfinite(static_cast<double>(qt[j])) ? 0.0 : 1.0;
    }
    return blockSum(bad, shared);
}

/// (||ReLU(z)||_2, ||Q_t||_2) of the sample, to every thread.
template <class T>
__device__ void norms(const Dims d, const double *z, const T *qt, double *shared,
                      double &nq, double &nt)
{
    double sq = 0.0, tq = 0.0;
    for (std::size_t j = threadIdx.x; j < d.pixels; j += blockDim.x) {
        const double q = fmax(z[j], 0.0);
        const double t = static_cast<double>(qt[j]);
        sq += q * q;
        tq += t * t;
    }
    nq = sqrt(blockSum(sq, shared));
    nt = sqrt(blockSum(tq, shared));
}

__device__ inline double signD(double x) { return (x > 0.0) ? 1.0 : ((x < 0.0) ? -1.0 : 0.0); }

template <class T>
__global__ void sampleLossKernel(Dims d, double eps, const T *__restrict__ features,
                                 const T *__restrict__ weights, const T *__restrict__ teacher,
                                 double *__restrict__ zbuf, double *__restrict__ rowLoss,
                                 unsigned long long *__restrict__ bad)
{
    __shared__ double shared[kBlock / kWarp];
    const std::size_t b = blockIdx.x;
    const T *qt = teacher + b * d.pixels;
    double *z = zbuf + b * d.pixels;
    const double nonFinite = studentMap(d, features + b * d.channels * d.pixels,
                                        weights + b * d.channels, qt, z, shared);
    if (nonFinite != 0.0) { // uniform over the block
        if (threadIdx.x == 0) {
            atomicAdd(bad, static_cast<unsigned long long>(nonFinite));
            rowLoss[b] = 0.0;
        }
        return;
    }
    __syncthreads(); // z complete before the norms read it
    double nq, nt;
    norms(d, z, qt, shared, nq, nt);
    const double ns = fmax(nq, eps), nts = fmax(nt, eps);
    double row = 0.0;
    for (std::size_t j = threadIdx.x; j < d.pixels; j += blockDim.x) {
        row += fabs(fmax(z[j], 0.0) / ns - static_cast<double>(qt[j]) / nts);
    }
    row = blockSum(row, shared);
    if (threadIdx.x == 0) {
        rowLoss[b] = row;
    }
}

template <class T>
__global__ void sampleGradKernel(Dims d, double eps, const T *__restrict__ features,
                                 const T *__restrict__ weights, const T *__restrict__ teacher,
                                 const T *__restrict__ gradLoss, double *__restrict__ zbuf,
                                 T *__restrict__ gradFeatures, T *__restrict__ gradWeights)
{
    __shared__ double shared[kBlock / kWarp];
    const std::size_t b = blockIdx.x;
    const T *qt = teacher + b * d.pixels;
    const T *alpha = weights + b * d.channels;
    const T *a = features + b * d.channels * d.pixels;
    double *z = zbuf + b * d.pixels;
    studentMap(d, a, alpha, qt, z, shared);
    __syncthreads();
    double nq, nt;
    norms(d, z, qt, shared, nq, nt);
    const double ns = fmax(nq, eps), nts = fmax(nt, eps);
    double su = 0.0; // s . u, s = sign(u - v)
    for (std::size_t j = threadIdx.x; j < d.pixels; j += blockDim.x) {
        const double u = fmax(z[j], 0.0) / ns;
        su += signD(u - static_cast<double>(qt[j]) / nts) * u;
    }
    su = blockSum(su, shared);
    const double coef = static_cast<double>(gradLoss[0]) / static_cast<double>(d.batch);
    T *gA = gradFeatures + b * d.channels * d.pixels;
    // z_j becomes dL/dz_j (each thread rewrites only the pixels it read)
    for (std::size_t j = threadIdx.x; j < d.pixels; j += blockDim.x) {
        if (!(z[j] > 0.0)) {
            z[j] = 0.0; // ReLU closed: no gradient through this pixel
            continue;
        }
        const double u = z[j] / ns;
        const double s = signD(u - static_cast<double>(qt[j]) / nts);
        const double gz = coef * ((nq > eps) ? (s - u * su) / nq : s / eps);
        z[j] = gz;
        for (std::size_t c = 0; c < d.channels; ++c) {
            gA[c * d.pixels + j] += static_cast<T>(static_cast<double>(alpha[c]) * gz);
        }
    }
    __syncthreads(); // every dL/dz_j written before the channels read them
    // dL/dalpha_c = sum_j A_cj dL/dz_j: one thread per channel
    for (std::size_t c = threadIdx.x; c < d.channels; c += blockDim.x) {
        const T *ac = a + c * d.pixels;
        double acc = 0.0;
        for (std::size_t j = 0; j < d.pixels; ++j) {
            acc += static_cast<double>(ac[j]) * z[j];
        }
        gradWeights[b * d.channels + c] += static_cast<T>(acc);
    }
}

void checkProblem(std::size_t batch, std::size_t channels, std::size_t pixels)
{
    if (batch == 0 || channels == 0 || pixels == 0) {
        throw std::invalid_argument("attention distillation (cuda): empty problem");
    }
    if (batch > 2147483647u) {
        throw std::invalid_argument("attention distillation (cuda): batch too large for one grid");
    }
}

} // namespace

template <class T>
std::size_t launchAttentionDistillationForward(double epsilon, std::size_t batch, std::size_t channels,
                    std::size_t pixels, const T *features, const T *weights,
                    const T *teacherMap, T *loss)
{
    checkProblem(batch, channels, pixels);
    // z (B*P doubles), rowLoss (B doubles), the non-finite counter.
    DeviceBuffer scratch((batch * pixels + batch) * sizeof(double) + sizeof(unsigned long long));
    double *zbuf = static_cast<double *>(scratch.get());
    double *rowLoss = zbuf + batch * pixels;
    auto *bad = reinterpret_cast<unsigned long long *>(rowLoss + batch);
    checkCuda(cudaMemsetAsync(bad, 0, sizeof(unsigned long long), 0), "attention distillation forward");
    sampleLossKernel<T><<<static_cast<unsigned>(batch), kBlock>>>(
        Dims{batch, channels, pixels}, epsilon, features, weights, teacherMap, zbuf, rowLoss, bad);
    checkCudaLaunch("attention distillation forward (samples)");
    sumRowsKernel<T><<<1, kSumBlock>>>(batch, 1.0 / static_cast<double>(batch), rowLoss, bad, 1, loss);
    checkCudaLaunch("attention distillation forward (sum)");
    unsigned long long nonFinite = 0;
    checkCuda(cudaMemcpy(&nonFinite, bad, sizeof(nonFinite), cudaMemcpyDeviceToHost),
          "attention distillation forward");
    return static_cast<std::size_t>(nonFinite);
}

template <class T>
void launchAttentionDistillationBackward(double epsilon, std::size_t batch, std::size_t channels, std::size_t pixels,
              const T *features, const T *weights, const T *teacherMap, const T *gradLoss,
              T *gradFeatures, T *gradWeights)
{
    checkProblem(batch, channels, pixels);
    DeviceBuffer zbuf(batch * pixels * sizeof(double));
    sampleGradKernel<T><<<static_cast<unsigned>(batch), kBlock>>>(
        Dims{batch, channels, pixels}, epsilon, features, weights, teacherMap, gradLoss,
        static_cast<double *>(zbuf.get()), gradFeatures, gradWeights);
    checkCudaLaunch("attention distillation backward");
    // zbuf is freed on return; cudaFree waits for the kernel that uses it.
}

template std::size_t launchAttentionDistillationForward<float>(double, std::size_t, std::size_t, std::size_t, const float *,
                                    const float *, const float *, float *);
template std::size_t launchAttentionDistillationForward<double>(double, std::size_t, std::size_t, std::size_t, const double *,
                                     const double *, const double *, double *);
template void launchAttentionDistillationBackward<float>(double, std::size_t, std::size_t, std::size_t, const float *,
                              const float *, const float *, const float *, float *, float *);
template void launchAttentionDistillationBackward<double>(double, std::size_t, std::size_t, std::size_t, const double *,
                               const double *, const double *, const double *, double *, double *);

} // namespace incremental
} // namespace Aidge
