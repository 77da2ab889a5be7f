#include "aidge/incremental/backend/cpu/ConvAlgorithms.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>
#include <omp.h>

#include "aidge/incremental/backend/cpu/Blas.hpp"
#include "aidge/incremental/backend/cpu/operator/FastConvImpl_kernels.hpp"
#include "aidge/incremental/backend/cpu/operator/WinogradConvImpl_kernels.hpp"

namespace Aidge {
namespace incremental {

namespace {

constexpr ConvAlgorithm kAll[] = {ConvAlgorithm::Im2col, ConvAlgorithm::Shifted, ConvAlgorithm::Winograd2,
                                  ConvAlgorithm::Winograd4};
/// An algorithm this much slower than the fastest still wins if it rounds less.
constexpr double kPrecisionMargin = 1.03;
constexpr int kTimedRepeats = 3;
/// The cache file is ours, but read as untrusted: bounded, line by line.
constexpr std::uintmax_t kMaxFileBytes = 1 << 20;
constexpr std::size_t kMaxLineBytes = 512;

} // namespace

const char *convAlgorithmName(ConvAlgorithm algorithm)
{
    switch (algorithm) {
    case ConvAlgorithm::Im2col:
        return "im2col";
    case ConvAlgorithm::Shifted:
        return "shifted";
    case ConvAlgorithm::Winograd2:
        return "winograd2";
    case ConvAlgorithm::Winograd4:
        return "winograd4";
    }
    return "?";
}

ConvAlgorithm convAlgorithmFromName(const std::string &name)
{
    for (const ConvAlgorithm a : kAll) {
        if (name == convAlgorithmName(a)) {
            return a;
        }
    }
    throw std::invalid_argument(fmt::format(
        "unknown convolution algorithm '{}': one of im2col, shifted, winograd2, winograd4", name));
}

bool convAlgorithmApplies(ConvAlgorithm algorithm, const ConvShape &s)
{
    switch (algorithm) {
    case ConvAlgorithm::Im2col:
        return true;
    case ConvAlgorithm::Shifted:
        return shiftedApplies(s);
    case ConvAlgorithm::Winograd2:
    case ConvAlgorithm::Winograd4:
        return winogradApplies(s);
    }
    return false;
}

std::vector<ConvAlgorithm> convCandidates(const ConvShape &s)
{
    if (!shiftedApplies(s)) {
        return {ConvAlgorithm::Im2col};
    }
    std::vector<ConvAlgorithm> out{ConvAlgorithm::Shifted};
    if (winogradApplies(s)) {
        out.push_back(ConvAlgorithm::Winograd2);
        out.push_back(ConvAlgorithm::Winograd4);
    }
    return out;
}

ConvAlgorithm convDefaultAlgorithm(const ConvShape &s, bool /*backward*/)
{
    if (!shiftedApplies(s)) {
        return ConvAlgorithm::Im2col;
    }
    if (!winogradApplies(s)) {
        return ConvAlgorithm::Shifted;
    }
    // F(4x4, 3x3) pays for its transforms once the products are big enough
    // (measured on a Zen 4 with both OpenBLAS kernel sets,
    // benchmarks/bench_kernels.py --only conv).
    return std::min(s.C, s.O) >= 32 ? ConvAlgorithm::Winograd4 : ConvAlgorithm::Shifted;
}

void convForwardWith(ConvAlgorithm algorithm, const ConvShape &s, const float *x, const float *w,
                     const float *bias, float *y)
{
    blasSingleThreaded();
    if (!convAlgorithmApplies(algorithm, s)) {
        throw std::invalid_argument(fmt::format("convolution algorithm {} does not apply to a {}x{} kernel "
                                                "with stride {}x{}",
                                                convAlgorithmName(algorithm), s.KH, s.KW, s.SH, s.SW));
    }
    switch (algorithm) {
    case ConvAlgorithm::Im2col:
        im2colConvForward(s, x, w, bias, y);
        break;
    case ConvAlgorithm::Shifted:
        shiftedConvForward(s, x, w, bias, y);
        break;
    case ConvAlgorithm::Winograd2:
        winogradConvForward(2, s, x, w, bias, y);
        break;
    case ConvAlgorithm::Winograd4:
        winogradConvForward(4, s, x, w, bias, y);
        break;
    }
}

void convBackwardWith(ConvAlgorithm algorithm, const ConvShape &s, const float *x, const float *w,
                      const float *dy, float *dx, float *dw, float *db)
{
    blasSingleThreaded();
    if (!convAlgorithmApplies(algorithm, s)) {
        throw std::invalid_argument(fmt::format("convolution algorithm {} does not apply to a {}x{} kernel "
                                                "with stride {}x{}",
                                                convAlgorithmName(algorithm), s.KH, s.KW, s.SH, s.SW));
    }
    switch (algorithm) {
    case ConvAlgorithm::Im2col:
        im2colConvBackward(s, x, w, dy, dx, dw, db);
        break;
    case ConvAlgorithm::Shifted:
        shiftedConvBackward(s, x, w, dy, dx, dw, db);
        break;
    case ConvAlgorithm::Winograd2:
        winogradConvBackward(2, s, x, w, dy, dx, dw, db);
        break;
    case ConvAlgorithm::Winograd4:
        winogradConvBackward(4, s, x, w, dy, dx, dw, db);
        break;
    }
}

// ------------------------------------------------------------------ autotune

namespace {

enum class Mode { On, Off, Rebuild };

struct Table {
    std::mutex lock;
    bool modeSet = false;
    Mode mode = Mode::On;
    bool loaded = false;
    std::map<std::string, ConvAlgorithm> entries;
};

Table &table()
{
    static Table t;
    return t;
}

Mode parseMode(const std::string &text)
{
    if (text.empty() || text == "on" || text == "1") {
        return Mode::On;
    }
    if (text == "off" || text == "0") {
        return Mode::Off;
    }
    if (text == "rebuild") {
        return Mode::Rebuild;
    }
    throw std::invalid_argument(fmt::format(
        "AIDGE_INCREMENTAL_AUTOTUNE='{}': expected 'on' (default), 'off' or 'rebuild'", text));
}

const char *modeName(Mode mode)
{
    return mode == Mode::Off ? "off" : mode == Mode::Rebuild ? "rebuild" : "on";
}

/// Call with the table locked.
Mode currentMode(Table &t)
{
    if (!t.modeSet) {
        const char *env = std::getenv("AIDGE_INCREMENTAL_AUTOTUNE");
        try {
            t.mode = parseMode(env ? env : "");
        } catch (const std::invalid_argument &e) {
            // a typo must not make every convolution fail: say it once, measure
            std::fprintf(stderr, "aidge_incremental: %s; using 'on'\n", e.what());
            t.mode = Mode::On;
        }
        t.modeSet = true;
    }
    return t.mode;
}

std::string cacheFile()
{
    if (const char *path = std::getenv("AIDGE_INCREMENTAL_AUTOTUNE_FILE"); path && *path) {
        return path;
    }
    std::filesystem::path dir;
    if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
        dir = xdg;
    } else if (const char *home = std::getenv("HOME"); home && *home) {
        dir = std::filesystem::path(home) / ".cache";
    } else {
        return "";
    }
    return (dir / "aidge_incremental" / "conv_autotune.txt").string();
}

bool validKey(const std::string &key)
{
    return !key.empty() && key.size() < kMaxLineBytes &&
           std::all_of(key.begin(), key.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == ',' ||
                      c == '-' || c == '_' || c == ':' || c == '=';
           });
}

/// Entries of the cache file; unreadable, oversized or malformed content is
/// skipped (the entry is then measured again), never trusted.
std::map<std::string, ConvAlgorithm> readFile(const std::string &path)
{
    std::map<std::string, ConvAlgorithm> out;
    std::error_code ec;
    if (path.empty() || !std::filesystem::is_regular_file(path, ec) ||
        std::filesystem::file_size(path, ec) > kMaxFileBytes || ec) {
        return out;
    }
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#' || line.size() > kMaxLineBytes) {
            continue;
        }
        std::istringstream fields(line);
        std::string key, name, extra;
        if (!(fields >> key >> name) || (fields >> extra) || !validKey(key)) {
            continue;
        }
        try {
            out[key] = convAlgorithmFromName(name);
        } catch (const std::invalid_argument &) {
            continue;
        }
    }
    return out;
}

