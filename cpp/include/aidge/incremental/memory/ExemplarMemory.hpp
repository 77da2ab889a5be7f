/**
 * A replay memory of class-balanced exemplar sets under a budget, for
 * rehearsal-based class-incremental learning (iCaRL, PyCIL/FACIL style).
 * Each class's exemplars are kept in selection order, so reducing a class to
 * a smaller quota keeps a prefix ("reduce exemplar sets", iCaRL Algorithm 5).
 *
 * Each exemplar may carry extra float32 arrays (StoredSamples.hpp), kept,
 * dropped and saved with it.
 *
 * Samples are stored as given (StoredSamples.hpp), in one buffer shared with
 * the NumPy arrays handed to Python, so reading costs no copy; a view is a
 * snapshot: each change swaps in a new buffer.
 *
 * Every mutating call either succeeds or throws leaving the memory as it was
 * (all checks and allocations happen before the first change). Loading
 * validates every field of the file (dtype, sizes with overflow-checked
 * arithmetic, counts within budget and quotas, unique labels): the checksum
 * only guards against accidents, not against a crafted file.
 */
#ifndef AIDGE_INCREMENTAL_MEMORY_EXEMPLARMEMORY_H_
#define AIDGE_INCREMENTAL_MEMORY_EXEMPLARMEMORY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "aidge/incremental/memory/MemoryFile.hpp"
#include "aidge/incremental/memory/StoredSamples.hpp"

namespace Aidge {
namespace incremental {

using SharedBytes = std::shared_ptr<const std::vector<std::uint8_t>>;

class ExemplarMemory {
  public:
    enum class Policy { Total, PerClass };

    struct ClassSet
    {
        std::int64_t label;
        std::size_t count;
    };

    ExemplarMemory(Policy policy, std::size_t budget, SampleLayout layout,
                   SampleExtras extras = SampleExtras());

    /// Per-class quotas once nbClasses classes are held, in arrival order:
    /// Total: budget / nbClasses each, the first budget % nbClasses classes
    /// one more; PerClass: budget each. Throws if the budget cannot give
    /// every class at least one exemplar.
    std::vector<std::size_t> quotas(std::size_t nbClasses) const;

    /// Trim the classes held to their quotas for nbClassesAfter classes,
    /// keeping each set's prefix.
    void reduce(std::size_t nbClassesAfter);

    /// Append a new class's exemplars (count samples, in selection order, with
    /// one input per declared extra array). count must not exceed the class's
    /// quota given the classes held.
    void addClass(std::int64_t label, const std::uint8_t *samples, std::size_t count,
                  const std::vector<ExtraInput> &extras = {});

    /// One class-incremental step, all or nothing: reduce the held classes to
    /// their quotas for classes().size() + labels.size() classes, then append
    /// each new class (samples[i] holds counts[i] samples; extras[i] their
    /// extra arrays, one input per declared array, or nothing when none is
    /// declared). Labels must be new and distinct, each count in [1, quota].
    /// Throws before any change.
    void addClasses(const std::vector<std::int64_t> &labels,
                    const std::vector<const std::uint8_t *> &samples,
                    const std::vector<std::size_t> &counts,
                    const std::vector<std::vector<ExtraInput>> &extras = {});

    Policy policy() const { return mPolicy; }
    std::size_t budget() const { return mBudget; }
    const SampleLayout &layout() const { return mLayout; }
    const std::vector<ClassSet> &classes() const { return mClasses; }
    std::size_t size() const;
    SharedBytes buffer() const { return mData; }
    /// The extra arrays, row i for exemplar i (class by class).
    const SampleExtras &extras() const { return mExtras; }
    /// Exact bytes held: sample buffer + class table + extra arrays.
    std::size_t nbytes() const;

    void save(const std::string &path) const;
    static ExemplarMemory load(const std::string &path);
    /// The file's bytes, to embed in a checkpoint; fromBytes verifies them.
    std::vector<std::uint8_t> toBytes() const;
    static ExemplarMemory fromBytes(std::vector<std::uint8_t> bytes, const std::string &source);

  private:
    std::vector<std::uint8_t> payload() const;
    static ExemplarMemory fromPayload(PayloadReader &r);

    Policy mPolicy;
    std::size_t mBudget;
    SampleLayout mLayout;
    std::vector<ClassSet> mClasses;
    SharedBytes mData;
    SampleExtras mExtras;
};

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_MEMORY_EXEMPLARMEMORY_H_
