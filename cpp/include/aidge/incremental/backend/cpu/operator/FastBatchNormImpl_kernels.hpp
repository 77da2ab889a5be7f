/**
 * Float32 BatchNorm2D (NCHW), forward and backward, train and eval modes.
 *
 * Train mode (Ioffe & Szegedy 2015, Alg. 1): normalise with the batch mean
 * and the BIASED batch variance; update the running statistics in Aidge's
 * momentum convention  running = running * momentum + batch * (1 - momentum)
 * with the UNBIASED batch variance (m / (m - 1), m = N*H*W) for the running
 * variance — what Aidge's own (unused) CPU training branch and
 * PyTorch's BatchNorm do (Aidge momentum 0.9 == PyTorch momentum 0.1).
 * Eval mode: normalise with the running statistics.
 * Fused with a following ReLU (FastBatchNormImpl.hpp), the forward writes
 * max(0, y) and the backward masks the incoming gradient by it: one pass
 * each instead of a BatchNorm pass plus a ReLU pass, and no BatchNorm output
 * (nor its gradient) in memory.
 * Statistics: each H*W plane's mean and squared deviations in float
 * (vectorised), planes merged in double; forward reads the batch twice
 * (statistics, then normalisation), backward twice (sums, then the input
 * gradient). Backward ACCUMULATES into dx, dscale, dshift.
 * Parallelism: OpenMP over channels.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTBATCHNORMIMPL_KERNELS_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTBATCHNORMIMPL_KERNELS_H_

#include <cmath>
#include <cstddef>

#include "aidge/incremental/backend/cpu/Threads.hpp"

namespace Aidge {
namespace incremental {

/// Forward. Fills mean[C] and invStd[C] with the statistics used (batch
/// ones in train mode, running ones in eval mode) for the backward pass.
/// With `relu`, y = max(0, BatchNorm(x)) (BatchNorm fused with the ReLU after it).
inline void fastBatchNormForward(int N, int C, int HW, bool training, float momentum,
                                 float epsilon, const float *x, const float *scale,
                                 const float *shift, float *runMean, float *runVar,
                                 float *y, float *mean, float *invStd, bool relu = false)
{
    const std::size_t cStride = static_cast<std::size_t>(C) * HW;
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * C * HW >= kParallelMinFloats)
    for (int c = 0; c < C; ++c) {
        float mu, is;
        if (training) {
            const double m = static_cast<double>(N) * HW;
            // One pass over memory: each H*W plane's mean and sum of squared
            // deviations (the plane is read twice, the second time from the
            // L1/L2 cache; summed in float, vectorised), merged across planes
            // in double by Chan et al.'s pairwise update — the two-pass
            // variance's accuracy without its second pass over the batch.
            double dmu = 0.0, ss = 0.0, count = 0.0;
            for (int n = 0; n < N; ++n) {
                const float *xc = x + n * cStride + static_cast<std::size_t>(c) * HW;
                float a = 0.0f;
#pragma omp simd reduction(+ : a)
                for (int i = 0; i < HW; ++i) {
                    a += xc[i];
                }
                const float pm = a / static_cast<float>(HW);
                float q = 0.0f;
#pragma omp simd reduction(+ : q)
                for (int i = 0; i < HW; ++i) {
                    const float dv = xc[i] - pm;
                    q += dv * dv;
                }
                const double delta = static_cast<double>(pm) - dmu, total = count + HW;
                dmu += delta * HW / total;
                ss += static_cast<double>(q) + delta * delta * count * HW / total;
                count = total;
            }
            const double var = ss / m; // biased: used to normalise
            mu = static_cast<float>(dmu);
            is = static_cast<float>(1.0 / std::sqrt(var + epsilon));
            runMean[c] = static_cast<float>(runMean[c] * static_cast<double>(momentum) +
                                            dmu * (1.0 - momentum));
            runVar[c] = static_cast<float>(runVar[c] * static_cast<double>(momentum) +
                                           ss / (m - 1.0) * (1.0 - momentum));
        } else {
            mu = runMean[c];
            is = static_cast<float>(1.0 / std::sqrt(static_cast<double>(runVar[c]) + epsilon));
        }
        mean[c] = mu;
        invStd[c] = is;
        const float a = scale[c] * is, b = shift[c] - mu * a;
        for (int n = 0; n < N; ++n) {
            const std::size_t off = n * cStride + static_cast<std::size_t>(c) * HW;
            const float *xc = x + off;
            float *yc = y + off;
            if (relu) {
#pragma omp simd
                for (int i = 0; i < HW; ++i) {
                    const float v = xc[i] * a + b;
                    yc[i] = v > 0.0f ? v : 0.0f;
                }
            } else {
#pragma omp simd
                for (int i = 0; i < HW; ++i) {
                    yc[i] = xc[i] * a + b;
                }
            }
        }
    }
}

/// Backward with the statistics the forward used. In train mode the batch
/// statistics depend on x (full BatchNorm gradient); in eval mode they are
/// constants. Any of dx, dscale, dshift may be null. With `reluOut` (the fused
/// forward's output), dy is the ReLU's output gradient: it flows where
/// reluOut > 0 (the derivative at 0 is taken as 0, as FastReLU's).
inline void fastBatchNormBackward(int N, int C, int HW, bool training, const float *x,
                                  const float *scale, const float *mean,
                                  const float *invStd, const float *dy, float *dx,
                                  float *dscale, float *dshift, const float *reluOut = nullptr)
{
    const std::size_t cStride = static_cast<std::size_t>(C) * HW;
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * C * HW >= kParallelMinFloats)
    for (int c = 0; c < C; ++c) {
        const float mu = mean[c], is = invStd[c];
        double sdy = 0.0, sdyx = 0.0; // sum dy, sum dy * xhat
        for (int n = 0; n < N; ++n) {
            const std::size_t off = n * cStride + static_cast<std::size_t>(c) * HW;
            const float *xc = x + off, *dyc = dy + off;
            float a = 0.0f, b = 0.0f;
            if (reluOut != nullptr) {
                const float *rc = reluOut + off;
#pragma omp simd reduction(+ : a, b)
                for (int i = 0; i < HW; ++i) {
                    const float d = dyc[i]; // loaded unconditionally: a select, not a branch
                    const float g = rc[i] > 0.0f ? d : 0.0f;
                    a += g;
                    b += g * (xc[i] - mu);
                }
            } else {
#pragma omp simd reduction(+ : a, b)
                for (int i = 0; i < HW; ++i) {
                    a += dyc[i];
                    b += dyc[i] * (xc[i] - mu);
                }
            }
            sdy += a;
            sdyx += b;
        }
        sdyx *= is;
        if (dscale != nullptr) {
            dscale[c] += static_cast<float>(sdyx);
        }
        if (dshift != nullptr) {
            dshift[c] += static_cast<float>(sdy);
        }
        if (dx == nullptr) {
            continue;
        }
        const float g = scale[c] * is;
        if (training) {
            const double m = static_cast<double>(N) * HW;
            const float mdy = static_cast<float>(sdy / m), mdyx = static_cast<float>(sdyx / m);
            // (the ReLU's mask: a select on values loaded unconditionally, in a
            // loop of its own; a branch per element mispredicts half the time)
            for (int n = 0; n < N; ++n) {
                const std::size_t off = n * cStride + static_cast<std::size_t>(c) * HW;
                const float *xc = x + off, *dyc = dy + off;
                float *dxc = dx + off;
                if (reluOut != nullptr) {
                    const float *rc = reluOut + off;
#pragma omp simd
                    for (int i = 0; i < HW; ++i) {
                        const float d = dyc[i];
                        const float gi = rc[i] > 0.0f ? d : 0.0f;
                        dxc[i] += g * (gi - mdy - (xc[i] - mu) * is * mdyx);
                    }
                } else {
#pragma omp simd
                    for (int i = 0; i < HW; ++i) {
                        dxc[i] += g * (dyc[i] - mdy - (xc[i] - mu) * is * mdyx);
                    }
                }
            }
        } else {
            for (int n = 0; n < N; ++n) {
                const std::size_t off = n * cStride + static_cast<std::size_t>(c) * HW;
                const float *dyc = dy + off;
                float *dxc = dx + off;
                if (reluOut != nullptr) {
                    const float *rc = reluOut + off;
#pragma omp simd
                    for (int i = 0; i < HW; ++i) {
                        const float d = dyc[i];
                        dxc[i] += g * (rc[i] > 0.0f ? d : 0.0f);
                    }
                } else {
#pragma omp simd
                    for (int i = 0; i < HW; ++i) {
                        dxc[i] += g * dyc[i];
                    }
                }
            }
        }
    }
}

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTBATCHNORMIMPL_KERNELS_H_