/// Rewrites the file with its current entries plus ours (ours win), through
/// a temporary file and a rename: a reader never sees half a file. Failures
/// (read-only home...) leave the choices in memory only.
void writeFile(const std::string &path, const std::map<std::string, ConvAlgorithm> &ours)
{
    if (path.empty()) {
        return;
    }
    std::map<std::string, ConvAlgorithm> merged = readFile(path);
    for (const auto &entry : ours) {
        merged[entry.first] = entry.second;
    }
    std::error_code ec;
    const std::filesystem::path target(path);
    if (target.has_parent_path()) {
        std::filesystem::create_directories(target.parent_path(), ec);
    }
    // a fresh name created exclusively (mkstemp: O_CREAT | O_EXCL, never through a planted link)
    std::string tmp = path + ".XXXXXX";
    const int fd = ::mkstemp(tmp.data());
    if (fd < 0) {
        return;
    }
    std::string text = "# aidge_incremental convolution autotune table: <shape/threads/BLAS kernels> <algorithm>\n"
                       "# measured at first use; delete this file or set AIDGE_INCREMENTAL_AUTOTUNE=rebuild "
                       "to measure again\n";
    for (const auto &entry : merged) {
        text += entry.first + ' ' + convAlgorithmName(entry.second) + '\n';
    }
    bool written = true;
    for (std::size_t done = 0; done < text.size() && written;) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        written = n > 0;
        done += written ? static_cast<std::size_t>(n) : 0;
    }
    if (::close(fd) != 0 || !written) {
        std::filesystem::remove(tmp, ec);
        return;
    }
    std::filesystem::rename(tmp, target, ec);
    if (ec) {
        std::filesystem::remove(tmp, ec);
    }
}

