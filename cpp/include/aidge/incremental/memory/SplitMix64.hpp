/**
 * Small deterministic generator (SplitMix64) shared by random exemplar
 * selection and reservoir sampling, so that their streams are reproducible
 * from a seed on every platform (own generator, no std:: distributions).
 */
#ifndef AIDGE_INCREMENTAL_MEMORY_SPLITMIX64_H_
#define AIDGE_INCREMENTAL_MEMORY_SPLITMIX64_H_

#include <cstdint>

namespace Aidge {
namespace incremental {

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

#endif // AIDGE_INCREMENTAL_MEMORY_SPLITMIX64_H_
