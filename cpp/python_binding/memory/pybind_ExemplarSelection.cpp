#include <cstdint>
#include <vector>

#include <fmt/format.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "aidge/incremental/memory/ExemplarSelection.hpp"
#include "../utils/pybind_Arguments.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

void init_ExemplarSelection(py::module &m)
{
    m.def(
        "herding_selection",
        [](const py::object &featuresArg, const py::object &mArg) {
            const FloatMatrix features = floatMatrix(featuresArg, "herding_selection", "features");
            const std::size_t m = sizeArg(mArg, "herding_selection", "m");
            const std::vector<std::size_t> idx = coreCall("herding_selection", {{"features", featuresArg}, {"m", mArg}}, [&] {
                py::gil_scoped_release release;
                return herdingSelection(features.data(), features.shape(0), features.shape(1), m);
            });
            return toNumpy(idx);
        },
        py::arg("features"), py::arg("m"),
        "iCaRL herding (Algorithm 4): m indices in selection order.");
    m.def(
        "closest_to_mean_selection",
        [](const py::object &featuresArg, const py::object &mArg) {
            const FloatMatrix features = floatMatrix(featuresArg, "closest_to_mean_selection", "features");
            const std::size_t m = sizeArg(mArg, "closest_to_mean_selection", "m");
            const std::vector<std::size_t> idx = coreCall("closest_to_mean_selection", {{"features", featuresArg}, {"m", mArg}}, [&] {
                py::gil_scoped_release release;
                return closestToMeanSelection(features.data(), features.shape(0), features.shape(1), m);
            });
            return toNumpy(idx);
        },
        py::arg("features"), py::arg("m"));
    m.def(
        "random_selection",
        [](const py::object &nArg, const py::object &mArg, const py::object &seedArg_) {
            // n is bounded so that the index table (8 bytes each) stays allocatable.
            const std::size_t n = sizeArg(nArg, "random_selection", "n", 0, std::int64_t{1} << 36);
            const std::size_t m = sizeArg(mArg, "random_selection", "m");
            if (m > n) {
                throw py::value_error(fmt::format("random_selection: argument 'm' must be at most argument 'n' "
                                                  "(the number of samples) = {}, got {}", n, describe(mArg)));
            }
            const std::uint64_t seed = seedArg(seedArg_, "random_selection", "seed");
            return toNumpy(coreCall("random_selection", {{"n", nArg}, {"m", mArg}, {"seed", seedArg_}},
                                    [&] { return randomSelection(n, m, seed); }));
        },
        py::arg("n"), py::arg("m"), py::arg("seed"));
}

} // namespace incremental
} // namespace Aidge
