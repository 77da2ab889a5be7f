/**
 * Exemplar selection and nearest-mean-of-exemplars classification
 * (Rebuffi et al., "iCaRL: Incremental Classifier and Representation
 * Learning", CVPR 2017).
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

/**
 * Class means for NME: for each class c in [0, nbClasses), the mean of its
 * normalised features, normalised again (iCaRL Algorithm 1). Returns
 * [nbClasses, d]. labels[i] must be in [0, nbClasses); every class needs a sample,
 * and a class whose normalised features sum to zero (all-zero rows, or rows
 * that cancel: mean norm below 1e-9) is refused: its mean has no direction.
 */
std::vector<float> classMeans(const float *features, const std::int64_t *labels,
                              std::size_t n, std::size_t d, std::size_t nbClasses);

/// Index of the nearest class mean (Euclidean, on normalised features) for
/// each of the n rows; means is [nbClasses, d]. An all-zero row has no
/// direction (it is equally far from every normalised mean): its answer is -1,
/// never a class.
std::vector<std::int64_t> nmeClassify(const float *features, std::size_t n, std::size_t d,
                                      const float *means, std::size_t nbClasses);

/// Small deterministic generator (SplitMix64) shared by random selection and
/// reservoir sampling, so their streams are reproducible from a seed.
class SplitMix64 {
  public:
    explicit SplitMix64(std::uint64_t seed) : mState(seed) {}
    std::uint64_t next();
    /// Uniform integer in [0, bound), bound > 0, without modulo bias.
    std::uint64_t below(std::uint64_t bound);
    std::uint64_t state() const { return mState; }

  private:
    std::uint64_t mState;
};

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_MEMORY_EXEMPLARSELECTION_H_
