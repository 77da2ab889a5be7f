#include "aidge/incremental/memory/NearestMeanOfExemplars.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "aidge/incremental/backend/cpu/Blas.hpp"
#include "aidge/incremental/memory/NormalisedFeatures.hpp"

namespace Aidge {
namespace incremental {

namespace {

/// Queries per block: a block's scores [kBlock, nbClasses] and its rows in
/// double [kBlock, d] stay in cache.
constexpr std::size_t kNmeBlock = 128;

/// NME on raw float rows: argmin_c ||phi/|phi| - mu_c||^2
///   = argmin_c ||mu_c||^2 - 2 (phi . mu_c) / |phi|,
/// so no normalised copy of the queries is kept. Per block of queries, the
/// dot products with every mean are one matrix product (BLAS dgemm, in
/// double). Returns the number of rows holding a non-finite value.
std::size_t nearestMeans(const float *features, std::size_t n, std::size_t d, const double *mu,
                         const double *muNorm2, std::size_t nbClasses, std::int64_t *out)
{
    blasSingleThreaded(); // our OpenMP threads each call the BLAS on their own block
    const long long nBlocks = static_cast<long long>((n + kNmeBlock - 1) / kNmeBlock);
    std::size_t nonFinite = 0;
#ifdef _OPENMP
#pragma omp parallel reduction(+ : nonFinite) if (n * nbClasses * d >= kParallelMinWork && nBlocks > 1)
#endif
    {
        std::vector<double> q(kNmeBlock * d), scores(kNmeBlock * nbClasses);
        double invNorm[kNmeBlock];
        // dynamic: a thread the OS deschedules takes fewer blocks
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (long long blk = 0; blk < nBlocks; ++blk) {
            const std::size_t i0 = static_cast<std::size_t>(blk) * kNmeBlock;
            const std::size_t rows = std::min(kNmeBlock, n - i0);
            for (std::size_t r = 0; r < rows; ++r) {
                const float *row = &features[(i0 + r) * d];
                double *qr = &q[r * d];
                double norm2 = 0.0;
                for (std::size_t k = 0; k < d; ++k) {
                    qr[k] = row[k];
                    norm2 += qr[k] * qr[k];
                }
                if (!std::isfinite(norm2)) {
                    ++nonFinite;
                    std::fill(qr, qr + d, 0.0); // keeps the product finite; the call fails anyway
                    norm2 = 0.0;
                }
                invNorm[r] = norm2 > 0.0 ? 1.0 / std::sqrt(norm2) : 0.0;
            }
            dgemm(false, true, static_cast<int>(rows), static_cast<int>(nbClasses), static_cast<int>(d), 1.0,
                  q.data(), static_cast<int>(d), mu, static_cast<int>(d), 0.0, scores.data(),
                  static_cast<int>(nbClasses));
            for (std::size_t r = 0; r < rows; ++r) {
                const double *sr = &scores[r * nbClasses];
                double bestDist = std::numeric_limits<double>::infinity();
                std::int64_t best = 0;
                for (std::size_t c = 0; c < nbClasses; ++c) { // ties: the smallest class index
                    const double dist = muNorm2[c] - 2.0 * sr[c] * invNorm[r];
                    if (dist < bestDist) {
                        bestDist = dist;
                        best = static_cast<std::int64_t>(c);
                    }
                }
                // An all-zero row has no direction: every normalised mean is
                // equally far, so no class is nearer; answer -1, not class 0.
                out[i0 + r] = invNorm[r] > 0.0 ? best : -1;
            }
        }
    }
    return nonFinite;
}

} // namespace

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