int roundUpPow2(int n)
{
    int p = 1;
    while (p < n && p < (1 << 30)) {
        p <<= 1;
    }
    return p;
}

std::string tableKey(const char *pass, const ConvShape &s)
{
    return fmt::format("{}/N{}/C{}/H{}xW{}/O{}/K{}x{}/S{}x{}/P{},{},{},{}/t{}/{}", pass, roundUpPow2(s.N), s.C,
                       s.H, s.W, s.O, s.KH, s.KW, s.SH, s.SW, s.PT, s.PL, s.PB, s.PR, omp_get_max_threads(),
                       blasCoreName());
}

/// Times each candidate (best of kTimedRepeats, interleaved, after one
/// untimed run of each) and returns the choice of the header's rule.
template <class Run>
ConvAlgorithm measure(const std::vector<ConvAlgorithm> &candidates, Run run)
{
    std::vector<double> best(candidates.size(), std::numeric_limits<double>::infinity());
    for (const ConvAlgorithm a : candidates) {
        run(a);
    }
    for (int r = 0; r < kTimedRepeats; ++r) {
        for (std::size_t i = 0; i < candidates.size(); ++i) {
            const auto start = std::chrono::steady_clock::now();
            run(candidates[i]);
            const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            best[i] = std::min(best[i], seconds);
        }
    }
    const double fastest = *std::min_element(best.begin(), best.end());
    for (std::size_t i = 0; i < candidates.size(); ++i) { // candidates: least rounding first
        if (best[i] <= fastest * kPrecisionMargin) {
            return candidates[i];
        }
    }
    return candidates.front();
}

