#include "aidge/incremental/memory/ExemplarSelection.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "aidge/incremental/backend/cpu/Blas.hpp"
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

namespace {

/// Rows per block of herding's pass: a block of phi (256 x d doubles) stays in
/// the L2 cache while its rows' distances are computed.
constexpr std::size_t kHerdingBlock = 256;

/// Squared distance of iCaRL Algorithm 4 at pick k (see herdingSelection).
inline double herdingDistance(double muNorm2, double k, double muS, double sNorm2, double muPhi,
                              double sPhi, double phiNorm2)
{
    return muNorm2 - 2.0 / k * (muS + muPhi) + (sNorm2 + 2.0 * sPhi + phiNorm2) / (k * k);
}

} // namespace

std::vector<std::size_t> herdingSelection(const float *features, std::size_t n,
                                          std::size_t d, std::size_t m)
{
    checkSize(n, d, m);
    blasSingleThreaded(); // our OpenMP threads each call the BLAS on their own rows
    const std::vector<double> phi = normalisedRows(features, n, d);
    const int ni = static_cast<int>(n), di = static_cast<int>(d);
    // mu = phi^T 1 / n
    std::vector<double> mu(d, 0.0), ones(n, 1.0);
    dgemv(true, ni, di, 1.0 / static_cast<double>(n), phi.data(), di, ones.data(), 0.0, mu.data());

    // || mu - (S + phi_i)/k ||^2 = ||mu||^2 - 2/k (mu.S + mu.phi_i)
    //                              + 1/k^2 (||S||^2 + 2 S.phi_i + ||phi_i||^2).
    // mu.phi_i and ||phi_i||^2 are fixed; S.phi_i grows by phi_i.phi_p at each
    // pick p: one matrix-vector product (BLAS) per pick, O(n d), no n x n Gram
    // matrix. The next pick's distances are computed block by block right after
    // the product, while the block is still in cache.
    std::vector<double> muPhi(n), phiNorm2(n), sPhi(n, 0.0);
    dgemv(false, ni, di, 1.0, phi.data(), di, mu.data(), 0.0, muPhi.data());
    for (std::size_t i = 0; i < n; ++i) {
        phiNorm2[i] = dot(&phi[i * d], &phi[i * d], d);
    }
    const double muNorm2 = dot(mu.data(), mu.data(), d);
    double muS = 0.0, sNorm2 = 0.0;

    const std::size_t nBlocks = (n + kHerdingBlock - 1) / kHerdingBlock;
    std::vector<double> blockDist(nBlocks);
    std::vector<std::size_t> blockBest(nBlocks);
    std::vector<char> taken(n, 0);
    // the block's nearest candidate for pick k (ties: smallest index)
    const auto scanBlock = [&](std::size_t b, double k) {
        const std::size_t i0 = b * kHerdingBlock, i1 = std::min(n, i0 + kHerdingBlock);
        double bestDist = std::numeric_limits<double>::infinity();
        std::size_t best = n;
        for (std::size_t i = i0; i < i1; ++i) {
            const double dist = herdingDistance(muNorm2, k, muS, sNorm2, muPhi[i], sPhi[i], phiNorm2[i]);
            if (!taken[i] && dist < bestDist) {
                bestDist = dist;
                best = i;
            }
        }
        blockDist[b] = bestDist;
        blockBest[b] = best;
    };
    for (std::size_t b = 0; b < nBlocks; ++b) {
        scanBlock(b, 1.0);
    }
    // Threads only where a pick's product is big enough to pay for waking
    // them; blocks are handed out dynamically, so a thread that the OS
    // deschedules (a loaded machine) takes fewer blocks instead of holding
    // the others at the end of every pick.
    const bool parallel = n * d >= 4 * kParallelMinWork && nBlocks > 1;
    std::vector<std::size_t> picked;
    picked.reserve(m);
    for (std::size_t step = 1; step <= m; ++step) {
        std::size_t best = n;
        double bestDist = std::numeric_limits<double>::infinity();
        for (std::size_t b = 0; b < nBlocks; ++b) { // block order: ties go to the smallest index
            if (blockBest[b] < n && blockDist[b] < bestDist) {
                bestDist = blockDist[b];
                best = blockBest[b];
            }
        }
        taken[best] = 1;
        picked.push_back(best);
        if (step == m) {
            break;
        }
        muS += muPhi[best];
        sNorm2 += 2.0 * sPhi[best] + phiNorm2[best];
        const double *p = &phi[best * d];
        const double next = static_cast<double>(step + 1);
        const long long nb = static_cast<long long>(nBlocks);
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
#endif
        for (long long b = 0; b < nb; ++b) {
            const std::size_t i0 = static_cast<std::size_t>(b) * kHerdingBlock;
            const int rows = static_cast<int>(std::min(kHerdingBlock, n - i0));
            dgemv(false, rows, di, 1.0, &phi[i0 * d], di, p, 1.0, &sPhi[i0]);
            scanBlock(static_cast<std::size_t>(b), next);
        }
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
