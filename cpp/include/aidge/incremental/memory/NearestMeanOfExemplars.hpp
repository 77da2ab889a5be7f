/**
 * Nearest-mean-of-exemplars classification (Rebuffi et al., "iCaRL:
 * Incremental Classifier and Representation Learning", CVPR 2017,
 * Algorithm 1): class means of normalised features, and the nearest mean.
 *
 * Features are row-major float32 matrices [n, d], L2-normalised first (a zero
 * row stays zero), computed in double; bad input (NaN/inf, a label out of
 * range, an empty class) throws std::invalid_argument (a Python ValueError).
 */
#ifndef AIDGE_INCREMENTAL_MEMORY_NEARESTMEANOFEXEMPLARS_H_
#define AIDGE_INCREMENTAL_MEMORY_NEARESTMEANOFEXEMPLARS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace Aidge {
namespace incremental {

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

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_MEMORY_NEARESTMEANOFEXEMPLARS_H_