/// The algorithm for `key`: from the table, or measured with `run` now.
template <class Run>
ConvAlgorithm choose(const char *pass, const ConvShape &s, Run run)
{
    const std::vector<ConvAlgorithm> candidates = convCandidates(s);
    if (candidates.size() == 1) {
        return candidates.front();
    }
    Table &t = table();
    std::string key;
    {
        std::lock_guard<std::mutex> guard(t.lock);
        const Mode mode = currentMode(t);
        if (mode == Mode::Off) {
            return convDefaultAlgorithm(s, pass[0] == 'b');
        }
        if (!t.loaded) {
            if (mode == Mode::On) {
                for (const auto &entry : readFile(cacheFile())) {
                    t.entries.insert(entry);
                }
            }
            t.loaded = true;
        }
        key = tableKey(pass, s);
        const auto found = t.entries.find(key);
        if (found != t.entries.end() && convAlgorithmApplies(found->second, s)) {
            return found->second;
        }
    }
    const ConvAlgorithm chosen = measure(candidates, run);
    std::lock_guard<std::mutex> guard(t.lock);
    t.entries[key] = chosen;
    writeFile(cacheFile(), t.entries);
    return chosen;
}

} // namespace

void convForward(const ConvShape &s, const float *x, const float *w, const float *bias, float *y)
{
    const ConvAlgorithm algorithm = choose("forward", s, [&](ConvAlgorithm a) {
        convForwardWith(a, s, x, w, bias, y); // each candidate overwrites y
    });
    convForwardWith(algorithm, s, x, w, bias, y);
}

void convBackward(const ConvShape &s, const float *x, const float *w, const float *dy, float *dx, float *dw,
                  float *db)
{
    const char *pass = dx && dw ? "backward" : dx ? "backward-dx" : dw ? "backward-dw" : "backward-db";
    const ConvAlgorithm algorithm = choose(pass, s, [&](ConvAlgorithm a) {
        // backward accumulates: time it on scratch gradients, not the caller's
        thread_local std::vector<float> sdx, sdw, sdb;
        sdx.assign(dx ? static_cast<std::size_t>(s.N) * s.C * s.H * s.W : 0, 0.0f);
        sdw.assign(dw ? static_cast<std::size_t>(s.O) * s.C * s.KH * s.KW : 0, 0.0f);
        sdb.assign(db ? static_cast<std::size_t>(s.O) : 0, 0.0f);
        convBackwardWith(a, s, x, w, dy, dx ? sdx.data() : nullptr, dw ? sdw.data() : nullptr,
                         db ? sdb.data() : nullptr);
    });
    convBackwardWith(algorithm, s, x, w, dy, dx, dw, db);
}

std::string convAutotuneMode()
{
    Table &t = table();
    std::lock_guard<std::mutex> guard(t.lock);
    return modeName(currentMode(t));
}

void setConvAutotuneMode(const std::string &mode)
{
    const Mode m = parseMode(mode);
    Table &t = table();
    std::lock_guard<std::mutex> guard(t.lock);
    t.mode = m;
    t.modeSet = true;
    if (m == Mode::Rebuild) {
        t.entries.clear();
        t.loaded = true;
    } else if (m == Mode::On) {
        t.loaded = false; // (re)read the file at the next lookup; entries measured here stay
    }
}

std::string convAutotuneFile()
{
    Table &t = table();
    std::lock_guard<std::mutex> guard(t.lock);
    return currentMode(t) == Mode::Off ? std::string() : cacheFile();
}

std::vector<std::pair<std::string, std::string>> convAutotuneTable()
{
    Table &t = table();
    std::lock_guard<std::mutex> guard(t.lock);
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto &entry : t.entries) {
        out.emplace_back(entry.first, convAlgorithmName(entry.second));
    }
    return out;
}

} // namespace incremental
} // namespace Aidge
