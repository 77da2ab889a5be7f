#include "aidge/incremental/memory/MemoryFile.hpp"

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iterator>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace Aidge {
namespace incremental {

namespace {
constexpr char kMagic[8] = {'A', 'I', 'D', 'G', 'E', 'M', 'E', 'M'};
// magic, version, kind, payload size, checksum
constexpr std::size_t kHeaderSize = 8 + 4 + 4 + 8 + 8;

const char *kindName(MemoryKind kind)
{
    return kind == MemoryKind::Exemplar ? "exemplar memory" : "reservoir memory";
}

void writeAll(int fd, const std::uint8_t *data, std::size_t size, const std::string &path)
{
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::runtime_error(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
}

std::string directoryOf(const std::string &path)
{
    const auto slash = path.find_last_of('/');
    return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}
} // namespace

std::uint64_t fnv1a64(const std::uint8_t *data, std::size_t size)
{
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (std::size_t i = 0; i < size; ++i) {
        h ^= data[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void PayloadReader::need(std::size_t n) const
{
    if (n > mBytes.size() - mPos) {
        fail("truncated content");
    }
}

void PayloadReader::fail(const std::string &what) const
{
    throw CorruptFileError(fmt::format("corrupt memory file '{}': {}", mPath, what));
}

std::vector<std::uint8_t> PayloadReader::getBytes()
{
    const auto size = get<std::uint64_t>();
    return getRaw(static_cast<std::size_t>(size));
}

std::vector<std::uint8_t> PayloadReader::getRaw(std::size_t size)
{
    need(size);
    std::vector<std::uint8_t> out(mBytes.begin() + mPos, mBytes.begin() + mPos + size);
    mPos += size;
    return out;
}

std::string PayloadReader::getString()
{
    const auto bytes = getBytes();
    return std::string(bytes.begin(), bytes.end());
}

void PayloadReader::expectEnd() const
{
    if (mPos != mBytes.size()) {
        fail("unexpected trailing bytes");
    }
}

std::vector<std::uint8_t> encodeMemory(MemoryKind kind, const std::vector<std::uint8_t> &payload)
{
    PayloadWriter header;
    for (char c : kMagic) {
        header.put(c);
    }
    header.put<std::uint32_t>(kMemoryFormatVersion);
    header.put<std::uint32_t>(static_cast<std::uint32_t>(kind));
    header.put<std::uint64_t>(payload.size());
    header.put<std::uint64_t>(fnv1a64(payload.data(), payload.size()));
    std::vector<std::uint8_t> out = header.bytes();
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

void writeMemoryFile(const std::string &path, MemoryKind kind,
                     const std::vector<std::uint8_t> &payload)
{
    const std::vector<std::uint8_t> bytes = encodeMemory(kind, payload);

    // A temporary name of our own, created exclusively and never through a link: a
    // name planted in the folder (a link to another file) is skipped, not followed.
    std::string tmp;
    int fd = -1;
    for (unsigned attempt = 0; fd < 0; ++attempt) {
        tmp = fmt::format("{}.tmp-{}-{}", path, ::getpid(), attempt);
        fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666); // less the umask
        if (fd < 0 && (errno != EEXIST || attempt >= 100)) {
            throw std::runtime_error(fmt::format("cannot create '{}': {}", tmp, std::strerror(errno)));
        }
    }
    try {
        writeAll(fd, bytes.data(), bytes.size(), tmp);
        if (::fsync(fd) != 0) {
            throw std::runtime_error(fmt::format("cannot fsync '{}': {}", tmp, std::strerror(errno)));
        }
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    ::close(fd);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw std::runtime_error(fmt::format("cannot rename '{}' to '{}': {}", tmp, path, std::strerror(err)));
    }
    // Make the rename itself durable.
    const int dir = ::open(directoryOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
}

PayloadReader readMemoryFile(const std::string &path, MemoryKind kind)
{
    // Open first, then check what was opened: a regular file of bounded size
    // (a device such as /dev/zero or a FIFO would be read without end).
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        throw CorruptFileError(
            fmt::format("cannot open memory file '{}': {}", path, std::strerror(errno)));
    }
    std::vector<std::uint8_t> bytes;
    try {
        struct stat st;
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            throw CorruptFileError(fmt::format("memory file '{}' is not a regular file", path));
        }
        if (static_cast<std::uint64_t>(st.st_size) > kMaxMemoryFileBytes) {
            throw CorruptFileError(fmt::format("memory file '{}' holds {} bytes, more than the {} "
                                               "a memory file may hold",
                                               path, st.st_size, kMaxMemoryFileBytes));
        }
        bytes.resize(static_cast<std::size_t>(st.st_size));
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                throw CorruptFileError(
                    fmt::format("cannot read memory file '{}': {}", path, std::strerror(errno)));
            }
            if (n == 0) {
                bytes.resize(done); // shrank while reading: the checks below report it
                break;
            }
            done += static_cast<std::size_t>(n);
        }
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
    return decodeMemory(std::move(bytes), path, kind);
}

PayloadReader decodeMemory(std::vector<std::uint8_t> bytes, const std::string &path, MemoryKind kind)
{
    PayloadReader header(std::vector<std::uint8_t>(bytes.begin(),
                                                   bytes.begin() + std::min(bytes.size(), kHeaderSize)),
                         path);
    if (bytes.size() < kHeaderSize) {
        header.fail(fmt::format("{} bytes, shorter than the {}-byte header", bytes.size(), kHeaderSize));
    }
    if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
        header.fail("not an aidge_incremental memory file (bad magic)");
    }
    for (std::size_t i = 0; i < sizeof(kMagic); ++i) {
        header.get<char>();
    }
    const auto version = header.get<std::uint32_t>();
    if (version < kOldestMemoryFormatVersion || version > kMemoryFormatVersion) {
        header.fail(fmt::format("format version {} (this build reads versions {} to {})", version,
                                kOldestMemoryFormatVersion, kMemoryFormatVersion));
    }
    const auto fileKind = header.get<std::uint32_t>();
    if (fileKind != static_cast<std::uint32_t>(kind)) {
        header.fail(fmt::format("holds kind {}, expected a {}", fileKind, kindName(kind)));
    }
    const auto size = header.get<std::uint64_t>();
    const auto checksum = header.get<std::uint64_t>();
    if (size != bytes.size() - kHeaderSize) {
        header.fail(fmt::format("payload of {} bytes announced, {} present (truncated?)", size,
                                bytes.size() - kHeaderSize));
    }
    std::vector<std::uint8_t> payload(bytes.begin() + kHeaderSize, bytes.end());
    if (fnv1a64(payload.data(), payload.size()) != checksum) {
        header.fail("checksum mismatch");
    }
    return PayloadReader(std::move(payload), path, version);
}

} // namespace incremental
} // namespace Aidge
