/**
 * Feature rows as iCaRL compares them: L2-normalised, in double. What exemplar
 * selection (ExemplarSelection.hpp) and nearest-mean-of-exemplars
 * classification (NearestMeanOfExemplars.hpp) share to compute them fast.
 */
#ifndef AIDGE_INCREMENTAL_MEMORY_NORMALISEDFEATURES_H_
#define AIDGE_INCREMENTAL_MEMORY_NORMALISEDFEATURES_H_

#include <cstddef>
#include <vector>

namespace Aidge {
namespace incremental {

/// Work (rows x columns) below which a loop does not wake the OpenMP team.
constexpr std::size_t kParallelMinWork = 1 << 15;

/// Rows L2-normalised into doubles; refuses non-finite values.
std::vector<double> normalisedRows(const float *features, std::size_t n, std::size_t d);

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

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_MEMORY_NORMALISEDFEATURES_H_
