#include <pybind11/pybind11.h>

#include "aidge/incremental/memory/MemoryFile.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

void init_MemoryFile(py::module &m)
{
    py::register_exception<CorruptFileError>(m, "CorruptFileError", PyExc_ValueError);
}

} // namespace incremental
} // namespace Aidge
