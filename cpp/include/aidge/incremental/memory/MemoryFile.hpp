/**
 * The single-file container of the replay memories: a fixed header (magic,
 * format version, kind, payload size, FNV-1a 64 checksum) then the payload.
 * Version 2 adds the per-sample extra arrays (StoredSamples.hpp) at the end of
 * the payload; version 1 files (no extras) are still read.
 * Writes are atomic (temporary file in the same directory, fsync, rename,
 * fsync of the directory): a crash leaves the previous file intact.
 */
#ifndef AIDGE_INCREMENTAL_MEMORY_MEMORYFILE_H_
#define AIDGE_INCREMENTAL_MEMORY_MEMORYFILE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace Aidge {
namespace incremental {

/// Raised for a memory file that is missing, truncated, corrupted or of an
/// unknown version (in Python: aidge_incremental.CorruptFileError, a ValueError).
class CorruptFileError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

enum class MemoryKind : std::uint32_t { Exemplar = 1, Reservoir = 2 };

/// The version written; 2 adds the per-sample extra arrays.
constexpr std::uint32_t kMemoryFormatVersion = 2;
/// The oldest version read (1: no extra arrays).
constexpr std::uint32_t kOldestMemoryFormatVersion = 1;

std::uint64_t fnv1a64(const std::uint8_t *data, std::size_t size);

/// Appends plain little-endian values to a payload.
class PayloadWriter {
  public:
    template <class T> void put(const T &v)
    {
        const auto *p = reinterpret_cast<const std::uint8_t *>(&v);
        mBytes.insert(mBytes.end(), p, p + sizeof(T));
    }
    void putBytes(const std::uint8_t *data, std::size_t size)
    {
        put<std::uint64_t>(size);
        mBytes.insert(mBytes.end(), data, data + size);
    }
    void putString(const std::string &s)
    {
        putBytes(reinterpret_cast<const std::uint8_t *>(s.data()), s.size());
    }
    const std::vector<std::uint8_t> &bytes() const { return mBytes; }

  private:
    std::vector<std::uint8_t> mBytes;
};

/// Reads a payload back; any read past the end throws CorruptFileError
/// naming the file.
class PayloadReader {
  public:
    PayloadReader(std::vector<std::uint8_t> bytes, std::string path,
                  std::uint32_t version = kMemoryFormatVersion)
        : mBytes(std::move(bytes)), mPath(std::move(path)), mVersion(version) {}
    template <class T> T get()
    {
        need(sizeof(T));
        T v;
        std::memcpy(&v, mBytes.data() + mPos, sizeof(T));
        mPos += sizeof(T);
        return v;
    }
    std::vector<std::uint8_t> getBytes();
    /// The next size bytes (no length prefix).
    std::vector<std::uint8_t> getRaw(std::size_t size);
    std::string getString();
    std::size_t remaining() const { return mBytes.size() - mPos; }
    /// The format version of the file the payload comes from.
    std::uint32_t version() const { return mVersion; }
    void expectEnd() const;
    [[noreturn]] void fail(const std::string &what) const;

  private:
    void need(std::size_t n) const;
    std::vector<std::uint8_t> mBytes;
    std::string mPath;
    std::uint32_t mVersion;
    std::size_t mPos = 0;
};

/// Header + payload, as written to a file.
std::vector<std::uint8_t> encodeMemory(MemoryKind kind, const std::vector<std::uint8_t> &payload);
/// Verifies encoded bytes (source names them in errors); returns the payload.
PayloadReader decodeMemory(std::vector<std::uint8_t> bytes, const std::string &source, MemoryKind kind);

void writeMemoryFile(const std::string &path, MemoryKind kind, const std::vector<std::uint8_t> &payload);
/// Largest memory file read (64 GiB): bounds what a path such as /dev/zero
/// or a huge file could make us read.
constexpr std::uint64_t kMaxMemoryFileBytes = std::uint64_t{1} << 36;

/// Reads and verifies the file (a regular file, at most kMaxMemoryFileBytes);
/// returns its payload.
PayloadReader readMemoryFile(const std::string &path, MemoryKind kind);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_MEMORY_MEMORYFILE_H_
