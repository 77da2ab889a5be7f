/**
 * Float32 2-D convolution (NCHW, dilation 1) on OpenBLAS sgemm, forward and
 * backward. Backward ACCUMULATES (+=) into the input, weight and bias
 * gradients, as Aidge's own kernels do.
 *
 * Two formulations:
 * - stride 1 ("shifted", the convolutions of every ResNet block): a chunk of
 *   b samples is copied, zero-padded, into a buffer xp[C][b * plane]: rows of
 *   Wp values, one sample every `plane` = rowsPerSample * Wp values. Output
 *   position (oy, ox) of sample j is column q = j*plane + oy*Wp + ox of a wide
 *   output yp[O][b * plane], and kernel tap (ki, kj) reads column
 *   q + ki*Wp + kj of xp: the whole convolution is KH*KW matrix products
 *   yp += W_k[O, C] * xp[:, off_k : off_k + b*plane]  on shifted views, with
 *   no im2col matrix (KH*KW times less memory traffic). Neighbours share their
 *   zero padding where the smaller pad is at most the kernel size - 1: a
 *   row's left pad is also the previous row's right pad (Wp = W + max(PL, PR))
 *   and the zero rows between two samples are the bottom pad of one and the
 *   top pad of the next (see ShiftedChunk), which leaves fewer columns
 *   that are not output positions (a 3x3, pad-1 convolution on 8x8 images
 *   computes 81 columns per sample for 64 outputs instead of 100). Those
 *   columns are computed and dropped; in the backward pass the output
 *   gradient is zero there, so they contribute nothing to dW or dx. The weight
 *   and input gradients are the same shifted products, transposed.
 * - any stride (im2col): each sample unfolds into col[K, P] and one product
 *   per chunk does the rest.
 *
 * Which one runs a given shape (they and the Winograd kernels of
 * WinogradConvImpl_kernels.hpp) is decided by ConvAlgorithms.hpp.
 *
 * Parallelism: one OpenMP region over chunks of samples; each thread lays its
 * chunk out in private buffers (the padded copy, or the column matrix [K, b*P]
 * of b samples side by side, so that the product is wide enough to run near
 * the BLAS's peak) and calls the (single-threaded) BLAS. Weight/bias gradients are summed in per-thread
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

#include "aidge/incremental/backend/cpu/Threads.hpp"

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

/// Multiply-adds of the direct convolution (the work that decides threading).
inline long convMacs(const ConvShape &s)
{
    return static_cast<long>(s.N) * s.O * s.P() * s.K();
}

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
    thread_local std::vector<float> buffers[4];
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

/// y[N, O, HO, WO] = conv(x, w) + bias (bias may be null), through im2col.
inline void im2colConvForward(const ConvShape &s, const float *x, const float *w,
                            const float *bias, float *y)
{
    const int K = s.K(), P = s.P(), b = samplesPerChunk(s);
    const int chunks = (s.N + b - 1) / b;
    const std::size_t xStride = static_cast<std::size_t>(s.C) * s.H * s.W;
    const std::size_t yStride = static_cast<std::size_t>(s.O) * P;
#pragma omp parallel if (convMacs(s) >= kParallelMinMacs)
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

/// dx += conv^T(dy, w); dw += dy * col^T; db += sum(dy), through im2col.
inline void im2colConvBackward(const ConvShape &s, const float *x, const float *w,
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
#pragma omp parallel num_threads(nThreads) if (2 * convMacs(s) >= kParallelMinMacs)
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

// ------------------------------------------------------------ stride 1

/// Geometry of the shifted formulation for a chunk of `nb` samples.
struct ShiftedChunk {
    int Wp;                // row length
    int rowsPerSample;     // rows from one sample to the next
    std::size_t plane;     // rowsPerSample * Wp: values from one sample to the next
    std::size_t cols;      // nb * plane: columns of every product
    std::size_t ld;        // row length of xp / dxp: cols + the largest tap offset
    ShiftedChunk(const ConvShape &s, int nb)
    {
        // Neighbouring rows (samples) can share their zero padding when the
        // outputs of one never reach the next: at most KW-1 (KH-1) of the
        // smaller pad. Otherwise each row (sample) keeps its own.
        const bool shareCols = std::min(s.PL, s.PR) <= s.KW - 1;
        const bool shareRows = std::min(s.PT, s.PB) <= s.KH - 1;
        Wp = s.W + (shareCols ? std::max(s.PL, s.PR) : s.PL + s.PR);
        rowsPerSample = s.H + (shareRows ? std::max(s.PT, s.PB) : s.PT + s.PB);
        plane = static_cast<std::size_t>(rowsPerSample) * Wp;
        cols = static_cast<std::size_t>(nb) * plane;
        // the first sample's top pad, then the bottom pad and the reach of the
        // last taps past the last sample (all zero)
        ld = static_cast<std::size_t>(s.PT) * Wp + cols +
             static_cast<std::size_t>(s.KH + s.PB) * Wp + s.KW;
    }
    std::size_t offset(int tap, const ConvShape &s) const
    {
        return static_cast<std::size_t>(tap / s.KW) * Wp + tap % s.KW;
    }
};

inline bool shiftedApplies(const ConvShape &s) { return s.SH == 1 && s.SW == 1; }

/// Samples per chunk of the shifted formulation. Measured on a 2-core Zen 5
/// (benchmarks/bench_kernels.py): the products run fastest while a chunk's
/// padded input (C * b * plane floats) stays within about 64 KB, i.e. close to
/// the L1/L2 boundary; one sample per chunk for 3x3 convolutions on 16x16
/// images and up.
inline int shiftedSamplesPerChunk(const ConvShape &s)
{
    const long plane = static_cast<long>(ShiftedChunk(s, 1).plane);
    const long perSample = std::max(1L, plane * std::max(s.C, s.O));
    const long b = std::max(1L, (16L * 1024) / perSample);
    return static_cast<int>(std::min<long>(b, std::max(1, s.N)));
}

/// Weights as KH*KW matrices wk[tap][O][C] (tap = ki*KW + kj).
inline std::vector<float> tapMajorWeights(const ConvShape &s, const float *w)
{
    const int taps = s.KH * s.KW;
    std::vector<float> wk(static_cast<std::size_t>(taps) * s.O * s.C);
    for (int o = 0; o < s.O; ++o) {
        for (int c = 0; c < s.C; ++c) {
            const float *src = w + (static_cast<std::size_t>(o) * s.C + c) * taps;
            for (int t = 0; t < taps; ++t) {
                wk[(static_cast<std::size_t>(t) * s.O + o) * s.C + c] = src[t];
            }
        }
    }
    return wk;
}

/// xp[c][j*plane + (iy+PT)*Wp + ix+PL] = x[j][c][iy][ix]; zero elsewhere, tail included.
inline void padChunk(const ConvShape &s, const ShiftedChunk &g, const float *x, int nb, float *xp)
{
    const std::size_t xStride = static_cast<std::size_t>(s.C) * s.H * s.W;
    for (int c = 0; c < s.C; ++c) {
        float *row = xp + c * g.ld;
        std::memset(row, 0, sizeof(float) * g.ld);
        for (int j = 0; j < nb; ++j) {
            float *img = row + j * g.plane + static_cast<std::size_t>(s.PT) * g.Wp + s.PL;
            const float *src = x + j * xStride + static_cast<std::size_t>(c) * s.H * s.W;
            for (int iy = 0; iy < s.H; ++iy) {
                std::memcpy(img + static_cast<std::size_t>(iy) * g.Wp, src + static_cast<std::size_t>(iy) * s.W,
                            sizeof(float) * s.W);
            }
        }
    }
}

inline void shiftedConvForward(const ConvShape &s, const float *x, const float *w,
                               const float *bias, float *y)
{
    const int b = shiftedSamplesPerChunk(s), taps = s.KH * s.KW;
    const int chunks = (s.N + b - 1) / b;
    const std::size_t xStride = static_cast<std::size_t>(s.C) * s.H * s.W;
    const std::size_t yStride = static_cast<std::size_t>(s.O) * s.P();
    const std::vector<float> wk = tapMajorWeights(s, w);
    const ShiftedChunk full(s, b);
#pragma omp parallel if (convMacs(s) >= kParallelMinMacs)
    {
        float *xp = scratch(0, static_cast<std::size_t>(s.C) * full.ld);
        float *yp = scratch(1, static_cast<std::size_t>(s.O) * full.cols);
#pragma omp for schedule(static)
        for (int ch = 0; ch < chunks; ++ch) {
            const int n0 = ch * b, nb = std::min(b, s.N - n0);
            const ShiftedChunk g(s, nb);
            padChunk(s, g, x + n0 * xStride, nb, xp);
            const int cols = static_cast<int>(g.cols), ld = static_cast<int>(g.ld);
            for (int t = 0; t < taps; ++t) {
                sgemm(false, false, s.O, cols, s.C, 1.0f, wk.data() + static_cast<std::size_t>(t) * s.O * s.C,
                      s.C, xp + g.offset(t, s), ld, t == 0 ? 0.0f : 1.0f, yp, cols);
            }
            for (int j = 0; j < nb; ++j) {
                for (int o = 0; o < s.O; ++o) {
                    const float bo = bias != nullptr ? bias[o] : 0.0f;
                    const float *src = yp + o * g.cols + j * g.plane;
                    float *dst = y + (n0 + j) * yStride + static_cast<std::size_t>(o) * s.P();
                    for (int oy = 0; oy < s.HO; ++oy) {
                        for (int ox = 0; ox < s.WO; ++ox) {
                            dst[oy * s.WO + ox] = src[static_cast<std::size_t>(oy) * g.Wp + ox] + bo;
                        }
                    }
                }
            }
        }
    }
}

inline void shiftedConvBackward(const ConvShape &s, const float *x, const float *w,
                                const float *dy, float *dx, float *dw, float *db)
{
    const int b = shiftedSamplesPerChunk(s), taps = s.KH * s.KW;
    const int chunks = (s.N + b - 1) / b;
    const std::size_t xStride = static_cast<std::size_t>(s.C) * s.H * s.W;
    const std::size_t yStride = static_cast<std::size_t>(s.O) * s.P();
    const std::size_t wSize = static_cast<std::size_t>(taps) * s.O * s.C;
    const std::vector<float> wk = dx != nullptr ? tapMajorWeights(s, w) : std::vector<float>();
    const ShiftedChunk full(s, b);
    const int nThreads = omp_get_max_threads();
    std::vector<float> dwAll(dw != nullptr ? nThreads * wSize : 0, 0.0f); // [t][tap][O][C]
    std::vector<float> dbAll(db != nullptr ? static_cast<std::size_t>(nThreads) * s.O : 0, 0.0f);
    int used = 1;
#pragma omp parallel num_threads(nThreads) if (2 * convMacs(s) >= kParallelMinMacs)
    {
        const int t = omp_get_thread_num();
#pragma omp single
        used = omp_get_num_threads();
        float *xp = scratch(0, static_cast<std::size_t>(s.C) * full.ld);
        float *dyp = scratch(1, static_cast<std::size_t>(s.O) * full.cols);
        float *dxp = scratch(2, static_cast<std::size_t>(s.C) * full.ld);
        float *dwT = dw != nullptr ? dwAll.data() + t * wSize : nullptr;
        float *dbT = db != nullptr ? dbAll.data() + static_cast<std::size_t>(t) * s.O : nullptr;
#pragma omp for schedule(static)
        for (int ch = 0; ch < chunks; ++ch) {
            const int n0 = ch * b, nb = std::min(b, s.N - n0);
            const ShiftedChunk g(s, nb);
            const int cols = static_cast<int>(g.cols), ld = static_cast<int>(g.ld);
            // dy in the wide layout, zero on the columns that are not outputs
            std::memset(dyp, 0, sizeof(float) * s.O * g.cols);
            for (int j = 0; j < nb; ++j) {
                for (int o = 0; o < s.O; ++o) {
                    const float *src = dy + (n0 + j) * yStride + static_cast<std::size_t>(o) * s.P();
                    float *dst = dyp + o * g.cols + j * g.plane;
                    float acc = 0.0f;
                    for (int oy = 0; oy < s.HO; ++oy) {
                        for (int ox = 0; ox < s.WO; ++ox) {
                            const float v = src[oy * s.WO + ox];
                            dst[static_cast<std::size_t>(oy) * g.Wp + ox] = v;
                            acc += v;
                        }
                    }
                    if (db != nullptr) {
                        dbT[o] += acc;
                    }
                }
            }
            if (dw != nullptr) {
                padChunk(s, g, x + n0 * xStride, nb, xp);
                for (int k = 0; k < taps; ++k) {
                    sgemm(false, true, s.O, s.C, cols, 1.0f, dyp, cols, xp + g.offset(k, s), ld,
                          1.0f, dwT + static_cast<std::size_t>(k) * s.O * s.C, s.C);
                }
            }
            if (dx != nullptr) {
                std::memset(dxp, 0, sizeof(float) * s.C * g.ld);
                for (int k = 0; k < taps; ++k) {
                    sgemm(true, false, s.C, cols, s.O, 1.0f, wk.data() + static_cast<std::size_t>(k) * s.O * s.C,
                          s.C, dyp, cols, 1.0f, dxp + g.offset(k, s), ld);
                }
                for (int j = 0; j < nb; ++j) {
                    for (int c = 0; c < s.C; ++c) {
                        const float *src = dxp + c * g.ld + j * g.plane +
                                           static_cast<std::size_t>(s.PT) * g.Wp + s.PL;
                        float *dst = dx + (n0 + j) * xStride + static_cast<std::size_t>(c) * s.H * s.W;
                        for (int iy = 0; iy < s.H; ++iy) {
                            for (int ix = 0; ix < s.W; ++ix) {
                                dst[iy * s.W + ix] += src[static_cast<std::size_t>(iy) * g.Wp + ix];
                            }
                        }
                    }
                }
            }
        }
    }
    for (int t = 0; t < used; ++t) { // thread order: deterministic for a given thread count
        if (dw != nullptr) {
            const float *src = dwAll.data() + t * wSize;
            for (int k = 0; k < taps; ++k) {
                for (int o = 0; o < s.O; ++o) {
                    for (int c = 0; c < s.C; ++c) {
                        dw[(static_cast<std::size_t>(o) * s.C + c) * taps + k] +=
                            src[(static_cast<std::size_t>(k) * s.O + o) * s.C + c];
                    }
                }
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
