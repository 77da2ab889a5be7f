#include "aidge/incremental/backend/cpu/FastKernelRegistry.hpp"

#include <stdexcept>

namespace Aidge {
namespace incremental {

std::map<std::string, FastKernel> &FastKernelRegistry::table()
{
    static std::map<std::string, FastKernel> entries;
    return entries;
}

const FastKernel *FastKernelRegistry::find(const std::string &type)
{
    const auto it = table().find(type);
    return it == table().end() ? nullptr : &it->second;
}

std::vector<std::string> FastKernelRegistry::types()
{
    std::vector<std::string> names;
    for (const auto &entry : table()) {
        names.push_back(entry.first);
    }
    return names;
}

void FastKernelRegistry::add(const std::string &type, FastKernel kernel)
{
    if (!kernel.unsupportedReason || !kernel.attach) {
        throw std::logic_error(fmt::format(
            "FastKernelRegistry: the entry for '{}' lacks its reason or attach function", type));
    }
    if (!table().emplace(type, std::move(kernel)).second) {
        throw std::logic_error(
            fmt::format("FastKernelRegistry: two fast kernels registered for '{}'", type));
    }
}

} // namespace incremental
} // namespace Aidge
