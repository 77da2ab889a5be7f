#include "aidge/incremental/memory/ReservoirMemory.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace Aidge {
namespace incremental {

ReservoirMemory::ReservoirMemory(std::size_t capacity, SampleLayout layout, std::uint64_t seed,
                                 SampleExtras extras)
    : mCapacity(capacity), mLayout(std::move(layout)), mRng(seed),
      mData(std::make_shared<std::vector<std::uint8_t>>()), mExtras(std::move(extras))
{
    mLayout.check();
    if (capacity == 0 || capacity > kMaxBudget) {
        throw std::invalid_argument(
            fmt::format("reservoir capacity must be in [1, 2^62], got {}", capacity));
    }
    if (mExtras.rows() != 0) {
        throw std::invalid_argument("a new reservoir's extra arrays must hold no rows");
    }
    // The buffer grows with the samples held: a large capacity costs nothing up front.
}

void ReservoirMemory::addBatch(const std::uint8_t *samples, const std::int64_t *labels,
                               std::size_t count, const std::vector<ExtraInput> &extras)
{
    mExtras.check(extras, count);
    const std::size_t bps = mLayout.bytesPerSample();
    const std::size_t filled = std::min(mCapacity, mLabels.size() + count);
    // Everything that may throw (allocation) happens before the first change.
    std::shared_ptr<std::vector<std::uint8_t>> data = mData;
    if (data.use_count() > 2) { // a NumPy view holds the buffer: write to a copy
        data = std::make_shared<std::vector<std::uint8_t>>(*mData);
    }
    data->reserve(filled * bps);
    mLabels.reserve(filled);
    // Wider extra inputs widen a copy of the arrays, committed with the rest.
    const bool widen = mExtras.needsWidening(extras);
    SampleExtras widened = widen ? mExtras.widened(extras) : SampleExtras();
    SampleExtras &rows = widen ? widened : mExtras;
    rows.reserve(filled);
    SplitMix64 rng = mRng;
    for (std::size_t i = 0; i < count; ++i) {
        // Algorithm R: sample number t (0-based) replaces a random slot with
        // probability capacity / (t + 1).
        if (mLabels.size() < mCapacity) {
            mLabels.push_back(labels[i]);
            data->insert(data->end(), samples + i * bps, samples + (i + 1) * bps);
            rows.append(extras, i);
        } else {
            const std::uint64_t j = rng.below(mSeen + i + 1);
            if (j < mCapacity) {
                mLabels[static_cast<std::size_t>(j)] = labels[i];
                std::memcpy(data->data() + j * bps, samples + i * bps, bps);
                rows.assign(static_cast<std::size_t>(j), extras, i);
            }
        }
    }
    mSeen += count;
    mRng = rng;
    mData = std::move(data);
    if (widen) {
        mExtras = std::move(widened);
    }
}

std::size_t ReservoirMemory::nbytes() const
{
    return mData->size() + mLabels.size() * sizeof(std::int64_t) + mExtras.nbytes();
}

std::vector<std::uint8_t> ReservoirMemory::payload() const
{
    PayloadWriter w;
    writeSampleLayout(w, mLayout);
    w.put<std::uint64_t>(mCapacity);
    w.put<std::uint64_t>(mSeen);
    w.put<std::uint64_t>(mRng.state());
    w.putBytes(reinterpret_cast<const std::uint8_t *>(mLabels.data()),
               mLabels.size() * sizeof(std::int64_t));
    w.putBytes(mData->data(), mData->size());
    mExtras.write(w);
    return w.bytes();
}

void ReservoirMemory::save(const std::string &path) const
{
    writeMemoryFile(path, MemoryKind::Reservoir, payload());
}

std::vector<std::uint8_t> ReservoirMemory::toBytes() const
{
    return encodeMemory(MemoryKind::Reservoir, payload());
}

ReservoirMemory ReservoirMemory::load(const std::string &path)
{
    PayloadReader r = readMemoryFile(path, MemoryKind::Reservoir);
    return fromPayload(r);
}

ReservoirMemory ReservoirMemory::fromBytes(std::vector<std::uint8_t> bytes, const std::string &source)
{
    PayloadReader r = decodeMemory(std::move(bytes), source, MemoryKind::Reservoir);
    return fromPayload(r);
}

ReservoirMemory ReservoirMemory::fromPayload(PayloadReader &r)
{
    SampleLayout layout = readSampleLayout(r);
    const auto capacity = r.get<std::uint64_t>();
    const auto seen = r.get<std::uint64_t>();
    const auto state = r.get<std::uint64_t>();
    if (capacity == 0 || capacity > kMaxBudget) {
        r.fail(fmt::format("field 'capacity': {} is outside [1, 2^62]", capacity));
    }
    ReservoirMemory mem(static_cast<std::size_t>(capacity), layout, 0);
    mem.mRng = SplitMix64(state);
    mem.mSeen = seen;
    const auto labelBytes = r.getBytes();
    const std::size_t n = labelBytes.size() / sizeof(std::int64_t);
    if (labelBytes.size() % sizeof(std::int64_t) != 0) {
        r.fail(fmt::format("field 'labels': {} bytes is not a whole number of int64 labels",
                           labelBytes.size()));
    }
    if (n != std::min<std::uint64_t>(capacity, seen)) {
        r.fail(fmt::format("field 'labels': {} labels held, but a reservoir of capacity {} that saw "
                           "{} samples holds {}", n, capacity, seen,
                           std::min<std::uint64_t>(capacity, seen)));
    }
    const auto size = r.get<std::uint64_t>();
    std::size_t expected = 0;
    if (__builtin_mul_overflow(n, layout.bytesPerSample(), &expected) || size != expected) {
        r.fail(fmt::format("field 'samples': {} bytes for {} samples of {} bytes", size, n,
                           layout.bytesPerSample()));
    }
    auto data = std::make_shared<std::vector<std::uint8_t>>(r.getRaw(static_cast<std::size_t>(size)));
    SampleExtras extras = SampleExtras::read(r, n);
    r.expectEnd();
    mem.mLabels.resize(n);
    std::memcpy(mem.mLabels.data(), labelBytes.data(), labelBytes.size());
    mem.mData = std::move(data);
    mem.mExtras = std::move(extras);
    return mem;
}

} // namespace incremental
} // namespace Aidge
