/**
 * Float32 2-D convolution (NCHW, dilation 1) as im2col + OpenBLAS sgemm,
 * forward and backward. Backward ACCUMULATES (+=) into the input, weight and
 * bias gradients, as Aidge's own kernels do.
 *
 * Parallelism: one OpenMP region over chunks of samples; each thread unfolds
 * its chunk side by side into a private column matrix [K, b*P] (b samples, so
 * that the product is wide enough to run near the BLAS's peak) and calls the
 * (single-threaded) BLAS. Weight/bias gradients are summed in per-thread
 * buffers, then added in thread order (deterministic for a given thread count).
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTCONVIMPL_KERNELS_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTCONVIMPL_KERNELS_H_

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include <omp.h>

#include "aidge/incremental/backend/cpu/Blas.hpp"

namespace Aidge {
namespace incremental {

struct ConvShape {
    int N, C, H, W;       // input
    int O, KH, KW;        // filters
    int SH, SW;           // strides
    int PT, PL, PB, PR;   // zero padding (top, left, bottom, right)
    int HO, WO;           // output
    int K() const { return C * KH * KW; }
    int P() const { return HO * WO; }
};

/// Columns of one sample x[C, H, W] into col[K, P] whose rows are `ld` apart
/// (several samples side by side make one wider matrix product).
inline void im2col(const ConvShape &s, const float *x, float *col, std::size_t ld)
{
    for (int c = 0; c < s.C; ++c) {
        for (int ki = 0; ki < s.KH; ++ki) {
            for (int kj = 0; kj < s.KW; ++kj) {
                float *row = col + static_cast<std::size_t>((c * s.KH + ki) * s.KW + kj) * ld;
                // output columns whose input column ix = ox*SW + kj - PL is inside
                const int lo = std::min(s.WO, std::max(0, (s.PL - kj + s.SW - 1) / s.SW));
                const int hi = std::max(lo, std::min(s.WO, (s.W + s.PL - kj + s.SW - 1) / s.SW));
                for (int oy = 0; oy < s.HO; ++oy) {
                    const int iy = oy * s.SH + ki - s.PT;
                    float *dst = row + oy * s.WO;
                    if (iy < 0 || iy >= s.H) {
                        for (int ox = 0; ox < s.WO; ++ox) {
                            dst[ox] = 0.0f;
                        }
                        continue;
                    }
                    const float *src = x + (static_cast<std::size_t>(c) * s.H + iy) * s.W + kj - s.PL;
                    for (int ox = 0; ox < lo; ++ox) {
                        dst[ox] = 0.0f;
                    }
                    if (s.SW == 1) {
                        for (int ox = lo; ox < hi; ++ox) {
                            dst[ox] = src[ox];
                        }
                    } else {
                        for (int ox = lo; ox < hi; ++ox) {
                            dst[ox] = src[ox * s.SW];
                        }
                    }
                    for (int ox = hi; ox < s.WO; ++ox) {
                        dst[ox] = 0.0f;
                    }
                }
            }
        }
    }
}

/// dx[C, H, W] += fold(dcol[K, P]) (adjoint of im2col), rows `ld` apart.
inline void col2imAdd(const ConvShape &s, const float *dcol, std::size_t ld, float *dx)
{
    for (int c = 0; c < s.C; ++c) {
        for (int ki = 0; ki < s.KH; ++ki) {
            for (int kj = 0; kj < s.KW; ++kj) {
                const float *row = dcol + static_cast<std::size_t>((c * s.KH + ki) * s.KW + kj) * ld;
                const int lo = std::min(s.WO, std::max(0, (s.PL - kj + s.SW - 1) / s.SW));
                const int hi = std::max(lo, std::min(s.WO, (s.W + s.PL - kj + s.SW - 1) / s.SW));
                for (int oy = 0; oy < s.HO; ++oy) {
                    const int iy = oy * s.SH + ki - s.PT;
                    if (iy < 0 || iy >= s.H) {
                        continue;
                    }
                    const float *src = row + oy * s.WO;
                    float *dst = dx + (static_cast<std::size_t>(c) * s.H + iy) * s.W + kj - s.PL;
                    if (s.SW == 1) {
                        for (int ox = lo; ox < hi; ++ox) {
                            dst[ox] += src[ox];
                        }
                    } else {
                        for (int ox = lo; ox < hi; ++ox) {
                            dst[ox * s.SW] += src[ox];
                        }
                    }
                }
            }
        }
    }
}

/// Per-thread scratch buffer that only grows (no allocation, zero-fill or
/// page faults on every call; contents are always overwritten before use).
inline float *scratch(int slot, std::size_t n)
{
    thread_local std::vector<float> buffers[2];
    std::vector<float> &b = buffers[slot];
    if (b.size() < n) {
        b.resize(n);
    }
    return b.data();
}

/// Samples per matrix product: enough columns (b*P) for an efficient GEMM,
/// a column buffer of at most ~4 MB per thread.
inline int samplesPerChunk(const ConvShape &s)
{
    const long P = s.P(), K = s.K();
    long b = std::max(1L, 2048L / std::max(1L, P));
    b = std::min(b, std::max(1L, (1L << 20) / std::max(1L, K * P)));
    return static_cast<int>(std::min<long>(b, std::max(1, s.N)));
}

/// y[N, O, HO, WO] = conv(x, w) + bias (bias may be null).
inline void fastConvForward(const ConvShape &s, const float *x, const float *w,
                            const float *bias, float *y)
{
    const int K = s.K(), P = s.P(), b = samplesPerChunk(s);
    const int chunks = (s.N + b - 1) / b;
    const std::size_t xStride = static_cast<std::size_t>(s.C) * s.H * s.W;
    const std::size_t yStride = static_cast<std::size_t>(s.O) * P;
#pragma omp parallel
    {
        float *col = scratch(0, static_cast<std::size_t>(K) * b * P);
        float *out = scratch(1, static_cast<std::size_t>(s.O) * b * P);
#pragma omp for schedule(static)
        for (int ch = 0; ch < chunks; ++ch) {
            const int n0 = ch * b, nb = std::min(b, s.N - n0);
            const std::size_t ld = static_cast<std::size_t>(nb) * P;
            for (int j = 0; j < nb; ++j) {
                im2col(s, x + (n0 + j) * xStride, col + j * P, ld);
            }
            sgemm(false, false, s.O, static_cast<int>(ld), K, 1.0f, w, K, col,
                  static_cast<int>(ld), 0.0f, out, static_cast<int>(ld));
            for (int j = 0; j < nb; ++j) {
                float *yn = y + (n0 + j) * yStride;
                for (int o = 0; o < s.O; ++o) {
                    const float *src = out + o * ld + j * P;
                    float *dst = yn + o * P;
                    const float bo = bias != nullptr ? bias[o] : 0.0f;
                    for (int p = 0; p < P; ++p) {
                        dst[p] = src[p] + bo;
                    }
                }
            }
        }
    }
}

/// dx += conv^T(dy, w); dw += dy * col^T; db += sum(dy). Any of dx, dw, db may be null.
inline void fastConvBackward(const ConvShape &s, const float *x, const float *w,
                             const float *dy, float *dx, float *dw, float *db)
{
    const int K = s.K(), P = s.P(), b = samplesPerChunk(s);
    const int chunks = (s.N + b - 1) / b;
    const std::size_t xStride = static_cast<std::size_t>(s.C) * s.H * s.W;
    const std::size_t yStride = static_cast<std::size_t>(s.O) * P;
    const int nThreads = omp_get_max_threads();
    std::vector<float> dwAll(dw != nullptr ? static_cast<std::size_t>(nThreads) * s.O * K : 0, 0.0f);
    std::vector<float> dbAll(db != nullptr ? static_cast<std::size_t>(nThreads) * s.O : 0, 0.0f);
    int used = 1;
#pragma omp parallel num_threads(nThreads)
    {
        const int t = omp_get_thread_num();
#pragma omp single
        used = omp_get_num_threads();
        float *col = scratch(0, static_cast<std::size_t>(K) * b * P);
        float *dyc = scratch(1, static_cast<std::size_t>(s.O) * b * P);
        float *dwT = dw != nullptr ? dwAll.data() + static_cast<std::size_t>(t) * s.O * K : nullptr;
        float *dbT = db != nullptr ? dbAll.data() + static_cast<std::size_t>(t) * s.O : nullptr;
#pragma omp for schedule(static)
        for (int ch = 0; ch < chunks; ++ch) {
            const int n0 = ch * b, nb = std::min(b, s.N - n0);
            const std::size_t ld = static_cast<std::size_t>(nb) * P;
            for (int j = 0; j < nb; ++j) { // dy of the chunk as [O, nb*P]
                const float *dyn = dy + (n0 + j) * yStride;
                for (int o = 0; o < s.O; ++o) {
                    std::memcpy(dyc + o * ld + j * P, dyn + o * P, sizeof(float) * P);
                }
            }
            if (db != nullptr) {
                for (int o = 0; o < s.O; ++o) {
                    const float *r = dyc + o * ld;
                    float acc = 0.0f;
                    for (std::size_t p = 0; p < ld; ++p) {
                        acc += r[p];
                    }
                    dbT[o] += acc;
                }
            }
            if (dw != nullptr) {
                for (int j = 0; j < nb; ++j) {
                    im2col(s, x + (n0 + j) * xStride, col + j * P, ld);
                }
                sgemm(false, true, s.O, K, static_cast<int>(ld), 1.0f, dyc,
                      static_cast<int>(ld), col, static_cast<int>(ld), 1.0f, dwT, K);
            }
            if (dx != nullptr) { // col is reused as dcol [K, nb*P]
                sgemm(true, false, K, static_cast<int>(ld), s.O, 1.0f, w, K, dyc,
                      static_cast<int>(ld), 0.0f, col, static_cast<int>(ld));
                for (int j = 0; j < nb; ++j) {
                    col2imAdd(s, col + j * P, ld, dx + (n0 + j) * xStride);
                }
            }
        }
    }
    for (int t = 0; t < used; ++t) {
        if (dw != nullptr) {
            const float *src = dwAll.data() + static_cast<std::size_t>(t) * s.O * K;
            for (std::size_t i = 0; i < static_cast<std::size_t>(s.O) * K; ++i) {
                dw[i] += src[i];
            }
        }
        if (db != nullptr) {
            const float *src = dbAll.data() + static_cast<std::size_t>(t) * s.O;
            for (int o = 0; o < s.O; ++o) {
                db[o] += src[o];
            }
        }
    }
}

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTCONVIMPL_KERNELS_H_
