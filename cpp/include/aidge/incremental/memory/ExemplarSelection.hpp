/**
 * Exemplar selection (Rebuffi et al., "iCaRL: Incremental Classifier and
 * Representation Learning", CVPR 2017): which m samples of a class to keep.
 *
 * Features are row-major float32 matrices [n, d]. Every function L2-normalises
 * the rows first (a zero row stays zero), computes in double, and throws
 * std::invalid_argument (a Python ValueError) on bad input: NaN/inf features,
 * m > n, an empty class.
 */
#ifndef AIDGE_INCREMENTAL_MEMORY_EXEMPLARSELECTION_H_
#define AIDGE_INCREMENTAL_MEMORY_EXEMPLARSELECTION_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace Aidge {
namespace incremental {

/**
 * Herding (iCaRL Algorithm 4): with mu the mean of the normalised features,
 * pick p_k = argmin_i || mu - (phi_i + sum_{j<k} phi_{p_j}) / k ||, among the
 * samples not picked yet (ties: smallest index). Returns m indices in
 * selection order, so every prefix is itself a herding selection.
 */
std::vector<std::size_t> herdingSelection(const float *features, std::size_t n,
                                          std::size_t d, std::size_t m);

/// The m samples whose normalised features are closest to the class mean,
/// closest first (ties: smallest index).
std::vector<std::size_t> closestToMeanSelection(const float *features, std::size_t n,
                                                std::size_t d, std::size_t m);

/// m distinct indices of [0, n) drawn uniformly; the same seed gives the same
/// indices on every platform (own generator, no std:: distributions).
std::vector<std::size_t> randomSelection(std::size_t n, std::size_t m, std::uint64_t seed);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_MEMORY_EXEMPLARSELECTION_H_
