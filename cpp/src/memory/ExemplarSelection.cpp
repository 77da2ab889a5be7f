#include "aidge/incremental/memory/ExemplarSelection.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

namespace Aidge {
namespace incremental {

namespace {

void checkSize(std::size_t n, std::size_t d, std::size_t m)
{
    if (n == 0) {
        throw std::invalid_argument("exemplar selection: 'features' has no row, no sample to select from (empty class)");
    }
    if (d == 0) {
        throw std::invalid_argument("exemplar selection: 'features' has dimension 0");
    }
    if (m > n) {
        throw std::invalid_argument(fmt::format(
            "exemplar selection: cannot select m = {} exemplars out of {} samples (rows of 'features')", m, n));
    }
}

/// Rows L2-normalised into doubles; refuses non-finite values.
std::vector<double> normalisedRows(const float *features, std::size_t n, std::size_t d)
{
    std::vector<double> out(n * d);
    for (std::size_t i = 0; i < n; ++i) {
        double norm2 = 0.0;
        for (std::size_t k = 0; k < d; ++k) {
            const double v = features[i * d + k];
            if (!std::isfinite(v)) {
                throw std::invalid_argument(fmt::format(
                    "'features' contain a non-finite value (NaN or inf) in row {}", i));
            }
            out[i * d + k] = v;
            norm2 += v * v;
        }
        if (norm2 > 0.0) {
            const double inv = 1.0 / std::sqrt(norm2);
            for (std::size_t k = 0; k < d; ++k) {
                out[i * d + k] *= inv;
            }
        }
    }
    return out;
}

std::vector<double> columnMean(const std::vector<double> &rows, std::size_t n, std::size_t d)
{
    std::vector<double> mean(d, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t k = 0; k < d; ++k) {
            mean[k] += rows[i * d + k];
        }
    }
    for (double &v : mean) {
        v /= static_cast<double>(n);
    }
    return mean;
}

/// Dot product with four partial sums (independent chains the CPU overlaps).
inline double dot(const double *a, const double *b, std::size_t d)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    std::size_t k = 0;
    for (; k + 4 <= d; k += 4) {
        s0 += a[k] * b[k];
        s1 += a[k + 1] * b[k + 1];
        s2 += a[k + 2] * b[k + 2];
        s3 += a[k + 3] * b[k + 3];
    }
    for (; k < d; ++k) {
        s0 += a[k] * b[k];
    }
    return (s0 + s1) + (s2 + s3);
}

constexpr std::size_t kParallelMinWork = 1 << 15;

} // namespace

// The two hot loops get an AVX2+FMA clone chosen at load time on x86-64 CPUs
// that have it; other machines run the portable version.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define AIDGE_INCREMENTAL_HOT __attribute__((noinline, target_clones("arch=haswell", "default")))
#else
#define AIDGE_INCREMENTAL_HOT
#endif

// Not static: target_clones needs functions the linker can see (LTO would
// otherwise inline them and drop the clones).
void addRowDots(const double *phi, std::size_t n, std::size_t d, const double *p, double *out);
std::size_t nearestMeans(const float *features, std::size_t n, std::size_t d, const double *mu,
                         const double *muNorm2, std::size_t nbClasses, std::int64_t *out);

/// out[i] += phi_i . p for every row (herding's update of S . phi_i).
AIDGE_INCREMENTAL_HOT
void addRowDots(const double *phi, std::size_t n, std::size_t d, const double *p, double *out)
{
    const long long nn = static_cast<long long>(n);
#ifdef _OPENMP
#pragma omp parallel for if (n * d >= kParallelMinWork)
#endif
    for (long long i = 0; i < nn; ++i) {
        out[i] += dot(&phi[i * d], p, d);
    }
}

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

