#include "aidge/incremental/memory/StoredSamples.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
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

// ------------------------------------------------------------- extra arrays --

namespace {
/// Empty when `name` is a valid extra name, else what is wrong with it.
std::string badExtraName(const std::string &name)
{
    if (name.empty() || name.size() > 64) {
        return fmt::format("must have 1 to 64 characters, got {}", name.size());
    }
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '_';
        if (!ok) {
            return "must hold only letters, digits and '_'";
        }
    }
    return {};
}

/// Row j of `a` := row i of the input, zero-padded.
void writeRow(ExtraArray &a, std::size_t j, const ExtraInput &in, std::size_t i) noexcept
{
    float *row = a.values.data() + j * a.width;
    std::memcpy(row, in.values + i * in.columns, in.columns * sizeof(float));
    std::fill(row + in.columns, row + a.width, 0.0f);
    a.valid[j] = in.columns;
}

/// rows * width * per without overflow, or false.
bool product(std::size_t rows, std::size_t width, std::size_t per, std::size_t &out)
{
    return !__builtin_mul_overflow(rows, width, &out) && !__builtin_mul_overflow(out, per, &out);
}
} // namespace

SampleExtras::SampleExtras(const std::vector<std::pair<std::string, std::size_t>> &declared)
{
    if (declared.size() > kMaxExtras) {
        throw std::invalid_argument(
            fmt::format("extras: {} arrays declared, at most {}", declared.size(), kMaxExtras));
    }
    for (const auto &d : declared) {
        const std::string bad = badExtraName(d.first);
        if (!bad.empty()) {
            throw std::invalid_argument(fmt::format("extras: the name '{}' {}", d.first, bad));
        }
        for (const auto &a : mArrays) {
            if (a.name == d.first) {
                throw std::invalid_argument(fmt::format("extras: '{}' is declared twice", d.first));
            }
        }
        if (d.second == 0 || d.second > kMaxExtraWidth) {
            throw std::invalid_argument(fmt::format("extras: the width of '{}' must be in [1, {}], got {}",
                                                    d.first, kMaxExtraWidth, d.second));
        }
        ExtraArray a;
        a.name = d.first;
        a.width = d.second;
        mArrays.push_back(std::move(a));
    }
}

