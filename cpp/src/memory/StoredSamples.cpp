#include "aidge/incremental/memory/StoredSamples.hpp"

#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace Aidge {
namespace incremental {

namespace {
/// NumPy's dtype.str of the plain numeric types a memory may hold.
bool isNumericDtype(const std::string &dtype, std::size_t &itemSize)
{
    static const char *const kOneByte[] = {"|b1", "|i1", "|u1"};
    for (const char *name : kOneByte) {
        if (dtype == name) {
            itemSize = 1;
            return true;
        }
    }
    static const char *const kWide[] = {"i2", "u2", "f2", "i4", "u4", "f4",
                                        "i8", "u8", "f8", "c8", "c16"};
    if (dtype.size() < 3 || (dtype[0] != '<' && dtype[0] != '>')) {
        return false;
    }
    for (const char *name : kWide) {
        if (dtype.compare(1, std::string::npos, name) == 0) {
            itemSize = static_cast<std::size_t>(std::stoul(std::string(name + 1)));
            return true;
        }
    }
    return false;
}
} // namespace

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
    std::size_t expected = 0;
    if (!isNumericDtype(dtype, expected)) {
        throw std::invalid_argument(fmt::format(
            "sample layout: dtype '{}' is not a plain numeric type (bool, int, uint, float, "
            "complex)", dtype));
    }
    if (itemSize != expected) {
        throw std::invalid_argument(fmt::format(
            "sample layout: item size {} disagrees with dtype '{}' ({} bytes)", itemSize, dtype,
            expected));
    }
    std::size_t bytes = itemSize;
    for (std::size_t dim : shape) {
        if (dim == 0) {
            throw std::invalid_argument(
                fmt::format("sample layout: samples of shape {} hold no data", shape));
        }
        if (__builtin_mul_overflow(bytes, dim, &bytes) || bytes > kMaxSampleBytes) {
            throw std::invalid_argument(fmt::format(
                "sample layout: samples of shape {} and dtype '{}' exceed {} bytes", shape, dtype,
                kMaxSampleBytes));
        }
    }
}

void writeSampleLayout(PayloadWriter &w, const SampleLayout &layout)
{
    w.put<std::uint64_t>(layout.shape.size());
    for (std::size_t dim : layout.shape) {
        w.put<std::uint64_t>(dim);
    }
    w.putString(layout.dtype);
    w.put<std::uint64_t>(layout.itemSize);
}

SampleLayout readSampleLayout(PayloadReader &r)
{
    SampleLayout layout;
    const auto ndim = r.get<std::uint64_t>();
    if (ndim > 32) {
        r.fail(fmt::format("field 'sample rank': {} is not plausible (at most 32)", ndim));
    }
    for (std::uint64_t i = 0; i < ndim; ++i) {
        layout.shape.push_back(static_cast<std::size_t>(r.get<std::uint64_t>()));
    }
    layout.dtype = r.getString();
    layout.itemSize = static_cast<std::size_t>(r.get<std::uint64_t>());
    try {
        layout.check();
    } catch (const std::invalid_argument &e) {
        r.fail(fmt::format("field 'layout': {}", e.what()));
    }
    return layout;
}

} // namespace incremental
} // namespace Aidge
