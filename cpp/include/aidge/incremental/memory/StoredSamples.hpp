/**
 * How the replay memories (ExemplarMemory, ReservoirMemory) store samples:
 * the layout of one sample, the bounds on sizes, the per-sample extra arrays
 * (SampleExtras: DER++'s logits), and their encoding in a memory file
 * (MemoryFile.hpp).
 *
 * Samples are stored as given (any shape, a numeric dtype), in one buffer per
 * memory; NumPy views of it are snapshots (each memory says how).
 */
#ifndef AIDGE_INCREMENTAL_MEMORY_STOREDSAMPLES_H_
#define AIDGE_INCREMENTAL_MEMORY_STOREDSAMPLES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
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

/// Most extra arrays a memory holds, and most columns in one.
constexpr std::size_t kMaxExtras = 16;
constexpr std::size_t kMaxExtraWidth = std::size_t{1} << 24;

/// One per-sample float32 array stored beside the samples (DER++'s logits).
/// Row i holds its first valid[i] columns (in [1, width]); the others are zero.
struct ExtraArray
{
    std::string name;
    std::size_t width = 0;
    std::vector<std::uint64_t> valid; ///< valid columns of each row
    std::vector<float> values;        ///< rows x width, row-major
};

/// What a batch brings for one extra array: one row of `columns` floats per sample.
struct ExtraInput
{
    const float *values = nullptr;
    std::size_t columns = 0;
};

/// The extra arrays of a memory, row i belonging to its stored sample i; the
/// memory keeps them consistent with its samples through every operation
/// (add, reservoir replacement, reduction, files). A row's width grows: an
/// input wider than its array widens the array (the old rows padded with
/// zeros, their valid counts unchanged). Every call that may throw leaves the
/// object as it was; append and assign do not throw once prepared (widened,
/// reserved).
class SampleExtras {
  public:
    SampleExtras() = default;
    /// Declares the arrays (name, initial width): at most kMaxExtras, names
    /// unique identifiers of 1 to 64 characters [A-Za-z0-9_], widths in
    /// [1, kMaxExtraWidth]. Throws std::invalid_argument naming the problem.
    explicit SampleExtras(const std::vector<std::pair<std::string, std::size_t>> &declared);

    /// Number of arrays.
    std::size_t size() const { return mArrays.size(); }
    /// Rows held (0 without arrays).
    std::size_t rows() const { return mArrays.empty() ? 0 : mArrays.front().valid.size(); }
    const std::vector<ExtraArray> &arrays() const { return mArrays; }
    /// The array named `name`; std::out_of_range naming it and the arrays held otherwise.
    const ExtraArray &get(const std::string &name) const;
    /// Exact bytes held (values and valid counts).
    std::size_t nbytes() const;

    /// Throws std::invalid_argument naming the array unless `inputs` holds one
    /// input per array, in order, each of columns in [1, kMaxExtraWidth] and
    /// count rows of finite values.
    void check(const std::vector<ExtraInput> &inputs, std::size_t count) const;
    /// Whether an input is wider than its array.
    bool needsWidening(const std::vector<ExtraInput> &inputs) const;
    /// A copy whose arrays are at least as wide as the inputs (new columns zero).
    SampleExtras widened(const std::vector<ExtraInput> &inputs) const;
    /// A copy holding the rows [first, first + count) of each range, in order.
    SampleExtras gather(const std::vector<std::pair<std::size_t, std::size_t>> &ranges) const;
    /// Room for `rows` rows (may throw; nothing visible changes).
    void reserve(std::size_t rows);
    /// Appends input row i (within the reserved rows, inputs no wider than the arrays).
    void append(const std::vector<ExtraInput> &inputs, std::size_t i) noexcept;
    /// Overwrites row j with input row i (inputs no wider than the arrays).
    void assign(std::size_t j, const std::vector<ExtraInput> &inputs, std::size_t i) noexcept;

    /// Appends the arrays to a memory file's payload (format version 2).
    void write(PayloadWriter &w) const;
    /// Reads the arrays of `rows` samples back: from a version-2 payload, with
    /// every field validated (CorruptFileError naming it); none from version 1.
    static SampleExtras read(PayloadReader &r, std::size_t rows);

  private:
    std::vector<ExtraArray> mArrays;
};

/// Appends the layout to a memory file's payload.
void writeSampleLayout(PayloadWriter &w, const SampleLayout &layout);
/// Reads a layout back and checks it (CorruptFileError naming the field).
SampleLayout readSampleLayout(PayloadReader &r);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_MEMORY_STOREDSAMPLES_H_
