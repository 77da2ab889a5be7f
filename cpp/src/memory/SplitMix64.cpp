#include "aidge/incremental/memory/SplitMix64.hpp"

#include <limits>

namespace Aidge {
namespace incremental {

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

} // namespace incremental
} // namespace Aidge