std::vector<std::size_t> herdingSelection(const float *features, std::size_t n,
                                          std::size_t d, std::size_t m)
{
    checkSize(n, d, m);
    const std::vector<double> phi = normalisedRows(features, n, d);
    const std::vector<double> mu = columnMean(phi, n, d);

    // || mu - (S + phi_i)/k ||^2 = ||mu||^2 - 2/k (mu.S + mu.phi_i)
    //                              + 1/k^2 (||S||^2 + 2 S.phi_i + ||phi_i||^2).
    // mu.phi_i and ||phi_i||^2 are fixed; S.phi_i is updated by one
    // matrix-vector product per pick: O(n d) a step, no n x d temporaries.
    std::vector<double> muPhi(n), phiNorm2(n), sPhi(n, 0.0);
    const long long nn = static_cast<long long>(n);
#ifdef _OPENMP
#pragma omp parallel for if (n * d >= kParallelMinWork)
#endif
    for (long long i = 0; i < nn; ++i) {
        muPhi[i] = dot(&phi[i * d], mu.data(), d);
        phiNorm2[i] = dot(&phi[i * d], &phi[i * d], d);
    }
    const double muNorm2 = dot(mu.data(), mu.data(), d);
    double muS = 0.0, sNorm2 = 0.0;

    std::vector<char> taken(n, 0);
    std::vector<std::size_t> picked;
    picked.reserve(m);
    for (std::size_t step = 1; step <= m; ++step) {
        const double k = static_cast<double>(step);
        std::size_t best = n;
        double bestDist = std::numeric_limits<double>::infinity();
        for (std::size_t i = 0; i < n; ++i) {
            if (taken[i]) {
                continue;
            }
            const double dist = muNorm2 - 2.0 / k * (muS + muPhi[i]) +
                                (sNorm2 + 2.0 * sPhi[i] + phiNorm2[i]) / (k * k);
            if (dist < bestDist) {
                bestDist = dist;
                best = i;
            }
        }
        taken[best] = 1;
        picked.push_back(best);
        if (step == m) {
            break;
        }
        muS += muPhi[best];
        sNorm2 += 2.0 * sPhi[best] + phiNorm2[best];
        addRowDots(phi.data(), n, d, &phi[best * d], sPhi.data());
    }
    return picked;
}

std::vector<std::size_t> closestToMeanSelection(const float *features, std::size_t n,
                                                std::size_t d, std::size_t m)
{
    checkSize(n, d, m);
    const std::vector<double> phi = normalisedRows(features, n, d);
    const std::vector<double> mu = columnMean(phi, n, d);
    std::vector<double> dist(n);
    for (std::size_t i = 0; i < n; ++i) {
        double acc = 0.0;
        for (std::size_t k = 0; k < d; ++k) {
            const double diff = phi[i * d + k] - mu[k];
            acc += diff * diff;
        }
        dist[i] = acc;
    }
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return dist[a] < dist[b]; });
    order.resize(m);
    return order;
}

std::uint64_t SplitMix64::next()
{
    std::uint64_t z = (mState += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

std::uint64_t SplitMix64::below(std::uint64_t bound)
{
    // Rejection of the last partial block of 2^64 values: unbiased.
    const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() -
                                std::numeric_limits<std::uint64_t>::max() % bound;
    std::uint64_t x;
    do {
        x = next();
    } while (x >= limit);
    return x % bound;
}

std::vector<std::size_t> randomSelection(std::size_t n, std::size_t m, std::uint64_t seed)
{
    if (m > n) {
        throw std::invalid_argument(fmt::format(
            "random selection: cannot select m = {} exemplars out of {} samples", m, n));
    }
    // The result alone takes 8 bytes a pick: refuse what no exemplar set needs
    // rather than let the allocation take the machine down.
    constexpr std::size_t maxPicks = std::size_t{1} << 24;
    if (m > maxPicks) {
        throw std::invalid_argument(fmt::format(
            "random selection: m = {} exemplars is more than the {} a selection may hold", m, maxPicks));
    }
    // Partial Fisher-Yates shuffle of 0..n-1: the first m entries are a uniform
    // sample. Only the moved entries are stored (O(m) memory whatever n is); the
    // picks are those of the dense shuffle, entry for entry.
    std::unordered_map<std::size_t, std::size_t> moved;
    moved.reserve(2 * m);
    const auto at = [&moved](std::size_t k) {
        const auto it = moved.find(k);
        return it == moved.end() ? k : it->second;
    };
    std::vector<std::size_t> picks(m);
    SplitMix64 rng(seed);
    for (std::size_t i = 0; i < m; ++i) {
        const std::size_t j = i + static_cast<std::size_t>(rng.below(n - i));
        const std::size_t vi = at(i), vj = at(j);
        moved[j] = vi;
        moved[i] = vj;
        picks[i] = vj;
    }
    return picks;
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
