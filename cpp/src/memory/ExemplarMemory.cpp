#include "aidge/incremental/memory/ExemplarMemory.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace Aidge {
namespace incremental {

// ---------------------------------------------------------------- layout --

std::size_t SampleLayout::bytesPerSample() const
{
    std::size_t bytes = itemSize;
    for (std::size_t dim : shape) {
        bytes *= dim;
    }
    return bytes;
}

void SampleLayout::check() const
{
    if (itemSize == 0 || dtype.empty()) {
        throw std::invalid_argument("sample layout: dtype and item size must be given");
    }
    if (bytesPerSample() == 0) {
        throw std::invalid_argument(
            fmt::format("sample layout: samples of shape {} hold no data", shape));
    }
}

namespace {
void writeLayout(PayloadWriter &w, const SampleLayout &layout)
{
    w.put<std::uint64_t>(layout.shape.size());
    for (std::size_t dim : layout.shape) {
        w.put<std::uint64_t>(dim);
    }
    w.putString(layout.dtype);
    w.put<std::uint64_t>(layout.itemSize);
}

SampleLayout readLayout(PayloadReader &r)
{
    SampleLayout layout;
    const auto ndim = r.get<std::uint64_t>();
    if (ndim > 32) {
        r.fail(fmt::format("sample rank {} is not plausible", ndim));
    }
    for (std::uint64_t i = 0; i < ndim; ++i) {
        layout.shape.push_back(static_cast<std::size_t>(r.get<std::uint64_t>()));
    }
    layout.dtype = r.getString();
    layout.itemSize = static_cast<std::size_t>(r.get<std::uint64_t>());
    try {
        layout.check();
    } catch (const std::invalid_argument &e) {
        r.fail(e.what());
    }
    return layout;
}
} // namespace

// -------------------------------------------------------- ExemplarMemory --

ExemplarMemory::ExemplarMemory(Policy policy, std::size_t budget, SampleLayout layout)
    : mPolicy(policy),
      mBudget(budget),
      mLayout(std::move(layout)),
      mData(std::make_shared<const std::vector<std::uint8_t>>())
{
    mLayout.check();
    if (budget == 0) {
        throw std::invalid_argument("memory budget must be > 0");
    }
}

std::vector<std::size_t> ExemplarMemory::quotas(std::size_t nbClasses) const
{
    if (mPolicy == Policy::PerClass) {
        return std::vector<std::size_t>(nbClasses, mBudget);
    }
    if (nbClasses > mBudget) {
        throw std::invalid_argument(fmt::format(
            "memory budget {} is smaller than the number of classes {}: every class "
            "needs at least one exemplar",
            mBudget, nbClasses));
    }
    std::vector<std::size_t> q(nbClasses, nbClasses == 0 ? 0 : mBudget / nbClasses);
    for (std::size_t c = 0; c < nbClasses && c < mBudget % nbClasses; ++c) {
        ++q[c];
    }
    return q;
}

std::size_t ExemplarMemory::size() const
{
    std::size_t n = 0;
    for (const auto &c : mClasses) {
        n += c.count;
    }
    return n;
}

std::size_t ExemplarMemory::nbytes() const
{
    return mData->size() + mClasses.size() * sizeof(ClassSet);
}

void ExemplarMemory::reduce(std::size_t nbClassesAfter)
{
    if (nbClassesAfter < mClasses.size()) {
        throw std::invalid_argument(fmt::format(
            "reduce: {} classes are held, cannot plan for {}", mClasses.size(), nbClassesAfter));
    }
    const std::vector<std::size_t> q = quotas(nbClassesAfter);
    const std::size_t bps = mLayout.bytesPerSample();
    auto data = std::make_shared<std::vector<std::uint8_t>>();
    data->reserve(mData->size());
    std::size_t offset = 0;
    for (std::size_t c = 0; c < mClasses.size(); ++c) {
        const std::size_t keep = std::min(mClasses[c].count, q[c]);
        const auto first = mData->begin() + static_cast<std::ptrdiff_t>(offset * bps);
        data->insert(data->end(), first, first + static_cast<std::ptrdiff_t>(keep * bps));
        offset += mClasses[c].count;
        mClasses[c].count = keep;
    }
    data->shrink_to_fit();
    mData = std::move(data);
}

void ExemplarMemory::addClass(std::int64_t label, const std::uint8_t *samples, std::size_t count)
{
    for (const auto &c : mClasses) {
        if (c.label == label) {
            throw std::invalid_argument(fmt::format("class {} is already in the memory", label));
        }
    }
    if (count == 0) {
        throw std::invalid_argument(fmt::format("class {} brings no exemplar (empty class)", label));
    }
    const std::vector<std::size_t> q = quotas(mClasses.size() + 1);
    if (count > q.back()) {
        throw std::invalid_argument(fmt::format(
            "class {}: {} exemplars exceed its quota of {} (budget {}, {} classes)", label, count,
            q.back(), mBudget, mClasses.size() + 1));
    }
    for (std::size_t c = 0; c + 1 < q.size(); ++c) {
        if (mClasses[c].count > q[c]) {
            throw std::invalid_argument(fmt::format(
                "class {} holds {} exemplars, over its quota of {}: reduce() before adding a class",
                mClasses[c].label, mClasses[c].count, q[c]));
        }
    }
    const std::size_t bytes = count * mLayout.bytesPerSample();
    auto data = std::make_shared<std::vector<std::uint8_t>>();
    data->reserve(mData->size() + bytes);
    data->insert(data->end(), mData->begin(), mData->end());
    data->insert(data->end(), samples, samples + bytes);
    mData = std::move(data);
    mClasses.push_back({label, count});
}

std::vector<std::uint8_t> ExemplarMemory::payload() const
{
    PayloadWriter w;
    writeLayout(w, mLayout);
    w.put<std::uint32_t>(mPolicy == Policy::Total ? 0 : 1);
    w.put<std::uint64_t>(mBudget);
    w.put<std::uint64_t>(mClasses.size());
    for (const auto &c : mClasses) {
        w.put<std::int64_t>(c.label);
        w.put<std::uint64_t>(c.count);
    }
    w.putBytes(mData->data(), mData->size());
    return w.bytes();
}

void ExemplarMemory::save(const std::string &path) const
{
    writeMemoryFile(path, MemoryKind::Exemplar, payload());
}

std::vector<std::uint8_t> ExemplarMemory::toBytes() const
{
    return encodeMemory(MemoryKind::Exemplar, payload());
}

ExemplarMemory ExemplarMemory::load(const std::string &path)
{
    PayloadReader r = readMemoryFile(path, MemoryKind::Exemplar);
    return fromPayload(r);
}

ExemplarMemory ExemplarMemory::fromBytes(std::vector<std::uint8_t> bytes, const std::string &source)
{
    PayloadReader r = decodeMemory(std::move(bytes), source, MemoryKind::Exemplar);
    return fromPayload(r);
}

ExemplarMemory ExemplarMemory::fromPayload(PayloadReader &r)
{
    SampleLayout layout = readLayout(r);
    const auto policy = r.get<std::uint32_t>();
    if (policy > 1) {
        r.fail(fmt::format("unknown budget policy {}", policy));
    }
    const auto budget = r.get<std::uint64_t>();
    if (budget == 0) {
        r.fail("budget 0");
    }
    ExemplarMemory mem(policy == 0 ? Policy::Total : Policy::PerClass,
                       static_cast<std::size_t>(budget), layout);
    const auto nbClasses = r.get<std::uint64_t>();
    std::size_t total = 0;
    for (std::uint64_t c = 0; c < nbClasses; ++c) {
        const auto label = r.get<std::int64_t>();
        const auto count = r.get<std::uint64_t>();
        mem.mClasses.push_back({label, static_cast<std::size_t>(count)});
        total += static_cast<std::size_t>(count);
    }
    auto data = std::make_shared<std::vector<std::uint8_t>>(r.getBytes());
    r.expectEnd();
    if (data->size() != total * layout.bytesPerSample()) {
        r.fail(fmt::format("{} bytes of samples for {} exemplars of {} bytes", data->size(), total,
                           layout.bytesPerSample()));
    }
    mem.mData = std::move(data);
    return mem;
}

// ------------------------------------------------------- ReservoirMemory --

ReservoirMemory::ReservoirMemory(std::size_t capacity, SampleLayout layout, std::uint64_t seed)
    : mCapacity(capacity), mLayout(std::move(layout)), mRng(seed)
{
    mLayout.check();
    if (capacity == 0) {
        throw std::invalid_argument("reservoir capacity must be > 0");
    }
    mData = std::make_shared<std::vector<std::uint8_t>>(capacity * mLayout.bytesPerSample());
    mLabels.reserve(capacity);
}

void ReservoirMemory::addBatch(const std::uint8_t *samples, const std::int64_t *labels,
                               std::size_t count)
{
    const std::size_t bps = mLayout.bytesPerSample();
    for (std::size_t i = 0; i < count; ++i) {
        // Algorithm R: sample number t (0-based) replaces a random slot with
        // probability capacity / (t + 1).
        std::size_t slot = mCapacity;
        if (mLabels.size() < mCapacity) {
            slot = mLabels.size();
            mLabels.push_back(labels[i]);
        } else {
            const std::uint64_t j = mRng.below(mSeen + 1);
            if (j < mCapacity) {
                slot = static_cast<std::size_t>(j);
                mLabels[slot] = labels[i];
            }
        }
        if (slot < mCapacity) {
            std::memcpy(mData->data() + slot * bps, samples + i * bps, bps);
        }
        ++mSeen;
    }
}

std::size_t ReservoirMemory::nbytes() const
{
    return mData->size() + mLabels.capacity() * sizeof(std::int64_t);
}

void ReservoirMemory::save(const std::string &path) const
{
    PayloadWriter w;
    writeLayout(w, mLayout);
    w.put<std::uint64_t>(mCapacity);
    w.put<std::uint64_t>(mSeen);
    w.put<std::uint64_t>(mRng.state());
    w.putBytes(reinterpret_cast<const std::uint8_t *>(mLabels.data()),
               mLabels.size() * sizeof(std::int64_t));
    w.putBytes(mData->data(), mLabels.size() * mLayout.bytesPerSample());
    writeMemoryFile(path, MemoryKind::Reservoir, w.bytes());
}

ReservoirMemory ReservoirMemory::load(const std::string &path)
{
    PayloadReader r = readMemoryFile(path, MemoryKind::Reservoir);
    SampleLayout layout = readLayout(r);
    const auto capacity = r.get<std::uint64_t>();
    const auto seen = r.get<std::uint64_t>();
    const auto state = r.get<std::uint64_t>();
    if (capacity == 0 || capacity > (std::uint64_t{1} << 40) / layout.bytesPerSample()) {
        r.fail(fmt::format("capacity {} is not plausible", capacity));
    }
    ReservoirMemory mem(static_cast<std::size_t>(capacity), layout, 0);
    mem.mRng = SplitMix64(state);
    mem.mSeen = seen;
    const auto labelBytes = r.getBytes();
    const auto data = r.getBytes();
    r.expectEnd();
    const std::size_t n = labelBytes.size() / sizeof(std::int64_t);
    if (labelBytes.size() % sizeof(std::int64_t) != 0 || n > capacity || n > seen ||
        data.size() != n * layout.bytesPerSample()) {
        r.fail("sample and label counts do not agree");
    }
    mem.mLabels.resize(n);
    std::memcpy(mem.mLabels.data(), labelBytes.data(), labelBytes.size());
    std::memcpy(mem.mData->data(), data.data(), data.size());
    return mem;
}

} // namespace incremental
} // namespace Aidge
