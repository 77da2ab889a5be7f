/**
 * Small device helpers shared by our CUDA kernels (nvcc only): warp
 * reductions in double, error checks that throw, a scratch buffer.
 * Reductions go through a fixed butterfly, so a sum does not depend on
 * thread scheduling: results are reproducible run to run.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CUDA_UTILS_DEVICEUTILS_H_
#define AIDGE_INCREMENTAL_BACKEND_CUDA_UTILS_DEVICEUTILS_H_

#include <cstddef>
#include <stdexcept>
#include <string>

#include <cuda_runtime.h>

namespace Aidge {
namespace incremental {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarp = 32;

inline void checkCuda(cudaError_t e, const char *what)
{
    if (e != cudaSuccess) {
        throw std::runtime_error(std::string(what) + ": CUDA error: " +
                                 cudaGetErrorString(e));
    }
}

/// Raise on a failed launch (bad configuration) right after it.
inline void checkCudaLaunch(const char *what) { checkCuda(cudaGetLastError(), what); }

__device__ inline double warpSum(double v)
{
    for (int off = kWarp / 2; off > 0; off /= 2) {
        v += __shfl_xor_sync(kFullMask, v, off);
    }
    return v;
}

__device__ inline unsigned warpSumU(unsigned v)
{
    for (int off = kWarp / 2; off > 0; off /= 2) {
        v += __shfl_xor_sync(kFullMask, v, off);
    }
    return v;
}

__device__ inline double warpMax(double v)
{
    for (int off = kWarp / 2; off > 0; off /= 2) {
        v = fmax(v, __shfl_xor_sync(kFullMask, v, off));
    }
    return v;
}

/// Sum over a block whose size is a multiple of 32 (at most 1024); every
/// thread gets the result. `shared` holds at least blockDim.x / 32 doubles.
__device__ inline double blockSum(double v, double *shared)
{
    const int lane = threadIdx.x % kWarp;
    const int warp = threadIdx.x / kWarp;
    const int nbWarps = blockDim.x / kWarp;
    v = warpSum(v);
    __syncthreads(); // shared may still be read by a previous call
    if (lane == 0) {
        shared[warp] = v;
    }
    __syncthreads();
    v = (lane < nbWarps) ? shared[lane] : 0.0;
    return warpSum(v);
}

__device__ inline double sigmoidD(double x)
{
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    const double e = exp(x);
    return e / (1.0 + e);
}

/// Threads per block of sumRowsKernel.
constexpr int kSumBlock = 1024;

/// One block of kSumBlock threads: loss[0] = scale * sum_b rowLoss[b] (double,
/// fixed order), written only when every data-check counter is 0.
template <class T>
__global__ void sumRowsKernel(std::size_t batch, double scale,
                              const double *__restrict__ rowLoss,
                              const unsigned long long *__restrict__ counters,
                              int nbCounters, T *__restrict__ loss)
{
    __shared__ double shared[kSumBlock / kWarp];
    double acc = 0.0;
    for (std::size_t b = threadIdx.x; b < batch; b += blockDim.x) {
        acc += rowLoss[b];
    }
    acc = blockSum(acc, shared);
    if (threadIdx.x == 0) {
        unsigned long long bad = 0;
        for (int i = 0; i < nbCounters; ++i) {
            bad += counters[i];
        }
        if (bad == 0) {
            loss[0] = static_cast<T>(acc * scale);
        }
    }
}

/// Device memory owned for the duration of one call.
class DeviceBuffer {
  public:
    explicit DeviceBuffer(std::size_t bytes)
    {
        checkCuda(cudaMalloc(&mPtr, bytes), "cudaMalloc");
    }
    ~DeviceBuffer() { cudaFree(mPtr); }
    DeviceBuffer(const DeviceBuffer &) = delete;
    DeviceBuffer &operator=(const DeviceBuffer &) = delete;
    void *get() const noexcept { return mPtr; }

  private:
    void *mPtr = nullptr;
};

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CUDA_UTILS_DEVICEUTILS_H_