const ExtraArray &SampleExtras::get(const std::string &name) const
{
    std::vector<std::string> names;
    for (const auto &a : mArrays) {
        if (a.name == name) {
            return a;
        }
        names.push_back(a.name);
    }
    throw std::out_of_range(fmt::format("the memory has no extra array '{}' (it has: {})", name,
                                        names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "))));
}

std::size_t SampleExtras::nbytes() const
{
    std::size_t n = 0;
    for (const auto &a : mArrays) {
        n += a.values.size() * sizeof(float) + a.valid.size() * sizeof(std::uint64_t);
    }
    return n;
}

void SampleExtras::check(const std::vector<ExtraInput> &inputs, std::size_t count) const
{
    if (inputs.size() != mArrays.size()) {
        throw std::invalid_argument(fmt::format(
            "extras: the memory stores {} extra array(s) per sample, {} given", mArrays.size(),
            inputs.size()));
    }
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        const ExtraInput &in = inputs[k];
        if (in.columns == 0 || in.columns > kMaxExtraWidth) {
            throw std::invalid_argument(fmt::format("extras: '{}' must have 1 to {} columns, got {}",
                                                    mArrays[k].name, kMaxExtraWidth, in.columns));
        }
        if (count > 0 && in.values == nullptr) {
            throw std::invalid_argument(fmt::format("extras: '{}' has no values", mArrays[k].name));
        }
        for (std::size_t i = 0; i < count * in.columns; ++i) {
            if (!std::isfinite(in.values[i])) {
                throw std::invalid_argument(fmt::format("extras: '{}' holds {} at [{}, {}]",
                                                        mArrays[k].name, in.values[i],
                                                        i / in.columns, i % in.columns));
            }
        }
    }
}

bool SampleExtras::needsWidening(const std::vector<ExtraInput> &inputs) const
{
    for (std::size_t k = 0; k < mArrays.size() && k < inputs.size(); ++k) {
        if (inputs[k].columns > mArrays[k].width) {
            return true;
        }
    }
    return false;
}

SampleExtras SampleExtras::widened(const std::vector<ExtraInput> &inputs) const
{
    SampleExtras out;
    out.mArrays.reserve(mArrays.size());
    for (std::size_t k = 0; k < mArrays.size(); ++k) {
        const ExtraArray &a = mArrays[k];
        const std::size_t width = k < inputs.size() ? std::max(a.width, inputs[k].columns) : a.width;
        ExtraArray b;
        b.name = a.name;
        b.width = width;
        b.valid = a.valid;
        b.values.assign(a.valid.size() * width, 0.0f);
        for (std::size_t i = 0; i < a.valid.size(); ++i) {
            std::memcpy(b.values.data() + i * width, a.values.data() + i * a.width, a.width * sizeof(float));
        }
        out.mArrays.push_back(std::move(b));
    }
    return out;
}

SampleExtras SampleExtras::gather(const std::vector<std::pair<std::size_t, std::size_t>> &ranges) const
{
    std::size_t total = 0;
    for (const auto &r : ranges) {
        total += r.second;
    }
    SampleExtras out;
    out.mArrays.reserve(mArrays.size());
    for (const ExtraArray &a : mArrays) {
        ExtraArray b;
        b.name = a.name;
        b.width = a.width;
        b.valid.reserve(total);
        b.values.reserve(total * a.width);
        for (const auto &r : ranges) {
            b.valid.insert(b.valid.end(), a.valid.begin() + static_cast<std::ptrdiff_t>(r.first),
                           a.valid.begin() + static_cast<std::ptrdiff_t>(r.first + r.second));
            b.values.insert(b.values.end(), a.values.begin() + static_cast<std::ptrdiff_t>(r.first * a.width),
                            a.values.begin() + static_cast<std::ptrdiff_t>((r.first + r.second) * a.width));
        }
        out.mArrays.push_back(std::move(b));
    }
    return out;
}

void SampleExtras::reserve(std::size_t rows)
{
    for (ExtraArray &a : mArrays) {
        a.valid.reserve(rows);
        a.values.reserve(rows * a.width);
    }
}

void SampleExtras::append(const std::vector<ExtraInput> &inputs, std::size_t i) noexcept
{
    for (std::size_t k = 0; k < mArrays.size(); ++k) {
        ExtraArray &a = mArrays[k];
        a.valid.push_back(0); // within the reserved capacity: no allocation
        a.values.resize(a.values.size() + a.width);
        writeRow(a, a.valid.size() - 1, inputs[k], i);
    }
}

void SampleExtras::assign(std::size_t j, const std::vector<ExtraInput> &inputs, std::size_t i) noexcept
{
    for (std::size_t k = 0; k < mArrays.size(); ++k) {
        writeRow(mArrays[k], j, inputs[k], i);
    }
}

void SampleExtras::write(PayloadWriter &w) const
{
    w.put<std::uint64_t>(mArrays.size());
    for (const ExtraArray &a : mArrays) {
        w.putString(a.name);
        w.put<std::uint64_t>(a.width);
        w.putBytes(reinterpret_cast<const std::uint8_t *>(a.valid.data()),
                   a.valid.size() * sizeof(std::uint64_t));
        w.putBytes(reinterpret_cast<const std::uint8_t *>(a.values.data()), a.values.size() * sizeof(float));
    }
}

SampleExtras SampleExtras::read(PayloadReader &r, std::size_t rows)
{
    SampleExtras out;
    if (r.version() < 2) {
        return out;
    }
    const auto count = r.get<std::uint64_t>();
    if (count > kMaxExtras) {
        r.fail(fmt::format("field 'extra count': {} extra arrays, at most {}", count, kMaxExtras));
    }
    for (std::uint64_t k = 0; k < count; ++k) {
        ExtraArray a;
        a.name = r.getString();
        const std::string bad = badExtraName(a.name);
        if (!bad.empty()) {
            r.fail(fmt::format("field 'extra name': the name of extra array {} {}", k, bad));
        }
        for (const auto &held : out.mArrays) {
            if (held.name == a.name) {
                r.fail(fmt::format("field 'extra name': '{}' appears twice", a.name));
            }
        }
        const auto width = r.get<std::uint64_t>();
        if (width == 0 || width > kMaxExtraWidth) {
            r.fail(fmt::format("field 'extra width': '{}' has width {}, outside [1, {}]", a.name, width,
                               kMaxExtraWidth));
        }
        a.width = static_cast<std::size_t>(width);
        std::size_t expected = 0;
        const auto validSize = r.get<std::uint64_t>();
        if (!product(rows, 1, sizeof(std::uint64_t), expected) || validSize != expected) {
            r.fail(fmt::format("field 'extra valid columns': '{}' has {} bytes of valid counts for {} "
                               "samples", a.name, validSize, rows));
        }
        const auto validBytes = r.getRaw(static_cast<std::size_t>(validSize));
        a.valid.resize(rows);
        std::memcpy(a.valid.data(), validBytes.data(), validBytes.size());
        for (std::size_t i = 0; i < rows; ++i) {
            if (a.valid[i] == 0 || a.valid[i] > width) {
                r.fail(fmt::format("field 'extra valid columns': row {} of '{}' has {} valid columns, "
                                   "outside [1, {}]", i, a.name, a.valid[i], width));
            }
        }
        const auto valuesSize = r.get<std::uint64_t>();
        if (!product(rows, a.width, sizeof(float), expected) || valuesSize != expected) {
            r.fail(fmt::format("field 'extra values': '{}' has {} bytes for {} samples of {} float32",
                               a.name, valuesSize, rows, a.width));
        }
        const auto valueBytes = r.getRaw(static_cast<std::size_t>(valuesSize));
        a.values.resize(rows * a.width);
        std::memcpy(a.values.data(), valueBytes.data(), valueBytes.size());
        for (std::size_t i = 0; i < rows; ++i) {
            for (std::size_t j = 0; j < a.width; ++j) {
                const float v = a.values[i * a.width + j];
                if (!std::isfinite(v)) {
                    r.fail(fmt::format("field 'extra values': '{}' holds {} at [{}, {}]", a.name, v, i, j));
                }
                if (j >= a.valid[i] && v != 0.0f) {
                    r.fail(fmt::format("field 'extra values': '{}' holds {} at [{}, {}], past the row's {} "
                                       "valid columns (padding is zero)", a.name, v, i, j, a.valid[i]));
                }
            }
        }
        out.mArrays.push_back(std::move(a));
    }
    return out;
}

} // namespace incremental
} // namespace Aidge
