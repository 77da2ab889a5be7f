#include "aidge/incremental/memory/ExemplarMemory.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace Aidge {
namespace incremental {

ExemplarMemory::ExemplarMemory(Policy policy, std::size_t budget, SampleLayout layout,
                               SampleExtras extras)
    : mPolicy(policy),
      mBudget(budget),
      mLayout(std::move(layout)),
      mData(std::make_shared<const std::vector<std::uint8_t>>()),
      mExtras(std::move(extras))
{
    mLayout.check();
    if (mExtras.rows() != 0) {
        throw std::invalid_argument("a new memory's extra arrays must hold no rows");
    }
    if (budget == 0 || budget > kMaxBudget) {
        throw std::invalid_argument(fmt::format("memory budget must be in [1, 2^62], got {}", budget));
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
    return mData->size() + mClasses.size() * sizeof(ClassSet) + mExtras.nbytes();
}

void ExemplarMemory::reduce(std::size_t nbClassesAfter)
{
    if (nbClassesAfter < mClasses.size()) {
        throw std::invalid_argument(fmt::format(
            "reduce: {} classes are held, cannot plan for {}", mClasses.size(), nbClassesAfter));
    }
    const std::vector<std::size_t> q = quotas(nbClassesAfter);
    const std::size_t bps = mLayout.bytesPerSample();
    std::vector<ClassSet> classes = mClasses;
    auto data = std::make_shared<std::vector<std::uint8_t>>();
    data->reserve(mData->size());
    std::vector<std::pair<std::size_t, std::size_t>> kept; // rows kept, per class
    std::size_t offset = 0;
    for (std::size_t c = 0; c < classes.size(); ++c) {
        const std::size_t keep = std::min(classes[c].count, q[c]);
        const auto first = mData->begin() + static_cast<std::ptrdiff_t>(offset * bps);
        data->insert(data->end(), first, first + static_cast<std::ptrdiff_t>(keep * bps));
        kept.emplace_back(offset, keep);
        offset += classes[c].count;
        classes[c].count = keep;
    }
    data->shrink_to_fit();
    SampleExtras extras = mExtras.gather(kept);
    // Commit: nothing below throws.
    mClasses.swap(classes);
    mData = std::move(data);
    mExtras = std::move(extras);
}

void ExemplarMemory::addClass(std::int64_t label, const std::uint8_t *samples, std::size_t count,
                              const std::vector<ExtraInput> &extras)
{
    const std::vector<std::size_t> q = quotas(mClasses.size() + 1);
    for (std::size_t c = 0; c < mClasses.size(); ++c) {
        if (mClasses[c].count > q[c]) {
            throw std::invalid_argument(fmt::format(
                "class {} holds {} exemplars, over its quota of {}: reduce() before adding a class",
                mClasses[c].label, mClasses[c].count, q[c]));
        }
    }
    addClasses({label}, {samples}, {count}, {extras});
}

void ExemplarMemory::addClasses(const std::vector<std::int64_t> &labels,
                                const std::vector<const std::uint8_t *> &samples,
                                const std::vector<std::size_t> &counts,
                                const std::vector<std::vector<ExtraInput>> &extras)
{
    if (labels.size() != samples.size() || labels.size() != counts.size()) {
        throw std::invalid_argument("addClasses: labels, samples and counts differ in length");
    }
    // Without declared arrays, no extras or empty ones; with them, one input list per class.
    const bool noExtras = mExtras.size() == 0 &&
                          std::all_of(extras.begin(), extras.end(), [](const auto &e) { return e.empty(); });
    if (!noExtras && extras.size() != labels.size()) {
        throw std::invalid_argument(fmt::format(
            "addClasses: the memory stores {} extra array(s) per exemplar: give them for each of the "
            "{} classes ({} given)", mExtras.size(), labels.size(), extras.size()));
    }
    if (!noExtras) {
        for (std::size_t i = 0; i < labels.size(); ++i) {
            mExtras.check(extras[i], counts[i]);
        }
    }
    if (labels.empty()) {
        return;
    }
    const std::size_t nbAfter = mClasses.size() + labels.size();
    const std::vector<std::size_t> q = quotas(nbAfter); // throws if the budget is too small
    for (std::size_t i = 0; i < labels.size(); ++i) {
        for (const auto &c : mClasses) {
            if (c.label == labels[i]) {
                throw std::invalid_argument(
                    fmt::format("class {} is already in the memory", labels[i]));
            }
        }
        for (std::size_t j = 0; j < i; ++j) {
            if (labels[j] == labels[i]) {
                throw std::invalid_argument(
                    fmt::format("class {} is given twice in one step", labels[i]));
            }
        }
        if (counts[i] == 0) {
            throw std::invalid_argument(
                fmt::format("class {} brings no exemplar (empty class)", labels[i]));
        }
        const std::size_t quota = q[mClasses.size() + i];
        if (counts[i] > quota) {
            throw std::invalid_argument(fmt::format(
                "class {}: {} exemplars exceed its quota of {} (budget {}, {} classes)", labels[i],
                counts[i], quota, mBudget, nbAfter));
        }
    }
    // Build the new state aside; commit only once everything is allocated.
    const std::size_t bps = mLayout.bytesPerSample();
    std::vector<ClassSet> classes;
    classes.reserve(nbAfter);
    std::size_t total = 0;
    for (std::size_t c = 0; c < mClasses.size(); ++c) {
        classes.push_back({mClasses[c].label, std::min(mClasses[c].count, q[c])});
        total += classes.back().count;
    }
    for (std::size_t i = 0; i < labels.size(); ++i) {
        classes.push_back({labels[i], counts[i]});
        total += counts[i];
    }
    auto data = std::make_shared<std::vector<std::uint8_t>>();
    data->reserve(total * bps);
    std::vector<std::pair<std::size_t, std::size_t>> kept; // rows kept, per held class
    std::size_t offset = 0;
    for (std::size_t c = 0; c < mClasses.size(); ++c) {
        const auto first = mData->begin() + static_cast<std::ptrdiff_t>(offset * bps);
        data->insert(data->end(), first, first + static_cast<std::ptrdiff_t>(classes[c].count * bps));
        kept.emplace_back(offset, classes[c].count);
        offset += mClasses[c].count;
    }
    for (std::size_t i = 0; i < labels.size(); ++i) {
        data->insert(data->end(), samples[i], samples[i] + counts[i] * bps);
    }
    SampleExtras rows = mExtras.gather(kept);
    if (!noExtras) {
        for (std::size_t i = 0; i < labels.size(); ++i) {
            if (rows.needsWidening(extras[i])) {
                rows = rows.widened(extras[i]);
            }
        }
        rows.reserve(total);
        for (std::size_t i = 0; i < labels.size(); ++i) {
            for (std::size_t k = 0; k < counts[i]; ++k) {
                rows.append(extras[i], k);
            }
        }
    }
    mClasses.swap(classes);
    mData = std::move(data);
    mExtras = std::move(rows);
}

std::vector<std::uint8_t> ExemplarMemory::payload() const
{
    PayloadWriter w;
    writeSampleLayout(w, mLayout);
    w.put<std::uint32_t>(mPolicy == Policy::Total ? 0 : 1);
    w.put<std::uint64_t>(mBudget);
    w.put<std::uint64_t>(mClasses.size());
    for (const auto &c : mClasses) {
        w.put<std::int64_t>(c.label);
        w.put<std::uint64_t>(c.count);
    }
    w.putBytes(mData->data(), mData->size());
    mExtras.write(w);
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
    SampleLayout layout = readSampleLayout(r);
    const auto policy = r.get<std::uint32_t>();
    if (policy > 1) {
        r.fail(fmt::format("field 'policy': unknown budget policy {}", policy));
    }
    const auto budget = r.get<std::uint64_t>();
    if (budget == 0 || budget > kMaxBudget) {
        r.fail(fmt::format("field 'budget': {} is outside [1, 2^62]", budget));
    }
    ExemplarMemory mem(policy == 0 ? Policy::Total : Policy::PerClass,
                       static_cast<std::size_t>(budget), layout);
    const auto nbClasses = r.get<std::uint64_t>();
    // Each class takes 16 bytes of the payload: a count beyond what is left is a lie.
    if (nbClasses > r.remaining() / 16) {
        r.fail(fmt::format("field 'class count': {} classes announced, the file holds at most {}",
                           nbClasses, r.remaining() / 16));
    }
    if (policy == 0 && nbClasses > budget) {
        r.fail(fmt::format("field 'class count': {} classes exceed the budget of {} exemplars",
                           nbClasses, budget));
    }
    const std::vector<std::size_t> q = mem.quotas(static_cast<std::size_t>(nbClasses));
    std::vector<ClassSet> classes;
    classes.reserve(static_cast<std::size_t>(nbClasses));
    std::size_t total = 0;
    for (std::uint64_t c = 0; c < nbClasses; ++c) {
        const auto label = r.get<std::int64_t>();
        const auto count = r.get<std::uint64_t>();
        for (const auto &held : classes) {
            if (held.label == label) {
                r.fail(fmt::format("field 'class labels': label {} appears twice", label));
            }
        }
        if (count == 0 || count > q[c]) {
            r.fail(fmt::format("field 'class counts': class {} holds {} exemplars, outside [1, {}] "
                               "(its quota)", label, count, q[c]));
        }
        if (__builtin_add_overflow(total, static_cast<std::size_t>(count), &total)) {
            r.fail("field 'class counts': the counts overflow");
        }
        classes.push_back({label, static_cast<std::size_t>(count)});
    }
    std::size_t expected = 0;
    if (__builtin_mul_overflow(total, layout.bytesPerSample(), &expected)) {
        r.fail(fmt::format("field 'class counts': {} exemplars of {} bytes overflow", total,
                           layout.bytesPerSample()));
    }
    const auto size = r.get<std::uint64_t>();
    if (size != expected) {
        r.fail(fmt::format("field 'samples': {} bytes for {} exemplars of {} bytes", size, total,
                           layout.bytesPerSample()));
    }
    auto data = std::make_shared<std::vector<std::uint8_t>>(r.getRaw(static_cast<std::size_t>(size)));
    SampleExtras extras = SampleExtras::read(r, total);
    r.expectEnd();
    mem.mClasses = std::move(classes);
    mem.mData = std::move(data);
    mem.mExtras = std::move(extras);
    return mem;
}

} // namespace incremental
} // namespace Aidge
