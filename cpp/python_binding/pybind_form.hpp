// Conversions shared by the bindings: Python arguments to C++ attributes,
// with errors that name the argument.
#ifndef AIDGE_INCREMENTAL_PYBIND_FORM_H_
#define AIDGE_INCREMENTAL_PYBIND_FORM_H_

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <pybind11/pybind11.h>

#include "aidge/incremental/operator/Distillation.hpp"

namespace Aidge {
namespace incremental {

/// "kl" / "bce" or a DistillationForm value.
inline DistillationForm formFromPy(const pybind11::object &form)
{
    if (pybind11::isinstance<pybind11::str>(form)) {
        return parseDistillationForm(form.cast<std::string>());
    }
    return form.cast<DistillationForm>();
}

/// n_old comes from Python as an int: refuse negatives with a clear message
/// rather than pybind11's generic "incompatible function arguments".
inline std::uint32_t nbOldFromPy(long long nbOld)
{
    if (nbOld < 0 || nbOld > std::numeric_limits<std::uint32_t>::max()) {
        throw std::invalid_argument(fmt::format(
            "n_old must be >= 0 (0 = every teacher column), got {}", nbOld));
    }
    return static_cast<std::uint32_t>(nbOld);
}

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_PYBIND_FORM_H_
