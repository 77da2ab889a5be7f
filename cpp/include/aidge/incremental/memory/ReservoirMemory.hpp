/**
 * A replay memory filled by reservoir sampling (Vitter's Algorithm R), for
 * streams that arrive one batch at a time: after t samples, each is held with
 * probability capacity / t.
 *
 * Each sample may carry extra float32 arrays (StoredSamples.hpp: DER++
 * stores the logits it had), replaced with it.
 *
 * The samples buffer is shared with the NumPy arrays handed to Python (no
 * copy to read); a view is a snapshot: addBatch copies the buffer before
 * writing while a view holds it. Every mutating call either succeeds or
 * throws leaving the memory as it was; loading validates every field of the
 * file (the checksum only guards against accidents, not a crafted file).
 */
#ifndef AIDGE_INCREMENTAL_MEMORY_RESERVOIRMEMORY_H_
#define AIDGE_INCREMENTAL_MEMORY_RESERVOIRMEMORY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aidge/incremental/memory/SplitMix64.hpp"
#include "aidge/incremental/memory/StoredSamples.hpp"

namespace Aidge {
namespace incremental {

class ReservoirMemory {
  public:
    ReservoirMemory(std::size_t capacity, SampleLayout layout, std::uint64_t seed,
                    SampleExtras extras = SampleExtras());

    /// Offer count samples (with their labels, and one input per declared
    /// extra array) to the reservoir; a sample kept keeps its extras.
    void addBatch(const std::uint8_t *samples, const std::int64_t *labels, std::size_t count,
                  const std::vector<ExtraInput> &extras = {});

    std::size_t capacity() const { return mCapacity; }
    std::size_t size() const { return mLabels.size(); }
    std::uint64_t seen() const { return mSeen; }
    const SampleLayout &layout() const { return mLayout; }
    const std::vector<std::int64_t> &labels() const { return mLabels; }
    /// The size() samples held (grows up to capacity samples). Shared with
    /// views: addBatch copies it first when a view still holds it.
    std::shared_ptr<std::vector<std::uint8_t>> buffer() const { return mData; }
    /// The extra arrays, row i for sample i.
    const SampleExtras &extras() const { return mExtras; }
    /// Exact bytes held: samples + labels + extra arrays.
    std::size_t nbytes() const;

    void save(const std::string &path) const;
    static ReservoirMemory load(const std::string &path);
    /// The file's bytes, to embed in a checkpoint; fromBytes verifies them.
    std::vector<std::uint8_t> toBytes() const;
    static ReservoirMemory fromBytes(std::vector<std::uint8_t> bytes, const std::string &source);

  private:
    std::vector<std::uint8_t> payload() const;
    static ReservoirMemory fromPayload(PayloadReader &r);

    std::size_t mCapacity;
    SampleLayout mLayout;
    SplitMix64 mRng;
    std::uint64_t mSeen = 0;
    std::vector<std::int64_t> mLabels;
    std::shared_ptr<std::vector<std::uint8_t>> mData;
    SampleExtras mExtras;
};

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_MEMORY_RESERVOIRMEMORY_H_
