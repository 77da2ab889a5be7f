#include "aidge/incremental/memory/NearestMeanOfExemplars.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "aidge/incremental/memory/NormalisedFeatures.hpp"

namespace Aidge {
namespace incremental {

// Not static: target_clones needs functions the linker can see (LTO would
// otherwise inline them and drop the clones).
std::size_t nearestMeans(const float *features, std::size_t n, std::size_t d, const double *mu,
                         const double *muNorm2, std::size_t nbClasses, std::int64_t *out);

/// NME on raw float rows: argmin_c ||phi/|phi| - mu_c||^2
///   = argmin_c ||mu_c||^2 - 2 (phi . mu_c) / |phi|,
/// so no normalised copy of the queries is made. A block of kBlock queries is
/// transposed to [d][kBlock] doubles: each lane of the inner loop is one
/// query's own sum, so it vectorises without reordering any sum. Returns the
/// number of rows holding a non-finite value.
AIDGE_INCREMENTAL_HOT
std::size_t nearestMeans(const float *features, std::size_t n, std::size_t d, const double *mu,
                         const double *muNorm2, std::size_t nbClasses, std::int64_t *out)
{
    constexpr std::size_t kBlock = 8;
    const long long nBlocks = static_cast<long long>((n + kBlock - 1) / kBlock);
    std::size_t nonFinite = 0;
#ifdef _OPENMP
#pragma omp parallel reduction(+ : nonFinite) if (n * nbClasses * d >= kParallelMinWork)
#endif
    {
        std::vector<double> qT(d * kBlock);
#ifdef _OPENMP
#pragma omp for
#endif
        for (long long blk = 0; blk < nBlocks; ++blk) {
            const std::size_t i0 = static_cast<std::size_t>(blk) * kBlock;
            const std::size_t rows = std::min(kBlock, n - i0);
            double invNorm[kBlock];
            for (std::size_t r = 0; r < kBlock; ++r) {
                const float *row = &features[(i0 + std::min(r, rows - 1)) * d]; // pad: last row
                double norm2 = 0.0;
                for (std::size_t k = 0; k < d; ++k) {
                    const double v = row[k];
                    qT[k * kBlock + r] = v;
                    norm2 += v * v;
                }
                nonFinite += (r < rows && !std::isfinite(norm2)) ? 1 : 0;
                invNorm[r] = norm2 > 0.0 ? 1.0 / std::sqrt(norm2) : 0.0;
            }
            double bestDist[kBlock];
            std::int64_t best[kBlock] = {};
            std::fill(bestDist, bestDist + kBlock, std::numeric_limits<double>::infinity());
            // Four classes at a time: 4 x kBlock independent sums keep the
            // vector units busy instead of waiting on one chain of additions.
            constexpr std::size_t kClasses = 4;
            for (std::size_t c0 = 0; c0 < nbClasses; c0 += kClasses) {
                const std::size_t nc = std::min(kClasses, nbClasses - c0);
                const double *m[kClasses];
                for (std::size_t j = 0; j < kClasses; ++j) {
                    m[j] = &mu[(c0 + std::min(j, nc - 1)) * d];
                }
                double acc[kClasses][kBlock] = {};
                for (std::size_t k = 0; k < d; ++k) {
                    const double *qk = &qT[k * kBlock];
                    for (std::size_t j = 0; j < kClasses; ++j) {
                        const double mk = m[j][k];
                        for (std::size_t r = 0; r < kBlock; ++r) {
                            acc[j][r] += qk[r] * mk;
                        }
                    }
                }
                for (std::size_t j = 0; j < nc; ++j) {
                    for (std::size_t r = 0; r < kBlock; ++r) {
                        const double dist = muNorm2[c0 + j] - 2.0 * acc[j][r] * invNorm[r];
                        if (dist < bestDist[r]) {
                            bestDist[r] = dist;
                            best[r] = static_cast<std::int64_t>(c0 + j);
                        }
                    }
                }
            }
            for (std::size_t r = 0; r < rows; ++r) {
                // An all-zero row has no direction: every normalised mean is
                // equally far, so no class is nearer; answer -1, not class 0.
                out[i0 + r] = invNorm[r] > 0.0 ? best[r] : -1;
            }
        }
    }
    return nonFinite;
}

std::vector<float> classMeans(const float *features, const std::int64_t *labels,
                              std::size_t n, std::size_t d, std::size_t nbClasses)
{
    if (nbClasses == 0) {
        throw std::invalid_argument("class means: 'n_classes' must be > 0");
    }
    const std::vector<double> phi = normalisedRows(features, n, d);
    std::vector<double> sums(nbClasses * d, 0.0);
    std::vector<std::size_t> counts(nbClasses, 0);
    for (std::size_t i = 0; i < n; ++i) {
        if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= nbClasses) {
            throw std::invalid_argument(fmt::format(
                "class means: 'labels' holds {} at {}, outside [0, {}) (n_classes)", labels[i], i, nbClasses));
        }
        const std::size_t c = static_cast<std::size_t>(labels[i]);
        ++counts[c];
        for (std::size_t k = 0; k < d; ++k) {
            sums[c * d + k] += phi[i * d + k];
        }
    }
    std::vector<float> means(nbClasses * d);
    for (std::size_t c = 0; c < nbClasses; ++c) {
        if (counts[c] == 0) {
            throw std::invalid_argument(
                fmt::format("class means: class {} of n_classes has no sample in 'labels' (empty class)", c));
        }
        double norm2 = 0.0;
        for (std::size_t k = 0; k < d; ++k) {
            norm2 += sums[c * d + k] * sums[c * d + k];
        }
        // A mean of unit vectors shorter than 1e-9 is rounding noise around
        // zero (e.g. two opposite rows): no direction either.
        if (!(std::sqrt(norm2) > 1e-9 * static_cast<double>(counts[c]))) {
            throw std::invalid_argument(fmt::format(
                "class means: the normalised 'features' of class {} sum to zero (all-zero rows?): "
                "its mean has no direction to compare with", c));
        }
        const double inv = 1.0 / std::sqrt(norm2);
        for (std::size_t k = 0; k < d; ++k) {
            means[c * d + k] = static_cast<float>(sums[c * d + k] * inv);
        }
    }
    return means;
}

std::vector<std::int64_t> nmeClassify(const float *features, std::size_t n, std::size_t d,
                                      const float *means, std::size_t nbClasses)
{
    if (nbClasses == 0) {
        throw std::invalid_argument("NME: 'means' has no row, no class mean to compare with");
    }
    for (std::size_t i = 0; i < nbClasses * d; ++i) {
        if (!std::isfinite(means[i])) {
            throw std::invalid_argument("NME: 'means' contain a non-finite value (NaN or inf)");
        }
    }
    std::vector<double> mu(means, means + nbClasses * d);
    std::vector<double> muNorm2(nbClasses);
    for (std::size_t c = 0; c < nbClasses; ++c) {
        muNorm2[c] = dot(&mu[c * d], &mu[c * d], d);
    }
    std::vector<std::int64_t> out(n);
    if (nearestMeans(features, n, d, mu.data(), muNorm2.data(), nbClasses, out.data()) != 0) {
        throw std::invalid_argument("NME: 'features' contain a non-finite value (NaN or inf)");
    }
    return out;
}

} // namespace incremental
} // namespace Aidge
