/**
 * How the replay memories (ExemplarMemory, ReservoirMemory) store samples:
 * the layout of one sample, the bounds on sizes, and the layout's encoding in
 * a memory file (MemoryFile.hpp).
 *
 * Samples are stored as given (any shape, a numeric dtype), in one buffer per
 * memory; NumPy views of it are snapshots (each memory says how).
 */
#ifndef AIDGE_INCREMENTAL_MEMORY_STOREDSAMPLES_H_
#define AIDGE_INCREMENTAL_MEMORY_STOREDSAMPLES_H_

#include <cstddef>
#include <string>
#include <vector>

#include "aidge/incremental/memory/MemoryFile.hpp"

namespace Aidge {
namespace incremental {

/// Shape and element type of one stored sample.
struct SampleLayout
{
    std::vector<std::size_t> shape; ///< of one sample, may be empty (scalar)
    std::string dtype;              ///< NumPy dtype string, e.g. "|u1", "<f4"
    std::size_t itemSize = 0;       ///< bytes per element

    /// Bytes of one sample; valid once check() passed.
    std::size_t bytesPerSample() const;
    /// Throws std::invalid_argument naming the field: dtype not a plain
    /// numeric NumPy type (bool, int, uint, float, complex), item size not the
    /// dtype's, a sample of 0 bytes or of more than 2^40 bytes (overflow-checked).
    void check() const;
};

/// Largest number of bytes one sample may hold (1 TiB): any shape whose
/// product overflows or exceeds it is refused.
constexpr std::size_t kMaxSampleBytes = std::size_t{1} << 40;
/// Largest budget or reservoir capacity (2^62): keeps every count sum exact.
constexpr std::size_t kMaxBudget = std::size_t{1} << 62;

/// Appends the layout to a memory file's payload.
void writeSampleLayout(PayloadWriter &w, const SampleLayout &layout);
/// Reads a layout back and checks it (CorruptFileError naming the field).
SampleLayout readSampleLayout(PayloadReader &r);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_MEMORY_STOREDSAMPLES_H_
