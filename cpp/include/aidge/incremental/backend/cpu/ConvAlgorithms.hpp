/**
 * Which algorithm runs a convolution, chosen per shape by measurement.
 *
 * Algorithms (kernels in operator/FastConvImpl_kernels.hpp and
 * operator/WinogradConvImpl_kernels.hpp):
 * - "im2col": any stride;
 * - "shifted": stride 1, any kernel (KH*KW products on shifted views);
 * - "winograd2", "winograd4": 3x3 kernels, stride 1, Winograd F(2x2, 3x3) and
 *   F(4x4, 3x3) (fewer multiplications, more rounding).
 *
 * The autotune table: the first time a shape runs (forward or backward), each
 * algorithm that applies is timed on the call's own data (wall time, best of 3,
 * interleaved) and the fastest is kept; one that is at most 3 % slower than
 * the fastest wins if it rounds less (shifted, then winograd2, then winograd4).
 * Entries are keyed by the shape (batch rounded up to a power of two), the
 * OpenMP threads and the BLAS kernels (OPENBLAS_CORETYPE), and kept in a cache
 * file so that later processes reuse them:
 *   AIDGE_INCREMENTAL_AUTOTUNE_FILE  the file (default
 *       $XDG_CACHE_HOME/aidge_incremental/conv_autotune.txt, or ~/.cache/...);
 *   AIDGE_INCREMENTAL_AUTOTUNE       "on" (default), "off" (no measurement, no
 *       file: a fixed choice by shape, the same on every machine), "rebuild"
 *       (ignore the file's entries, measure again and rewrite them).
 * The choice changes the rounding of the results (not their meaning): for
 * results identical across machines, set AIDGE_INCREMENTAL_AUTOTUNE=off (and
 * OPENBLAS_CORETYPE).
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_CONVALGORITHMS_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_CONVALGORITHMS_H_

#include <string>
#include <utility>
#include <vector>

#include "aidge/incremental/backend/cpu/operator/FastConvImpl_kernels.hpp"

namespace Aidge {
namespace incremental {

enum class ConvAlgorithm { Im2col, Shifted, Winograd2, Winograd4 };

const char *convAlgorithmName(ConvAlgorithm algorithm);
/// Throws std::invalid_argument naming the known algorithms.
ConvAlgorithm convAlgorithmFromName(const std::string &name);
bool convAlgorithmApplies(ConvAlgorithm algorithm, const ConvShape &s);
/// The algorithms that can run s, the one that rounds least first.
std::vector<ConvAlgorithm> convCandidates(const ConvShape &s);
/// The choice by shape alone (AIDGE_INCREMENTAL_AUTOTUNE=off).
ConvAlgorithm convDefaultAlgorithm(const ConvShape &s, bool backward);

/// y = conv(x, w) + bias with the given algorithm (must apply).
void convForwardWith(ConvAlgorithm algorithm, const ConvShape &s, const float *x, const float *w,
                     const float *bias, float *y);
/// dx += ..., dw += ..., db += ... (any may be null) with the given algorithm.
void convBackwardWith(ConvAlgorithm algorithm, const ConvShape &s, const float *x, const float *w,
                      const float *dy, float *dx, float *dw, float *db);

/// The autotuned convolution of the Fast kernels.
void convForward(const ConvShape &s, const float *x, const float *w, const float *bias, float *y);
void convBackward(const ConvShape &s, const float *x, const float *w, const float *dy, float *dx,
                  float *dw, float *db);

/// "on", "off" or "rebuild" (from AIDGE_INCREMENTAL_AUTOTUNE unless set here).
std::string convAutotuneMode();
/// Sets the mode for this process (throws on an unknown mode); "rebuild"
/// also forgets the entries measured so far.
void setConvAutotuneMode(const std::string &mode);
/// Path of the cache file ("" when the mode is "off").
std::string convAutotuneFile();
/// The choices made or loaded in this process: (key, algorithm), sorted.
std::vector<std::pair<std::string, std::string>> convAutotuneTable();

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_CONVALGORITHMS_H_
