#include "aidge/incremental/memory/ExemplarSelection.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "aidge/incremental/memory/NormalisedFeatures.hpp"
#include "aidge/incremental/memory/SplitMix64.hpp"

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

} // namespace

// Not static: target_clones needs functions the linker can see (LTO would
// otherwise inline them and drop the clones).
void addRowDots(const double *phi, std::size_t n, std::size_t d, const double *p, double *out);

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

} // namespace incremental
} // namespace Aidge
