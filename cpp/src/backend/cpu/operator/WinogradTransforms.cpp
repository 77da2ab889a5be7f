// The transforms of the Winograd convolution (WinogradConvImpl_kernels.hpp),
// one sample at a time, vectorised over the tiles and channels of a tile row.
// The four entry points are compiled for x86-64-v4 (AVX-512), x86-64-v3
// (AVX2+FMA) and the baseline, and the loader picks the clone the CPU runs
// (GCC target_clones: non-static and noinline under the -flto the Aidge
// wheels build with; "arch=haswell" clones are chosen by CPU model, never on
// AMD, where the "x86-64-vN" ones are chosen by features).

#include "aidge/incremental/backend/cpu/operator/WinogradConvImpl_kernels.hpp"

#include <algorithm>
#include <cstddef>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define AIDGE_INCREMENTAL_SIMD_CLONES __attribute__((noinline, target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define AIDGE_INCREMENTAL_SIMD_CLONES
#endif
// The helpers below are inlined into each clone, so that they are compiled for its instruction set.
#define AIDGE_INCREMENTAL_INLINE inline __attribute__((always_inline))

namespace Aidge {
namespace incremental {

namespace {

// 1-D transforms over n lanes (one lane per tile of a tile row): in[i] and
// out[j] point to n floats each. 2-D transforms apply them along the rows,
// then down the columns of the tiles (the reverse for the adjoints).

template <int M> struct Winograd;

/// F(2x2, 3x3): points 0, 1, -1, inf.
template <> struct Winograd<2> {
    static constexpr int m = 2, a = 4;
    /// v = B^T d
    static AIDGE_INCREMENTAL_INLINE void input(const float *const *d, float *const *v, int n)
    {
        const float *d0 = d[0], *d1 = d[1], *d2 = d[2], *d3 = d[3];
        float *v0 = v[0], *v1 = v[1], *v2 = v[2], *v3 = v[3];
#pragma omp simd
        for (int i = 0; i < n; ++i) {
            v0[i] = d0[i] - d2[i];
            v1[i] = d1[i] + d2[i];
            v2[i] = d2[i] - d1[i];
            v3[i] = d1[i] - d3[i];
        }
    }
    /// d = B v (adjoint of input)
    static AIDGE_INCREMENTAL_INLINE void inputAdjoint(const float *const *v, float *const *d, int n)
    {
        const float *v0 = v[0], *v1 = v[1], *v2 = v[2], *v3 = v[3];
        float *d0 = d[0], *d1 = d[1], *d2 = d[2], *d3 = d[3];
#pragma omp simd
        for (int i = 0; i < n; ++i) {
            d0[i] = v0[i];
            d1[i] = v1[i] - v2[i] + v3[i];
            d2[i] = v1[i] + v2[i] - v0[i];
            d3[i] = -v3[i];
        }
    }
    /// y = A^T mm
    static AIDGE_INCREMENTAL_INLINE void output(const float *const *mm, float *const *y, int n)
    {
        const float *m0 = mm[0], *m1 = mm[1], *m2 = mm[2], *m3 = mm[3];
        float *y0 = y[0], *y1 = y[1];
#pragma omp simd
        for (int i = 0; i < n; ++i) {
            y0[i] = m0[i] + m1[i] + m2[i];
            y1[i] = m1[i] - m2[i] - m3[i];
        }
    }
    /// mm = A y (adjoint of output)
    static AIDGE_INCREMENTAL_INLINE void outputAdjoint(const float *const *y, float *const *mm, int n)
    {
        const float *y0 = y[0], *y1 = y[1];
        float *m0 = mm[0], *m1 = mm[1], *m2 = mm[2], *m3 = mm[3];
#pragma omp simd
        for (int i = 0; i < n; ++i) {
            m0[i] = y0[i];
            m1[i] = y0[i] + y1[i];
            m2[i] = y0[i] - y1[i];
            m3[i] = -y1[i];
        }
    }
    /// u = G g (one filter column or row)
    static AIDGE_INCREMENTAL_INLINE void filter(const float *g, int gs, float *u, int us)
    {
        u[0] = g[0];
        u[us] = 0.5f * (g[0] + g[gs] + g[2 * gs]);
        u[2 * us] = 0.5f * (g[0] - g[gs] + g[2 * gs]);
        u[3 * us] = g[2 * gs];
    }
    /// g = G^T u (adjoint of filter)
    static AIDGE_INCREMENTAL_INLINE void filterAdjoint(const float *u, int us, float *g, int gs)
    {
        g[0] = u[0] + 0.5f * (u[us] + u[2 * us]);
        g[gs] = 0.5f * (u[us] - u[2 * us]);
        g[2 * gs] = 0.5f * (u[us] + u[2 * us]) + u[3 * us];
    }
};

/// F(4x4, 3x3): points 0, 1, -1, 2, -2, inf (Lavin & Gray 2016, Sec. 4.2).
template <> struct Winograd<4> {
    static constexpr int m = 4, a = 6;
    static AIDGE_INCREMENTAL_INLINE void input(const float *const *d, float *const *v, int n)
    {
        const float *d0 = d[0], *d1 = d[1], *d2 = d[2], *d3 = d[3], *d4 = d[4], *d5 = d[5];
        float *v0 = v[0], *v1 = v[1], *v2 = v[2], *v3 = v[3], *v4 = v[4], *v5 = v[5];
#pragma omp simd
        for (int i = 0; i < n; ++i) {
            const float a1 = d4[i] - 4.0f * d2[i], a2 = d3[i] - 4.0f * d1[i];
            const float b1 = d4[i] - d2[i], b2 = 2.0f * (d3[i] - d1[i]);
            v0[i] = 4.0f * d0[i] - 5.0f * d2[i] + d4[i];
            v1[i] = a1 + a2;
            v2[i] = a1 - a2;
            v3[i] = b1 + b2;
            v4[i] = b1 - b2;
            v5[i] = 4.0f * d1[i] - 5.0f * d3[i] + d5[i];
        }
    }
    static AIDGE_INCREMENTAL_INLINE void inputAdjoint(const float *const *v, float *const *d, int n)
    {
        const float *v0 = v[0], *v1 = v[1], *v2 = v[2], *v3 = v[3], *v4 = v[4], *v5 = v[5];
        float *d0 = d[0], *d1 = d[1], *d2 = d[2], *d3 = d[3], *d4 = d[4], *d5 = d[5];
#pragma omp simd
        for (int i = 0; i < n; ++i) {
            d0[i] = 4.0f * v0[i];
            d1[i] = 4.0f * (v2[i] - v1[i] + v5[i]) + 2.0f * (v4[i] - v3[i]);
            d2[i] = -5.0f * v0[i] - 4.0f * (v1[i] + v2[i]) - v3[i] - v4[i];
            d3[i] = v1[i] - v2[i] + 2.0f * (v3[i] - v4[i]) - 5.0f * v5[i];
            d4[i] = v0[i] + v1[i] + v2[i] + v3[i] + v4[i];
            d5[i] = v5[i];
        }
    }
    static AIDGE_INCREMENTAL_INLINE void output(const float *const *mm, float *const *y, int n)
    {
        const float *m0 = mm[0], *m1 = mm[1], *m2 = mm[2], *m3 = mm[3], *m4 = mm[4], *m5 = mm[5];
        float *y0 = y[0], *y1 = y[1], *y2 = y[2], *y3 = y[3];
#pragma omp simd
        for (int i = 0; i < n; ++i) {
            const float s12 = m1[i] + m2[i], d12 = m1[i] - m2[i];
            const float s34 = m3[i] + m4[i], d34 = m3[i] - m4[i];
            y0[i] = m0[i] + s12 + s34;
            y1[i] = d12 + 2.0f * d34;
            y2[i] = s12 + 4.0f * s34;
            y3[i] = d12 + 8.0f * d34 + m5[i];
        }
    }
    static AIDGE_INCREMENTAL_INLINE void outputAdjoint(const float *const *y, float *const *mm, int n)
    {
        const float *y0 = y[0], *y1 = y[1], *y2 = y[2], *y3 = y[3];
        float *m0 = mm[0], *m1 = mm[1], *m2 = mm[2], *m3 = mm[3], *m4 = mm[4], *m5 = mm[5];
#pragma omp simd
        for (int i = 0; i < n; ++i) {
            const float e = y0[i] + y2[i], o = y1[i] + y3[i];
            const float e4 = y0[i] + 4.0f * y2[i], o8 = 2.0f * y1[i] + 8.0f * y3[i];
            m0[i] = y0[i];
            m1[i] = e + o;
            m2[i] = e - o;
            m3[i] = e4 + o8;
            m4[i] = e4 - o8;
            m5[i] = y3[i];
        }
    }
    static AIDGE_INCREMENTAL_INLINE void filter(const float *g, int gs, float *u, int us)
    {
        const float g0 = g[0], g1 = g[gs], g2 = g[2 * gs];
        u[0] = g0 / 4.0f;
        u[us] = -(g0 + g1 + g2) / 6.0f;
        u[2 * us] = -(g0 - g1 + g2) / 6.0f;
        u[3 * us] = g0 / 24.0f + g1 / 12.0f + g2 / 6.0f;
        u[4 * us] = g0 / 24.0f - g1 / 12.0f + g2 / 6.0f;
        u[5 * us] = g2;
    }
    static AIDGE_INCREMENTAL_INLINE void filterAdjoint(const float *u, int us, float *g, int gs)
    {
        const float u0 = u[0], u1 = u[us], u2 = u[2 * us], u3 = u[3 * us], u4 = u[4 * us], u5 = u[5 * us];
        g[0] = u0 / 4.0f - (u1 + u2) / 6.0f + (u3 + u4) / 24.0f;
        g[gs] = (u2 - u1) / 6.0f + (u3 - u4) / 12.0f;
        g[2 * gs] = (u3 + u4 - u1 - u2) / 6.0f + u5;
    }
};


// -------------------------------------------------------------- one sample
//
// A sample's zero-padded input is laid out as P[y][p][u][c] = padded x[c][y][u*M + p]
// (rows y, column phase p, column slot u, channel c innermost). For tile row
// ty, window row i and window column k, the values of every tile tx and
// channel c are then ONE contiguous run of tilesW * C floats, starting at
// P[ty*M + i][k % M][k / M][0], in the order (tx, c): the 1-D transforms run
// over those runs as SIMD lanes, and their results land contiguously in the
// products' layout V[xi][tile][c]. The outputs use the same layout with O.

/// Floats of one row of P: M phases of U slots of `channels` values.
inline std::size_t phaseRow(int M, int U, int channels)
{
    return static_cast<std::size_t>(M) * U * channels;
}

/// The slots u whose M columns u*M .. u*M + M-1 all hold input columns
/// (X - PL in [0, W)): [lo, hi). Columns outside them are the zero padding or
/// the edge slots, handled one by one.
struct InteriorSlots {
    int lo, hi;
    InteriorSlots(int M, int W, int PL, int U)
    {
        lo = std::min(U, (PL + M - 1) / M);
        hi = std::max(lo, std::min(U, (PL + W) / M));
    }
};

/// row[p][u][c] = src[u*M + p - PL] (one channel c of one input row, into the
/// phase layout; stride between phases `phaseLen`, between slots `C`).
template <int M>
AIDGE_INCREMENTAL_INLINE void rowToPhases(const float *src, int W, int PL, int U, std::size_t phaseLen, int C,
                                          float *row)
{
    const InteriorSlots in(M, W, PL, U);
    for (int X = PL; X < std::min(PL + W, in.lo * M); ++X) {
        row[(X % M) * phaseLen + (X / M) * C] = src[X - PL];
    }
    for (int u = in.lo; u < in.hi; ++u) {
        const float *q = src + (u * M - PL);
        float *d = row + static_cast<std::size_t>(u) * C;
        for (int p = 0; p < M; ++p) {
            d[p * phaseLen] = q[p];
        }
    }
    for (int X = std::max(PL, in.hi * M); X < std::min(PL + W, M * U); ++X) {
        row[(X % M) * phaseLen + (X / M) * C] = src[X - PL];
    }
}

/// dst[ix] += row[p][u][c] for X = ix + PL = u*M + p (adjoint of rowToPhases).
template <int M>
AIDGE_INCREMENTAL_INLINE void rowFromPhasesAdd(const float *row, int W, int PL, int U, std::size_t phaseLen, int C,
                                               float *dst)
{
    const InteriorSlots in(M, W, PL, U);
    for (int X = PL; X < std::min(PL + W, in.lo * M); ++X) {
        dst[X - PL] += row[(X % M) * phaseLen + (X / M) * C];
    }
    for (int u = in.lo; u < in.hi; ++u) {
        float *q = dst + (u * M - PL);
        const float *d = row + static_cast<std::size_t>(u) * C;
        for (int p = 0; p < M; ++p) {
            q[p] += d[p * phaseLen];
        }
    }
    for (int X = std::max(PL, in.hi * M); X < std::min(PL + W, M * U); ++X) {
        dst[X - PL] += row[(X % M) * phaseLen + (X / M) * C];
    }
}

template <int M>
AIDGE_INCREMENTAL_INLINE void inputSample(const ConvShape &s, const WinogradTiling &g, const float *x, float *V,
                                          std::size_t xiStride, float *work)
{
    constexpr int a = M + 2;
    const int U = g.phaseLen, C = s.C, nL = g.tilesW * C;
    const std::size_t rowLen = phaseRow(M, U, C), phaseLen = static_cast<std::size_t>(U) * C;
    float *P = work, *h = work + g.rows * rowLen;
    std::fill(P, P + g.rows * rowLen, 0.0f);
    // row by row, every channel: a row of P (M * U * C floats) stays in the L1 cache
    for (int iy = 0; iy < s.H && iy + s.PT < g.rows; ++iy) {
        for (int c = 0; c < C; ++c) {
            rowToPhases<M>(x + (static_cast<std::size_t>(c) * s.H + iy) * s.W, s.W, s.PL, U, phaseLen, C,
                           P + static_cast<std::size_t>(iy + s.PT) * rowLen + c);
        }
    }
    const float *in[a];
    float *out[a];
    for (int ty = 0; ty < g.tilesH; ++ty) {
        for (int i = 0; i < a; ++i) { // along each window row: h[i][l] = sum_k B^T[l][k] d[i][k]
            const float *row = P + static_cast<std::size_t>(ty * M + i) * rowLen;
            for (int k = 0; k < a; ++k) {
                in[k] = row + (k % M) * phaseLen + (k / M) * C;
            }
            for (int l = 0; l < a; ++l) {
                out[l] = h + static_cast<std::size_t>(i * a + l) * nL;
            }
            Winograd<M>::input(in, out, nL);
        }
        float *Vt = V + static_cast<std::size_t>(ty) * nL;
        for (int l = 0; l < a; ++l) { // down each window column: V[r][l] = sum_i B^T[r][i] h[i][l]
            for (int i = 0; i < a; ++i) {
                in[i] = h + static_cast<std::size_t>(i * a + l) * nL;
            }
            for (int r = 0; r < a; ++r) {
                out[r] = Vt + static_cast<std::size_t>(r * a + l) * xiStride;
            }
            Winograd<M>::input(in, out, nL);
        }
    }
}

template <int M>
AIDGE_INCREMENTAL_INLINE void inputSampleAdjoint(const ConvShape &s, const WinogradTiling &g, const float *dV,
                                                 std::size_t xiStride, float *dx, float *work)
{
    constexpr int a = M + 2;
    const int U = g.phaseLen, C = s.C, nL = g.tilesW * C;
    const std::size_t rowLen = phaseRow(M, U, C), phaseLen = static_cast<std::size_t>(U) * C;
    float *P = work, *h = work + g.rows * rowLen;
    float *dd = h + static_cast<std::size_t>(a) * a * nL; // a runs of nL lanes
    std::fill(P, P + g.rows * rowLen, 0.0f);
    const float *in[a];
    float *out[a];
    for (int ty = 0; ty < g.tilesH; ++ty) {
        const float *dVt = dV + static_cast<std::size_t>(ty) * nL;
        for (int l = 0; l < a; ++l) { // dh[i][l] = sum_r B^T[r][i] dV[r][l]
            for (int r = 0; r < a; ++r) {
                in[r] = dVt + static_cast<std::size_t>(r * a + l) * xiStride;
            }
            for (int i = 0; i < a; ++i) {
                out[i] = h + static_cast<std::size_t>(i * a + l) * nL;
            }
            Winograd<M>::inputAdjoint(in, out, nL);
        }
        for (int i = 0; i < a; ++i) { // dd[i][k] = sum_l B^T[l][k] dh[i][l], added over the windows
            for (int l = 0; l < a; ++l) {
                in[l] = h + static_cast<std::size_t>(i * a + l) * nL;
            }
            for (int k = 0; k < a; ++k) {
                out[k] = dd + static_cast<std::size_t>(k) * nL;
            }
            Winograd<M>::inputAdjoint(in, out, nL);
            float *row = P + static_cast<std::size_t>(ty * M + i) * rowLen;
            for (int k = 0; k < a; ++k) {
                float *dst = row + (k % M) * phaseLen + (k / M) * C;
                const float *src = dd + static_cast<std::size_t>(k) * nL;
#pragma omp simd
                for (int L = 0; L < nL; ++L) {
                    dst[L] += src[L];
                }
            }
        }
    }
    for (int iy = 0; iy < s.H && iy + s.PT < g.rows; ++iy) {
        for (int c = 0; c < C; ++c) {
            rowFromPhasesAdd<M>(P + static_cast<std::size_t>(iy + s.PT) * rowLen + c, s.W, s.PL, U, phaseLen, C,
                                dx + (static_cast<std::size_t>(c) * s.H + iy) * s.W);
        }
    }
}

template <int M>
AIDGE_INCREMENTAL_INLINE void outputSample(const ConvShape &s, const WinogradTiling &g, const float *Mt,
                                           std::size_t xiStride, const float *bias, float *y, float *work)
{
    constexpr int a = M + 2;
    const int O = s.O, n = g.tilesW, nL = n * O;
    const std::size_t plane = static_cast<std::size_t>(s.HO) * s.WO;
    float *z = work;                                           // z[j][l]: M * a runs of nL lanes
    float *yph = work + static_cast<std::size_t>(M) * a * nL;  // yph[p]: M runs of nL lanes, (tx, o)
    const float *in[a];
    float *out[a];
    for (int ty = 0; ty < g.tilesH; ++ty) {
        const float *Mtt = Mt + static_cast<std::size_t>(ty) * nL;
        for (int l = 0; l < a; ++l) { // z[j][l] = sum_r A^T[j][r] Mt[r][l]
            for (int r = 0; r < a; ++r) {
                in[r] = Mtt + static_cast<std::size_t>(r * a + l) * xiStride;
            }
            for (int j = 0; j < M; ++j) {
                out[j] = z + static_cast<std::size_t>(j * a + l) * nL;
            }
            Winograd<M>::output(in, out, nL);
        }
        for (int j = 0; j < M; ++j) { // Y[j][p] = sum_l z[j][l] A^T[p][l]
            const int oy = ty * M + j;
            if (oy >= s.HO) {
                break;
            }
            for (int l = 0; l < a; ++l) {
                in[l] = z + static_cast<std::size_t>(j * a + l) * nL;
            }
            for (int p = 0; p < M; ++p) {
                out[p] = yph + static_cast<std::size_t>(p) * nL;
            }
            Winograd<M>::output(in, out, nL);
            const int full = s.WO / M; // whole tiles across
            for (int o = 0; o < O; ++o) {
                float *dst = y + o * plane + static_cast<std::size_t>(oy) * s.WO;
                const float b = bias != nullptr ? bias[o] : 0.0f;
                const float *src = yph + o;
                for (int tx = 0; tx < full; ++tx) {
                    for (int p = 0; p < M; ++p) {
                        dst[tx * M + p] = src[p * nL + tx * O] + b;
                    }
                }
                for (int ox = full * M; ox < s.WO; ++ox) {
                    dst[ox] = src[(ox % M) * nL + (ox / M) * O] + b;
                }
            }
        }
    }
}

template <int M>
AIDGE_INCREMENTAL_INLINE void outputSampleAdjoint(const ConvShape &s, const WinogradTiling &g, const float *dy,
                                                  float *dMt, std::size_t xiStride, float *dbias, float *work)
{
    constexpr int a = M + 2;
    const int O = s.O, n = g.tilesW, nL = n * O;
    const std::size_t plane = static_cast<std::size_t>(s.HO) * s.WO;
    float *z = work;                                           // dz[j][l]: M * a runs of nL lanes
    float *yph = work + static_cast<std::size_t>(M) * a * nL;  // a dy row, yph[p][(tx, o)]
    const float *in[a];
    float *out[a];
    for (int ty = 0; ty < g.tilesH; ++ty) {
        for (int j = 0; j < M; ++j) { // dz[j][l] = sum_p A^T[p][l] dY[j][p]
            const int oy = ty * M + j;
            std::fill(yph, yph + static_cast<std::size_t>(M) * nL, 0.0f);
            if (oy < s.HO) {
                const int full = s.WO / M;
                for (int o = 0; o < O; ++o) {
                    const float *src = dy + o * plane + static_cast<std::size_t>(oy) * s.WO;
                    float *dst = yph + o;
                    for (int tx = 0; tx < full; ++tx) {
                        for (int p = 0; p < M; ++p) {
                            dst[p * nL + tx * O] = src[tx * M + p];
                        }
                    }
                    for (int ox = full * M; ox < s.WO; ++ox) {
                        dst[(ox % M) * nL + (ox / M) * O] = src[ox];
                    }
                    if (dbias != nullptr) {
                        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
                        for (int ox = 0; ox < s.WO; ++ox) {
                            sum += src[ox];
                        }
                        dbias[o] += sum;
                    }
                }
            }
            for (int p = 0; p < M; ++p) {
                in[p] = yph + static_cast<std::size_t>(p) * nL;
            }
            for (int l = 0; l < a; ++l) {
                out[l] = z + static_cast<std::size_t>(j * a + l) * nL;
            }
            Winograd<M>::outputAdjoint(in, out, nL);
        }
        float *dMtt = dMt + static_cast<std::size_t>(ty) * nL;
        for (int l = 0; l < a; ++l) { // dMt[r][l] = sum_j A^T[j][r] dz[j][l]
            for (int j = 0; j < M; ++j) {
                in[j] = z + static_cast<std::size_t>(j * a + l) * nL;
            }
            for (int r = 0; r < a; ++r) {
                out[r] = dMtt + static_cast<std::size_t>(r * a + l) * xiStride;
            }
            Winograd<M>::outputAdjoint(in, out, nL);
        }
    }
}

template <int M>
AIDGE_INCREMENTAL_INLINE void filter(const float *g, float *u)
{
    constexpr int a = M + 2;
    float t[a * 3];
    for (int kj = 0; kj < 3; ++kj) { // columns: t[:, kj] = G g[:, kj]
        Winograd<M>::filter(g + kj, 3, t + kj, 3);
    }
    for (int r = 0; r < a; ++r) { // rows: u[r, :] = G t[r, :]
        Winograd<M>::filter(t + r * 3, 1, u + r * a, 1);
    }
}

template <int M>
AIDGE_INCREMENTAL_INLINE void filterAdjoint(const float *u, float *gOut)
{
    constexpr int a = M + 2;
    float t[a * 3], g[9];
    for (int r = 0; r < a; ++r) { // t[r, :] = G^T u[r, :]
        Winograd<M>::filterAdjoint(u + r * a, 1, t + r * 3, 1);
    }
    for (int kj = 0; kj < 3; ++kj) { // g[:, kj] = G^T t[:, kj]
        Winograd<M>::filterAdjoint(t + kj, 3, g + kj, 3);
    }
    for (int k = 0; k < 9; ++k) {
        gOut[k] += g[k];
    }
}

} // namespace

AIDGE_INCREMENTAL_SIMD_CLONES
void winogradInputSample(const ConvShape &s, const WinogradTiling &g, const float *x, float *V,
                         std::size_t xiStride, float *work)
{
    if (g.m == 2) {
        inputSample<2>(s, g, x, V, xiStride, work);
    } else {
        inputSample<4>(s, g, x, V, xiStride, work);
    }
}

AIDGE_INCREMENTAL_SIMD_CLONES
void winogradInputSampleAdjoint(const ConvShape &s, const WinogradTiling &g, const float *dV,
                                std::size_t xiStride, float *dx, float *work)
{
    if (g.m == 2) {
        inputSampleAdjoint<2>(s, g, dV, xiStride, dx, work);
    } else {
        inputSampleAdjoint<4>(s, g, dV, xiStride, dx, work);
    }
}

AIDGE_INCREMENTAL_SIMD_CLONES
void winogradOutputSample(const ConvShape &s, const WinogradTiling &g, const float *Mt, std::size_t xiStride,
                          const float *bias, float *y, float *work)
{
    if (g.m == 2) {
        outputSample<2>(s, g, Mt, xiStride, bias, y, work);
    } else {
        outputSample<4>(s, g, Mt, xiStride, bias, y, work);
    }
}

AIDGE_INCREMENTAL_SIMD_CLONES
void winogradOutputSampleAdjoint(const ConvShape &s, const WinogradTiling &g, const float *dy, float *dMt,
                                 std::size_t xiStride, float *dbias, float *work)
{
    if (g.m == 2) {
        outputSampleAdjoint<2>(s, g, dy, dMt, xiStride, dbias, work);
    } else {
        outputSampleAdjoint<4>(s, g, dy, dMt, xiStride, dbias, work);
    }
}

void winogradFilter(int m, const float *g, float *u)
{
    if (m == 2) {
        filter<2>(g, u);
    } else {
        filter<4>(g, u);
    }
}

void winogradFilterAdjoint(int m, const float *du, float *g)
{
    if (m == 2) {
        filterAdjoint<2>(du, g);
    } else {
        filterAdjoint<4>(du, g);
    }
}

} // namespace incremental
} // namespace Aidge
