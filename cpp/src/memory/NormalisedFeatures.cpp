#include "aidge/incremental/memory/NormalisedFeatures.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace Aidge {
namespace incremental {

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

} // namespace incremental
} // namespace Aidge
