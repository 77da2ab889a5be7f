/**
 * Float32 2-D convolution (NCHW, dilation 1) as im2col + OpenBLAS sgemm,
 * forward and backward. Backward ACCUMULATES (+=) into the input, weight and
 * bias gradients, as Aidge's own kernels do.
 *
 * Parallelism: one OpenMP region over the samples of the batch; each thread
 * unfolds its sample into a private column buffer and calls the
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
    bool direct() const // the input already is its own column matrix
    {
        return KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 &&
               PL == 0 && PB == 0 && PR == 0;
    }
};

/// col[K, P] from one sample x[C, H, W].
inline void im2col(const ConvShape &s, const float *x, float *col)
{
    const int P = s.P();
    for (int c = 0; c < s.C; ++c) {
        for (int ki = 0; ki < s.KH; ++ki) {
            for (int kj = 0; kj < s.KW; ++kj) {
                float *row = col + ((c * s.KH + ki) * s.KW + kj) * P;
                for (int oy = 0; oy < s.HO; ++oy) {
                    const int iy = oy * s.SH + ki - s.PT;
                    float *dst = row + oy * s.WO;
                    if (iy < 0 || iy >= s.H) {
                        std::fill(dst, dst + s.WO, 0.0f);
                        continue;
                    }
                    const float *src = x + (c * s.H + iy) * s.W;
                    if (s.SW == 1) {
                        const int lo = std::min(s.WO, std::max(0, s.PL - kj));
                        const int hi = std::max(lo, std::min(s.WO, s.W + s.PL - kj));
                        std::fill(dst, dst + lo, 0.0f);
                        if (hi > lo) {
                            std::memcpy(dst + lo, src + lo + kj - s.PL,
                                        sizeof(float) * (hi - lo));
                        }
                        std::fill(dst + hi, dst + s.WO, 0.0f);
                    } else {
                        for (int ox = 0; ox < s.WO; ++ox) {
                            const int ix = ox * s.SW + kj - s.PL;
                            dst[ox] = (ix < 0 || ix >= s.W) ? 0.0f : src[ix];
                        }
                    }
                }
            }
        }
    }
}

/// dx[C, H, W] += fold(dcol[K, P]) (adjoint of im2col).
inline void col2imAdd(const ConvShape &s, const float *dcol, float *dx)
{
    const int P = s.P();
    for (int c = 0; c < s.C; ++c) {
        for (int ki = 0; ki < s.KH; ++ki) {
            for (int kj = 0; kj < s.KW; ++kj) {
                const float *row = dcol + ((c * s.KH + ki) * s.KW + kj) * P;
                for (int oy = 0; oy < s.HO; ++oy) {
                    const int iy = oy * s.SH + ki - s.PT;
                    if (iy < 0 || iy >= s.H) {
                        continue;
                    }
                    const float *src = row + oy * s.WO;
                    float *dst = dx + (c * s.H + iy) * s.W;
                    if (s.SW == 1) {
                        const int ox0 = std::max(0, s.PL - kj);
                        const int ox1 = std::min(s.WO, s.W + s.PL - kj);
                        float *d = dst + kj - s.PL;
                        for (int ox = ox0; ox < ox1; ++ox) {
                            d[ox] += src[ox];
                        }
                    } else {
                        for (int ox = 0; ox < s.WO; ++ox) {
                            const int ix = ox * s.SW + kj - s.PL;
                            if (ix >= 0 && ix < s.W) {
                                dst[ix] += src[ox];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// y[N, O, HO, WO] = conv(x, w) + bias (bias may be null).
inline void fastConvForward(const ConvShape &s, const float *x, const float *w,
                            const float *bias, float *y)
{
    const int K = s.K(), P = s.P();
    const std::size_t xStride = static_cast<std::size_t>(s.C) * s.H * s.W;
    const std::size_t yStride = static_cast<std::size_t>(s.O) * P;
#pragma omp parallel
    {
        std::vector<float> col(s.direct() ? 0 : static_cast<std::size_t>(K) * P);
#pragma omp for schedule(static)
        for (int n = 0; n < s.N; ++n) {
            const float *xn = x + n * xStride;
            float *yn = y + n * yStride;
            const float *cn = xn;
            if (!s.direct()) {
                im2col(s, xn, col.data());
                cn = col.data();
            }
            if (bias != nullptr) {
                for (int o = 0; o < s.O; ++o) {
                    std::fill(yn + o * P, yn + (o + 1) * P, bias[o]);
                }
            }
            sgemm(false, false, s.O, P, K, 1.0f, w, K, cn, P,
                  bias != nullptr ? 1.0f : 0.0f, yn, P);
        }
    }
}

/// dx += conv^T(dy, w); dw += dy * col^T; db += sum(dy). Any of dx, dw, db may be null.
inline void fastConvBackward(const ConvShape &s, const float *x, const float *w,
                             const float *dy, float *dx, float *dw, float *db)
{
    const int K = s.K(), P = s.P();
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
        std::vector<float> col(s.direct() || dw == nullptr ? 0 : static_cast<std::size_t>(K) * P);
        std::vector<float> dcol(s.direct() || dx == nullptr ? 0 : static_cast<std::size_t>(K) * P);
        float *dwT = dw != nullptr ? dwAll.data() + static_cast<std::size_t>(t) * s.O * K : nullptr;
        float *dbT = db != nullptr ? dbAll.data() + static_cast<std::size_t>(t) * s.O : nullptr;
#pragma omp for schedule(static)
        for (int n = 0; n < s.N; ++n) {
            const float *xn = x + n * xStride;
            const float *dyn = dy + n * yStride;
            if (dw != nullptr) {
                const float *cn = xn;
                if (!s.direct()) {
                    im2col(s, xn, col.data());
                    cn = col.data();
                }
                sgemm(false, true, s.O, K, P, 1.0f, dyn, P, cn, P, 1.0f, dwT, K);
            }
            if (db != nullptr) {
                for (int o = 0; o < s.O; ++o) {
                    float acc = 0.0f;
                    const float *r = dyn + o * P;
                    for (int p = 0; p < P; ++p) {
                        acc += r[p];
                    }
                    dbT[o] += acc;
                }
            }
            if (dx != nullptr) {
                float *dxn = dx + n * xStride;
                if (s.direct()) {
                    sgemm(true, false, K, P, s.O, 1.0f, w, K, dyn, P, 1.0f, dxn, P);
                } else {
                    sgemm(true, false, K, P, s.O, 1.0f, w, K, dyn, P, 0.0f, dcol.data(), P);
                    col2imAdd(s, dcol.data(), dxn);
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
