/**
 * Float32 3x3 stride-1 convolution by Winograd's minimal filtering
 * F(m x m, 3 x 3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
 * Networks", CVPR 2016), m = 2 or 4, forward and backward. Backward
 * ACCUMULATES (+=) into dx, dw, db, as Aidge's kernels do.
 *
 * The output is cut into m x m tiles; tile t of channel c reads an a x a
 * (a = m + 2) window d of the zero-padded input. With the transforms of the
 * paper (B^T, G, A^T below), for every filter g[o][c]:
 *     U = G g G^T,   V = B^T d B,   Y = A^T (sum_c U[o][c] .* V[c]) A,
 * so the a*a positions xi of the transformed domain are a*a independent
 * matrix products M_xi[T, O] = V_xi[T, C] * U_xi[O, C]^T over the T tiles of a
 * chunk of samples: the products go to the BLAS, the transforms are ours.
 * Multiplications per output: 9 C O for the direct convolution, a^2/m^2 C O
 * with Winograd (4 for m = 2, 2.25 for m = 4).
 *
 * Backward is the exact adjoint of that forward (what the forward computes is
 * a linear map of x and of w): with dM = A dY A^T,
 *     dU_xi = dM_xi^T V_xi        ->  dg = G^T dU G          (weight gradient)
 *     dV_xi = dM_xi U_xi          ->  dd = B dV B^T, added over the
 *                                     overlapping windows        (input gradient)
 *
 * The transforms are in WinogradTransforms.cpp (vectorised, one clone per
 * instruction set), the drivers here.
 *
 * Precision: the transforms add rounding that grows with m (the points of
 * F(4x4, 3x3) are 0, +-1, +-2, inf): tests/backend/test_conv_algorithms.py
 * measures both against float64 convolutions.
 *
 * Layout: the products are V_xi[T, C] and M_xi[T, O] (a tile's channels
 * contiguous); each sample's padded input is stored by column phase with the
 * channels innermost (WinogradTransforms.cpp), so that the transforms run over
 * the tiles and channels of a tile row as SIMD lanes.
 *
 * Parallelism: as the other kernels, one OpenMP region over chunks of samples
 * (static schedule), each thread with private buffers and the single-threaded
 * BLAS; weight gradients summed per thread, added in thread order.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_WINOGRADCONVIMPL_KERNELS_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_WINOGRADCONVIMPL_KERNELS_H_

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include <omp.h>

#include "aidge/incremental/backend/cpu/Blas.hpp"
#include "aidge/incremental/backend/cpu/operator/FastConvImpl_kernels.hpp"

namespace Aidge {
namespace incremental {

/// Whether the Winograd kernels apply: 3x3 filters, stride 1.
inline bool winogradApplies(const ConvShape &s)
{
    return s.KH == 3 && s.KW == 3 && s.SH == 1 && s.SW == 1;
}

/// Tiling of a shape for F(m x m, 3 x 3), m = 2 or 4.
struct WinogradTiling {
    int m, a;            // output tile size, window size (m + 2)
    int tilesH, tilesW;  // tiles per sample, down and across
    int rows;            // rows of a padded plane: tilesH * m + 2
    int phaseLen;        // values per column phase of a padded row: tilesW + 1
    int tiles;           // tiles per sample
    WinogradTiling(const ConvShape &s, int m_)
        : m(m_), a(m_ + 2), tilesH((s.HO + m_ - 1) / m_), tilesW((s.WO + m_ - 1) / m_), rows(tilesH * m_ + 2),
          phaseLen(tilesW + 1), tiles(tilesH * tilesW)
    {
    }
    /// Floats of the `work` buffer of the sample transforms: a padded sample
    /// and the lanes of a tile row.
    std::size_t workSize(const ConvShape &s) const
    {
        const std::size_t channels = static_cast<std::size_t>(std::max(s.C, s.O));
        return channels * (static_cast<std::size_t>(rows) * m * phaseLen + static_cast<std::size_t>(a) * (a + 1) * tilesW);
    }
    /// Samples per chunk: the transformed input and output of a chunk
    /// (a*a * (C + O) * tiles floats) within about 1 MB (the L2 cache).
    int samplesPerChunk(const ConvShape &s) const
    {
        const long perSample = static_cast<long>(a) * a * (s.C + s.O) * tiles * 4;
        const long b = std::max(1L, (1L << 20) / std::max(1L, perSample));
        return static_cast<int>(std::min<long>(b, std::max(1, s.N)));
    }
};

// The transforms of one sample, in WinogradTransforms.cpp (vectorised over
// the tiles and channels of a tile row, one clone per instruction set). The
// products' layout: V[xi][tile][C] and Mt[xi][tile][O]; `V`/`Mt` point to the
// sample's first tile at xi = 0, position xi is xi * xiStride floats further.
// `work`: WinogradTiling::workSize() floats.

/// V = B^T d B of every tile of every channel of x[C][H][W] (zero-padded by s's pads).
void winogradInputSample(const ConvShape &s, const WinogradTiling &g, const float *x, float *V,
                         std::size_t xiStride, float *work);
/// dx[C][H][W] += the adjoint of winogradInputSample applied to dV.
void winogradInputSampleAdjoint(const ConvShape &s, const WinogradTiling &g, const float *dV,
                                std::size_t xiStride, float *dx, float *work);
/// y[O][HO][WO] = A^T Mt A of every tile, + bias (may be null).
void winogradOutputSample(const ConvShape &s, const WinogradTiling &g, const float *Mt, std::size_t xiStride,
                          const float *bias, float *y, float *work);
/// dMt = A dY A^T of every tile of dy[O][HO][WO] (zero beyond the output);
/// dbias[O] += the sums of dy (dbias may be null).
void winogradOutputSampleAdjoint(const ConvShape &s, const WinogradTiling &g, const float *dy, float *dMt,
                                 std::size_t xiStride, float *dbias, float *work);

/// U = G g G^T of a 3x3 filter g (row-major), as a*a values; m = 2 or 4.
void winogradFilter(int m, const float *g, float *u);
/// g[3x3] += G^T dU G (the adjoint of winogradFilter).
void winogradFilterAdjoint(int m, const float *du, float *g);

/// U[xi][O][C] = G g G^T of every filter w[O][C][3][3].
inline std::vector<float> winogradFilters(int m, const ConvShape &s, const float *w)
{
    const int a2 = (m + 2) * (m + 2);
    const std::size_t OC = static_cast<std::size_t>(s.O) * s.C;
    std::vector<float> U(a2 * OC);
    for (std::size_t oc = 0; oc < OC; ++oc) {
        float u[36];
        winogradFilter(m, w + oc * 9, u);
        for (int xi = 0; xi < a2; ++xi) {
            U[xi * OC + oc] = u[xi];
        }
    }
    return U;
}

/// dw[O][C][3][3] += G^T dU G from dU[xi][O][C].
inline void winogradFiltersAdjoint(int m, const ConvShape &s, const float *dU, float *dw)
{
    const int a2 = (m + 2) * (m + 2);
    const std::size_t OC = static_cast<std::size_t>(s.O) * s.C;
    for (std::size_t oc = 0; oc < OC; ++oc) {
        float u[36];
        for (int xi = 0; xi < a2; ++xi) {
            u[xi] = dU[xi * OC + oc];
        }
        winogradFilterAdjoint(m, u, dw + oc * 9);
    }
}

/// y[N, O, HO, WO] = conv(x, w) + bias (bias may be null), F(m x m, 3 x 3);
/// winogradApplies(s).
inline void winogradConvForward(int m, const ConvShape &s, const float *x, const float *w, const float *bias,
                                float *y)
{
    const int a2 = (m + 2) * (m + 2);
    const WinogradTiling g(s, m);
    const int b = g.samplesPerChunk(s);
    const int chunks = (s.N + b - 1) / b;
    const std::size_t xStride = static_cast<std::size_t>(s.C) * s.H * s.W;
    const std::size_t yStride = static_cast<std::size_t>(s.O) * s.HO * s.WO;
    const std::vector<float> U = winogradFilters(m, s, w);
    const std::size_t Tmax = static_cast<std::size_t>(b) * g.tiles;
#pragma omp parallel if (convMacs(s) >= kParallelMinMacs)
    {
        float *V = scratch(0, a2 * s.C * Tmax);
        float *Mt = scratch(1, a2 * s.O * Tmax);
        float *work = scratch(2, g.workSize(s));
#pragma omp for schedule(static)
        for (int ch = 0; ch < chunks; ++ch) {
            const int n0 = ch * b, nb = std::min(b, s.N - n0);
            const std::size_t T = static_cast<std::size_t>(nb) * g.tiles;
            const int Ti = static_cast<int>(T);
            for (int j = 0; j < nb; ++j) {
                winogradInputSample(s, g, x + (n0 + j) * xStride, V + j * g.tiles * s.C, T * s.C, work);
            }
            for (int xi = 0; xi < a2; ++xi) { // Mt[T][O] = V[T][C] U^T
                sgemm(false, true, Ti, s.O, s.C, 1.0f, V + xi * T * s.C, s.C, U.data() + xi * s.O * s.C, s.C,
                      0.0f, Mt + xi * T * s.O, s.O);
            }
            for (int j = 0; j < nb; ++j) {
                winogradOutputSample(s, g, Mt + j * g.tiles * s.O, T * s.O, bias, y + (n0 + j) * yStride, work);
            }
        }
    }
}

/// dx += conv^T(dy, w); dw += conv(x, dy); db += sum(dy), F(m x m, 3 x 3).
/// Any of dx, dw, db may be null.
inline void winogradConvBackward(int m, const ConvShape &s, const float *x, const float *w, const float *dy,
                                 float *dx, float *dw, float *db)
{
    const int a2 = (m + 2) * (m + 2);
    const WinogradTiling g(s, m);
    const int b = g.samplesPerChunk(s);
    const int chunks = (s.N + b - 1) / b;
    const std::size_t xStride = static_cast<std::size_t>(s.C) * s.H * s.W;
    const std::size_t yStride = static_cast<std::size_t>(s.O) * s.HO * s.WO;
    const std::size_t uSize = static_cast<std::size_t>(a2) * s.O * s.C;
    const std::vector<float> U = dx != nullptr ? winogradFilters(m, s, w) : std::vector<float>();
    const std::size_t Tmax = static_cast<std::size_t>(b) * g.tiles;
    const int nThreads = omp_get_max_threads();
    std::vector<float> dUAll(dw != nullptr ? nThreads * uSize : 0, 0.0f);
    std::vector<float> dbAll(db != nullptr ? static_cast<std::size_t>(nThreads) * s.O : 0, 0.0f);
    int used = 1;
#pragma omp parallel num_threads(nThreads) if (2 * convMacs(s) >= kParallelMinMacs)
    {
        const int t = omp_get_thread_num();
#pragma omp single
        used = omp_get_num_threads();
        float *V = scratch(0, a2 * s.C * Tmax); // input transform, then the input gradient's dV
        float *dMt = scratch(1, a2 * s.O * Tmax);
        float *work = scratch(2, g.workSize(s));
        float *dU = dw != nullptr ? dUAll.data() + t * uSize : nullptr;
        float *dbT = db != nullptr ? dbAll.data() + static_cast<std::size_t>(t) * s.O : nullptr;
#pragma omp for schedule(static)
        for (int ch = 0; ch < chunks; ++ch) {
            const int n0 = ch * b, nb = std::min(b, s.N - n0);
            const std::size_t T = static_cast<std::size_t>(nb) * g.tiles;
            const int Ti = static_cast<int>(T);
            for (int j = 0; j < nb; ++j) {
                winogradOutputSampleAdjoint(s, g, dy + (n0 + j) * yStride, dMt + j * g.tiles * s.O, T * s.O, dbT,
                                            work);
            }
            if (dw != nullptr) {
                for (int j = 0; j < nb; ++j) {
                    winogradInputSample(s, g, x + (n0 + j) * xStride, V + j * g.tiles * s.C, T * s.C, work);
                }
                for (int xi = 0; xi < a2; ++xi) { // dU[O][C] += dMt[T][O]^T V[T][C]
                    sgemm(true, false, s.O, s.C, Ti, 1.0f, dMt + xi * T * s.O, s.O, V + xi * T * s.C, s.C, 1.0f,
                          dU + xi * s.O * s.C, s.C);
                }
            }
            if (dx != nullptr) {
                for (int xi = 0; xi < a2; ++xi) { // dV[T][C] = dMt[T][O] U[O][C]
                    sgemm(false, false, Ti, s.C, s.O, 1.0f, dMt + xi * T * s.O, s.O, U.data() + xi * s.O * s.C, s.C,
                          0.0f, V + xi * T * s.C, s.C);
                }
                for (int j = 0; j < nb; ++j) {
                    winogradInputSampleAdjoint(s, g, V + j * g.tiles * s.C, T * s.C, dx + (n0 + j) * xStride, work);
                }
            }
        }
    }
    if (dw != nullptr) {
        std::vector<float> dUsum(uSize, 0.0f);
        for (int t = 0; t < used; ++t) { // thread order: deterministic for a given thread count
            const float *src = dUAll.data() + t * uSize;
            for (std::size_t i = 0; i < uSize; ++i) {
                dUsum[i] += src[i];
            }
        }
        winogradFiltersAdjoint(m, s, dUsum.data(), dw);
    }
    if (db != nullptr) {
        for (int t = 0; t < used; ++t) {
            const float *src = dbAll.data() + static_cast<std::size_t>(t) * s.O;
            for (int o = 0; o < s.O; ++o) {
                db[o] += src[o];
            }
        }
    }
}

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_WINOGRADCONVIMPL_KERNELS_H_
